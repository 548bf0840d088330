//! The HTTP server behind a dashboard sink, and how sink instances share it.
//!
//! A reload builds the new sink instance while the old one still runs, and destroys the
//! old one afterwards (or destroys the new one, when the reload fails). So servers live
//! in a process-wide registry keyed by the configured listen address: an instance on an
//! address that already has a server joins it as its newest *tenant* (its title, theme,
//! token and limits take effect at once, and open pages are told), and dropping an
//! instance only removes its tenant, handing the server back to the newest one left. The
//! last tenant to leave stops the server. The feed lives with the server, so a reload
//! keeps it.
//!
//! An address held by something else (another copy of the plugin, loaded from a changed
//! file, whose instance has not been destroyed yet) is retried in the background for
//! [`BIND_RETRY_FOR`]; any other bind error refuses the settings.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use alert_router_plugin::{Host, Level, Message};
use serde_json::Value;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{broadcast, watch};

use crate::config::Config;
use crate::feed::{Feed, FeedItem};

/// How long an address in use is retried before the sink gives up on it.
pub const BIND_RETRY_FOR: Duration = Duration::from_secs(30);
const BIND_RETRY_EVERY: Duration = Duration::from_millis(100);
/// Live updates a slow page may fall behind by before it is told to resynchronise.
const LIVE_BUFFER: usize = 256;

/// Where the router's data comes from: the host's `query` callback, or a stand-in in
/// tests.
pub trait Source: Send + Sync {
    /// `path` as the host's `query` takes it: `status`, `state/trades?limit=5`, ...
    fn query(&self, path: &str) -> Result<Value, String>;
    /// A line in the router's log.
    fn log(&self, level: Level, message: &str);
}

impl Source for Host {
    fn query(&self, path: &str) -> Result<Value, String> {
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

/// The router is starting or stopping: no tenant can answer.
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
    pub fn query(&self, path: &str) -> Result<Value, String> {
        let tenants = self.tenants.read().unwrap_or_else(PoisonError::into_inner);
        match tenants.last() {
            Some(t) => t.source.query(path),
            None => Err(NO_SOURCE.to_owned()),
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
            Err(reason) if reason.contains("starting or stopping") || reason == NO_SOURCE => return,
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

    fn add(&self, id: u64, config: Arc<Config>, source: Arc<dyn Source>) {
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
    fn remove(&self, id: u64) -> usize {
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

/// A running server: its runtime, and the hub its handlers share.
struct Server {
    hub: Arc<Hub>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

/// Servers by configured listen address.
static REGISTRY: Mutex<Option<HashMap<SocketAddr, Arc<Server>>>> = Mutex::new(None);
static NEXT_TENANT: AtomicU64 = AtomicU64::new(1);

/// A sink instance's hold on its server; dropping it leaves the server (and stops it,
/// when it was the last one).
pub struct Lease {
    addr: SocketAddr,
    tenant: u64,
    server: Arc<Server>,
}

impl Lease {
    pub fn hub(&self) -> &Arc<Hub> {
        &self.server.hub
    }
}

/// Joins the server on `config.listen`, or starts one. Returns the lease and a line
/// saying where the dashboard is (or will be) served.
pub fn acquire(config: Config, source: Arc<dyn Source>) -> Result<(Lease, String), String> {
    let addr = config.listen;
    let config = Arc::new(config);
    let tenant = NEXT_TENANT.fetch_add(1, Ordering::Relaxed);
    let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    let servers = registry.get_or_insert_with(HashMap::new);
    if let Some(server) = servers.get(&addr) {
        server.hub.add(tenant, config, source);
        let line = match server.hub.bound() {
            Some(bound) => format!("dashboard settings updated; still serving on http://{bound}/"),
            None => format!("dashboard settings updated; still waiting to listen on {addr}"),
        };
        return Ok((
            Lease {
                addr,
                tenant,
                server: server.clone(),
            },
            line,
        ));
    }
    let hub = Hub::new(tenant, config, source);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .thread_name("dashboard-sink")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the dashboard's runtime: {e}"))?;
    let line = {
        let _entered = runtime.enter();
        match bind(addr) {
            Ok(listener) => {
                let bound = listener.local_addr().unwrap_or(addr);
                *hub.bound.lock().unwrap_or_else(PoisonError::into_inner) = Some(bound);
                runtime.spawn(serve(hub.clone(), listener));
                format!("dashboard listening on http://{bound}/")
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                runtime.spawn(bind_later(hub.clone(), addr));
                format!(
                    "dashboard: {addr} is in use; retrying for {}s (an older instance may still hold it)",
                    BIND_RETRY_FOR.as_secs()
                )
            }
            Err(e) => {
                runtime.shutdown_background();
                return Err(format!("settings.listen: cannot listen on {addr}: {e}"));
            }
        }
    };
    let server = Arc::new(Server {
        hub,
        runtime: Mutex::new(Some(runtime)),
    });
    servers.insert(addr, server.clone());
    Ok((
        Lease {
            addr,
            tenant,
            server,
        },
        line,
    ))
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        if self.server.hub.remove(self.tenant) > 0 {
            return;
        }
        if let Some(servers) = registry.as_mut()
            && servers
                .get(&self.addr)
                .is_some_and(|s| Arc::ptr_eq(s, &self.server))
        {
            servers.remove(&self.addr);
        }
        drop(registry);
        let _ = self.server.hub.stopping.send(true);
        let runtime = self
            .server
            .runtime
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(runtime) = runtime {
            runtime.shutdown_timeout(Duration::from_secs(2));
        }
    }
}

/// Binds with `SO_REUSEADDR`, so a restarted router gets its port back while the old
/// process's connections linger in TIME_WAIT. Needs a runtime context.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn bind_later(hub: Arc<Hub>, addr: SocketAddr) {
    let deadline = Instant::now() + BIND_RETRY_FOR;
    let mut stopping = hub.stopping();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(BIND_RETRY_EVERY) => {}
            _ = stopping.changed() => return,
        }
        match bind(addr) {
            Ok(listener) => {
                let bound = listener.local_addr().unwrap_or(addr);
                *hub.bound.lock().unwrap_or_else(PoisonError::into_inner) = Some(bound);
                hub.log(
                    Level::Info,
                    &format!("dashboard listening on http://{bound}/"),
                );
                serve(hub, listener).await;
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {}
            Err(e) => {
                hub.log(
                    Level::Error,
                    &format!(
                        "dashboard: cannot listen on {addr}: {e}; the dashboard is not served"
                    ),
                );
                return;
            }
        }
    }
}

async fn serve(hub: Arc<Hub>, listener: TcpListener) {
    let mut stopping = hub.stopping();
    let app = crate::api::app(hub.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|s| *s).await;
        })
        .await;
    if let Err(e) = result {
        hub.log(Level::Error, &format!("dashboard server stopped: {e}"));
    }
}
