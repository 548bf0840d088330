//! The domains the router serves (trading, in the shipped binary), registered once at
//! start-up by the binary's `main` (see `alert-router-domain` for what a domain is),
//! and their stores opened on a storage directory.
//!
//! The router's own code names no domain: event validation asks [`event_type`], the
//! template rehearsal's samples come from [`registered`], and the pipeline applies
//! events to and queries the [`Stores`] it opened.

use std::path::Path;
use std::sync::OnceLock;

use alert_router_domain::{Domain, EventRef, EventType, Store};
use serde_json::Value;

static REGISTERED: OnceLock<Vec<&'static dyn Domain>> = OnceLock::new();

/// Registers the domains this process serves. Call it once, before anything reads events
/// or opens a router; returns false (and changes nothing) when domains were registered
/// already or something has read the registry.
pub fn register(domains: &[&'static dyn Domain]) -> bool {
    REGISTERED.set(domains.to_vec()).is_ok()
}

/// The registered domains: none when nothing registered any.
pub fn registered() -> &'static [&'static dyn Domain] {
    REGISTERED.get_or_init(unregistered)
}

/// What a process that registered nothing serves. The crate's own unit tests run with
/// trading, as the shipped binary does; `tests/no_domain.rs` runs the router with none.
#[cfg(not(test))]
fn unregistered() -> Vec<&'static dyn Domain> {
    Vec::new()
}

#[cfg(test)]
fn unregistered() -> Vec<&'static dyn Domain> {
    vec![&alert_router_trading::TRADING]
}

/// The documented type `kind`, if a registered domain documents it.
pub fn event_type(kind: &str) -> Option<&'static EventType> {
    registered()
        .iter()
        .flat_map(|d| d.event_types())
        .find(|t| t.name == kind)
}

/// Why a state query was not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateQueryError {
    /// No store has this resource: 404.
    Unknown(String),
    /// The store refused the query (a bad parameter): 400.
    Refused(String),
}

impl std::fmt::Display for StateQueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateQueryError::Unknown(m) | StateQueryError::Refused(m) => f.write_str(m),
        }
    }
}

/// The registered domains' stores on one storage directory.
pub struct Stores(Vec<Box<dyn Store>>);

impl Stores {
    /// Opens every registered domain's store in `dir`.
    pub fn open(dir: &Path) -> Result<Stores, String> {
        registered()
            .iter()
            .map(|d| d.open(dir).map_err(|e| format!("{} state: {e}", d.name())))
            .collect::<Result<_, _>>()
            .map(Stores)
    }

    /// Whether any store keeps events of type `kind`.
    pub fn tracks(&self, kind: &str) -> bool {
        self.0.iter().any(|s| s.tracks(kind))
    }

    /// Applies an accepted event to the stores that keep its type.
    pub fn apply(&self, event: EventRef<'_>) {
        for store in self.0.iter().filter(|s| s.tracks(event.kind)) {
            store.apply(event);
        }
    }

    /// Waits until every store has saved what it was given; says what could not be.
    pub fn flush(&self) -> Vec<String> {
        self.0.iter().filter_map(|s| s.flush().err()).collect()
    }

    /// Every store's resources, in order.
    pub fn resources(&self) -> Vec<&'static str> {
        self.0.iter().flat_map(|s| s.resources()).copied().collect()
    }

    /// Answers `GET /v1/state/<resource>?<query>`, as of the router's clock.
    pub fn query(&self, resource: &str, query: &str) -> Result<Value, StateQueryError> {
        for store in &self.0 {
            if let Some(answer) = store.query(resource, query, crate::clock::now()) {
                return answer.map_err(|e| StateQueryError::Refused(e.0));
            }
        }
        let resources = self.resources();
        Err(StateQueryError::Unknown(if resources.is_empty() {
            format!(
                "unknown state resource `{resource}`: this router keeps no state (no domain is registered)"
            )
        } else {
            format!(
                "unknown state resource `{resource}`: use one of {}",
                resources.join(", ")
            )
        }))
    }
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.resources()).finish()
    }
}
