//! What router.yaml takes from the environment: `${VAR}` / `${VAR:-default}` replaced
//! from the process's variables and the `.env` file beside the config.

use std::collections::HashMap;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics};

/// Replaces `${VAR}` and `${VAR:-default}`; `$${` stays a literal `${`. Works on the raw
/// text line by line, so YAML errors still point at the right line. A missing variable
/// without a default is an error naming it and where it is used.
///
/// A value becomes one YAML scalar, never structure: inside double quotes it is escaped,
/// inside single quotes its quotes are doubled, and a plain value that is the whole
/// scalar is written double-quoted when it holds anything YAML reads as syntax (a line
/// break would otherwise start new keys, ` #` a comment). A value that cannot be made
/// one scalar where it stands (a line break in single quotes, YAML syntax in the middle
/// of a plain scalar) is an error that says to quote the value in router.yaml.
pub fn interpolate(
    path: &Path,
    text: &str,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Diagnostics> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Diagnostics::default();
    for (lineno, full_line) in text.split_inclusive('\n').enumerate() {
        // A comment is left as it is: it may well explain `${VAR}` itself.
        let (line, comment) =
            full_line.split_at(comment_start(full_line).unwrap_or(full_line.len()));
        let mut rest = line;
        while let Some(start) = rest.find('$') {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            if let Some(literal) = after.strip_prefix("$${") {
                out.push_str("${");
                rest = literal;
                continue;
            }
            if !after.starts_with("${") {
                out.push('$');
                rest = &after[1..];
                continue;
            }
            let at = line.len() - after.len();
            let col = at as u32 + 1;
            let Some(end) = after.find('}') else {
                problems.push(Diagnostic::new(
                    path,
                    lineno as u32 + 1,
                    col,
                    "unclosed `${`: write ${NAME} or ${NAME:-default}",
                ));
                out.push_str(after);
                rest = "";
                break;
            };
            let inner = &after[2..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let value = match (
                var(name).filter(|v| !v.is_empty() || default.is_none()),
                default,
            ) {
                (Some(value), _) => Some(value),
                (None, Some(default)) => Some(default.to_owned()),
                (None, None) => {
                    problems.push(Diagnostic::new(
                        path,
                        lineno as u32 + 1,
                        col,
                        format!("environment variable {name} is not set: export it, add it to .env beside the config, or write ${{{name}:-default}}"),
                    ));
                    None
                }
            };
            rest = &after[end + 1..];
            if let Some(value) = value {
                let place = Place {
                    before: &line[..at],
                    after: rest,
                };
                match as_scalar(&value, &place) {
                    Ok(text) => out.push_str(&text),
                    Err(why) => problems.push(Diagnostic::new(
                        path,
                        lineno as u32 + 1,
                        col,
                        format!("the value of {name} {why}"),
                    )),
                }
            }
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    problems.into_result(out)
}

/// Where a `${VAR}` stands on its line (comment cut off).
struct Place<'a> {
    before: &'a str,
    after: &'a str,
}

/// What surrounds a `${VAR}`: how its value must be written to stay one scalar.
#[derive(Debug, PartialEq, Eq)]
enum Context {
    DoubleQuoted,
    SingleQuoted,
    /// A plain scalar that is nothing but the `${VAR}`.
    WholePlain,
    /// A plain scalar with other text around the `${VAR}`.
    InPlain,
}

impl Place<'_> {
    fn context(&self) -> Context {
        match quote_at(self.before) {
            Some('"') => return Context::DoubleQuoted,
            Some(_) => return Context::SingleQuoted,
            None => {}
        }
        let before = self.before.trim_end();
        let starts_value = before.is_empty()
            || before.ends_with(':') && self.before.len() > before.len()
            || before.ends_with(['-', '[', '{', ',']);
        let ends_value = self
            .after
            .trim_start()
            .chars()
            .next()
            .is_none_or(|c| matches!(c, ',' | ']' | '}' | '\n' | '\r'));
        if starts_value && ends_value {
            Context::WholePlain
        } else {
            Context::InPlain
        }
    }
}

/// `value` written so that it is read back as itself, one scalar, at `place`.
fn as_scalar(value: &str, place: &Place<'_>) -> Result<String, String> {
    let breaks = value.contains(['\n', '\r']);
    match place.context() {
        Context::DoubleQuoted => Ok(double_quoted_body(value)),
        Context::SingleQuoted if breaks => Err(
            "has a line break, which single quotes cannot hold: write \"${...}\" in double quotes".to_owned(),
        ),
        Context::SingleQuoted => Ok(value.replace('\'', "''")),
        Context::WholePlain if plain_is_safe(value) => Ok(value.to_owned()),
        Context::WholePlain => Ok(format!("\"{}\"", double_quoted_body(value))),
        Context::InPlain if breaks || value.contains(" #") || value.contains(": ") || value.ends_with(':') => Err(
            "holds YAML syntax (a line break, ` #` or `: `) in the middle of an unquoted value, where it would change the file's structure: put the whole value in double quotes in router.yaml".to_owned(),
        ),
        Context::InPlain => Ok(value.to_owned()),
    }
}

/// Whether `value` reads back as itself when written bare as a whole plain scalar.
fn plain_is_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return true; // empty: null or "" alike to every key that takes a string
    };
    !value.contains(['\n', '\r', '\t', '#', '"', '\'', ',', '[', ']', '{', '}'])
        && !value.contains(": ")
        && !value.ends_with(':')
        && !value.starts_with(char::is_whitespace)
        && !value.ends_with(char::is_whitespace)
        && !matches!(
            first,
            '-' | '?' | ':' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`'
        )
}

/// The inside of a YAML double-quoted scalar holding `value`.
fn double_quoted_body(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Where a YAML comment starts in `line`: a `#` at the start or after white space,
/// outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') if prev.is_whitespace() => return Some(i),
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            _ => {}
        }
        prev = c;
    }
    None
}

/// The quote `text` (the start of a line) leaves open, if any.
fn quote_at(text: &str) -> Option<char> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match (quote, c) {
            (Some('"'), '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q && !escaped => quote = None,
            _ => {}
        }
        escaped = false;
    }
    quote
}

/// Reads a `.env` file the way dotenv tools do (dotenvy): `KEY=VALUE` lines, optionally
/// `export KEY=VALUE`, `#` comments, single quotes for a literal value, double quotes for
/// one with escapes, and `$VAR`/`${VAR}` expanded outside single quotes. A missing file is
/// no error; a line it cannot read is, at that line.
pub fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, Diagnostic> {
    let lines = match dotenvy::from_path_iter(path) {
        Ok(lines) => lines,
        Err(e) if e.not_found() => return Ok(HashMap::new()),
        Err(e) => return Err(Diagnostic::file(path, format!("cannot read: {e}"))),
    };
    let mut vars = HashMap::new();
    for line in lines {
        match line {
            Ok((key, value)) => {
                vars.insert(key, value);
            }
            Err(dotenvy::Error::LineParse(text, at)) => {
                return Err(dotenv_line_error(path, &text, at));
            }
            Err(e) => return Err(Diagnostic::file(path, format!("cannot read: {e}"))),
        }
    }
    Ok(vars)
}

/// dotenvy names the text it could not read and the offset in it, not the line number:
/// find the line in the file to say where.
fn dotenv_line_error(path: &Path, text: &str, at: usize) -> Diagnostic {
    let message = format!(
        "cannot read {:?}: write KEY=VALUE, and quote a value with spaces, `#` or quotes \
         in it ('...' keeps it as it is)",
        text.lines().next().unwrap_or(text)
    );
    let first = text.lines().next().unwrap_or(text).trim();
    let number = std::fs::read_to_string(path)
        .ok()
        .and_then(|file| file.lines().position(|l| l.trim() == first));
    match number {
        Some(n) => {
            let column = text.lines().next().map_or(0, |l| at.min(l.len()));
            Diagnostic::new(path, n as u32 + 1, column as u32 + 1, message)
        }
        None => Diagnostic::file(path, message),
    }
}
