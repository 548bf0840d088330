//! The JSON a plugin's `deliver` gets for one attempt at a message.

use crate::outbox::Stored;

/// What the plugin's `deliver` gets: `{"id", "sink", "attempt", "payload", "event"}`.
/// Written directly, since payload and event are JSON already.
pub(crate) fn wire(message: &Stored, sink: &str, attempt: u32) -> String {
    let mut body = String::with_capacity(
        message.payload.len() + message.event.len() + message.id.len() + sink.len() + 64,
    );
    body.push_str("{\"id\":");
    push_json_string(&mut body, &message.id);
    body.push_str(",\"sink\":");
    push_json_string(&mut body, sink);
    body.push_str(",\"attempt\":");
    body.push_str(&attempt.to_string());
    body.push_str(",\"payload\":");
    body.push_str(&message.payload);
    body.push_str(",\"event\":");
    body.push_str(&message.event);
    body.push('}');
    body
}

fn push_json_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}
