//! Message text as Telegram counts it: the payload a template rendered, Telegram's
//! length limits, counting the way Telegram does (code points after tags are stripped
//! and entities decoded), splitting long text at line boundaries with tags kept
//! balanced, and the plain-text form used when Telegram cannot parse the markup.

use serde::{Deserialize, Deserializer};
use teloxide::types::{LinkPreviewOptions, ReplyMarkup};

use crate::config::Markup;

/// Telegram's limit on a message's text: "1-4096 characters after entities parsing",
/// counted in Unicode code points.
/// <https://core.telegram.org/bots/api#sendmessage>
pub const MESSAGE_TEXT_LIMIT: usize = 4096;

/// The Bot API server refuses raw `text` over this many bytes ("text is too long")
/// before it even parses the markup, so tag-heavy text needs this second budget.
/// <https://github.com/tdlib/telegram-bot-api/blob/master/telegram-bot-api/Client.cpp>
/// (`get_input_message_text`)
pub const MESSAGE_BYTES_LIMIT: usize = 32768;

/// The `sendMessage` fields a template may set. Unknown fields are refused, so a typo
/// in a template shows up as a clear delivery failure instead of being ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    pub text: String,
    #[serde(default)]
    pub parse_mode: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub disable_notification: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub protect_content: Option<bool>,
    #[serde(default)]
    pub message_thread_id: Option<i32>,
    #[serde(default)]
    pub link_preview_options: Option<LinkPreviewOptions>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub disable_web_page_preview: Option<bool>,
    #[serde(default)]
    pub reply_markup: Option<ReplyMarkup>,
}

impl Payload {
    /// Reads a rendered payload; the error says which field is wrong.
    pub fn from_json(value: &serde_json::Value) -> Result<Payload, String> {
        Payload::deserialize(value).map_err(|e| format!("the rendered payload is not valid: {e}"))
    }

    /// The markup the payload asks for, else `default`.
    pub fn markup(&self, default: Markup) -> Result<Markup, String> {
        match &self.parse_mode {
            None => Ok(default),
            Some(mode) => Markup::parse(mode).ok_or_else(|| {
                format!(
                    "the rendered payload's parse_mode {mode:?} is not one of HTML, MarkdownV2, \
                     Markdown, none"
                )
            }),
        }
    }
}

/// Accepts `true`/`false` and also the strings `"true"`/`"false"` (a template that
/// renders a boolean with surrounding text yields a string).
fn lenient_bool<'de, D: Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(de)?;
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
        Some(serde_json::Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Some(true)),
            "false" | "no" | "0" | "" => Ok(Some(false)),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, got {other:?}"
            ))),
        },
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected true or false, got {other}"
        ))),
    }
}

/// The budget one message must fit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Visible characters (code points).
    pub chars: usize,
    /// Raw bytes, markup included.
    pub bytes: usize,
}

impl Limits {
    pub const TELEGRAM: Limits = Limits {
        chars: MESSAGE_TEXT_LIMIT,
        bytes: MESSAGE_BYTES_LIMIT,
    };
}

/// Splits `text` into messages that each fit `limits`, cutting only at line ends when
/// a line boundary is available (else at a space, else between characters), never
/// inside a tag or an entity. For HTML, tags open at a cut are closed at the end of
/// one part and reopened, with their attributes, at the start of the next. Parts that
/// would show nothing but whitespace are dropped (Telegram refuses them).
///
/// Text that already fits comes back unchanged as the only part.
pub fn split(text: &str, markup: Markup, limits: Limits) -> Vec<String> {
    let atoms = tokenize(text, markup);
    let visible: usize = atoms.iter().map(Atom::chars).sum();
    if visible <= limits.chars && text.len() <= limits.bytes {
        return vec![text.to_owned()];
    }
    Splitter::new(limits).run(&atoms)
}

/// The text Telegram would display: tags removed and entities decoded exactly as
/// Telegram's HTML parser does. Used to resend a message as plain text.
pub fn html_to_plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for atom in tokenize(text, Markup::Html) {
        match atom {
            Atom::Char { raw, .. } => out.push_str(raw),
            Atom::Entity { ch, .. } => out.push(ch),
            Atom::Open { .. } | Atom::Close { .. } => {}
        }
    }
    out
}

/// How many characters Telegram counts for `text` in `markup` before trimming.
pub fn visible_len(text: &str, markup: Markup) -> usize {
    tokenize(text, markup).iter().map(Atom::chars).sum()
}

/// One indivisible piece of message text.
#[derive(Debug, Clone, PartialEq)]
enum Atom<'a> {
    /// One character shown as is.
    Char { raw: &'a str, ch: char },
    /// An HTML entity (`&amp;`, `&#x2f;`): several bytes, one character shown.
    Entity { raw: &'a str, ch: char },
    /// A start tag, kept whole with its attributes so it can be reopened.
    Open { raw: &'a str, name: String },
    /// An end tag (`</b>`, or `</>` which closes the innermost tag).
    Close { raw: &'a str, name: String },
}

impl Atom<'_> {
    fn raw(&self) -> &str {
        match self {
            Atom::Char { raw, .. }
            | Atom::Entity { raw, .. }
            | Atom::Open { raw, .. }
            | Atom::Close { raw, .. } => raw,
        }
    }

    fn chars(&self) -> usize {
        match self {
            Atom::Char { .. } | Atom::Entity { .. } => 1,
            Atom::Open { .. } | Atom::Close { .. } => 0,
        }
    }

    fn shown(&self) -> Option<char> {
        match self {
            Atom::Char { ch, .. } | Atom::Entity { ch, .. } => Some(*ch),
            Atom::Open { .. } | Atom::Close { .. } => None,
        }
    }

    fn is_newline(&self) -> bool {
        matches!(self, Atom::Char { ch: '\n', .. })
    }
}

/// Cuts text into atoms. In plain and Markdown modes every character is an atom; in
/// HTML mode tags and entities are atoms too.
fn tokenize(text: &str, markup: Markup) -> Vec<Atom<'_>> {
    let mut atoms = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        if markup == Markup::Html {
            if bytes[i] == b'&'
                && let Some((ch, len)) = decode_entity(&bytes[i..])
            {
                atoms.push(Atom::Entity {
                    raw: &text[i..i + len],
                    ch,
                });
                i += len;
                continue;
            }
            if bytes[i] == b'<'
                && let Some(atom) = tag_at(text, i)
            {
                i += atom.raw().len();
                atoms.push(atom);
                continue;
            }
        }
        let Some(ch) = text[i..].chars().next() else {
            break;
        };
        let len = ch.len_utf8();
        atoms.push(Atom::Char {
            raw: &text[i..i + len],
            ch,
        });
        i += len;
    }
    atoms
}

/// Reads the tag starting at `start` (a `<`), if what follows looks like one: `<name`,
/// `</name` or `</>`, up to the `>` that ends it (quoted attribute values may hold `>`).
fn tag_at(text: &str, start: usize) -> Option<Atom<'_>> {
    let bytes = text.as_bytes();
    let mut i = start + 1;
    let closing = bytes.get(i) == Some(&b'/');
    if closing {
        i += 1;
    }
    let name_start = i;
    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'-') {
        i += 1;
    }
    let name = text[name_start..i].to_ascii_lowercase();
    if name.is_empty() && !(closing && bytes.get(i) == Some(&b'>')) {
        return None;
    }
    if name
        .bytes()
        .next()
        .is_some_and(|b| !b.is_ascii_alphabetic())
    {
        return None;
    }
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (None, b'>') => {
                let raw = &text[start..=i];
                return Some(if closing {
                    Atom::Close { raw, name }
                } else {
                    Atom::Open { raw, name }
                });
            }
            (None, b'"' | b'\'') => quote = Some(bytes[i]),
            (Some(q), b) if b == q => quote = None,
            (None, b'<') => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Decodes an entity at the start of `bytes` as Telegram's parser does: `&lt;`,
/// `&gt;`, `&amp;`, `&quot;` and numeric references (`&#NNN;`, `&#xHH;` with a
/// lower-case x), the `;` being optional. Anything else is not an entity and shows as
/// written. Returns the character and the bytes consumed.
fn decode_entity(bytes: &[u8]) -> Option<(char, usize)> {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut end;
    let code: u32;
    if at(1) == b'#' {
        end = 2;
        let mut value: u32 = 0;
        if at(2) == b'x' {
            end = 3;
            while at(end).is_ascii_hexdigit() {
                let digit = char::from(at(end)).to_digit(16).unwrap_or(0);
                value = value.saturating_mul(16).saturating_add(digit);
                end += 1;
            }
        } else {
            while at(end).is_ascii_digit() {
                value = value
                    .saturating_mul(10)
                    .saturating_add(u32::from(at(end) - b'0'));
                end += 1;
            }
        }
        if value == 0 || value >= 0x10ffff || end >= 10 {
            return None;
        }
        code = value;
    } else {
        end = 1;
        while at(end).is_ascii_alphabetic() {
            end += 1;
        }
        code = match &bytes[1..end] {
            b"lt" => '<' as u32,
            b"gt" => '>' as u32,
            b"amp" => '&' as u32,
            b"quot" => '"' as u32,
            _ => return None,
        };
    }
    if at(end) == b';' {
        end += 1;
    }
    // A lone surrogate decodes to no character; Telegram refuses it, so keep it as text.
    char::from_u32(code).map(|ch| (ch, end))
}

/// An open tag carried across a cut.
#[derive(Debug, Clone)]
struct OpenTag {
    name: String,
    raw: String,
}

impl OpenTag {
    fn closer(&self) -> String {
        format!("</{}>", self.name)
    }
}

/// Packs atoms into parts, line by line.
struct Splitter {
    limits: Limits,
    parts: Vec<String>,
    /// The part being built, and what it shows.
    current: String,
    current_chars: usize,
    current_shows_something: bool,
    /// Whether `current` holds anything beyond the reopened tags it started with.
    current_has_content: bool,
    open: Vec<OpenTag>,
}

impl Splitter {
    fn new(limits: Limits) -> Self {
        Splitter {
            limits,
            parts: Vec::new(),
            current: String::new(),
            current_chars: 0,
            current_shows_something: false,
            current_has_content: false,
            open: Vec::new(),
        }
    }

    fn run(mut self, atoms: &[Atom<'_>]) -> Vec<String> {
        for line in lines(atoms) {
            if self.fits(line) {
                self.push_all(line);
                continue;
            }
            if self.current_has_content {
                self.cut();
            }
            if self.fits(line) {
                self.push_all(line);
            } else {
                self.push_long_line(line);
            }
        }
        self.cut();
        self.parts
    }

    /// Whether `atoms` fit in the current part.
    fn fits(&self, atoms: &[Atom<'_>]) -> bool {
        self.longest_fit(atoms) == atoms.len()
    }

    /// How many of `atoms`, from the first, fit in the current part, counting the
    /// closers for whatever would be open after them.
    fn longest_fit(&self, atoms: &[Atom<'_>]) -> usize {
        let closers = |open: &[OpenTag]| open.iter().map(|t| t.name.len() + 3).sum::<usize>();
        let mut open = self.open.clone();
        let mut chars = self.current_chars;
        let mut bytes = self.current.len();
        let mut closing = closers(&open);
        for (n, atom) in atoms.iter().enumerate() {
            chars += atom.chars();
            bytes += atom.raw().len();
            if matches!(atom, Atom::Open { .. } | Atom::Close { .. }) {
                track(&mut open, atom);
                closing = closers(&open);
            }
            if chars > self.limits.chars || bytes + closing > self.limits.bytes {
                return n;
            }
        }
        atoms.len()
    }

    fn push_all(&mut self, atoms: &[Atom<'_>]) {
        for atom in atoms {
            self.push(atom);
        }
    }

    fn push(&mut self, atom: &Atom<'_>) {
        self.current.push_str(atom.raw());
        self.current_chars += atom.chars();
        self.current_has_content = true;
        if atom.shown().is_some_and(|c| !c.is_whitespace()) {
            self.current_shows_something = true;
        }
        track(&mut self.open, atom);
    }

    /// A line longer than a whole part: cut at the last space that fits, else at the
    /// last atom that fits.
    fn push_long_line(&mut self, line: &[Atom<'_>]) {
        let mut rest = line;
        while !rest.is_empty() {
            if self.fits(rest) {
                self.push_all(rest);
                return;
            }
            let mut fit = self.longest_fit(rest);
            if fit == 0 {
                if self.current_has_content {
                    self.cut();
                    continue;
                }
                // Not even one atom fits an empty part (a single tag longer than the
                // byte budget): send it alone rather than loop forever.
                fit = 1;
            }
            let space = rest[..fit]
                .iter()
                .rposition(|a| a.shown().is_some_and(char::is_whitespace));
            let take = match space {
                Some(at) if at > 0 => at + 1,
                _ => fit,
            };
            self.push_all(&rest[..take]);
            rest = &rest[take..];
            if !rest.is_empty() {
                self.cut();
            }
        }
    }

    /// Ends the current part (closing what is open) and starts the next one with the
    /// same tags reopened.
    fn cut(&mut self) {
        let mut part = std::mem::take(&mut self.current);
        for tag in self.open.iter().rev() {
            part.push_str(&tag.closer());
        }
        if self.current_shows_something {
            self.parts.push(part);
        }
        for tag in &self.open {
            self.current.push_str(&tag.raw);
        }
        self.current_chars = 0;
        self.current_shows_something = false;
        self.current_has_content = false;
    }
}

/// Keeps the stack of open tags up to date.
fn track(open: &mut Vec<OpenTag>, atom: &Atom<'_>) {
    match atom {
        Atom::Open { raw, name } => open.push(OpenTag {
            name: name.clone(),
            raw: (*raw).to_owned(),
        }),
        Atom::Close { name, .. } => {
            if name.is_empty() {
                open.pop();
            } else if let Some(at) = open.iter().rposition(|t| &t.name == name) {
                open.truncate(at);
            }
        }
        Atom::Char { .. } | Atom::Entity { .. } => {}
    }
}

/// Lines of atoms, each ending with its newline (the last one may not). End tags right
/// after a newline stay with the line they close, so a cut there needs no extra tags.
fn lines<'s, 'a>(atoms: &'s [Atom<'a>]) -> Vec<&'s [Atom<'a>]> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < atoms.len() {
        if atoms[i].is_newline() {
            i += 1;
            while i < atoms.len() && matches!(atoms[i], Atom::Close { .. }) {
                i += 1;
            }
            lines.push(&atoms[start..i]);
            start = i;
        } else {
            i += 1;
        }
    }
    if start < atoms.len() {
        lines.push(&atoms[start..]);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: Limits = Limits {
        chars: 20,
        bytes: 10_000,
    };

    fn plain_of(parts: &[String]) -> String {
        parts.iter().map(|p| html_to_plain(p)).collect()
    }

    /// A parser as strict as Telegram's about nesting: every part must be balanced.
    fn balanced(part: &str) -> bool {
        let mut stack = Vec::new();
        for atom in tokenize(part, Markup::Html) {
            match atom {
                Atom::Open { name, .. } => stack.push(name),
                Atom::Close { name, .. } if stack.pop().as_deref() != Some(name.as_str()) => {
                    return false;
                }
                _ => {}
            }
        }
        stack.is_empty()
    }

    /// A random message in Telegram's HTML: words (some long, some non-ASCII), line
    /// breaks, entities and properly nested tags, some with attributes.
    fn random_html(rng: &mut u64) -> String {
        let mut next = |n: u64| {
            // xorshift64: the cases need spread, not cryptographic quality.
            *rng ^= *rng << 13;
            *rng ^= *rng >> 7;
            *rng ^= *rng << 17;
            *rng % n
        };
        let mut text = String::new();
        let mut open: Vec<&str> = Vec::new();
        for _ in 0..next(400) {
            match next(12) {
                0 => text.push('\n'),
                1 => text
                    .push_str(["&amp;", "&lt;", "&gt;", "&quot;", "&#128512;"][next(5) as usize]),
                2 if open.len() < 3 => {
                    let (tag, opener) = [
                        ("b", "<b>"),
                        ("i", "<i>"),
                        ("code", "<code>"),
                        ("a", "<a href=\"https://example.com/?a=1&amp;b=2\">"),
                    ][next(4) as usize];
                    if !open.contains(&tag) {
                        text.push_str(opener);
                        open.push(tag);
                    }
                }
                3 => {
                    if let Some(tag) = open.pop() {
                        text.push_str(&format!("</{tag}>"));
                    }
                }
                4 => text.push_str(&"x".repeat(next(90) as usize)),
                5 => text.push_str("émoji 🚀 "),
                _ => text
                    .push_str(["trade ", "BTC/USDT ", "+$200.00 ", "a ", "  "][next(5) as usize]),
            }
        }
        while let Some(tag) = open.pop() {
            text.push_str(&format!("</{tag}>"));
        }
        text
    }

    #[test]
    fn any_message_splits_into_valid_parts_that_lose_nothing() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for case in 0..500 {
            let text = random_html(&mut rng);
            let limits = Limits {
                chars: 20 + (case % 7) * 15,
                bytes: 400 + (case % 5) * 100,
            };
            let parts = split(&text, Markup::Html, limits);
            for part in &parts {
                assert!(
                    visible_len(part, Markup::Html) <= limits.chars && part.len() <= limits.bytes,
                    "case {case}: a part over {limits:?}: {part:?}\nfrom {text:?}"
                );
                assert!(
                    balanced(part),
                    "case {case}: unbalanced {part:?}\nfrom {text:?}"
                );
            }
            // A cut tag or entity would show its pieces as text here. White space may go
            // where a part would hold nothing else (Telegram refuses such a part).
            let shown = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
            assert_eq!(
                shown(&plain_of(&parts)),
                shown(&html_to_plain(&text)),
                "case {case}: the parts show something else than {text:?}"
            );
        }
    }

    #[test]
    fn text_that_fits_is_untouched() {
        let text = "<b>Trade</b> &amp; more\n";
        assert_eq!(split(text, Markup::Html, Limits::TELEGRAM), vec![text]);
    }

    #[test]
    fn counts_like_telegram() {
        assert_eq!(
            visible_len("<b>a</b>&amp;&lt;&#x2f;&#47;😀", Markup::Html),
            6
        );
        assert_eq!(
            visible_len("&nbsp;", Markup::Html),
            6,
            "unsupported entity is text"
        );
        assert_eq!(visible_len("&amp", Markup::Html), 1, "the ; is optional");
        assert_eq!(
            visible_len("&#X41;", Markup::Html),
            6,
            "only a lower-case x"
        );
        assert_eq!(visible_len("<b>a</b>", Markup::Plain), 8);
    }

    #[test]
    fn cuts_at_line_ends() {
        let text = "line one is here\nline two is here\nline three\n";
        let parts = split(text, Markup::Html, SMALL);
        assert_eq!(
            parts,
            vec!["line one is here\n", "line two is here\n", "line three\n"]
        );
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn packs_several_lines_per_part() {
        let text = "aaaa\nbbbb\ncccc\ndddd\neeee\nffff\n";
        let parts = split(text, Markup::Html, SMALL);
        assert_eq!(parts, vec!["aaaa\nbbbb\ncccc\ndddd\n", "eeee\nffff\n"]);
    }

    #[test]
    fn keeps_tags_balanced_across_a_cut() {
        let text = "<b>bold line one\nbold line two\n</b><a href=\"https://x.io/?a=1&amp;b=2\">link line\nlink two</a>";
        let parts = split(text, Markup::Html, SMALL);
        assert!(parts.len() >= 3, "{parts:?}");
        for part in &parts {
            assert!(balanced(part), "unbalanced part {part:?}");
            assert!(visible_len(part, Markup::Html) <= SMALL.chars, "{part:?}");
        }
        assert_eq!(parts[0], "<b>bold line one\n</b>");
        assert_eq!(parts[1], "<b>bold line two\n</b>");
        assert!(parts[2].starts_with("<a href=\"https://x.io/?a=1&amp;b=2\">"));
        assert_eq!(plain_of(&parts), html_to_plain(text));
    }

    #[test]
    fn never_cuts_inside_an_entity_or_a_tag() {
        let text = format!("{}\n", "&lt;x&gt; ".repeat(30));
        let parts = split(&text, Markup::Html, SMALL);
        for part in &parts {
            assert!(!part.contains("&l\n") && !part.ends_with('&'), "{part:?}");
            for window in part.split('&').skip(1) {
                assert!(
                    window.starts_with("lt;") || window.starts_with("gt;"),
                    "{part:?}"
                );
            }
        }
        // The last line break alone would show nothing, so it is not sent.
        assert_eq!(plain_of(&parts).trim_end(), html_to_plain(&text).trim_end());
    }

    #[test]
    fn a_long_line_is_cut_at_a_space() {
        let text = "alpha beta gamma delta epsilon zeta eta theta";
        let parts = split(text, Markup::Plain, SMALL);
        assert!(parts.iter().all(|p| p.chars().count() <= 20), "{parts:?}");
        assert_eq!(parts[0], "alpha beta gamma ");
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn a_line_without_spaces_is_cut_between_characters() {
        let text = "😀".repeat(45);
        let parts = split(&text, Markup::Plain, SMALL);
        assert_eq!(
            parts.iter().map(|p| p.chars().count()).collect::<Vec<_>>(),
            vec![20, 20, 5]
        );
        assert_eq!(parts.concat(), text);
    }

    #[test]
    fn whitespace_only_parts_are_dropped() {
        let text = format!("{}\n{}\n{}", "a".repeat(20), " ".repeat(20), "b".repeat(5));
        let parts = split(&text, Markup::Plain, SMALL);
        assert_eq!(parts.len(), 2, "{parts:?}");
    }

    #[test]
    fn the_byte_budget_is_kept_too() {
        let limits = Limits {
            chars: 1000,
            bytes: 64,
        };
        let text = "<b>x</b>".repeat(40);
        let parts = split(&text, Markup::Html, limits);
        assert!(parts.len() > 1);
        for part in &parts {
            assert!(part.len() <= 64, "{} bytes: {part}", part.len());
            assert!(balanced(part));
        }
        assert_eq!(plain_of(&parts), "x".repeat(40));
    }

    #[test]
    fn ten_thousand_characters_become_valid_telegram_parts() {
        let mut text = String::new();
        let mut i = 0;
        while text.chars().count() < 10_000 {
            text.push_str(&format!(
                "<b>{i:04}</b> &lt;tag&gt; &amp; émoji 🚀 <i>italic\nstill italic</i> line\n"
            ));
            i += 1;
        }
        let parts = split(&text, Markup::Html, Limits::TELEGRAM);
        assert!(parts.len() >= 2, "{}", parts.len());
        for part in &parts {
            assert!(visible_len(part, Markup::Html) <= MESSAGE_TEXT_LIMIT);
            assert!(part.len() <= MESSAGE_BYTES_LIMIT);
            assert!(balanced(part), "{part}");
        }
        assert_eq!(plain_of(&parts), html_to_plain(&text));
    }

    #[test]
    fn plain_text_is_what_telegram_would_show() {
        assert_eq!(
            html_to_plain(
                "<b>P&amp;L:</b> &lt;script&gt; &#x2f; &#47; &nbsp; 😀 <a href=\"x\">y</a>"
            ),
            "P&L: <script> / / &nbsp; 😀 y"
        );
        // "a < b" is not a tag: it stays, as it would in the text Telegram refused.
        assert_eq!(html_to_plain("a < b <br> c"), "a < b  c");
    }

    #[test]
    fn payload_fields_are_checked() {
        let p = Payload::from_json(&serde_json::json!({
            "text": "hi", "disable_notification": "true", "parse_mode": "html",
            "link_preview_options": {"is_disabled": true}
        }))
        .expect("valid payload");
        assert_eq!(p.disable_notification, Some(true));
        assert_eq!(p.markup(Markup::Plain), Ok(Markup::Html));
        let err = Payload::from_json(&serde_json::json!({"txt": "hi"})).expect_err("typo");
        assert!(err.contains("unknown field `txt`"), "{err}");
        let err =
            Payload::from_json(&serde_json::json!({"text": "hi", "disable_notification": "maybe"}))
                .expect_err("not a bool");
        assert!(err.contains("expected true or false"), "{err}");
    }
}
