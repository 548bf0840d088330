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
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use alert_router_plugin::Level;
use tokio::net::{TcpListener, TcpSocket};

use crate::config::Config;
use crate::hub::{Hub, Source};

/// How long an address in use is retried before the sink gives up on it.
pub const BIND_RETRY_FOR: Duration = Duration::from_secs(30);
const BIND_RETRY_EVERY: Duration = Duration::from_millis(100);

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
                hub.set_bound(bound);
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
        self.server.hub.stop();
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
                hub.set_bound(bound);
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
