//! The filters, tests and functions a template (or a rule's `when:`) calls, found in its
//! source without rendering it, and which of them the environment lacks.
//!
//! minijinja looks a filter, test or function up only when a render reaches it, so a
//! misspelt one (`{{ event.time | datetme }}`) would load fine and fail every message
//! that gets there. Its syntax tree is not public (only behind an unstable feature), so
//! this reads the source the way its lexer does: the inside of `{{ }}` and `{% %}`, skipping
//! comments, `{% raw %}` blocks and string literals. A name is a filter after `|` (and in
//! `{% filter %}`), a test after `is` / `is not`, and a function when a bare name is
//! called (`name(`); the environment itself says whether it has it. A call to a name the
//! template defines (`{% macro %}`, `{% set %}`, loop variables) is left alone.

use std::collections::HashMap;
use std::ops::Range;

use minijinja::{Environment, ErrorKind};

use crate::diag;

/// How a template uses a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Filter,
    Test,
    Function,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Filter => "filter",
            Kind::Test => "test",
            Kind::Function => "function",
        }
    }
}

/// A filter, test or function a template calls, and where: a byte range of the text read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    pub kind: Kind,
    pub name: String,
    pub at: Range<usize>,
}

/// What one piece of template text calls, and the names it defines.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub calls: Vec<Call>,
    /// Names the text binds (macros, `set`, loop variables, parameters): calling one is
    /// not calling an unknown function.
    pub defined: Vec<String>,
}

impl Scan {
    /// Reads template text (`Hi {{ x|upper }}{% if y is defined %}...`).
    pub(crate) fn template(source: &str) -> Scan {
        let mut scan = Scan::default();
        for (block, inner) in tags(source) {
            scan.tag(source, inner, block);
        }
        scan
    }

    /// Reads a bare expression (a rule's `when:`).
    pub(crate) fn expression(source: &str) -> Scan {
        let mut scan = Scan::default();
        scan.tag(source, 0..source.len(), false);
        scan
    }

    fn tag(&mut self, source: &str, inner: Range<usize>, block: bool) {
        let toks = tokens(source, inner);
        let word = |i: usize| toks.get(i).filter(|t| t.ident).map(|t| t.text);
        let punct = |i: usize, p: &str| toks.get(i).is_some_and(|t| !t.ident && t.text == p);
        let statement = if block { word(0) } else { None };
        match statement {
            Some("set" | "with" | "for" | "import" | "from") => {
                // Everything bound: the names before `=` (set, with) or `in` (for);
                // import brings names from elsewhere, which this cannot follow.
                let stop = |t: &Token| match statement {
                    Some("for") => t.ident && t.text == "in",
                    Some("set" | "with") => !t.ident && t.text == "=",
                    _ => false,
                };
                let bound = toks[1..].iter().take_while(|t| !stop(t));
                self.defined
                    .extend(bound.filter(|t| t.ident).map(|t| t.text.to_owned()));
                if statement == Some("with") {
                    // `with a = 1, b = 2`: every name before an `=`.
                    self.defined.extend(
                        toks.windows(2)
                            .filter(|w| w[0].ident && !w[1].ident && w[1].text == "=")
                            .map(|w| w[0].text.to_owned()),
                    );
                }
            }
            Some("macro") => {
                // The macro's name and its parameters (a parameter's default is code).
                self.defined.extend(word(1).map(str::to_owned));
                self.defined.extend(
                    toks.windows(2)
                        .skip(2)
                        .filter(|w| w[0].ident && matches!(w[1].text, "," | ")" | "="))
                        .map(|w| w[0].text.to_owned()),
                );
            }
            Some("call") if punct(1, "(") => {
                // `{% call(user) list(users) %}`: the caller's parameters.
                self.defined.extend(
                    toks[2..]
                        .iter()
                        .take_while(|t| t.text != ")")
                        .filter(|t| t.ident)
                        .map(|t| t.text.to_owned()),
                );
            }
            _ => {}
        }
        let mut i = 0;
        if statement == Some("filter") {
            // `{% filter upper|trim %}`: a chain of filters without a value before it.
            if let Some(end) = self.dotted(&toks, 1, Kind::Filter) {
                i = end;
            }
        }
        // A macro's own name is a definition, not a call.
        let definition = if statement == Some("macro") {
            1
        } else {
            usize::MAX
        };
        while i < toks.len() {
            let t = &toks[i];
            if !t.ident && t.text == "|" {
                if let Some(end) = self.dotted(&toks, i + 1, Kind::Filter) {
                    i = end;
                    continue;
                }
            } else if t.ident && t.text == "is" {
                let at = if word(i + 1) == Some("not") && word(i + 2).is_some() {
                    i + 2
                } else {
                    i + 1
                };
                if let Some(end) = self.dotted(&toks, at, Kind::Test) {
                    i = end;
                    continue;
                }
            } else if t.ident
                && i != definition
                && punct(i + 1, "(")
                && !(i > 0 && punct(i - 1, "."))
                && !KEYWORDS.contains(&t.text)
            {
                self.calls.push(Call {
                    kind: Kind::Function,
                    name: t.text.to_owned(),
                    at: t.at.clone(),
                });
            }
            i += 1;
        }
    }

    /// Records the (possibly dotted) name at `toks[start]` as a `kind` call; returns the
    /// index after it.
    fn dotted(&mut self, toks: &[Token<'_>], start: usize, kind: Kind) -> Option<usize> {
        let first = toks.get(start).filter(|t| t.ident)?;
        let mut end = start + 1;
        let mut at = first.at.clone();
        let mut name = first.text.to_owned();
        while toks.get(end).is_some_and(|t| !t.ident && t.text == ".")
            && let Some(next) = toks.get(end + 1).filter(|t| t.ident)
        {
            name.push('.');
            name.push_str(next.text);
            at.end = next.at.end;
            end += 2;
        }
        self.calls.push(Call { kind, name, at });
        Some(end)
    }
}

/// Words that are syntax, not names, before a `(`: `not (a or b)`, `if (x)`.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "elif",
    "else",
    "for",
    "set",
    "macro",
    "call",
    "filter",
    "with",
    "block",
    "extends",
    "include",
    "import",
    "from",
    "as",
    "recursive",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

/// Names minijinja provides inside a template without any environment entry.
const BUILT_IN_NAMES: &[&str] = &["loop", "caller", "super", "self", "varargs", "kwargs"];

/// Filters and tests minijinja may provide, only to suggest a name: each is asked of the
/// environment first, so one missing from this list is merely never suggested.
const FILTER_NAMES: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
];
const TEST_NAMES: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// What an environment has, asked once per name.
pub(crate) struct Known<'env> {
    env: &'env Environment<'env>,
    /// Extra filter names worth suggesting (the router's own).
    own_filters: &'static [&'static str],
    asked: HashMap<(Kind, String), bool>,
}

impl<'env> Known<'env> {
    pub(crate) fn new(env: &'env Environment<'env>, own_filters: &'static [&'static str]) -> Self {
        Known {
            env,
            own_filters,
            asked: HashMap::new(),
        }
    }

    /// Whether the environment has filter, test or global function `name`.
    fn has(&mut self, kind: Kind, name: &str) -> bool {
        let env = self.env;
        *self
            .asked
            .entry((kind, name.to_owned()))
            .or_insert_with(|| {
                // Called with no arguments a known filter or test fails for want of
                // them; only a missing one fails as unknown.
                let mut state = env.empty_state();
                match kind {
                    Kind::Filter => !matches!(
                        state.apply_filter(name, &[]),
                        Err(e) if e.kind() == ErrorKind::UnknownFilter
                    ),
                    Kind::Test => !matches!(
                        state.perform_test(name, &[]),
                        Err(e) if e.kind() == ErrorKind::UnknownTest
                    ),
                    Kind::Function => env.globals().any(|(n, _)| n == name),
                }
            })
    }

    /// What is wrong with `call` in text that defines `defined`, or `None`:
    /// "unknown filter `datetme` (did you mean `datetime`?)".
    pub(crate) fn problem(&mut self, call: &Call, defined: &[String]) -> Option<String> {
        let name = call.name.as_str();
        if call.kind == Kind::Function
            && (BUILT_IN_NAMES.contains(&name) || defined.iter().any(|d| d == name))
        {
            return None;
        }
        if self.has(call.kind, name) {
            return None;
        }
        let unknown = format!("unknown {} `{name}`", call.kind.as_str());
        if call.kind == Kind::Function && self.has(Kind::Filter, name) {
            return Some(format!(
                "{unknown}: `{name}` is a filter, write `value|{name}`"
            ));
        }
        let candidates: Vec<String> = match call.kind {
            Kind::Filter => {
                self.existing(Kind::Filter, FILTER_NAMES.iter().chain(self.own_filters))
            }
            Kind::Test => self.existing(Kind::Test, TEST_NAMES.iter()),
            Kind::Function => self
                .env
                .globals()
                .map(|(n, _)| n.to_owned())
                .chain(defined.iter().cloned())
                .collect(),
        };
        match diag::closest(name, candidates.iter().map(String::as_str)) {
            Some(close) => Some(format!("{unknown} (did you mean `{close}`?)")),
            None => Some(unknown),
        }
    }

    fn existing<'a>(
        &mut self,
        kind: Kind,
        names: impl Iterator<Item = &'a &'a str>,
    ) -> Vec<String> {
        let names: Vec<&str> = names.copied().collect();
        names
            .into_iter()
            .filter(|n| self.has(kind, n))
            .map(str::to_owned)
            .collect()
    }
}

/// The inside of every `{{ }}` (false) and `{% %}` (true) tag of `source`, without
/// whitespace control marks; comments and `{% raw %}` blocks are skipped.
fn tags(source: &str) -> Vec<(bool, Range<usize>)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(found) = source[i..].find('{') {
        let start = i + found;
        let rest = &source[start..];
        if rest.starts_with("{#") {
            i = rest.find("#}").map_or(source.len(), |e| start + e + 2);
            continue;
        }
        let block = rest.starts_with("{%");
        if !block && !rest.starts_with("{{") {
            i = start + 1;
            continue;
        }
        let mut from = start + 2;
        if matches!(bytes.get(from), Some(b'-' | b'+')) {
            from += 1;
        }
        let closer = if block { "%}" } else { "}}" };
        let end = tag_end(source, from, closer);
        let mut to = end;
        if to > from && matches!(bytes[to - 1], b'-' | b'+') {
            to -= 1;
        }
        i = (end + closer.len()).min(source.len());
        if block && source[from..to].trim() == "raw" {
            i = raw_end(source, i);
            continue;
        }
        out.push((block, from..to));
    }
    out
}

/// Where `closer` ends the tag whose inside starts at `from`: outside strings and, for
/// `}}`, outside brackets (`{{ {'a': {'b': 1}} }}`).
fn tag_end(source: &str, from: usize, closer: &str) -> usize {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            q @ (b'\'' | b'"') => {
                i = string_end(bytes, i, q);
                continue;
            }
            b'(' | b'[' => depth += 1,
            b')' | b']' => depth = depth.saturating_sub(1),
            b'{' if closer == "}}" => depth += 1,
            b'}' if closer == "}}" && depth > 0 => depth -= 1,
            _ => {}
        }
        if (depth == 0 || closer == "%}") && bytes[i..].starts_with(closer.as_bytes()) {
            return i;
        }
        i += 1;
    }
    source.len()
}

/// The position after the `{% endraw %}` that closes a raw block starting at `from`.
fn raw_end(source: &str, from: usize) -> usize {
    let mut i = from;
    while let Some(found) = source[i..].find("{%") {
        let start = i + found + 2;
        let inner = source[start..].trim_start_matches(['-', '+']).trim_start();
        if inner.starts_with("endraw") {
            return source[start..]
                .find("%}")
                .map_or(source.len(), |e| start + e + 2);
        }
        i = start;
    }
    source.len()
}

/// The position after the string literal opened by quote `q` at `start`.
fn string_end(bytes: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == q => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// One token of an expression: a name, or anything else (an operator, a bracket).
/// String and number literals are skipped.
#[derive(Debug)]
struct Token<'a> {
    ident: bool,
    text: &'a str,
    at: Range<usize>,
}

fn tokens(source: &str, range: Range<usize>) -> Vec<Token<'_>> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = range.start;
    let end = range.end.min(bytes.len());
    while i < end {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            i = string_end(bytes, i, c).min(end);
        } else if c.is_ascii_digit() {
            while i < end && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.')) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < end && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                ident: true,
                text: &source[start..i],
                at: start..i,
            });
        } else {
            let two = source
                .get(i..i + 2)
                .filter(|t| matches!(*t, "==" | "!=" | "<=" | ">=" | "//" | "**"));
            let len = two.map_or_else(
                || source[i..].chars().next().map_or(1, char::len_utf8),
                str::len,
            );
            out.push(Token {
                ident: false,
                text: &source[i..i + len],
                at: i..i + len,
            });
            i += len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(scan: &Scan) -> Vec<(Kind, &str)> {
        scan.calls
            .iter()
            .map(|c| (c.kind, c.name.as_str()))
            .collect()
    }

    #[test]
    fn finds_filters_tests_and_functions_where_they_are_written() {
        let src = "{{ event.time | datetme }} {% if event.x is not defind and range(3) %}{{ a|money(signed=true)|upper }}{% endif %}";
        let scan = Scan::template(src);
        assert_eq!(
            calls(&scan),
            [
                (Kind::Filter, "datetme"),
                (Kind::Test, "defind"),
                (Kind::Function, "range"),
                (Kind::Filter, "money"),
                (Kind::Filter, "upper"),
            ]
        );
        assert_eq!(&src[scan.calls[0].at.clone()], "datetme");
        assert_eq!(&src[scan.calls[1].at.clone()], "defind");
    }

    /// Found by the `templates` fuzz target: a tag left open before a character of
    /// several bytes was searched for its end byte by byte, slicing inside the character.
    #[test]
    fn an_unclosed_tag_before_a_multibyte_character_is_scanned_without_a_panic() {
        for src in [
            "{{ event.x🏷️>b {% for %}",
            "{% if a🕐 %}{{ b|upper🏷️",
            "{{ {'a': 1}🏷️ }}",
        ] {
            let scan = Scan::template(src);
            for call in &scan.calls {
                assert!(src.get(call.at.clone()).is_some(), "{src}: {:?}", call.at);
            }
        }
        assert_eq!(
            calls(&Scan::template("{{ x|upper }}🏷️{{ y|lower")),
            [(Kind::Filter, "upper"), (Kind::Filter, "lower")]
        );
    }

    #[test]
    fn strings_comments_raw_blocks_and_methods_are_not_calls() {
        let src = "{# {{ x|nope }} #}{{ 'a|b is c' ~ \"f(x)\" }}{% raw %}{{ y|nope }}{% endraw %}{{ d.items() }}{{ {'k': {'j': 1}}|length }}";
        assert_eq!(calls(&Scan::template(src)), [(Kind::Filter, "length")]);
        // Whitespace control and a dotted filter name.
        let scan = Scan::template("{%- filter upper|a.b -%}x{%- endfilter %}{{- x|trim -}}");
        assert_eq!(
            calls(&scan),
            [
                (Kind::Filter, "upper"),
                (Kind::Filter, "a.b"),
                (Kind::Filter, "trim")
            ]
        );
    }

    #[test]
    fn names_the_template_defines_are_known() {
        let src = "{% macro row(k, v=none) %}{{ k }}{% endmacro %}{% set f, g = 1, 2 %}{% for a, b in x %}{{ row(a, b) }}{% endfor %}{% with h = 1 %}{% endwith %}{% call(u) row(1) %}{% endcall %}";
        let scan = Scan::template(src);
        for name in ["row", "k", "v", "f", "g", "a", "b", "h", "u"] {
            assert!(
                scan.defined.iter().any(|d| d == name),
                "{name}: {:?}",
                scan.defined
            );
        }
        // `row(` in the macro's own tag defines it; the others call it.
        assert_eq!(
            calls(&scan),
            [(Kind::Function, "row"), (Kind::Function, "row")]
        );
    }

    #[test]
    fn the_environment_says_what_is_unknown_and_the_closest_name() {
        let mut env = Environment::new();
        env.add_filter("datetime", |v: String| v);
        let mut known = Known::new(&env, &["datetime"]);
        let problems: Vec<Option<String>> = Scan::template(
            "{{ a|datetme }}{{ a|upper }}{{ a is defind }}{{ a is odd }}{{ rnage(2) }}{{ range(2) }}{{ datetime(a) }}{{ loop(1) }}{{ zzz(1) }}",
        )
        .calls
        .iter()
        .map(|c| known.problem(c, &[]))
        .collect();
        assert_eq!(
            problems,
            [
                Some("unknown filter `datetme` (did you mean `datetime`?)".to_owned()),
                None,
                Some("unknown test `defind` (did you mean `defined`?)".to_owned()),
                None,
                Some("unknown function `rnage` (did you mean `range`?)".to_owned()),
                None,
                Some(
                    "unknown function `datetime`: `datetime` is a filter, write `value|datetime`"
                        .to_owned()
                ),
                None,
                Some("unknown function `zzz`".to_owned()),
            ]
        );
    }

    #[test]
    fn an_expression_is_read_whole() {
        let scan = Scan::expression("event.pnl_pct|abs > 5 and event.x is numbr");
        assert_eq!(calls(&scan), [(Kind::Filter, "abs"), (Kind::Test, "numbr")]);
    }
}
