//! What router.yaml takes from the environment: `${VAR}` / `${VAR:-default}` replaced
//! from the process's variables and the `.env` file beside the config.

use std::collections::HashMap;
use std::path::Path;

use crate::diag::{Diagnostic, Diagnostics};

/// Replaces `${VAR}` and `${VAR:-default}`; `$${` stays a literal `${`. Works on the raw
/// text line by line, so YAML errors still point at the right line. A missing variable
/// without a default is an error naming it and where it is used.
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
            let col = (line.len() - after.len() + 1) as u32;
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
            match (var(name).filter(|v| !v.is_empty() || default.is_none()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => problems.push(Diagnostic::new(
                    path,
                    lineno as u32 + 1,
                    col,
                    format!("environment variable {name} is not set: export it, add it to .env beside the config, or write ${{{name}:-default}}"),
                )),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    problems.into_result(out)
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
