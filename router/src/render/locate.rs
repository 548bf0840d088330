//! From a minijinja error to `line:col` in the YAML file and a one-line reason.
//!
//! minijinja reports a byte range in the template source it compiled. That source is a
//! YAML string *value*, which differs from what the file holds: quotes, escapes, folded
//! lines, block indentation. The failing text (an expression, a tag) is nearly always
//! written verbatim in the file, so it is found there (the same occurrence, counting
//! from the start of the scalar); when it is not, lines are counted inside the value,
//! which is exact for `|` block scalars and for the first line of any scalar.

use std::ops::Range;

use minijinja::{Error, ErrorKind};

/// A string scalar of a template file: its value and where it was written.
#[derive(Debug, Clone)]
pub(super) struct Scalar {
    /// The value as YAML parsed it.
    pub text: Box<str>,
    /// Where the scalar starts in the file (1-based; for a quoted scalar, its quote; for
    /// a block scalar, its first content line).
    pub line: u32,
    pub col: u32,
    /// The scalar as written: a byte range of the file.
    pub raw: Range<usize>,
}

/// The file line and column of `scalar.text[at]`.
pub(super) fn locate(file: &str, scalar: &Scalar, at: Range<usize>) -> (u32, u32) {
    let text = &*scalar.text;
    let start = floor_boundary(text, at.start);
    let end = floor_boundary(text, at.end.max(start));
    let needle = &text[start..end];
    let raw = file.get(scalar.raw.clone()).unwrap_or("");
    if !needle.is_empty() {
        let nth = text.match_indices(needle).position(|(i, _)| i == start);
        if let Some((pos, _)) = nth.and_then(|n| raw.match_indices(needle).nth(n)) {
            return line_col(file, scalar.raw.start + pos);
        }
    }
    let before = &text[..start];
    let lines = before.matches('\n').count() as u32;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u32;
    if lines == 0 {
        let quoted = u32::from(raw.starts_with(['"', '\'']));
        (scalar.line, scalar.col + quoted + col)
    } else {
        // Exact for `|` block scalars; folded and quoted ones may span fewer lines.
        let (last_line, _) = line_col(file, scalar.raw.end);
        ((scalar.line + lines).min(last_line), scalar.col + col)
    }
}

/// 1-based line and column (in characters) of byte `pos` of `file`.
pub(super) fn line_col(file: &str, pos: usize) -> (u32, u32) {
    let before = &file[..floor_boundary(file, pos)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line as u32, col as u32)
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Why `err` happened, and what part of the failing segment (`text`, where minijinja
/// pointed at `range`) the reader should look at.
pub(super) fn explain(
    err: &Error,
    text: &str,
    range: Range<usize>,
    fuel: u64,
) -> (String, Range<usize>) {
    let range = floor_boundary(text, range.start)..floor_boundary(text, range.end.max(range.start));
    if let Some(name) = undefined_name(err, text, &range) {
        // The occurrence at or before where minijinja pointed (a filter given the
        // missing value points at the filter), else the first one.
        let mut found = text.match_indices(name.as_str()).map(|(i, _)| i);
        let first = found.next();
        let at = std::iter::once(first)
            .flatten()
            .chain(found)
            .take_while(|&i| i <= range.start)
            .last()
            .or(first)
            .map_or(range, |i| i..i + name.len());
        return (format!("undefined value: {name}"), at);
    }
    let detail = err.detail().unwrap_or_default();
    let reason = match err.kind() {
        ErrorKind::SyntaxError => return (format!("syntax error: {detail}"), range),
        ErrorKind::OutOfFuel => format!(
            "the template ran out of fuel ({fuel} steps): it loops too long or builds too much text"
        ),
        kind if detail.is_empty() => kind.to_string(),
        _ => detail.to_owned(),
    };
    match enclosing_tag(text, &range) {
        Some(tag) if !tag.is_empty() => (format!("{reason} (in `{tag}`)"), range),
        _ => (reason, range),
    }
}

/// The missing name behind an error, if a missing value caused it: minijinja names it
/// in debug mode ("`event.x` is undefined"); otherwise the text it points at.
fn undefined_name(err: &Error, text: &str, range: &Range<usize>) -> Option<String> {
    let named = err.detail().and_then(|detail| {
        let end = detail.find("` is undefined")?;
        let start = detail[..end].rfind('`')?;
        Some(detail[start + 1..end].to_owned())
    });
    if named.is_some() {
        return named;
    }
    if err.kind() != ErrorKind::UndefinedError {
        return None;
    }
    // `event.a.b` where `event.a` is missing points at `.a.b`: take the whole path.
    let is_path = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    let start = text[..range.start]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_path(c))
        .last()
        .map_or(range.start, |(i, _)| i);
    let name = text[start..range.end].trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The inside of the `{{ .. }}` or `{% .. %}` around `range`, trimmed.
fn enclosing_tag<'a>(text: &'a str, range: &Range<usize>) -> Option<&'a str> {
    let open = text[..range.start]
        .rfind("{{")
        .into_iter()
        .chain(text[..range.start].rfind("{%"))
        .max()?;
    let close = ["}}", "%}"]
        .iter()
        .filter_map(|c| text[range.end..].find(c))
        .min()
        .map(|i| range.end + i)?;
    let inside = text.get(open + 2..close)?;
    Some(inside.trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scalar at `key` of a one-level YAML mapping, found by hand.
    fn scalar(file: &str, key: &str, value: &str) -> Scalar {
        let root = super::super::tree::parse(file).unwrap();
        let super::super::tree::Node::Map(entries) = root.value else {
            panic!()
        };
        let (_, node) = entries.into_iter().find(|(k, _)| k.value == key).unwrap();
        let span = node.referenced.span();
        let start = span.byte_offset().unwrap() as usize;
        let len = span.byte_len().unwrap() as usize;
        let super::super::tree::Node::Str(text) = node.value else {
            panic!()
        };
        assert_eq!(text, value);
        Scalar {
            text: text.into(),
            line: node.referenced.line() as u32,
            col: node.referenced.column() as u32,
            raw: start..start + len,
        }
    }

    fn at(text: &str, needle: &str) -> Range<usize> {
        let i = text.find(needle).unwrap();
        i..i + needle.len()
    }

    #[test]
    fn finds_the_expression_in_every_scalar_style() {
        let file = "\
plain: a {{ x }} b
single: 'it''s {{ x }}'
double: \"tab\\t {{ x }}\"
block: |
  one
    two {{ x }}
folded: >
  one
  two {{ x }}
";
        let cases = [
            ("plain", "a {{ x }} b", (1, 13)),
            ("single", "it's {{ x }}", (2, 19)),
            ("double", "tab\t {{ x }}", (3, 19)),
            ("block", "one\n  two {{ x }}\n", (6, 12)),
            ("folded", "one two {{ x }}\n", (9, 10)),
        ];
        for (key, value, want) in cases {
            let s = scalar(file, key, value);
            assert_eq!(locate(file, &s, at(value, "x }}")), want, "{key}");
        }
    }

    #[test]
    fn counts_the_same_occurrence() {
        let file = "t: \"{{ a }} {{ a }}\"\n";
        let s = scalar(file, "t", "{{ a }} {{ a }}");
        assert_eq!(locate(file, &s, 11..12), (1, 16));
        assert_eq!(locate(file, &s, 3..4), (1, 8));
    }

    #[test]
    fn falls_back_to_counting_lines() {
        // The needle is written differently (an escape), so the place is counted.
        let file = "t: \"\\u0041 {{ y }}\"\n";
        let s = scalar(file, "t", "A {{ y }}");
        assert_eq!(locate(file, &s, 0..1), (1, 5));
        // Nothing to search for (minijinja pointed at the end): lines are counted.
        let file = "t: |\n  one\n  two\n";
        let s = scalar(file, "t", "one\ntwo\n");
        assert_eq!(locate(file, &s, 5..5), (3, 4));
    }

    #[test]
    fn undefined_names_come_from_the_detail_or_the_text() {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (debug, src, want) in [
            (true, "x {{ event.a.b }}", "undefined value: event.a"),
            (false, "x {{ event.a.b }}", "undefined value: event.a.b"),
            (true, "x {{ event.s + 1 }}", "undefined value: event.s"),
            (false, "{% if nope %}{% endif %}", "undefined value: nope"),
        ] {
            env.set_debug(debug);
            let err = env
                .render_str(src, minijinja::context!(event => minijinja::context!()))
                .unwrap_err();
            let range = err.range().unwrap();
            let (msg, at) = explain(&err, src, range, 1);
            assert_eq!(msg, want, "{src} (debug {debug})");
            assert!(src[at].starts_with(want.trim_start_matches("undefined value: ")));
        }
    }

    #[test]
    fn other_errors_name_the_tag() {
        let env = minijinja::Environment::new();
        let src = "a {{ 'x' + 1 }} b";
        let err = env.render_str(src, ()).unwrap_err();
        let (msg, _) = explain(&err, src, err.range().unwrap(), 1);
        assert_eq!(
            msg,
            "tried to use + operator on unsupported types string and number (in `'x' + 1`)"
        );
        let src = "a {{ 1|nope }}";
        let err = env.render_str(src, ()).unwrap_err();
        let (msg, at) = explain(&err, src, err.range().unwrap(), 1);
        assert_eq!(msg, "filter nope is unknown (in `1|nope`)");
        assert_eq!(&src[at], "nope");
    }
}
