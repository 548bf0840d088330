//! The contract between alert-router and a *domain*: a body of knowledge about what the
//! events describe (trading is the one the router ships with). A domain gives the router
//!
//! - the event types it documents, with their fields ([`EventType`], [`Field`]), which
//!   the router validates on ingest and uses for the sample events `check` renders
//!   templates with;
//! - a [`Store`] opened on the router's storage directory, that every accepted event is
//!   applied to and that answers `GET /v1/state/<resource>` and the plugins' `state/...`
//!   queries (a Telegram `/portfolio`, the dashboard);
//! - optionally a [`Simulator`] for `alert-router demo`.
//!
//! The router calls a domain only through [`Domain`] and [`Store`], and a domain knows
//! nothing of the router: it depends on this crate alone, so another domain is another
//! crate registered at start-up beside trading.

mod schema;
mod simulate;

pub use schema::{EventType, Field, FieldError, FieldKind, describe_value};
pub use simulate::{Day, SimEvent, Simulator};

use std::path::Path;

use serde_json::{Map, Value};
use time::OffsetDateTime;

/// A domain, registered once at start-up. Its methods take no storage: the router
/// opens a [`Store`] per storage directory (the live one, the demo's own).
pub trait Domain: Send + Sync {
    /// A short name for logs and `/v1/status`: `trading`.
    fn name(&self) -> &'static str;

    /// The event types this domain documents. Extra fields are allowed on them; the
    /// documented ones must have the documented shape.
    fn event_types(&self) -> &'static [EventType];

    /// A plausible value of `field` of a `kind` event, for the sample events `check`
    /// renders every template with. The default is a value of the field's kind.
    fn sample_value(&self, kind: &str, field: &Field) -> Value {
        let _ = kind;
        field.kind.sample()
    }

    /// Opens (creating it if needed) this domain's state in the storage directory `dir`.
    fn open(&self, dir: &Path) -> Result<Box<dyn Store>, String>;

    /// A simulation of this domain's events, seeded, for `alert-router demo`; `None`
    /// when the domain has none.
    fn simulator(&self, seed: u64) -> Option<Box<dyn Simulator>> {
        let _ = seed;
        None
    }
}

/// An accepted event as a domain sees it: borrowed from the router's own.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub id: &'a str,
    /// The event's `type`.
    pub kind: &'a str,
    pub time: OffsetDateTime,
    /// Every field that is not a reserved key (`type`, `severity`, `time`, `id`,
    /// `source`, `labels`).
    pub data: &'a Map<String, Value>,
}

/// A domain's state in one storage directory. `Send + Sync`: the router shares it
/// between the ingest path, the API and the plugins' host calls.
pub trait Store: Send + Sync {
    /// Whether events of type `kind` change the state: the router applies only those,
    /// so other events cost the domain nothing.
    fn tracks(&self, kind: &str) -> bool;

    /// Applies one accepted event (written to the outbox already). Must not block on
    /// disk but for backpressure.
    fn apply(&self, event: EventRef<'_>);

    /// Waits until everything applied so far is saved (at shutdown).
    fn flush(&self) -> Result<(), String>;

    /// The resources [`query`](Store::query) answers, for messages: `portfolio`, ...
    fn resources(&self) -> &'static [&'static str];

    /// Answers `resource` with `query` (a URL query string) as of `now`, the router's
    /// clock (what `today` or the last day means: a simulated day in `alert-router test`
    /// and `replay`), or `None` when `resource` is not one of this store's.
    fn query(
        &self,
        resource: &str,
        query: &str,
        now: OffsetDateTime,
    ) -> Option<Result<Value, QueryError>>;
}

/// Why a store could not answer a query of one of its resources: said to the client
/// (HTTP 400, or a plugin's bad request), so it says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

mod owned;
pub use owned::OwnedEvent;

/// RFC 3339 in UTC, as the router writes every time.
pub fn format_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}
