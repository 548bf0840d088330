//! Fits a rendered Slack payload to Slack's limits before it is sent: empty parts are
//! left out, long text is cut with `…` or split over several sections, and more blocks
//! than one message may hold go out as several messages, in order.

use serde_json::{Map, Value};

/// Top-level `text`: Slack truncates beyond this.
/// <https://api.slack.com/changelog/2018-04-truncating-really-long-messages>
pub(crate) const TEXT_MAX: usize = 40_000;
/// A section block's `text`.
/// <https://api.slack.com/reference/block-kit/blocks#section>
pub(crate) const SECTION_TEXT_MAX: usize = 3_000;
/// A section block's `fields`: how many, and each one's text.
/// <https://api.slack.com/reference/block-kit/blocks#section>
pub(crate) const FIELDS_MAX: usize = 10;
pub(crate) const FIELD_TEXT_MAX: usize = 2_000;
/// A header block's `text`.
/// <https://api.slack.com/reference/block-kit/blocks#header>
pub(crate) const HEADER_TEXT_MAX: usize = 150;
/// Blocks in one message.
/// <https://api.slack.com/reference/block-kit/blocks>
pub(crate) const BLOCKS_MAX: usize = 50;

/// The bodies to post for one message, in order, and what was changed to fit.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) bodies: Vec<Value>,
    /// One line per change ("blocks[2]: header text cut to 150 characters").
    pub(crate) notes: Vec<String>,
}

/// Fits `payload` (the sink's rendered template: `text`, `blocks`, and any other field
/// Slack takes) to Slack's limits. Errors say why nothing can be sent.
pub(crate) fn build(payload: &Value) -> Result<Built, String> {
    let Value::Object(payload) = payload else {
        return Err(format!(
            "the template gave {}, not a Slack message (a map with `text` and/or `blocks`); check templates/slack/",
            kind(payload)
        ));
    };
    let mut notes = Vec::new();
    let mut top = Map::new();
    let mut text: Option<String> = None;
    let mut blocks: Vec<Value> = Vec::new();
    for (key, value) in payload {
        match key.as_str() {
            "text" => match value {
                Value::String(t) if t.trim().is_empty() => {}
                Value::String(t) => {
                    let (cut, was_cut) = cut(t, TEXT_MAX);
                    if was_cut {
                        notes.push(format!("text cut to {TEXT_MAX} characters"));
                    }
                    text = Some(cut);
                }
                Value::Null => {}
                other => return Err(format!("`text` must be a string, not {}", kind(other))),
            },
            "blocks" => match value {
                Value::Array(list) => {
                    for (i, block) in list.iter().enumerate() {
                        fit_block(i, block, &mut blocks, &mut notes)?;
                    }
                }
                Value::Null => {}
                other => return Err(format!("`blocks` must be a list, not {}", kind(other))),
            },
            _ => {
                top.insert(key.clone(), value.clone());
            }
        }
    }
    if text.is_none() && blocks.is_empty() {
        return Err(
            "the rendered message is empty: the template gave no `text` and no `blocks`".to_owned(),
        );
    }
    if blocks.is_empty() {
        let mut body = top;
        body.insert(
            "text".to_owned(),
            text.map(Value::String).unwrap_or_default(),
        );
        return Ok(Built {
            bodies: vec![Value::Object(body)],
            notes,
        });
    }
    let parts: Vec<&[Value]> = blocks.chunks(BLOCKS_MAX).collect();
    let total = parts.len();
    if total > 1 {
        notes.push(format!(
            "{} blocks split into {total} messages ({BLOCKS_MAX} per message)",
            blocks.len()
        ));
    }
    let bodies = parts
        .into_iter()
        .enumerate()
        .map(|(n, part)| {
            let mut body = top.clone();
            let fallback = match (&text, n) {
                (Some(text), 0) => Some(text.clone()),
                // Later parts notify with the first line only, marked as a continuation.
                (Some(text), _) => {
                    let first = text.lines().next().unwrap_or_default();
                    Some(format!("{} (cont. {}/{total})", cut(first, 200).0, n + 1))
                }
                (None, _) => None,
            };
            if let Some(fallback) = fallback {
                body.insert("text".to_owned(), Value::String(fallback));
            }
            body.insert("blocks".to_owned(), Value::Array(part.to_vec()));
            Value::Object(body)
        })
        .collect();
    Ok(Built { bodies, notes })
}

/// Adds block `i`, fitted, to `out`: an empty header or section is left out, a long
/// header cut, a long section split into several.
fn fit_block(
    i: usize,
    block: &Value,
    out: &mut Vec<Value>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let Value::Object(map) = block else {
        return Err(format!("blocks[{i}] must be a map, not {}", kind(block)));
    };
    match map.get("type").and_then(Value::as_str) {
        Some("header") => {
            let Some(text) = text_of(map.get("text")) else {
                return Ok(());
            };
            let (text, was_cut) = cut(text, HEADER_TEXT_MAX);
            if was_cut {
                notes.push(format!(
                    "blocks[{i}]: header text cut to {HEADER_TEXT_MAX} characters"
                ));
            }
            // The template's own text object (its `emoji` flag) is kept; only the
            // text is fitted. A plain string becomes the text object Slack requires.
            let mut text_object = match map.get("text") {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            text_object
                .entry("type")
                .or_insert_with(|| Value::String("plain_text".to_owned()));
            text_object.insert("text".to_owned(), Value::String(text));
            let mut header = map.clone();
            header.insert("text".to_owned(), Value::Object(text_object));
            out.push(Value::Object(header));
        }
        Some("section") => fit_section(i, map, out, notes),
        Some(_) => out.push(block.clone()),
        None => return Err(format!("blocks[{i}] has no `type`")),
    }
    Ok(())
}

fn fit_section(i: usize, map: &Map<String, Value>, out: &mut Vec<Value>, notes: &mut Vec<String>) {
    let text_type = map
        .get("text")
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("mrkdwn")
        .to_owned();
    let pieces = text_of(map.get("text"))
        .map(|t| split(t, SECTION_TEXT_MAX))
        .unwrap_or_default();
    if pieces.len() > 1 {
        notes.push(format!(
            "blocks[{i}]: section text split into {} sections ({SECTION_TEXT_MAX} characters each)",
            pieces.len()
        ));
    }
    let mut fields: Vec<Value> = Vec::new();
    for (n, field) in map
        .get("fields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(text) = text_of(Some(field)) else {
            continue;
        };
        let (text, was_cut) = cut(text, FIELD_TEXT_MAX);
        if was_cut {
            notes.push(format!(
                "blocks[{i}].fields[{n}]: cut to {FIELD_TEXT_MAX} characters"
            ));
        }
        let mut field = field.as_object().cloned().unwrap_or_default();
        field.insert("text".to_owned(), Value::String(text));
        field
            .entry("type")
            .or_insert_with(|| Value::String("mrkdwn".to_owned()));
        fields.push(Value::Object(field));
    }
    let field_groups: Vec<&[Value]> = fields.chunks(FIELDS_MAX).collect();
    if field_groups.len() > 1 {
        notes.push(format!(
            "blocks[{i}]: {} fields split over {} sections ({FIELDS_MAX} each)",
            fields.len(),
            field_groups.len()
        ));
    }
    let mut sections: Vec<Map<String, Value>> = pieces
        .into_iter()
        .map(|piece| {
            let mut section = Map::new();
            section.insert("type".to_owned(), Value::String("section".to_owned()));
            section.insert(
                "text".to_owned(),
                serde_json::json!({"type": text_type, "text": piece}),
            );
            section
        })
        .collect();
    for (n, group) in field_groups.into_iter().enumerate() {
        // The first group goes with the last piece of text, as fields sit below it.
        if n == 0
            && let Some(last) = sections.last_mut()
        {
            last.insert("fields".to_owned(), Value::Array(group.to_vec()));
            continue;
        }
        let mut section = Map::new();
        section.insert("type".to_owned(), Value::String("section".to_owned()));
        section.insert("fields".to_owned(), Value::Array(group.to_vec()));
        sections.push(section);
    }
    // Anything else the template gave (an accessory, a block_id) stays on the first.
    if let Some(first) = sections.first_mut() {
        for (key, value) in map {
            if !matches!(key.as_str(), "type" | "text" | "fields") {
                first.insert(key.clone(), value.clone());
            }
        }
    }
    out.extend(sections.into_iter().map(Value::Object));
}

/// The `text` of a text object (`{"type": ..., "text": ...}`) or a plain string, when
/// it is not blank.
fn text_of(value: Option<&Value>) -> Option<&str> {
    let text = match value? {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("text")?.as_str()?,
        _ => return None,
    };
    (!text.trim().is_empty()).then_some(text)
}

/// `text` cut to at most `max` characters, the last one `…`, and whether it was cut.
/// A cut never leaves half an escape (`&am…`).
pub(crate) fn cut(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        return (text.to_owned(), false);
    }
    let end = byte_index(text, max.saturating_sub(1));
    let kept = trim_partial_entity(&text[..end]);
    (format!("{}…", kept.trim_end()), true)
}

/// `text` in pieces of at most `max` characters, broken at a line end where one is in
/// the second half of a piece, else at a space, else anywhere (never inside an escape).
pub(crate) fn split(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.chars().count() > max {
        let limit = byte_index(rest, max);
        let window = &rest[..limit];
        let half = byte_index(rest, max / 2);
        let at = window
            .rfind('\n')
            .filter(|&p| p >= half)
            .or_else(|| window.rfind(' ').filter(|&p| p >= half))
            .map(|p| p + 1)
            .unwrap_or_else(|| match trim_partial_entity(window).len() {
                0 => window.len(),
                n => n,
            });
        let (piece, after) = rest.split_at(at);
        if !piece.trim().is_empty() {
            pieces.push(piece.trim_end().to_owned());
        }
        rest = after;
    }
    if !rest.trim().is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

/// The byte index of the `n`th character (or the end).
fn byte_index(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

/// `text` without a trailing `&amp`, `&l`, ... that lost its `;`.
fn trim_partial_entity(text: &str) -> &str {
    match text.rfind('&') {
        Some(at)
            if text.len() - at <= 5
                && !text[at..].contains(';')
                && text[at + 1..].chars().all(|c| c.is_ascii_alphabetic()) =>
        {
            &text[..at]
        }
        _ => text,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    #[test]
    fn a_small_message_goes_out_as_written() {
        let payload = json!({"text": "hi", "unfurl_links": false,
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "🟢 Trade Opened"}},
                       {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Symbol:*\nBTC"}]},
                       {"type": "divider"}]});
        let built = build(&payload).unwrap();
        assert_eq!(built.bodies.len(), 1);
        assert!(built.notes.is_empty(), "{:?}", built.notes);
        let body = &built.bodies[0];
        assert_eq!(body["text"], "hi");
        assert_eq!(body["unfurl_links"], false);
        assert_eq!(body["blocks"][0]["text"]["text"], "🟢 Trade Opened");
        assert_eq!(body["blocks"][1]["fields"][0]["text"], "*Symbol:*\nBTC");
        assert_eq!(body["blocks"][2], json!({"type": "divider"}));
    }

    #[test]
    fn empty_parts_are_left_out() {
        let payload = json!({"text": "t", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "  "}},
            {"type": "section", "text": {"type": "mrkdwn", "text": ""}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*A:* 1"}, {"type": "mrkdwn", "text": ""}]}]});
        let body = &build(&payload).unwrap().bodies[0];
        assert_eq!(body["blocks"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["blocks"][0]["fields"].as_array().unwrap().len(), 1);
        assert!(
            build(&json!({"text": " ", "blocks": []}))
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            build(&json!("text"))
                .unwrap_err()
                .contains("not a Slack message")
        );
    }

    #[test]
    fn every_limit_is_kept() {
        let long_line = "word ".repeat(2000); // 10,000 characters
        let payload = json!({"text": "x".repeat(50_000), "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "H".repeat(400)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": long_line},
             "fields": (0..14).map(|n| json!({"type": "mrkdwn", "text": format!("{n}{}", "f".repeat(2100))})).collect::<Vec<_>>()}]});
        let built = build(&payload).unwrap();
        assert_eq!(built.bodies.len(), 1);
        let body = &built.bodies[0];
        assert_eq!(chars(&body["text"]), TEXT_MAX);
        assert!(body["text"].as_str().unwrap().ends_with('…'));
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(chars(&blocks[0]["text"]["text"]), HEADER_TEXT_MAX);
        // 10,000 characters in sections of at most 3,000, then 14 fields as 10 + 4.
        let sections = &blocks[1..];
        assert_eq!(sections.len(), 5, "{sections:?}");
        let text: String = sections
            .iter()
            .filter_map(|s| s["text"]["text"].as_str())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(text.split_whitespace().count(), 2000, "no word lost");
        assert!(sections.iter().all(|s| {
            s["text"]["text"]
                .as_str()
                .is_none_or(|t| t.chars().count() <= SECTION_TEXT_MAX)
        }));
        assert_eq!(sections[3]["fields"].as_array().unwrap().len(), 10);
        assert_eq!(sections[4]["fields"].as_array().unwrap().len(), 4);
        assert_eq!(chars(&sections[3]["fields"][0]["text"]), FIELD_TEXT_MAX);
        assert_eq!(built.notes.len(), 2 + 1 + 14 + 1, "{:?}", built.notes);
    }

    #[test]
    fn more_than_fifty_blocks_go_out_as_several_messages() {
        let blocks: Vec<Value> = (0..120)
            .map(|n| json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("line {n}")}}))
            .collect();
        let built = build(&json!({"text": "Daily summary\nmore", "blocks": blocks})).unwrap();
        assert_eq!(built.bodies.len(), 3);
        let sizes: Vec<usize> = built
            .bodies
            .iter()
            .map(|b| b["blocks"].as_array().unwrap().len())
            .collect();
        assert_eq!(sizes, [50, 50, 20]);
        assert_eq!(built.bodies[0]["text"], "Daily summary\nmore");
        assert_eq!(built.bodies[2]["text"], "Daily summary (cont. 3/3)");
        assert_eq!(built.bodies[2]["blocks"][19]["text"]["text"], "line 119");
        assert_eq!(
            built.notes,
            ["120 blocks split into 3 messages (50 per message)"]
        );
    }

    #[test]
    fn cutting_and_splitting_never_break_an_escape() {
        assert_eq!(cut("a &amp; b", 5).0, "a…");
        assert_eq!(cut("abcdef", 6), ("abcdef".to_owned(), false));
        assert_eq!(cut("ééééééé", 4), ("ééé…".to_owned(), true));
        let pieces = split(&"&lt;".repeat(1000), 3000);
        assert!(
            pieces
                .iter()
                .all(|p| p.ends_with("&lt;") && p.chars().count() <= 3000)
        );
        assert_eq!(pieces.concat(), "&lt;".repeat(1000));
        let lines = format!("{}\n{}", "a".repeat(2000), "b".repeat(2000));
        assert_eq!(split(&lines, 3000), ["a".repeat(2000), "b".repeat(2000)]);
    }
}
