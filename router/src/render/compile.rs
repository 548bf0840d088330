//! One template file made ready to render: the payload's shape (maps, lists, literal
//! values) and a single minijinja source that holds every string of the file.
//!
//! Rendering a file's dozen strings as a dozen templates costs a dozen render setups;
//! one combined template costs one. Its parts, in document order:
//! - a string with template syntax: its text, then [`SEP`]; the output is split there;
//! - a string that is exactly one `{{ expr }}`: `{% set __nK = expr %}`, read back from
//!   the render's state afterwards, so it keeps its native type (bool, number, list);
//! - strings without template syntax and other scalars are not in it: they are copied.
//!
//! Each string is also compiled alone at load, so a broken one is reported on its own
//! (all of them, not just the first) and a tag never spans two strings.

use std::ops::Range;
use std::path::Path;

use minijinja::{Environment, Error};
use serde_saphyr::Spanned;

use super::escape::SEP;
use super::locate::{Scalar, explain, locate};
use super::tree::{self, Node};
use crate::diag::{Diagnostic, Diagnostics};

/// The payload with a slot for each rendered string.
#[derive(Debug)]
pub(super) enum Shape {
    Literal(serde_json::Value),
    /// The n-th piece of the combined output.
    Text(usize),
    /// The n-th native value.
    Native(usize),
    Seq(Vec<Shape>),
    Map(Vec<(String, Shape)>),
}

/// The payload as JSON text with holes: what [`Shape`] serializes to, prepared once so
/// rendering to text writes literal parts whole.
#[derive(Debug, PartialEq)]
pub(super) enum Chunk {
    /// JSON text written as it is.
    Raw(String),
    /// The n-th piece of the combined output, as a JSON string.
    Text(usize),
    /// The n-th native value.
    Native(usize),
}

/// `shape` as [`Chunk`]s.
fn chunks(shape: &Shape) -> Vec<Chunk> {
    fn walk(shape: &Shape, raw: &mut String, out: &mut Vec<Chunk>) {
        let mut hole = |raw: &mut String, chunk: Chunk| {
            if !raw.is_empty() {
                out.push(Chunk::Raw(std::mem::take(raw)));
            }
            out.push(chunk);
        };
        match shape {
            Shape::Literal(v) => raw.push_str(&v.to_string()),
            Shape::Text(i) => hole(raw, Chunk::Text(*i)),
            Shape::Native(i) => hole(raw, Chunk::Native(*i)),
            Shape::Seq(items) => {
                raw.push('[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        raw.push(',');
                    }
                    walk(item, raw, out);
                }
                raw.push(']');
            }
            Shape::Map(entries) => {
                raw.push('{');
                for (n, (key, value)) in entries.iter().enumerate() {
                    if n > 0 {
                        raw.push(',');
                    }
                    raw.push_str(&serde_json::Value::from(key.as_str()).to_string());
                    raw.push(':');
                    walk(value, raw, out);
                }
                raw.push('}');
            }
        }
    }
    let (mut raw, mut out) = (String::new(), Vec::new());
    walk(shape, &mut raw, &mut out);
    if !raw.is_empty() {
        out.push(Chunk::Raw(raw));
    }
    out
}

/// Where one string's template text sits in the combined source.
#[derive(Debug)]
pub(super) struct Segment {
    /// Byte range of the string's template text in the combined source.
    pub range: Range<usize>,
    /// Where that text starts in the scalar's value (past `{{` for a native).
    pub base: usize,
    pub scalar: Scalar,
}

/// A string that keeps its expression's native type.
#[derive(Debug)]
pub(super) struct Native {
    /// The variable the combined template sets.
    pub var: String,
    pub segment: usize,
}

/// A compiled template file.
#[derive(Debug)]
pub(super) struct FileTemplate {
    pub shape: Shape,
    /// The same payload as JSON text with holes.
    pub chunks: Vec<Chunk>,
    /// The combined template source; empty when nothing in the file needs rendering.
    pub source: String,
    pub segments: Vec<Segment>,
    pub natives: Vec<Native>,
    /// How many [`Shape::Text`] slots there are.
    pub texts: usize,
}

impl FileTemplate {
    /// Parses `file` (the text of `path`) and checks every string in it.
    pub fn compile(path: &Path, file: &str) -> Result<FileTemplate, Diagnostics> {
        let root = tree::parse(file).map_err(|e| Diagnostic::yaml(path, &e))?;
        if root.value == Node::Null {
            return Err(Diagnostic::file(
                path,
                "the template is empty: write the payload the sink expects, e.g. `text: ...`",
            )
            .into());
        }
        let mut builder = Builder {
            path,
            file,
            out: FileTemplate {
                shape: Shape::Seq(Vec::new()),
                chunks: Vec::new(),
                source: String::new(),
                segments: Vec::new(),
                natives: Vec::new(),
                texts: 0,
            },
            problems: Diagnostics::default(),
        };
        let shape = builder.node(&root);
        let Builder {
            mut out, problems, ..
        } = builder;
        out.chunks = chunks(&shape);
        out.shape = shape;
        problems.into_result(out)
    }

    /// The diagnostic for `err`, raised by minijinja compiling or rendering
    /// [`FileTemplate::source`].
    pub fn diagnose(&self, path: &Path, file: &str, err: &Error, fuel: u64) -> Diagnostic {
        diagnose(&self.source, &self.segments, path, file, err, fuel)
    }

    /// A diagnostic about a whole segment's expression (e.g. a native value that is
    /// undefined or has no JSON form).
    pub fn diagnose_segment(
        &self,
        path: &Path,
        file: &str,
        segment: usize,
        message: impl FnOnce(&str) -> String,
    ) -> Diagnostic {
        match self.segments.get(segment) {
            Some(seg) => {
                let text = &self.source[seg.range.clone()];
                let lead = text.len() - text.trim_start().len();
                let expr = text.trim();
                let at = seg.base + lead..seg.base + lead + expr.len();
                let (line, col) = locate(file, &seg.scalar, at);
                Diagnostic::new(path, line, col, message(expr))
            }
            None => Diagnostic::file(path, message("")),
        }
    }
}

/// Where in `source` minijinja pointed: its byte range, or the start of its line.
fn error_range(source: &str, err: &Error) -> Range<usize> {
    if let Some(range) = err.range() {
        return range;
    }
    let start = match err.line() {
        Some(line) if line > 1 => source
            .match_indices('\n')
            .nth(line - 2)
            .map_or(0, |(i, _)| i + 1),
        _ => 0,
    };
    start..start
}

fn diagnose(
    source: &str,
    segments: &[Segment],
    path: &Path,
    file: &str,
    err: &Error,
    fuel: u64,
) -> Diagnostic {
    let range = error_range(source, err);
    let index = segments
        .partition_point(|s| s.range.start <= range.start)
        .saturating_sub(1);
    let Some(seg) = segments.get(index) else {
        let (message, _) = explain(err, "", 0..0, fuel);
        return Diagnostic::file(path, message);
    };
    // Clamp into the segment: minijinja may point at the glue around a native.
    let clamp = |i: usize| i.clamp(seg.range.start, seg.range.end) - seg.range.start + seg.base;
    let local = clamp(range.start)..clamp(range.end.max(range.start));
    let (message, at) = explain(err, &seg.scalar.text, local, fuel);
    let (line, col) = locate(file, &seg.scalar, at);
    Diagnostic::new(path, line, col, message)
}

struct Builder<'a> {
    path: &'a Path,
    file: &'a str,
    out: FileTemplate,
    problems: Diagnostics,
}

impl Builder<'_> {
    fn node(&mut self, node: &Spanned<Node>) -> Shape {
        use serde_json::Value as J;
        match &node.value {
            Node::Null => Shape::Literal(J::Null),
            Node::Bool(b) => Shape::Literal(J::Bool(*b)),
            Node::Int(i) => Shape::Literal(J::from(*i)),
            Node::UInt(u) => Shape::Literal(J::from(*u)),
            Node::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => Shape::Literal(J::Number(n)),
                None => {
                    let (line, col) = (node.defined.line(), node.defined.column());
                    self.problems.push(Diagnostic::new(
                        self.path,
                        line as u32,
                        col as u32,
                        format!("{f} has no JSON form; quote it to send it as text"),
                    ));
                    Shape::Literal(J::Null)
                }
            },
            Node::Str(s) => self.string(node, s),
            Node::Seq(items) => Shape::Seq(items.iter().map(|i| self.node(i)).collect()),
            Node::Map(entries) => Shape::Map(
                entries
                    .iter()
                    .map(|(k, v)| (k.value.clone(), self.node(v)))
                    .collect(),
            ),
        }
    }

    fn string(&mut self, node: &Spanned<Node>, text: &str) -> Shape {
        if !has_template_syntax(text) {
            return Shape::Literal(serde_json::Value::String(text.to_owned()));
        }
        let span = node.defined.span();
        let raw_start = span.byte_offset().unwrap_or(0) as usize;
        let raw = raw_start..raw_start + span.byte_len().unwrap_or(0) as usize;
        let scalar = Scalar {
            text: text.into(),
            line: node.defined.line() as u32,
            col: node.defined.column() as u32,
            raw,
        };
        if let Some(i) = text.find(SEP) {
            let (line, col) = locate(self.file, &scalar, i..i + SEP.len_utf8());
            self.problems.push(Diagnostic::new(
                self.path,
                line,
                col,
                "the control character U+001F cannot be used in a template",
            ));
            return Shape::Literal(serde_json::Value::Null);
        }
        match single_expression(text) {
            Some(inner) => {
                let var = format!("__n{}", self.out.natives.len());
                let prefix = format!("{{% set {var} = ");
                let alone = format!("{prefix}{} %}}", &text[inner.clone()]);
                let segment = Segment {
                    range: prefix.len()..prefix.len() + inner.len(),
                    base: inner.start,
                    scalar,
                };
                if !self.check(&alone, segment.range.clone(), segment.base, &segment.scalar) {
                    return Shape::Literal(serde_json::Value::Null);
                }
                let start = self.out.source.len() + prefix.len();
                self.out.source.push_str(&alone);
                self.out.natives.push(Native {
                    var,
                    segment: self.out.segments.len(),
                });
                self.out.segments.push(Segment {
                    range: start..start + inner.len(),
                    ..segment
                });
                Shape::Native(self.out.natives.len() - 1)
            }
            None => {
                if !self.check(text, 0..text.len(), 0, &scalar) {
                    return Shape::Literal(serde_json::Value::Null);
                }
                let start = self.out.source.len();
                self.out.source.push_str(text);
                self.out.source.push(SEP);
                self.out.segments.push(Segment {
                    range: start..start + text.len(),
                    base: 0,
                    scalar,
                });
                self.out.texts += 1;
                Shape::Text(self.out.texts - 1)
            }
        }
    }

    /// Compiles `source` (one string, maybe with glue around it) alone; reports and
    /// returns false when it does not compile.
    fn check(&mut self, source: &str, range: Range<usize>, base: usize, scalar: &Scalar) -> bool {
        // Syntax needs no filters or globals: the empty environment is cheap.
        let checker = Environment::empty();
        let Err(err) = checker.template_from_str(source).map(|_| ()) else {
            return true;
        };
        let segment = Segment {
            range,
            base,
            scalar: scalar.clone(),
        };
        let diagnostic = diagnose(source, &[segment], self.path, self.file, &err, 0);
        self.problems.push(diagnostic);
        false
    }
}

/// Whether minijinja would see anything but literal text in `s`.
fn has_template_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// For a string that is exactly one `{{ expr }}` (surrounding whitespace aside), the
/// byte range of `expr`.
fn single_expression(s: &str) -> Option<Range<usize>> {
    let lead = s.len() - s.trim_start().len();
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if ["{{", "}}", "{%", "%}", "{#"]
        .iter()
        .any(|m| inner.contains(m))
    {
        return None;
    }
    let mut start = lead + 2;
    let mut end = lead + t.len() - 2;
    // Whitespace control (`{{- x -}}`) means nothing for a value of its own.
    if s[start..end].starts_with(['-', '+']) {
        start += 1;
    }
    if end > start && s[start..end].ends_with(['-', '+']) {
        end -= 1;
    }
    (!s[start..end].trim().is_empty()).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_single_expressions() {
        assert_eq!(single_expression("{{ x }}"), Some(2..5));
        assert_eq!(single_expression("  {{x}} "), Some(4..5));
        assert_eq!(single_expression("{{- x -}}"), Some(3..6));
        assert_eq!(single_expression("{{ a }} {{ b }}"), None);
        assert_eq!(single_expression("{{ a }} b"), None);
        assert_eq!(single_expression("{{ }}"), None);
        assert_eq!(single_expression("{% if a %}{{ a }}{% endif %}"), None);
        assert_eq!(single_expression("{{ a -}}"), Some(2..5));
    }

    #[test]
    fn builds_one_source_for_the_whole_file() {
        let file = "\
text: \"Hi {{ event.name }}\"
silent: \"{{ event.quiet }}\"
n: 3
plain: no templates here
list: [\"{{ a }}{{ b }}\", 1]
";
        let t = FileTemplate::compile(Path::new("t.yaml"), file).unwrap();
        assert_eq!(
            t.source,
            "Hi {{ event.name }}\u{1f}{% set __n0 =  event.quiet  %}{{ a }}{{ b }}\u{1f}"
        );
        assert_eq!(t.texts, 2);
        assert_eq!(t.natives.len(), 1);
        assert_eq!(&t.source[t.segments[1].range.clone()], " event.quiet ");
        let Shape::Map(entries) = &t.shape else {
            panic!("{:?}", t.shape)
        };
        assert!(matches!(entries[0].1, Shape::Text(0)));
        assert!(matches!(entries[1].1, Shape::Native(0)));
        assert!(matches!(
            entries[2].1,
            Shape::Literal(serde_json::Value::Number(_))
        ));
        assert!(
            matches!(&entries[3].1, Shape::Literal(serde_json::Value::String(s)) if s == "no templates here")
        );
    }

    #[test]
    fn the_payload_text_has_a_hole_per_slot() {
        let file = "a: \"x {{ y }}\"\nb: [1, \"{{ z }}\", {c: null}]\n\"k\\\"q\": t\n";
        let t = FileTemplate::compile(Path::new("t.yaml"), file).unwrap();
        assert_eq!(
            t.chunks,
            [
                Chunk::Raw("{\"a\":".into()),
                Chunk::Text(0),
                Chunk::Raw(",\"b\":[1,".into()),
                Chunk::Native(0),
                Chunk::Raw(",{\"c\":null}],\"k\\\"q\":\"t\"}".into()),
            ]
        );
    }

    #[test]
    fn reports_every_broken_string() {
        let file = "\
a: \"{{ x + }}\"
b: ok {{ y
c: |
  fine
  {% if z %}
";
        let errs = FileTemplate::compile(Path::new("t.yaml"), file).unwrap_err();
        let lines: Vec<String> = errs.0.iter().map(|d| d.to_string()).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].starts_with("t.yaml:1:"), "{lines:#?}");
        assert!(lines[0].contains("syntax error"), "{lines:#?}");
        assert!(lines[1].starts_with("t.yaml:2:"), "{lines:#?}");
        assert!(lines[2].starts_with("t.yaml:5:"), "{lines:#?}");
    }

    #[test]
    fn an_empty_file_is_an_error() {
        let errs = FileTemplate::compile(Path::new("t.yaml"), "# nothing\n").unwrap_err();
        assert!(errs.to_string().contains("the template is empty"), "{errs}");
    }
}
