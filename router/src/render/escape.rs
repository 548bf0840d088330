//! Escaping interpolated values for a sink's markup, and the minijinja formatter that
//! applies it to every `{{ value }}` so that only values, never the template's own text,
//! are escaped.
//!
//! Each template is compiled with `AutoEscape::Custom(<markup name>)`; the formatter reads
//! that name back from the render state. `|safe` values are written as they are, and
//! minijinja's `|escape` goes through the same formatter, so it escapes for the group's
//! markup too.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::str::FromStr;

use minijinja::{AutoEscape, Error, ErrorKind, Output, State, Value};

use super::Markup;

/// Separates the outputs of the strings of one file in its combined template (see
/// `compile.rs`). It never reaches a payload: the formatter drops it from values and the
/// loader rejects it in template text.
pub(super) const SEP: char = '\u{1f}';

/// `value` escaped for `markup` (Telegram HTML, Discord markdown, Slack mrkdwn, or
/// unchanged for `none`).
pub fn escape(markup: Markup, value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 8);
    // Writing to a String cannot fail.
    let _ = escape_to(&mut out, markup, value);
    out
}

/// Characters Discord markdown treats as syntax. Mentions (`@`) are the plugin's job.
fn is_markdown_syntax(c: char) -> bool {
    matches!(
        c,
        '\\' | '*' | '_' | '~' | '`' | '|' | '>' | '#' | '[' | ']' | '(' | ')' | '-'
    )
}

/// Writes `value` escaped for `markup`, dropping [`SEP`].
fn escape_to(out: &mut impl std::fmt::Write, markup: Markup, value: &str) -> std::fmt::Result {
    // Unchanged runs of `value` are written whole; `start` is where the current one began.
    let mut start = 0;
    for (i, c) in value.char_indices() {
        let entity = match (markup, c) {
            (_, SEP) => "",
            (Markup::Html | Markup::Mrkdwn, '&') => "&amp;",
            (Markup::Html | Markup::Mrkdwn, '<') => "&lt;",
            (Markup::Html | Markup::Mrkdwn, '>') => "&gt;",
            (Markup::Html, '"') => "&quot;",
            (Markup::Markdown, c) if is_markdown_syntax(c) => {
                // A backslash before the character; the character stays in the run.
                out.write_str(&value[start..i])?;
                out.write_char('\\')?;
                start = i;
                continue;
            }
            _ => continue,
        };
        out.write_str(&value[start..i])?;
        out.write_str(entity)?;
        start = i + c.len_utf8();
    }
    out.write_str(&value[start..])
}

/// The auto-escape mode a template of a group with `markup` is compiled with.
pub(super) fn auto_escape(markup: Markup) -> AutoEscape {
    AutoEscape::Custom(Cow::Borrowed(markup.as_str()))
}

/// The environment's formatter: escapes every printed value for the markup of the
/// template being rendered, writes `|safe` values as they are.
pub(super) fn format(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let markup = match state.auto_escape() {
        AutoEscape::Custom(name) => Markup::from_str(name).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("unknown auto-escape mode `{name}`"),
            )
        })?,
        // `{% autoescape .. %}` blocks: minijinja's own rules.
        _ => return minijinja::escape_formatter(out, state, value),
    };
    let markup = if value.is_safe() {
        Markup::None
    } else {
        markup
    };
    let written = match value.as_str() {
        Some(s) => escape_to(out, markup, s),
        None => {
            let mut s = String::new();
            write!(s, "{value}").map_err(Error::from)?;
            escape_to(out, markup, &s)
        }
    };
    written.map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "<script>alert(1)</script> & <b>hi</b> *bold* _x_ 🚀 \"q\"";

    #[test]
    fn html_escapes_the_four_telegram_entities_only() {
        assert_eq!(
            escape(Markup::Html, NASTY),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;hi&lt;/b&gt; *bold* _x_ 🚀 &quot;q&quot;"
        );
        assert_eq!(escape(Markup::Html, "it's a/b"), "it's a/b");
    }

    #[test]
    fn markdown_escapes_discord_syntax_characters() {
        assert_eq!(
            escape(Markup::Markdown, NASTY),
            "<script\\>alert\\(1\\)</script\\> & <b\\>hi</b\\> \\*bold\\* \\_x\\_ 🚀 \"q\""
        );
        assert_eq!(
            escape(Markup::Markdown, r"a\b `c` ~d~ |e| # [f](g) -h"),
            r"a\\b \`c\` \~d\~ \|e\| \# \[f\]\(g\) \-h"
        );
        // Mentions and ordinary punctuation are left alone.
        assert_eq!(
            escape(Markup::Markdown, "@everyone 1.5! ok?"),
            "@everyone 1.5! ok?"
        );
    }

    #[test]
    fn mrkdwn_escapes_control_characters_only() {
        assert_eq!(
            escape(Markup::Mrkdwn, NASTY),
            "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;hi&lt;/b&gt; *bold* _x_ 🚀 \"q\""
        );
    }

    #[test]
    fn none_leaves_values_alone() {
        assert_eq!(escape(Markup::None, NASTY), NASTY);
    }

    #[test]
    fn the_separator_never_survives() {
        for markup in [Markup::None, Markup::Html, Markup::Markdown, Markup::Mrkdwn] {
            assert_eq!(escape(markup, "a\u{1f}b"), "ab", "{markup}");
        }
    }
}
