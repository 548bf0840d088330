//! [`OwnedEvent`]: an event read from JSON without the router, for a domain's own tests,
//! benchmarks and tools.

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{EventRef, EventType};

/// An event as a domain gets it, owned.
#[derive(Debug, Clone)]
pub struct OwnedEvent {
    pub id: String,
    pub kind: String,
    pub time: OffsetDateTime,
    pub data: Map<String, Value>,
}

impl OwnedEvent {
    /// Reads a posted event: `type` (required), `time` (RFC 3339; the Unix epoch when
    /// missing), `id` (empty when missing); the other reserved keys are dropped and the
    /// rest is data, checked against the type among `types` that documents it. Simpler
    /// than the router's reading, which also knows severities and labels.
    pub fn from_json(value: Value, types: &[EventType]) -> Result<OwnedEvent, String> {
        let Value::Object(mut data) = value else {
            return Err("an event is a JSON object".into());
        };
        let text = |data: &mut Map<String, Value>, key: &str| match data.remove(key) {
            Some(Value::String(s)) => Ok(Some(s)),
            None => Ok(None),
            Some(other) => Err(format!("`{key}` must be a string, got {other}")),
        };
        let kind = text(&mut data, "type")?.ok_or("`type` is missing")?;
        let id = text(&mut data, "id")?.unwrap_or_default();
        let time = match text(&mut data, "time")? {
            Some(t) => OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| format!("`time`: {e}"))?,
            None => OffsetDateTime::UNIX_EPOCH,
        };
        for reserved in ["severity", "source", "labels"] {
            data.remove(reserved);
        }
        if let Some(documented) = types.iter().find(|t| t.name == kind) {
            documented
                .check(&mut data)
                .map_err(|e| format!("field `{}`: {}", e.field, e.message))?;
        }
        Ok(OwnedEvent {
            id,
            kind,
            time,
            data,
        })
    }

    /// The event as [`Store::apply`](crate::Store::apply) takes it.
    pub fn as_ref(&self) -> EventRef<'_> {
        EventRef {
            id: &self.id,
            kind: &self.kind,
            time: self.time,
            data: &self.data,
        }
    }
}

impl<'a> From<&'a OwnedEvent> for EventRef<'a> {
    fn from(event: &'a OwnedEvent) -> EventRef<'a> {
        event.as_ref()
    }
}
