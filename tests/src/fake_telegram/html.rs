//! Telegram's HTML parse mode as the Bot API server runs it (TDLib's `parse_html`):
//! the same tag set, attribute rules, entity decoding and error texts, byte offsets
//! into the UTF-8 request text, and entity offsets in UTF-16 code units.
//!
//! <https://core.telegram.org/bots/api#html-style>; the parser itself is
//! `parse_html` in <https://github.com/tdlib/td/blob/master/td/telegram/MessageEntity.cpp>.

use serde_json::{Value, json};

/// Tags Telegram accepts in `parse_mode: HTML`; anything else is an error.
const SUPPORTED: &[&str] = &[
    "a",
    "b",
    "strong",
    "i",
    "em",
    "s",
    "strike",
    "del",
    "u",
    "ins",
    "tg-spoiler",
    "tg-emoji",
    "tg-time",
    "span",
    "pre",
    "code",
    "blockquote",
];

/// A message's text after parsing: what the user sees, and its entities as the Bot API
/// returns them (`type`, `offset`, `length`, plus `url`, `language`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub text: String,
    pub entities: Vec<Value>,
}

struct Open {
    tag: String,
    argument: String,
    offset: usize,
    result_pos: usize,
}

/// TDLib's whitespace test: it reads a NUL-terminated string, and NUL counts as space.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0 | 0x0b)
}

/// Parses `input` as Telegram does, or returns Telegram's error detail (the part after
/// "Bad Request: can't parse entities: ").
pub fn parse(input: &str) -> Result<Parsed, String> {
    let text = input.as_bytes();
    // Past the end reads as NUL, as the C string TDLib reads.
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let mut result: Vec<u8> = Vec::with_capacity(text.len());
    let mut entities: Vec<Value> = Vec::new();
    let mut nested: Vec<Open> = Vec::new();
    let mut utf16 = 0usize;
    let mut surrogate = false;
    let mut i = 0usize;
    while i < text.len() {
        let c = text[i];
        if c == b'&'
            && let Some((code, end)) = decode_entity(text, i)
        {
            utf16 += if code > 0xffff { 2 } else { 1 };
            match char::from_u32(code) {
                Some(ch) => {
                    let mut buf = [0u8; 4];
                    result.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                None => surrogate = true,
            }
            i = end;
            continue;
        }
        if c != b'<' {
            // A UTF-8 lead byte starts a character; 4-byte ones are two UTF-16 units.
            if c & 0xc0 != 0x80 {
                utf16 += if c >= 0xf0 { 2 } else { 1 };
            }
            result.push(c);
            i += 1;
            continue;
        }

        let begin = i;
        i += 1;
        if at(i) != b'/' {
            // A start tag.
            while !is_space(at(i)) && at(i) != b'>' {
                i += 1;
            }
            if at(i) == 0 {
                return Err(format!("Unclosed start tag at byte offset {begin}"));
            }
            let tag = String::from_utf8_lossy(&text[begin + 1..i]).to_lowercase();
            if !SUPPORTED.contains(&tag.as_str()) {
                return Err(format!(
                    "Unsupported start tag \"{tag}\" at byte offset {begin}"
                ));
            }
            let mut argument = String::new();
            while at(i) != b'>' {
                while at(i) != 0 && is_space(at(i)) {
                    i += 1;
                }
                if at(i) == b'>' {
                    break;
                }
                let attribute_begin = i;
                while !is_space(at(i)) && !matches!(at(i), b'=' | b'>' | b'/' | b'"' | b'\'') {
                    i += 1;
                }
                let attribute = String::from_utf8_lossy(&text[attribute_begin..i]).into_owned();
                if attribute.is_empty() {
                    return Err(format!(
                        "Empty attribute name in the tag \"{tag}\" at byte offset {begin}"
                    ));
                }
                while at(i) != 0 && is_space(at(i)) {
                    i += 1;
                }
                if at(i) != b'=' {
                    if at(i) == 0 {
                        return Err(format!(
                            "Unclosed start tag \"{tag}\" at byte offset {begin}"
                        ));
                    }
                    if tag == "blockquote" && attribute == "expandable" {
                        argument = "1".to_owned();
                    }
                    continue;
                }
                i += 1;
                while at(i) != 0 && is_space(at(i)) {
                    i += 1;
                }
                if at(i) == 0 {
                    return Err(format!(
                        "Unclosed start tag \"{tag}\" at byte offset {begin}"
                    ));
                }
                let value = attribute_value(text, &mut i)?;
                if at(i) == 0 {
                    return Err(format!("Unclosed start tag at byte offset {begin}"));
                }
                match (tag.as_str(), attribute.as_str()) {
                    ("a", "href") | ("tg-emoji", "emoji-id") => argument = value,
                    ("code", "class") if value.starts_with("language-") => {
                        argument = value["language-".len()..].to_owned();
                    }
                    ("span", "class") if value.starts_with("tg-") => {
                        argument = value["tg-".len()..].to_owned();
                    }
                    ("blockquote", "expandable") => argument = "1".to_owned(),
                    // Every other attribute is silently ignored.
                    _ => {}
                }
            }
            if tag == "span" && argument != "spoiler" {
                return Err(format!(
                    "Tag \"span\" must have class \"tg-spoiler\" at byte offset {begin}"
                ));
            }
            nested.push(Open {
                tag,
                argument,
                offset: utf16,
                result_pos: result.len(),
            });
            i += 1; // the '>'
        } else {
            // An end tag.
            let Some(open) = nested.last() else {
                return Err(format!("Unexpected end tag at byte offset {begin}"));
            };
            while !is_space(at(i)) && at(i) != b'>' {
                i += 1;
            }
            let end_tag = String::from_utf8_lossy(&text[begin + 2..i]).to_lowercase();
            while is_space(at(i)) && at(i) != 0 {
                i += 1;
            }
            if at(i) != b'>' {
                return Err(format!("Unclosed end tag at byte offset {begin}"));
            }
            if !end_tag.is_empty() && end_tag != open.tag {
                return Err(format!(
                    "Unmatched end tag at byte offset {begin}, expected \"</{}>\", found \"</{end_tag}>\"",
                    open.tag
                ));
            }
            if utf16 > open.offset {
                add_entity(&mut entities, open, utf16 - open.offset, &result)?;
            }
            nested.pop();
            i += 1; // the '>'
        }
    }
    if let Some(open) = nested.last() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.tag
        ));
    }
    if surrogate {
        return Err(
            "Text contains invalid Unicode characters after decoding HTML entities, \
                    check for unmatched surrogate code units"
                .to_owned(),
        );
    }
    // A language counts only for code inside pre.
    for entity in &mut entities {
        if entity["type"] == "code"
            && let Some(fields) = entity.as_object_mut()
        {
            fields.remove("language");
        }
    }
    entities.sort_by_key(|e| {
        (
            e["offset"].as_u64().unwrap_or(0),
            std::cmp::Reverse(e["length"].as_u64().unwrap_or(0)),
        )
    });
    let text =
        String::from_utf8(result).map_err(|_| "Strings must be encoded in UTF-8".to_owned())?;
    Ok(Parsed { text, entities })
}

/// A name token (letters, digits, `.`, `-`; lower-cased) or a quoted string with its
/// references decoded. Leaves `i` after the value.
fn attribute_value(text: &[u8], i: &mut usize) -> Result<String, String> {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    if !matches!(at(*i), b'\'' | b'"') {
        let token_begin = *i;
        while at(*i).is_ascii_alphanumeric() || matches!(at(*i), b'.' | b'-') {
            *i += 1;
        }
        if !is_space(at(*i)) && at(*i) != b'>' {
            return Err(format!(
                "Unexpected end of name token at byte offset {token_begin}"
            ));
        }
        return Ok(String::from_utf8_lossy(&text[token_begin..*i]).to_lowercase());
    }
    let end = at(*i);
    *i += 1;
    let mut value = Vec::new();
    while at(*i) != end && at(*i) != 0 {
        if at(*i) == b'&'
            && let Some((code, next)) = decode_entity(text, *i)
        {
            if let Some(ch) = char::from_u32(code) {
                let mut buf = [0u8; 4];
                value.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            *i = next;
            continue;
        }
        value.push(at(*i));
        *i += 1;
    }
    if at(*i) == end {
        *i += 1;
    }
    Ok(String::from_utf8_lossy(&value).into_owned())
}

/// TDLib's `decode_html_entity`: `&lt;`, `&gt;`, `&amp;`, `&quot;` and numeric
/// references (`&#NNN;`, `&#xHH;` with a lower-case x), with or without the `;`.
/// Returns the code point and where the reference ends; `None` leaves the `&` as text.
fn decode_entity(text: &[u8], pos: usize) -> Option<(u32, usize)> {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let mut end = pos + 1;
    let code: u32;
    if at(pos + 1) == b'#' {
        end += 1;
        let mut value: u32 = 0;
        if at(pos + 2) == b'x' {
            end += 1;
            while at(end).is_ascii_hexdigit() {
                let digit = char::from(at(end)).to_digit(16).unwrap_or(0);
                value = value.wrapping_mul(16).wrapping_add(digit);
                end += 1;
            }
        } else {
            while at(end).is_ascii_digit() {
                value = value
                    .wrapping_mul(10)
                    .wrapping_add(u32::from(at(end) - b'0'));
                end += 1;
            }
        }
        if value == 0 || value >= 0x10ffff || end - pos >= 10 {
            return None;
        }
        code = value;
    } else {
        while at(end).is_ascii_alphabetic() {
            end += 1;
        }
        code = match &text[pos + 1..end] {
            b"lt" => u32::from('<'),
            b"gt" => u32::from('>'),
            b"amp" => u32::from('&'),
            b"quot" => u32::from('"'),
            _ => return None,
        };
    }
    if at(end) == b';' {
        end += 1;
    }
    Some((code, end))
}

fn entity(kind: &str, offset: usize, length: usize) -> Value {
    json!({"type": kind, "offset": offset, "length": length})
}

/// The entity a closed tag makes, merged as Telegram merges `<pre><code class>`.
fn add_entity(
    entities: &mut Vec<Value>,
    open: &Open,
    length: usize,
    result: &[u8],
) -> Result<(), String> {
    let offset = open.offset;
    let same_span = |e: &Value| e["offset"] == offset && e["length"] == length;
    match open.tag.as_str() {
        "b" | "strong" => entities.push(entity("bold", offset, length)),
        "i" | "em" => entities.push(entity("italic", offset, length)),
        "u" | "ins" => entities.push(entity("underline", offset, length)),
        "s" | "strike" | "del" => entities.push(entity("strikethrough", offset, length)),
        "tg-spoiler" | "span" => entities.push(entity("spoiler", offset, length)),
        "tg-emoji" => {
            let id: i64 = open.argument.parse().unwrap_or(0);
            if id <= 0 {
                return Err("Invalid custom emoji identifier specified".to_owned());
            }
            let mut e = entity("custom_emoji", offset, length);
            e["custom_emoji_id"] = json!(open.argument);
            entities.push(e);
        }
        "a" => {
            let url = if open.argument.is_empty() {
                String::from_utf8_lossy(&result[open.result_pos..]).into_owned()
            } else {
                open.argument.clone()
            };
            // Telegram drops a link whose URL it cannot use, and adds http:// to a bare
            // domain.
            let url = if url.contains("://") {
                Some(url)
            } else if url.contains('.') && !url.contains(char::is_whitespace) {
                Some(format!("http://{url}"))
            } else {
                None
            };
            if let Some(url) = url {
                let mut e = entity("text_link", offset, length);
                e["url"] = json!(url);
                entities.push(e);
            }
        }
        "pre" => match entities.last_mut() {
            Some(last)
                if last["type"] == "code" && same_span(last) && last.get("language").is_some() =>
            {
                last["type"] = json!("pre");
            }
            _ => entities.push(entity("pre", offset, length)),
        },
        "code" => match entities.last_mut() {
            Some(last) if last["type"] == "pre" && same_span(last) && !open.argument.is_empty() => {
                last["language"] = json!(open.argument);
            }
            _ => {
                let mut e = entity("code", offset, length);
                if !open.argument.is_empty() {
                    e["language"] = json!(open.argument);
                }
                entities.push(e);
            }
        },
        "blockquote" => entities.push(entity(
            if open.argument.is_empty() {
                "blockquote"
            } else {
                "expandable_blockquote"
            },
            offset,
            length,
        )),
        // tg-time makes a date entity the fake does not model.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).expect_err(text)
    }

    #[test]
    fn telegrams_own_error_texts() {
        let cases = [
            ("a<br>b", "Unsupported start tag \"br\" at byte offset 1"),
            ("a < b", "Unsupported start tag \"\" at byte offset 2"),
            (
                "<b>x",
                "Can't find end tag corresponding to start tag \"b\"",
            ),
            ("x</b>", "Unexpected end tag at byte offset 1"),
            (
                "<b>x</i>",
                "Unmatched end tag at byte offset 4, expected \"</b>\", found \"</i>\"",
            ),
            ("<b>x</b", "Unclosed end tag at byte offset 4"),
            ("<b", "Unclosed start tag at byte offset 0"),
            (
                "<a =x>y</a>",
                "Empty attribute name in the tag \"a\" at byte offset 0",
            ),
            (
                "<a href=x/>y</a>",
                "Unexpected end of name token at byte offset 8",
            ),
            (
                "<span>x</span>",
                "Tag \"span\" must have class \"tg-spoiler\" at byte offset 0",
            ),
            (
                "<tg-emoji emoji-id=\"x\">👍</tg-emoji>",
                "Invalid custom emoji identifier specified",
            ),
            (
                "😀<script>",
                "Unsupported start tag \"script\" at byte offset 4",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(err(text), expected, "{text}");
        }
    }

    #[test]
    fn entities_and_offsets() {
        let parsed =
            parse("😀 <b>bold</b> &lt;&amp;&gt; <a href=\"https://x.io/?a=1&amp;b=2\">link</a>")
                .expect("valid");
        assert_eq!(parsed.text, "😀 bold <&> link");
        assert_eq!(
            parsed.entities,
            vec![
                json!({"type": "bold", "offset": 3, "length": 4}),
                json!({"type": "text_link", "offset": 12, "length": 4, "url": "https://x.io/?a=1&b=2"}),
            ]
        );
    }

    #[test]
    fn references_decode_like_telegram() {
        let parsed = parse("&#x2f;&#47;&amp&nbsp;&apos;&#X41;").expect("valid");
        assert_eq!(parsed.text, "//&&nbsp;&apos;&#X41;");
    }

    #[test]
    fn pre_with_a_language_and_quotes() {
        let parsed = parse("<pre><code class=\"language-rust\">fn x()</code></pre><blockquote expandable>q</blockquote>")
            .expect("valid");
        assert_eq!(
            parsed.entities,
            vec![
                json!({"type": "pre", "offset": 0, "length": 6, "language": "rust"}),
                json!({"type": "expandable_blockquote", "offset": 6, "length": 1}),
            ]
        );
    }
}
