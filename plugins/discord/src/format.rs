//! Turns a rendered template into the webhook bodies Discord will accept: named and
//! severity colors become integers, text is trimmed and fitted to Discord's limits
//! (cosmetic text is cut with `…`, message text is split over several embeds and
//! messages), and every body carries `allowed_mentions` from the settings.
//!
//! What counts: Discord measures every limit in Unicode code points after trimming
//! leading and trailing whitespace, so this module trims first and counts `chars()`.
//!
//! What is cut and what is split:
//! - cut with `…` (the rest is decoration): embed `title`, `author.name`, `footer.text`,
//!   field `name`, `username`;
//! - split, nothing lost but whitespace at the breaks: `content` (over several
//!   messages), `description` (over several embeds), a field `value` (over fields named
//!   "<name> (cont.)"), fields beyond 25 or 6000 characters (over several embeds),
//!   embeds beyond 10 or 6000 characters (over several messages);
//! - at most [`MAX_BODIES`] messages per event: what needs more is cut there, and the
//!   last message says so.
//!
//! A field whose value renders empty is left out, and so is a `title`, `description`,
//! `footer` or `author` that renders empty: templates guard optional event fields that
//! way (`value: "{% if event.reason is defined %}{{ event.reason }}{% endif %}"`).
//! Keys Discord does not know are left out and reported, since Discord would ignore
//! them silently.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{MentionKind, USERNAME_MAX, check_username};

mod fit;
mod parse;

use fit::fit_embed;
use fit::{split, truncate};
use parse::{kind, parse_embed, text};

/// Message text. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub(crate) const CONTENT_MAX: usize = 2000;
/// Embeds in one message. <https://discord.com/developers/docs/resources/webhook#execute-webhook-jsonform-params>
pub(crate) const EMBEDS_MAX: usize = 10;
/// Embed title. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const TITLE_MAX: usize = 256;
/// Embed description. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const DESCRIPTION_MAX: usize = 4096;
/// Fields in one embed. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const FIELDS_MAX: usize = 25;
/// Field name. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const FIELD_NAME_MAX: usize = 256;
/// Field value. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const FIELD_VALUE_MAX: usize = 1024;
/// Footer text. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const FOOTER_TEXT_MAX: usize = 2048;
/// Author name. <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const AUTHOR_NAME_MAX: usize = 256;
/// Title, description, field names and values, footer text and author name of all the
/// embeds of one message together.
/// <https://discord.com/developers/docs/resources/message#embed-object-embed-limits>
pub(crate) const EMBEDS_TOTAL_MAX: usize = 6000;
/// Ours, not Discord's: the most messages one event becomes, one burst of the webhook's
/// rate limit (5 requests per 2 s), so a huge event cannot flood a channel.
pub(crate) const MAX_BODIES: usize = 5;

const ELLIPSIS: char = '…';
const CONTINUED: &str = " (cont.)";
const OVERFLOW_NOTICE: &str = "… (cut: the rest did not fit in 5 Discord messages)";

/// Where a value was cut, split or left out; the sink logs these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Note {
    /// Longer than `limit` characters: cut to it, ending in `…`.
    Cut {
        path: String,
        limit: usize,
        removed: usize,
    },
    /// Spread over `parts` messages, embeds or fields (`unit`) because of `why`.
    Split {
        path: String,
        parts: usize,
        unit: &'static str,
        why: &'static str,
    },
    /// Left out: Discord would refuse or ignore it.
    Dropped { path: String, why: String },
    /// The event needed `needed` messages; only the first [`MAX_BODIES`] are sent.
    Overflow { needed: usize },
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Cut {
                path,
                limit,
                removed,
            } => write!(
                f,
                "{path}: cut {removed} characters to fit Discord's limit of {limit}"
            ),
            Note::Split {
                path,
                parts,
                unit,
                why,
            } => write!(f, "{path}: split into {parts} {unit} ({why})"),
            Note::Dropped { path, why } => write!(f, "{path}: left out ({why})"),
            Note::Overflow { needed } => write!(
                f,
                "the message needs {needed} Discord messages; sent the first {MAX_BODIES} and cut the rest"
            ),
        }
    }
}

/// The template's payload could not be read as a webhook body at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FormatError(String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn error(path: &str, what: impl fmt::Display) -> FormatError {
    FormatError(format!("payload.{path}: {what}"))
}

/// What the settings add to every body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Defaults {
    pub(crate) username: Option<String>,
    pub(crate) avatar_url: Option<String>,
    pub(crate) mentions: Vec<MentionKind>,
}

/// The bodies to post, in order, and what was changed to make them fit.
#[derive(Debug)]
pub(crate) struct Built {
    pub(crate) bodies: Vec<Body>,
    pub(crate) notes: Vec<Note>,
}

/// One Execute Webhook JSON body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Body {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar_url: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    embeds: Vec<Embed>,
    allowed_mentions: AllowedMentions,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct AllowedMentions {
    parse: Vec<MentionKind>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
struct Embed {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<Field>,
    #[serde(skip_serializing_if = "Option::is_none")]
    footer: Option<Named>,
    #[serde(skip_serializing_if = "Option::is_none")]
    author: Option<Named>,
    /// `image`, `thumbnail` and the like, passed through.
    #[serde(flatten)]
    extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Field {
    name: String,
    value: String,
    inline: bool,
}

/// A footer (`text`) or an author (`name`), with its other keys (`icon_url`, `url`).
#[derive(Debug, Clone, PartialEq, Serialize)]
struct Named {
    #[serde(flatten)]
    text: Map<String, Value>,
}

impl Named {
    fn new(key: &str, text: String, mut extra: Map<String, Value>) -> Named {
        extra.insert(key.to_owned(), Value::String(text));
        Named { text: extra }
    }

    fn chars(&self, key: &str) -> usize {
        self.text
            .get(key)
            .and_then(Value::as_str)
            .map_or(0, |s| s.chars().count())
    }
}

impl Embed {
    /// The characters this embed adds to the 6000 of a message.
    fn size(&self) -> usize {
        count(self.title.as_deref())
            + count(self.description.as_deref())
            + self
                .fields
                .iter()
                .map(|f| f.name.chars().count() + f.value.chars().count())
                .sum::<usize>()
            + self.footer.as_ref().map_or(0, |f| f.chars("text"))
            + self.author.as_ref().map_or(0, |a| a.chars("name"))
    }

    fn is_empty(&self) -> bool {
        self.title.is_none()
            && self.description.is_none()
            && self.fields.is_empty()
            && self.footer.is_none()
            && self.author.is_none()
            && !self.extra.contains_key("image")
            && !self.extra.contains_key("thumbnail")
    }

    fn continuation(color: Option<u32>) -> Embed {
        Embed {
            color,
            ..Embed::default()
        }
    }
}

fn count(text: Option<&str>) -> usize {
    text.map_or(0, |s| s.chars().count())
}

/// Turns `payload` (the rendered template) into bodies Discord accepts.
pub(crate) fn build(payload: &Value, defaults: &Defaults) -> Result<Built, FormatError> {
    let mut notes = Vec::new();
    let Value::Object(payload) = payload else {
        return Err(FormatError(format!(
            "payload: expected an object (the webhook body: content, embeds, ...), found {}",
            kind(payload)
        )));
    };

    let mut content = None;
    let mut username = defaults.username.clone();
    let mut avatar_url = defaults.avatar_url.clone();
    let mut embeds = Vec::new();
    let mut every_body = Map::new();
    let mut first_body = Map::new();
    for (key, value) in payload {
        match key.as_str() {
            "content" => content = text(value, key)?,
            "username" => {
                if let Some(name) = text(value, key)? {
                    let (name, _) = truncate(&name, USERNAME_MAX);
                    match check_username(&name) {
                        Ok(name) => username = Some(name),
                        Err(why) => notes.push(Note::Dropped {
                            path: key.clone(),
                            why,
                        }),
                    }
                }
            }
            "avatar_url" => {
                if let Some(url) = text(value, key)? {
                    avatar_url = Some(url);
                }
            }
            "embeds" => match value {
                Value::Null => {}
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let path = format!("embeds[{i}]");
                        let embed = parse_embed(item, &path, &mut notes)?;
                        if embed.is_empty() {
                            notes.push(Note::Dropped {
                                path,
                                why: "nothing in it to show".to_owned(),
                            });
                        } else {
                            embeds.extend(fit_embed(embed, &path, &mut notes));
                        }
                    }
                }
                other => {
                    return Err(error(
                        key,
                        format!("expected a list, found {}", kind(other)),
                    ));
                }
            },
            "allowed_mentions" => notes.push(Note::Dropped {
                path: key.clone(),
                why: "who may be pinged is the sink's `mentions` setting".to_owned(),
            }),
            // Meant for the whole event, so on every message it becomes.
            "tts" | "flags" => {
                every_body.insert(key.clone(), value.clone());
            }
            "thread_name" | "applied_tags" | "poll" | "components" | "attachments" => {
                first_body.insert(key.clone(), value.clone());
            }
            _ => notes.push(Note::Dropped {
                path: key.clone(),
                why: "not a field of Discord's Execute Webhook".to_owned(),
            }),
        }
    }

    let mut drafts: Vec<(Option<String>, Vec<Embed>)> = Vec::new();
    if let Some(content) = content {
        let parts = split(&content, CONTENT_MAX);
        if parts.len() > 1 {
            notes.push(Note::Split {
                path: "content".to_owned(),
                parts: parts.len(),
                unit: "messages",
                why: "over 2000 characters",
            });
        }
        drafts.extend(parts.into_iter().map(|p| (Some(p), Vec::new())));
    }
    // The last piece of content shares its message with the first embeds.
    let mut current = drafts.pop().unwrap_or_default();
    let mut size = 0;
    let mut packed_apart = false;
    for embed in embeds {
        let embed_size = embed.size();
        if current.1.len() == EMBEDS_MAX
            || (!current.1.is_empty() && size + embed_size > EMBEDS_TOTAL_MAX)
        {
            drafts.push(std::mem::take(&mut current));
            size = 0;
            packed_apart = true;
        }
        size += embed_size;
        current.1.push(embed);
    }
    if current.0.is_some() || !current.1.is_empty() {
        drafts.push(current);
    }
    if packed_apart {
        notes.push(Note::Split {
            path: "embeds".to_owned(),
            parts: drafts.iter().filter(|d| !d.1.is_empty()).count(),
            unit: "messages",
            why: "over 10 embeds or 6000 characters in one message",
        });
    }
    if drafts.is_empty() {
        return Err(FormatError(
            "payload: nothing to send: no content and no embed with anything in it \
             (Discord refuses an empty message); check the sink's template"
                .to_owned(),
        ));
    }
    if drafts.len() > MAX_BODIES {
        notes.push(Note::Overflow {
            needed: drafts.len(),
        });
        drafts.truncate(MAX_BODIES);
        if let Some((content, _)) = drafts.last_mut() {
            let notice_len = OVERFLOW_NOTICE.chars().count();
            *content = Some(match content.take() {
                None => OVERFLOW_NOTICE.to_owned(),
                Some(text) => {
                    let (kept, _) = truncate(&text, CONTENT_MAX - notice_len - 1);
                    format!("{kept}\n{OVERFLOW_NOTICE}")
                }
            });
        }
    }

    let allowed_mentions = AllowedMentions {
        parse: defaults.mentions.clone(),
    };
    let bodies = drafts
        .into_iter()
        .enumerate()
        .map(|(i, (content, embeds))| {
            let mut extra = every_body.clone();
            if i == 0 {
                extra.extend(first_body.clone());
            }
            Body {
                content,
                username: username.clone(),
                avatar_url: avatar_url.clone(),
                embeds,
                allowed_mentions: allowed_mentions.clone(),
                extra,
            }
        })
        .collect();
    Ok(Built { bodies, notes })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::parse::color;
    use super::*;

    fn bodies(payload: Value) -> (Vec<Value>, Vec<Note>) {
        let built = build(&payload, &Defaults::default()).unwrap();
        let bodies = built
            .bodies
            .iter()
            .map(|b| serde_json::to_value(b).unwrap())
            .collect();
        (bodies, built.notes)
    }

    fn chars(v: &Value) -> usize {
        v.as_str().unwrap().chars().count()
    }

    /// Every piece of text Discord counts towards 6000, in one message.
    fn total(body: &Value) -> usize {
        let mut n = 0;
        for e in body["embeds"].as_array().into_iter().flatten() {
            for key in ["title", "description"] {
                n += e.get(key).map_or(0, chars);
            }
            n += e.pointer("/footer/text").map_or(0, chars);
            n += e.pointer("/author/name").map_or(0, chars);
            for f in e["fields"].as_array().into_iter().flatten() {
                n += chars(&f["name"]) + chars(&f["value"]);
            }
        }
        n
    }

    /// Checks a body against every limit, as the fake Discord does.
    fn assert_within_limits(body: &Value) {
        assert!(body.get("content").is_none_or(|c| chars(c) <= CONTENT_MAX));
        let embeds = body["embeds"].as_array().map_or(&[][..], |e| e.as_slice());
        assert!(embeds.len() <= EMBEDS_MAX, "{} embeds", embeds.len());
        assert!(total(body) <= EMBEDS_TOTAL_MAX, "total {}", total(body));
        for e in embeds {
            assert!(e.get("title").is_none_or(|t| chars(t) <= TITLE_MAX));
            assert!(
                e.get("description")
                    .is_none_or(|t| chars(t) <= DESCRIPTION_MAX)
            );
            let fields = e["fields"].as_array().map_or(&[][..], |f| f.as_slice());
            assert!(fields.len() <= FIELDS_MAX);
            for f in fields {
                assert!((1..=FIELD_NAME_MAX).contains(&chars(&f["name"])));
                assert!((1..=FIELD_VALUE_MAX).contains(&chars(&f["value"])));
            }
        }
    }

    fn words(n: usize) -> String {
        (0..n)
            .map(|i| format!("word{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn colors_by_name_severity_and_hex() {
        assert_eq!(color("green"), Some(3066993));
        assert_eq!(color("red"), Some(15158332));
        assert_eq!(color("orange"), Some(15105570));
        assert_eq!(color("dark_red"), Some(10038562));
        assert_eq!(color("Dark Red"), Some(10038562));
        assert_eq!(color("dark-gray"), Some(0x607D8B));
        assert_eq!(color("profit"), color("green"));
        assert_eq!(color("info"), color("green"));
        assert_eq!(color("loss"), color("red"));
        assert_eq!(color("error"), color("red"));
        assert_eq!(color("warning"), color("orange"));
        assert_eq!(color("critical"), color("dark_red"));
        assert_eq!(color("#E74C3C"), Some(15158332));
        assert_eq!(color("0x00ff00"), Some(0x00FF00));
        assert_eq!(color("15158332"), Some(15158332));
        assert_eq!(color("#fff"), None);
        assert_eq!(color("16777216"), None);
        assert_eq!(color("greenish"), None);
    }

    #[test]
    fn embed_colors_become_integers_and_bad_ones_are_left_out() {
        let (b, notes) = bodies(json!({"embeds": [
            {"title": "a", "color": "loss"},
            {"title": "b", "color": 255},
            {"title": "c", "color": "chartreuse"},
            {"title": "d", "color": -1},
        ]}));
        let embeds = b[0]["embeds"].as_array().unwrap();
        assert_eq!(embeds[0]["color"], 15158332);
        assert_eq!(embeds[1]["color"], 255);
        assert!(embeds[2].get("color").is_none());
        assert!(embeds[3].get("color").is_none());
        assert!(
            matches!(&notes[0], Note::Dropped { path, why } if path == "embeds[2].color" && why.contains("\"chartreuse\" is not a color"))
        );
        assert_eq!(notes.len(), 2);
    }

    #[test]
    fn cosmetic_text_is_cut_with_an_ellipsis_and_reported() {
        let (b, notes) = bodies(json!({
            "username": "u".repeat(100),
            "embeds": [{
                "title": "t".repeat(300),
                "author": {"name": "a".repeat(257), "icon_url": "https://x/a.png"},
                "footer": "f".repeat(2100),
                "fields": [{"name": "n".repeat(256), "value": "v"}, {"name": "m".repeat(257), "value": "v"}],
            }],
        }));
        let e = &b[0]["embeds"][0];
        let title = e["title"].as_str().unwrap();
        assert_eq!(title.chars().count(), TITLE_MAX);
        assert!(title.ends_with('…'));
        assert_eq!(chars(&e["author"]["name"]), AUTHOR_NAME_MAX);
        assert_eq!(e["author"]["icon_url"], "https://x/a.png");
        assert_eq!(chars(&e["footer"]["text"]), FOOTER_TEXT_MAX);
        assert_eq!(
            chars(&e["fields"][0]["name"]),
            256,
            "exactly at the limit: untouched"
        );
        assert!(!e["fields"][0]["name"].as_str().unwrap().ends_with('…'));
        assert_eq!(chars(&e["fields"][1]["name"]), 256);
        assert_eq!(chars(&b[0]["username"]), USERNAME_MAX);
        assert!(notes.contains(&Note::Cut {
            path: "embeds[0].title".into(),
            limit: 256,
            removed: 45
        }));
        assert!(notes.contains(&Note::Cut {
            path: "embeds[0].author.name".into(),
            limit: 256,
            removed: 2
        }));
        assert!(notes.contains(&Note::Cut {
            path: "embeds[0].footer.text".into(),
            limit: 2048,
            removed: 53
        }));
        assert!(notes.contains(&Note::Cut {
            path: "embeds[0].fields[1].name".into(),
            limit: 256,
            removed: 2
        }));
        assert!(
            notes.iter().any(|n| n.to_string()
                == "embeds[0].title: cut 45 characters to fit Discord's limit of 256")
        );
    }

    #[test]
    fn limits_count_code_points_after_trimming() {
        // 256 emoji are 256 characters (1024 UTF-8 bytes, 512 UTF-16 units): fits.
        let title = format!("  {}\n", "😀".repeat(TITLE_MAX));
        let (b, notes) = bodies(json!({"embeds": [{"title": title}]}));
        assert_eq!(b[0]["embeds"][0]["title"], "😀".repeat(TITLE_MAX));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn truncation_never_leaves_a_dangling_escape() {
        let (text, removed) = truncate(&format!("{}\\*bold", "a".repeat(8)), 10);
        assert_eq!(text, "aaaaaaaa…");
        assert_eq!(removed, 6);
        assert_eq!(truncate("short", 10), ("short".to_owned(), 0));
    }

    #[test]
    fn long_content_is_split_over_messages_at_line_ends() {
        let line = "x".repeat(99);
        let content = vec![line.as_str(); 50].join("\n"); // 4999 characters
        let (b, notes) = bodies(json!({"content": content, "embeds": [{"title": "after"}]}));
        assert_eq!(b.len(), 3);
        for body in &b {
            assert_within_limits(body);
            assert!(chars(&body["content"]) <= CONTENT_MAX);
        }
        let joined: Vec<&str> = b.iter().map(|b| b["content"].as_str().unwrap()).collect();
        assert_eq!(
            joined.join("\n"),
            content,
            "nothing lost, broken at line ends"
        );
        assert!(b[0].get("embeds").is_none());
        assert_eq!(
            b[2]["embeds"][0]["title"], "after",
            "embeds follow the last piece"
        );
        assert!(notes.contains(&Note::Split {
            path: "content".into(),
            parts: 3,
            unit: "messages",
            why: "over 2000 characters"
        }));
    }

    #[test]
    fn a_long_description_continues_in_more_embeds() {
        let description = words(1500); // about 10,000 characters
        let (b, notes) = bodies(json!({"embeds": [{
            "title": "T", "color": "red", "description": description,
            "footer": {"text": "F"}, "timestamp": "2025-11-03T14:30:00Z",
            "thumbnail": "https://x/t.png", "image": {"url": "https://x/i.png"},
        }]}));
        let all: Vec<&Value> = b
            .iter()
            .flat_map(|b| b["embeds"].as_array().unwrap())
            .collect();
        assert!(all.len() >= 3);
        for body in &b {
            assert_within_limits(body);
        }
        let text: Vec<&str> = all
            .iter()
            .map(|e| e["description"].as_str().unwrap())
            .collect();
        assert_eq!(text.join(" "), description);
        assert!(all.iter().all(|e| e["color"] == 15158332));
        assert_eq!(all[0]["title"], "T");
        assert_eq!(all[0]["thumbnail"]["url"], "https://x/t.png");
        assert!(
            all[1..]
                .iter()
                .all(|e| e.get("title").is_none() && e.get("thumbnail").is_none())
        );
        let last = all[all.len() - 1];
        assert_eq!(last["footer"]["text"], "F");
        assert_eq!(last["timestamp"], "2025-11-03T14:30:00Z");
        assert_eq!(last["image"]["url"], "https://x/i.png");
        assert!(
            notes
                .iter()
                .any(|n| matches!(n, Note::Split { path, .. } if path == "embeds[0].description"))
        );
    }

    #[test]
    fn a_long_field_value_continues_in_cont_fields() {
        let reason = words(600); // about 4,700 characters
        let (b, notes) = bodies(json!({"embeds": [{"fields": [
            {"name": "Symbol", "value": "ETH", "inline": true},
            {"name": "📝 Reason", "value": reason, "inline": true},
            {"name": "Side", "value": "SELL", "inline": "true"},
        ]}]}));
        assert_eq!(b.len(), 1);
        assert_within_limits(&b[0]);
        let fields = b[0]["embeds"][0]["fields"].as_array().unwrap();
        assert_eq!(fields[0]["inline"], true);
        assert_eq!(fields[1]["name"], "📝 Reason");
        let pieces: Vec<&Value> = fields
            .iter()
            .filter(|f| f["name"].as_str().unwrap().starts_with("📝 Reason"))
            .collect();
        assert_eq!(pieces.len(), 5);
        assert!(pieces[1..].iter().all(|f| f["name"] == "📝 Reason (cont.)"));
        assert!(pieces.iter().all(|f| f["inline"] == false), "pieces stack");
        let joined: Vec<&str> = pieces
            .iter()
            .map(|f| f["value"].as_str().unwrap())
            .collect();
        assert_eq!(joined.join(" "), reason);
        assert_eq!(fields.last().unwrap()["name"], "Side");
        assert_eq!(fields.last().unwrap()["inline"], true);
        assert!(notes.contains(&Note::Split {
            path: "embeds[0].fields[1].value".into(),
            parts: 5,
            unit: "fields",
            why: "over 1024 characters"
        }));
    }

    #[test]
    fn more_than_25_fields_continue_in_another_embed() {
        let fields: Vec<Value> = (0..40)
            .map(|i| json!({"name": format!("F{i}"), "value": format!("v{i}")}))
            .collect();
        let (b, notes) = bodies(
            json!({"embeds": [{"title": "many", "color": "blue", "fields": fields, "footer": "end"}]}),
        );
        assert_eq!(b.len(), 1);
        assert_within_limits(&b[0]);
        let embeds = b[0]["embeds"].as_array().unwrap();
        assert_eq!(embeds.len(), 2);
        assert_eq!(embeds[0]["fields"].as_array().unwrap().len(), 25);
        assert_eq!(embeds[1]["fields"].as_array().unwrap().len(), 15);
        assert_eq!(embeds[1]["fields"][14]["name"], "F39");
        assert_eq!(embeds[1]["color"], embeds[0]["color"]);
        assert!(embeds[0].get("footer").is_none());
        assert_eq!(embeds[1]["footer"]["text"], "end");
        assert!(
            notes
                .iter()
                .any(|n| matches!(n, Note::Split { path, parts: 2, .. } if path == "embeds[0]"))
        );
    }

    #[test]
    fn embeds_over_6000_characters_or_10_go_to_another_message() {
        let big: Vec<Value> = (0..3)
            .map(|i| json!({"title": format!("E{i}"), "description": "d".repeat(2500)}))
            .collect();
        let (b, notes) = bodies(json!({"content": "hello", "embeds": big}));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0]["content"], "hello");
        assert_eq!(b[0]["embeds"].as_array().unwrap().len(), 2);
        assert_eq!(b[1]["embeds"][0]["title"], "E2");
        assert!(b[1].get("content").is_none());
        b.iter().for_each(assert_within_limits);
        assert!(
            notes
                .iter()
                .any(|n| matches!(n, Note::Split { path, parts: 2, .. } if path == "embeds"))
        );

        let small: Vec<Value> = (0..23).map(|i| json!({"title": format!("E{i}")})).collect();
        let (b, _) = bodies(json!({"embeds": small}));
        let counts: Vec<usize> = b
            .iter()
            .map(|b| b["embeds"].as_array().unwrap().len())
            .collect();
        assert_eq!(counts, [10, 10, 3]);
    }

    #[test]
    fn an_event_too_big_for_5_messages_is_cut_and_says_so() {
        let huge = words(10_000); // about 70,000 characters
        let (b, notes) = bodies(json!({"embeds": [{"title": "huge", "description": huge}]}));
        assert_eq!(b.len(), MAX_BODIES);
        b.iter().for_each(assert_within_limits);
        assert_eq!(b[4]["content"], OVERFLOW_NOTICE);
        assert!(
            notes
                .iter()
                .any(|n| matches!(n, Note::Overflow { needed } if *needed > 5))
        );

        let (b, _) = bodies(json!({"content": words(3000)}));
        assert_eq!(b.len(), MAX_BODIES);
        b.iter().for_each(assert_within_limits);
        assert!(b[4]["content"].as_str().unwrap().ends_with(OVERFLOW_NOTICE));
    }

    #[test]
    fn allowed_mentions_come_from_the_settings_only() {
        let payload =
            json!({"content": "@everyone look", "allowed_mentions": {"parse": ["everyone"]}});
        let (b, notes) = bodies(payload.clone());
        assert_eq!(b[0]["allowed_mentions"], json!({"parse": []}));
        assert!(matches!(&notes[0], Note::Dropped { path, .. } if path == "allowed_mentions"));

        let defaults = Defaults {
            mentions: vec![MentionKind::Users, MentionKind::Everyone],
            ..Defaults::default()
        };
        let built = build(&payload, &defaults).unwrap();
        assert_eq!(
            serde_json::to_value(&built.bodies[0]).unwrap()["allowed_mentions"],
            json!({"parse": ["users", "everyone"]})
        );
    }

    #[test]
    fn settings_give_username_and_avatar_unless_the_template_does() {
        let defaults = Defaults {
            username: Some("Trading Bot".into()),
            avatar_url: Some("https://x/a.png".into()),
            mentions: vec![],
        };
        let build_one = |payload: Value| {
            serde_json::to_value(&build(&payload, &defaults).unwrap().bodies[0]).unwrap()
        };
        let b = build_one(json!({"content": "hi"}));
        assert_eq!(b["username"], "Trading Bot");
        assert_eq!(b["avatar_url"], "https://x/a.png");
        let b = build_one(json!({"content": "hi", "username": "Risk Desk"}));
        assert_eq!(b["username"], "Risk Desk");
        let built = build(
            &json!({"content": "hi", "username": "discord fan"}),
            &defaults,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&built.bodies[0]).unwrap()["username"],
            "Trading Bot"
        );
        assert!(matches!(&built.notes[0], Note::Dropped { path, .. } if path == "username"));
    }

    #[test]
    fn empty_parts_are_left_out_and_natives_become_text() {
        let (b, notes) = bodies(json!({"embeds": [{
            "title": "  ", "description": "", "footer": {"text": ""},
            "fields": [
                {"name": "Reason", "value": ""},
                {"name": "Qty", "value": 2.5, "inline": true},
                {"value": "no name"},
                {"name": "Ok", "value": true},
            ],
            "timestamp": "",
        }]}));
        let e = &b[0]["embeds"][0];
        assert!(
            e.get("title").is_none() && e.get("description").is_none() && e.get("footer").is_none()
        );
        let fields = e["fields"].as_array().unwrap();
        assert_eq!(fields.len(), 3);
        assert_eq!(
            fields[0],
            json!({"name": "Qty", "value": "2.5", "inline": true})
        );
        assert_eq!(fields[1]["name"], "\u{200b}");
        assert_eq!(fields[2]["value"], "true");
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn timestamps_are_checked() {
        let (b, notes) = bodies(json!({"embeds": [
            {"title": "a", "timestamp": "2025-11-03T14:30:00+01:00"},
            {"title": "b", "timestamp": 1762180200},
            {"title": "c", "timestamp": "yesterday"},
        ]}));
        let e = b[0]["embeds"].as_array().unwrap();
        assert_eq!(e[0]["timestamp"], "2025-11-03T14:30:00+01:00");
        assert_eq!(e[1]["timestamp"], "2025-11-03T14:30:00Z");
        assert!(e[2].get("timestamp").is_none());
        assert!(matches!(&notes[0], Note::Dropped { path, .. } if path == "embeds[2].timestamp"));
    }

    #[test]
    fn unknown_keys_are_reported_and_empty_messages_refused() {
        let (_, notes) = bodies(
            json!({"content": "x", "embed": {}, "embeds": [{"title": "t", "colour_hex": 1}]}),
        );
        let paths: Vec<String> = notes.iter().map(|n| n.to_string()).collect();
        assert!(
            paths
                .contains(&"embed: left out (not a field of Discord's Execute Webhook)".to_owned()),
            "{paths:?}"
        );
        assert!(
            paths
                .iter()
                .any(|p| p.starts_with("embeds[0].colour_hex: left out"))
        );

        let err = build(&json!({"embeds": [{"color": "red"}]}), &Defaults::default()).unwrap_err();
        assert!(err.to_string().contains("nothing to send"), "{err}");
        let err = build(&json!({"embeds": {"title": "x"}}), &Defaults::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "payload.embeds: expected a list, found an object"
        );
        let err = build(
            &json!({"embeds": [{"fields": ["a"]}]}),
            &Defaults::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("payload.embeds[0].fields[0]: expected a field object"),
            "{err}"
        );
        let err = build(&json!("text"), &Defaults::default()).unwrap_err();
        assert!(err.to_string().starts_with("payload: expected an object"));
    }

    #[test]
    fn split_breaks_at_spaces_then_mid_word_and_never_loses_text() {
        assert_eq!(split("aaaa bbbb cccc", 9), ["aaaa bbbb", "cccc"]);
        assert_eq!(split("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(
            split("abc\\*def", 4),
            ["abc", "\\*de", "f"],
            "escape kept whole"
        );
        assert_eq!(split("  padded  ", 100), ["padded"]);
        assert!(split("   ", 10).is_empty());
    }
}
