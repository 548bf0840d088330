//! Turns a rendered payload (`subject`, `text`, `html`) into the email itself: the
//! plain part and the subject decoded from the HTML escaping the router applied, the
//! HTML part as rendered.

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use serde_json::Value;

/// Builds the message for `payload`, with a Message-ID derived from `id` when it can
/// carry one, so every attempt at one message has the same Message-ID.
pub(crate) fn build(
    payload: &Value,
    id: &str,
    from: &Mailbox,
    to: &[Mailbox],
) -> Result<lettre::Message, String> {
    let subject = field(payload, "subject")?
        .map(|s| decode(&s).split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .ok_or("the payload has no `subject`; give one in the sink's template")?;
    let text = field(payload, "text")?
        .map(|t| decode(&t))
        .filter(|t| !t.trim().is_empty());
    let html = field(payload, "html")?.filter(|h| !h.trim().is_empty());
    let mut builder = lettre::Message::builder()
        .from(from.clone())
        .subject(subject);
    for mailbox in to {
        builder = builder.to(mailbox.clone());
    }
    if !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        builder = builder.message_id(Some(format!("<{id}@alert-router>")));
    }
    let built = match (text, html) {
        (Some(text), Some(html)) => {
            builder.multipart(MultiPart::alternative_plain_html(text, html))
        }
        (Some(text), None) => builder.singlepart(SinglePart::plain(text)),
        (None, Some(html)) => builder.singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_HTML)
                .body(html),
        ),
        (None, None) => {
            return Err(
                "the payload has neither `text` nor `html`; give at least one in the sink's template"
                    .to_owned(),
            );
        }
    };
    built.map_err(|e| format!("cannot build the email: {e}"))
}

/// `payload[name]` as text: absent or null is `None`, numbers and booleans are written
/// out, anything else is an error naming the field.
fn field(payload: &Value, name: &str) -> Result<Option<String>, String> {
    match payload.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(Some(v.to_string())),
        Some(_) => Err(format!(
            "the payload's `{name}` is a list or a map; the template must give it as text"
        )),
    }
}

/// Undoes the router's HTML escaping (`&amp; &lt; &gt; &quot;`) for the parts that are
/// not HTML, in one pass so `&amp;lt;` becomes `&lt;`, not `<`.
pub(crate) fn decode(text: &str) -> String {
    const ENTITIES: [(&str, char); 4] = [
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&quot;", '"'),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match ENTITIES.iter().find(|(entity, _)| rest.starts_with(entity)) {
            Some((entity, c)) => {
                out.push(*c);
                rest = &rest[entity.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mailbox(s: &str) -> Mailbox {
        s.parse().unwrap()
    }

    fn render(payload: Value) -> Result<String, String> {
        build(
            &payload,
            "msg-1",
            &mailbox("Alerts <alerts@example.com>"),
            &[mailbox("ops@example.com"), mailbox("b@example.com")],
        )
        .map(|m| String::from_utf8_lossy(&m.formatted()).into_owned())
    }

    #[test]
    fn decode_undoes_exactly_the_routers_escaping() {
        assert_eq!(
            decode("P&amp;L &lt;b&gt; &quot;x&quot; &amp;lt; & &nbsp;"),
            "P&L <b> \"x\" &lt; & &nbsp;"
        );
        assert_eq!(decode("plain é"), "plain é");
    }

    #[test]
    fn both_parts_make_an_alternative_and_one_part_is_sent_alone() {
        let both = render(
            json!({"subject": "🟢 Trade &amp; more", "text": "a &lt;b&gt;",
                                 "html": "<p>a &lt;b&gt;</p>"}),
        )
        .unwrap();
        assert!(both.contains("multipart/alternative"), "{both}");
        assert!(both.contains("Message-ID: <msg-1@alert-router>"), "{both}");
        assert!(
            both.contains("To: ops@example.com, b@example.com"),
            "{both}"
        );
        let text = render(json!({"subject": "s", "text": "only text"})).unwrap();
        assert!(
            !text.contains("multipart") && text.contains("text/plain"),
            "{text}"
        );
        let html = render(json!({"subject": "s", "html": "<p>x</p>", "text": "  "})).unwrap();
        assert!(
            !html.contains("multipart") && html.contains("text/html"),
            "{html}"
        );
    }

    #[test]
    fn a_payload_without_subject_or_body_is_refused_by_name() {
        let none = render(json!({"subject": "s"})).unwrap_err();
        assert!(none.contains("neither `text` nor `html`"), "{none}");
        let no_subject = render(json!({"text": "x"})).unwrap_err();
        assert!(no_subject.contains("no `subject`"), "{no_subject}");
        let list = render(json!({"subject": "s", "text": ["x"]})).unwrap_err();
        assert!(list.contains("`text` is a list or a map"), "{list}");
    }
}
