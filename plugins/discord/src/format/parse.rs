//! Reading a rendered embed: its text trimmed and cosmetic text cut, its color,
//! timestamp and flags resolved; what Discord would refuse is an error naming the place,
//! what it would silently ignore is a [`Note`].

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

use super::fit::truncate;
use super::{
    AUTHOR_NAME_MAX, Embed, FIELD_NAME_MAX, FOOTER_TEXT_MAX, Field, FormatError, Named, Note,
    TITLE_MAX, error,
};

/// Reads one embed, trimming text, cutting cosmetic text and resolving its color.
pub(super) fn parse_embed(
    value: &Value,
    path: &str,
    notes: &mut Vec<Note>,
) -> Result<Embed, FormatError> {
    let Value::Object(map) = value else {
        return Err(error(
            path,
            format!("expected an embed object, found {}", kind(value)),
        ));
    };
    let mut embed = Embed::default();
    for (key, value) in map {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "title" => embed.title = cut(text(value, &at)?, &at, TITLE_MAX, notes),
            "description" => embed.description = text(value, &at)?,
            "url" => embed.url = text(value, &at)?,
            "color" | "colour" => embed.color = parse_color(value, &at, notes),
            "timestamp" => embed.timestamp = parse_timestamp(value, &at, notes),
            "footer" => embed.footer = parse_named(value, &at, "text", FOOTER_TEXT_MAX, notes)?,
            "author" => embed.author = parse_named(value, &at, "name", AUTHOR_NAME_MAX, notes)?,
            "fields" => match value {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let at = format!("{at}[{i}]");
                        if let Some(field) = parse_field(item, &at, notes)? {
                            embed.fields.push(field);
                        }
                    }
                }
                other => {
                    return Err(error(
                        &at,
                        format!("expected a list, found {}", kind(other)),
                    ));
                }
            },
            "image" | "thumbnail" | "video" | "provider" => match value {
                Value::Null => {}
                Value::String(url) if url.trim().is_empty() => {}
                // `image: "{{ url }}"` is the natural thing to write; Discord wants `{url}`.
                Value::String(url) => {
                    let mut object = Map::new();
                    object.insert("url".to_owned(), Value::String(url.trim().to_owned()));
                    embed.extra.insert(key.clone(), Value::Object(object));
                }
                Value::Object(_) => {
                    embed.extra.insert(key.clone(), value.clone());
                }
                other => {
                    return Err(error(
                        &at,
                        format!("expected an object with a url, found {}", kind(other)),
                    ));
                }
            },
            "type" => {} // webhook embeds are always "rich"
            _ => notes.push(Note::Dropped {
                path: at,
                why: "not a field of Discord's embed object".to_owned(),
            }),
        }
    }
    Ok(embed)
}

fn parse_field(
    value: &Value,
    path: &str,
    notes: &mut Vec<Note>,
) -> Result<Option<Field>, FormatError> {
    let Value::Object(map) = value else {
        return Err(error(
            path,
            format!(
                "expected a field object with name and value, found {}",
                kind(value)
            ),
        ));
    };
    let mut name = None;
    let mut field_value = None;
    let mut inline = false;
    for (key, value) in map {
        let at = format!("{path}.{key}");
        match key.as_str() {
            "name" => name = cut(text(value, &at)?, &at, FIELD_NAME_MAX, notes),
            "value" => field_value = text(value, &at)?,
            "inline" => inline = parse_bool(value, &at, notes),
            _ => notes.push(Note::Dropped {
                path: at,
                why: "not a field of Discord's embed field object (name, value, inline)".to_owned(),
            }),
        }
    }
    let Some(value) = field_value else {
        // An optional event field the template guarded: nothing to show.
        return Ok(None);
    };
    // Discord requires a name; a zero-width space shows none.
    let name = name.unwrap_or_else(|| "\u{200b}".to_owned());
    Ok(Some(Field {
        name,
        value,
        inline,
    }))
}

/// A footer or an author: an object with `text_key`, or just the text.
fn parse_named(
    value: &Value,
    path: &str,
    text_key: &str,
    limit: usize,
    notes: &mut Vec<Note>,
) -> Result<Option<Named>, FormatError> {
    let at = format!("{path}.{text_key}");
    match value {
        Value::Object(map) => {
            let mut extra = map.clone();
            let raw = extra.remove(text_key).unwrap_or(Value::Null);
            let Some(name) = cut(text(&raw, &at)?, &at, limit, notes) else {
                return Ok(None);
            };
            extra.retain(|_, v| !v.is_null() && v.as_str().is_none_or(|s| !s.trim().is_empty()));
            Ok(Some(Named::new(text_key, name, extra)))
        }
        other => Ok(cut(text(other, path)?, &at, limit, notes)
            .map(|name| Named::new(text_key, name, Map::new()))),
    }
}

/// A text value, trimmed; `None` when absent or empty. Numbers and booleans (a `{{ x }}`
/// keeps its native type) become their text.
pub(super) fn text(value: &Value, path: &str) -> Result<Option<String>, FormatError> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => return Err(error(path, format!("expected text, found {}", kind(other)))),
    };
    Ok((!text.is_empty()).then_some(text))
}

fn cut(text: Option<String>, path: &str, limit: usize, notes: &mut Vec<Note>) -> Option<String> {
    let text = text?;
    let (kept, removed) = truncate(&text, limit);
    if removed > 0 {
        notes.push(Note::Cut {
            path: path.to_owned(),
            limit,
            removed,
        });
    }
    Some(kept)
}

fn parse_bool(value: &Value, path: &str, notes: &mut Vec<Note>) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => true,
            "false" | "no" | "0" | "" => false,
            _ => {
                notes.push(Note::Dropped {
                    path: path.to_owned(),
                    why: format!("{s:?} is not true or false"),
                });
                false
            }
        },
        other => {
            notes.push(Note::Dropped {
                path: path.to_owned(),
                why: format!("expected true or false, found {}", kind(other)),
            });
            false
        }
    }
}

fn parse_timestamp(value: &Value, path: &str, notes: &mut Vec<Note>) -> Option<String> {
    let dropped = |notes: &mut Vec<Note>, why: String| {
        notes.push(Note::Dropped {
            path: path.to_owned(),
            why,
        });
        None
    };
    match value {
        Value::Null => None,
        // Unix seconds.
        Value::Number(n) => match n
            .as_i64()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(text) => Some(text),
            None => dropped(notes, format!("{n} is not a time in Unix seconds")),
        },
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => {
            let s = s.trim();
            if OffsetDateTime::parse(s, &Rfc3339).is_ok()
                || OffsetDateTime::parse(s, &Iso8601::DEFAULT).is_ok()
            {
                Some(s.to_owned())
            } else {
                dropped(notes, format!("{s:?} is not an ISO 8601 time"))
            }
        }
        other => dropped(
            notes,
            format!("expected an ISO 8601 time, found {}", kind(other)),
        ),
    }
}

fn parse_color(value: &Value, path: &str, notes: &mut Vec<Note>) -> Option<u32> {
    let resolved = match value {
        Value::Null => return None,
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= 0xFF_FFFF),
        Value::String(s) if s.trim().is_empty() => return None,
        Value::String(s) => color(s),
        _ => None,
    };
    if resolved.is_none() {
        notes.push(Note::Dropped {
            path: path.to_owned(),
            why: format!(
                "{value} is not a color: use a name (green, red, orange, dark_red, blue, ...), \
                 a severity (info, warning, error, critical), profit or loss, #rrggbb, or an integer"
            ),
        });
    }
    resolved
}

/// The integer Discord wants for a color written as a name, a severity, `profit` /
/// `loss`, `#rrggbb` / `0xrrggbb`, or decimal digits. Names are Discord's own palette
/// (as its clients and discord.py name them); case, spaces and dashes do not matter.
pub(super) fn color(name: &str) -> Option<u32> {
    let name = name.trim();
    if let Some(hex) = name.strip_prefix('#').or_else(|| name.strip_prefix("0x")) {
        return (hex.len() == 6)
            .then(|| u32::from_str_radix(hex, 16).ok())
            .flatten();
    }
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        return name.parse::<u32>().ok().filter(|n| *n <= 0xFF_FFFF);
    }
    let key = name
        .to_ascii_lowercase()
        .replace([' ', '-'], "_")
        .replace("gray", "grey");
    let rgb = match key.as_str() {
        // What an event means.
        "profit" | "success" | "ok" | "resolved" | "info" => 0x2E_CC71, // green
        "loss" | "error" | "firing" => 0xE7_4C3C,                       // red
        "warning" | "warn" => 0xE6_7E22,                                // orange
        "critical" | "fatal" => 0x99_2D22,                              // dark red
        "debug" => 0x95_A5A6,                                           // grey
        // Discord's palette.
        "default" | "black" => 0x00_0000,
        "white" => 0xFF_FFFF,
        "teal" => 0x1A_BC9C,
        "dark_teal" => 0x11_806A,
        "green" => 0x2E_CC71,
        "dark_green" => 0x1F_8B4C,
        "brand_green" => 0x57_F287,
        "blue" => 0x34_98DB,
        "dark_blue" => 0x20_6694,
        "purple" => 0x9B_59B6,
        "dark_purple" => 0x71_368A,
        "magenta" => 0xE9_1E63,
        "dark_magenta" => 0xAD_1457,
        "gold" => 0xF1_C40F,
        "dark_gold" => 0xC2_7C0E,
        "orange" => 0xE6_7E22,
        "dark_orange" => 0xA8_4300,
        "red" => 0xE7_4C3C,
        "dark_red" => 0x99_2D22,
        "brand_red" => 0xED_4245,
        "grey" | "lighter_grey" => 0x95_A5A6,
        "dark_grey" => 0x60_7D8B,
        "light_grey" => 0x97_9C9F,
        "darker_grey" => 0x54_6E7A,
        "blurple" => 0x58_65F2,
        "greyple" => 0x99_AAB5,
        "yellow" => 0xFE_E75C,
        "fuchsia" => 0xEB_459E,
        _ => return None,
    };
    Some(rgb)
}

pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
