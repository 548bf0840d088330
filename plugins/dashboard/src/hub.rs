//! The [`Hub`] a dashboard server's handlers share: the sink instances using the server
//! (its *tenants*, newest last, whose settings are in force and through whose host the
//! router is asked), the live feed, and the channel that pushes updates to open pages.
//! Also [`Source`], where the router's data comes from.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use alert_router_plugin::{Host, HostError, HostErrorKind, Level, Message};
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::feed::{Feed, FeedItem};

/// Live updates a slow page may fall behind by before it is told to resynchronise.
const LIVE_BUFFER: usize = 256;

/// Where the router's data comes from: the host's `query` callback, or a stand-in in
/// tests.
pub trait Source: Send + Sync {
    /// `path` as the host's `query` takes it: `status`, `state/trades?limit=5`, ...
    fn query(&self, path: &str) -> Result<Value, HostError>;
    /// A line in the router's log.
    fn log(&self, level: Level, message: &str);
}

impl Source for Host {
    fn query(&self, path: &str) -> Result<Value, HostError> {
        Host::query(self, path)
    }

    fn log(&self, level: Level, message: &str) {
        Host::log(self, level, message)
    }
}

/// What an open page is sent besides feed items.
#[derive(Debug, Clone)]
pub enum Live {
    /// A delivered event.
    Feed(Arc<FeedItem>),
    /// The settings changed (a reload): title, theme or limits.
    Config,
}

/// One sink instance using a server.
struct Tenant {
    id: u64,
    config: Arc<Config>,
    source: Arc<dyn Source>,
}

/// What the handlers share: the tenants (newest last), the feed and the live channel.
pub struct Hub {
    tenants: RwLock<Vec<Tenant>>,
    feed: Mutex<Feed>,
    live: broadcast::Sender<Live>,
    bound: Mutex<Option<SocketAddr>>,
    stopping: watch::Sender<bool>,
    /// Whether the feed has been filled from the router's delivered messages (or that
    /// is no longer worth trying).
    backfilled: Mutex<bool>,
}

/// Why there is no answer while no tenant is left: the last sink instance is being
/// destroyed, and the server with it.
pub const NO_SOURCE: &str = "the dashboard sink is stopping";

impl Hub {
    /// A hub whose first tenant is `tenant`.
    pub fn new(tenant: u64, config: Arc<Config>, source: Arc<dyn Source>) -> Arc<Hub> {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let (stopping, _) = watch::channel(false);
        Arc::new(Hub {
            feed: Mutex::new(Feed::new(config.max_events)),
            tenants: RwLock::new(vec![Tenant {
                id: tenant,
                config,
                source,
            }]),
            live,
            bound: Mutex::new(None),
            stopping,
            backfilled: Mutex::new(false),
        })
    }

    /// The newest tenant's settings.
    pub fn config(&self) -> Option<Arc<Config>> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        tenants.last().map(|t| t.config.clone())
    }

    /// Asks the router through the newest tenant. Blocking (the host answers
    /// synchronously); the read lock keeps that tenant's host valid meanwhile, since
    /// dropping a tenant takes the write lock.
    pub fn query(&self, path: &str) -> Result<Value, HostError> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        match tenants.last() {
            Some(t) => t.source.query(path),
            None => Err(HostError::unavailable(NO_SOURCE)),
        }
    }

    /// Logs through the newest tenant.
    pub fn log(&self, level: Level, message: &str) {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = tenants.last() {
            t.source.log(level, message);
        }
    }

    /// Fills the feed, once, with the messages the router delivered to this sink
    /// before this process started (the outbox keeps them for `storage.keep_delivered`),
    /// so a restart does not empty it. Runs before the first item of this process goes
    /// in, keeping the feed in order; retried while the router is still starting.
    fn backfill(&self) {
        let mut done = self
            .backfilled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *done {
            return;
        }
        let limit = self
            .feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .limit();
        // The router lists up to 10,000, as many as `max_events` allows.
        let messages = match self.query(&format!("delivered?limit={limit}")) {
            Ok(Value::Array(messages)) => messages,
            Ok(other) => {
                self.log(
                    Level::Warn,
                    &format!(
                        "the router's delivered messages are not a list: {}",
                        other.to_string().chars().take(80).collect::<String>()
                    ),
                );
                Vec::new()
            }
            // Asked too early: the next page load or delivery asks again.
            Err(e) if e.kind() == HostErrorKind::Unavailable => return,
            Err(reason) => {
                self.log(
                    Level::Warn,
                    &format!("the live feed starts empty: {reason}"),
                );
                Vec::new()
            }
        };
        let mut feed = self.feed.lock().unwrap_or_else(PoisonError::into_inner);
        if feed.is_empty() {
            for message in messages {
                if let Ok(message) = serde_json::from_value::<Message>(message) {
                    feed.push(&message);
                }
            }
        }
        *done = true;
    }

    /// Adds the item for a delivered message to the feed and tells open pages.
    pub fn deliver(&self, message: &Message) {
        self.backfill();
        let item = self
            .feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(message);
        if let Some(item) = item {
            // No page open: nobody to tell.
            let _ = self.live.send(Live::Feed(Arc::new(item)));
        }
    }

    /// Up to `limit` feed items at or above severity rank `min`, newest first.
    /// Blocking on the first call (see [`Hub::backfill`]).
    pub fn feed(&self, min: usize, limit: usize) -> Vec<FeedItem> {
        self.backfill();
        self.feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recent(min, limit)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.live.subscribe()
    }

    /// Resolves once the server is stopping (so long-lived streams end).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// The address the server listens on, once bound.
    pub fn bound(&self) -> Option<SocketAddr> {
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records the address the server now listens on.
    pub(crate) fn set_bound(&self, addr: SocketAddr) {
        *self.bound.lock().unwrap_or_else(PoisonError::into_inner) = Some(addr);
    }

    /// Tells the server and every open event stream to stop.
    pub(crate) fn stop(&self) {
        // Nobody listening (no server yet): nothing to tell.
        let _ = self.stopping.send(true);
    }

    /// Makes tenant `id` the newest: its settings take effect and open pages are told.
    pub(crate) fn add(&self, id: u64, config: Arc<Config>, source: Arc<dyn Source>) {
        self.feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_limit(config.max_events);
        self.tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Tenant { id, config, source });
        let _ = self.live.send(Live::Config);
    }

    /// Removes tenant `id`; returns how many are left. Waits for queries in flight.
    pub(crate) fn remove(&self, id: u64) -> usize {
        let left = {
            let mut tenants = self.tenants.write().unwrap_or_else(PoisonError::into_inner);
            let was_newest = tenants.last().is_some_and(|t| t.id == id);
            tenants.retain(|t| t.id != id);
            if was_newest && let Some(t) = tenants.last() {
                let limit = t.config.max_events;
                self.feed
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .set_limit(limit);
            }
            tenants.len()
        };
        if left > 0 {
            let _ = self.live.send(Live::Config);
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::Settings;

    /// Answers `delivered?...` with what the test scripts, one answer per ask (the
    /// last one again once the script runs out), and keeps the lines logged.
    struct Router {
        answers: Mutex<Vec<Result<Value, HostError>>>,
        logged: Mutex<Vec<String>>,
    }

    impl Source for Router {
        fn query(&self, path: &str) -> Result<Value, HostError> {
            assert!(path.starts_with("delivered?limit="), "{path}");
            let mut answers = self.answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            }
        }

        fn log(&self, _: Level, message: &str) {
            self.logged.lock().unwrap().push(message.to_owned());
        }
    }

    fn hub(answers: Vec<Result<Value, HostError>>) -> (Arc<Hub>, Arc<Router>) {
        let router = Arc::new(Router {
            answers: Mutex::new(answers),
            logged: Mutex::new(Vec::new()),
        });
        let config = Config::from_settings(Settings::default()).expect("the defaults");
        (Hub::new(1, Arc::new(config), router.clone()), router)
    }

    fn delivered(id: &str) -> Value {
        json!({"id": id, "sink": "dashboard", "payload": {"title": id, "text": "t"},
               "event": {"type": "x", "severity": "info"}})
    }

    fn ids(hub: &Hub) -> Vec<String> {
        hub.feed(0, 10).into_iter().map(|item| item.id).collect()
    }

    #[test]
    fn the_feed_is_filled_once_the_router_can_answer() {
        let (hub, router) = hub(vec![
            Err(HostError::unavailable("the router is starting or stopping")),
            Ok(json!([delivered("m1"), delivered("m2")])),
        ]);
        assert!(ids(&hub).is_empty(), "asked too early: nothing yet");
        assert_eq!(ids(&hub), ["m2", "m1"], "asked again, and filled");
        assert!(router.logged.lock().unwrap().is_empty());
    }

    #[test]
    fn any_other_refusal_starts_the_feed_empty_and_says_why() {
        // Whatever the words: the kind decides.
        let (hub, router) = hub(vec![
            Err(HostError::failed("the router is starting or stopping")),
            Ok(json!([delivered("m1")])),
        ]);
        assert!(ids(&hub).is_empty());
        assert!(ids(&hub).is_empty(), "not asked again");
        assert_eq!(
            *router.logged.lock().unwrap(),
            ["the live feed starts empty: the router is starting or stopping"]
        );
    }
}
