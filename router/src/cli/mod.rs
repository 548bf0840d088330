//! The `alert-router` command line: one function per subcommand. Errors are printed
//! once, here. Exit codes: 0 success, 1 a problem was found or the command failed,
//! 2 the command line itself was wrong (clap).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

mod dead_letters;
mod env_file;
mod export;
mod import_alertmanager;
mod replay;
mod send;
mod setup;
mod silence;
mod table;
mod test_rules;

use crate::config::Config;
use crate::diag::Diagnostics;
use crate::event::{Event, format_time};
use crate::notify::explain::explain;
use crate::pipeline::{self, Pipeline};
use crate::plugins::Catalog;
use crate::render;

/// Routes events (trades, errors, alerts) to people through sink plugins.
#[derive(Debug, Parser)]
#[command(name = "alert-router", version, about, long_about = None)]
pub struct Cli {
    /// The config file. Relative paths inside it are relative to its directory.
    #[arg(
        short,
        long,
        global = true,
        env = "ALERT_ROUTER_CONFIG",
        default_value = "router.yaml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the router (the default when no command is given).
    Run {
        /// Listen here instead of `server.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// On SIGTERM or Ctrl-C, how long to keep delivering before stopping; what is
        /// left stays in the outbox for the next start.
        #[arg(long, env = "ALERT_ROUTER_DRAIN", default_value = "10s", value_parser = crate::config::parse_duration)]
        drain: Duration,
        /// Start even if the outbox lost committed messages (a deleted or damaged
        /// outbox.db-wal, an older outbox.db): deliver what is left, and say what was lost.
        #[arg(long)]
        accept_data_loss: bool,
    },
    /// Check the config, rules, templates and plugins; print every problem as
    /// file:line:col and exit 1 if there is any. Warnings (a template that fails on a
    /// sample event) are printed too, and fail the check only with --strict.
    Check {
        /// Exit 1 on warnings too.
        #[arg(long)]
        strict: bool,
    },
    /// Print the payload a sink would get for an event.
    Render {
        /// The sink, as named in the config.
        #[arg(long)]
        sink: String,
        /// A file holding the event as JSON, or - for stdin.
        #[arg(long)]
        event: PathBuf,
    },
    /// Show which routes an event matches and which sinks get it.
    Route {
        /// A file holding the event as JSON, or - for stdin.
        #[arg(long)]
        event: PathBuf,
    },
    /// Post one event to a running router.
    Send(send::Send),
    /// List the plugins found in the plugin directories: name, version, ABI, path.
    Plugins,
    /// List, retry or drop dead letters: messages that failed for good or ran out of
    /// attempts. Talks to the running router, or to the outbox when none runs.
    #[command(name = "dead-letters")]
    DeadLetters(dead_letters::DeadLetters),
    /// Start the router on the config and replay a simulated, seeded trading day
    /// through its HTTP API, with a storage of its own: the live outbox and trading
    /// state are not touched.
    Demo {
        /// Simulated seconds per real second: 1440 plays a day in a minute, 60 a
        /// simulated minute per second (a day in 24 minutes).
        #[arg(long, default_value_t = crate::demo::DEFAULT_SPEED)]
        speed: f64,
        /// Run one day, wait until the sinks have delivered it, and exit.
        #[arg(long)]
        once: bool,
        /// The simulation's seed: the same seed gives the same day.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Keep the demo's outbox and trading state in DIR (kept afterwards) instead of
        /// a temporary directory removed at exit.
        #[arg(long, value_name = "DIR")]
        storage: Option<PathBuf>,
    },
    /// Write the events the outbox keeps as NDJSON, oldest first (for `replay`). Reads
    /// the outbox read-only, also while the router runs.
    Export(export::Export),
    /// Play recorded events through a candidate config and a baseline on a clock of
    /// their own, and compare what each would have sent, held back and alerted on.
    Replay(replay::Replay),
    /// Run rule tests: play each test file's events and silences through the config on
    /// a simulated clock, and check the alerts, what the sinks got and what was held
    /// back at the times the file names. Exit 1 when a test fails, 2 when a file or its
    /// config is invalid.
    Test {
        /// Test files (YAML), or directories: every *.yaml in them.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Silence events for a while: add, list or expire silences on a running router.
    Silence(silence::Silence),
    /// Write the router's configuration for an Alertmanager one: its route tree, receivers
    /// (webhook, Slack, email, Telegram, Discord), inhibit rules and time intervals; list
    /// what cannot be converted, and check what was written.
    #[command(name = "import-alertmanager")]
    ImportAlertmanager(import_alertmanager::ImportAlertmanager),
    /// Check Telegram's or Discord's credentials and give (or write into .env) the
    /// lines that switch the sink on.
    Setup(setup::Setup),
    /// Runs one sink's plugin in a process of its own (`isolation: process`). The router
    /// starts it, with a socket as stdin; not a command for people.
    #[command(name = "plugin-host", hide = true)]
    PluginHost {
        #[arg(long)]
        plugin: PathBuf,
        #[arg(long)]
        plugin_version: String,
        #[arg(long)]
        copies: PathBuf,
        #[arg(long)]
        lax: bool,
    },
}

/// Runs the command line for a build that serves `domains` (the shipped binary: trading)
/// and returns the exit code.
pub fn main(domains: &[&'static dyn alert_router_domain::Domain]) -> ExitCode {
    crate::domains::register(domains);
    let cli = Cli::parse();
    // Commands that play a whole config through a clock of their own say what matters
    // themselves; the routers' start-up news would bury it.
    let quiet = matches!(cli.command, Some(Command::Replay(_) | Command::Test { .. }));
    init_logging(if quiet { "warn" } else { "info" });
    let command = cli.command.unwrap_or(Command::Run {
        listen: None,
        drain: DEFAULT_DRAIN,
        accept_data_loss: false,
    });
    let result = match command {
        Command::Run {
            listen,
            drain,
            accept_data_loss,
        } => run(&cli.config, listen, drain, accept_data_loss),
        Command::Check { strict } => check(&cli.config, strict),
        Command::Render { sink, event } => render_cmd(&cli.config, &sink, &event),
        Command::Route { event } => route_cmd(&cli.config, &event),
        Command::Send(args) => send::run(args),
        Command::Plugins => plugins(&cli.config),
        Command::DeadLetters(action) => dead_letters::run(&cli.config, action),
        Command::Demo {
            speed,
            once,
            seed,
            storage,
        } => crate::demo::run(
            &cli.config,
            crate::demo::Options {
                speed,
                once,
                seed,
                storage,
            },
        ),
        Command::Setup(setup) => setup::run(&cli.config, setup),
        Command::Test { files } => test_rules::run(&cli.config, &files),
        Command::Silence(args) => silence::run(args),
        Command::ImportAlertmanager(args) => import_alertmanager::run(args),
        Command::Export(args) => export::run(&cli.config, args),
        Command::Replay(args) => replay::run(&cli.config, args),
        Command::PluginHost {
            plugin,
            plugin_version,
            copies,
            lax,
        } => {
            let args = crate::plugins::HostArgs {
                plugin,
                version: plugin_version,
                copies,
                lax,
            };
            crate::plugins::serve_plugin_host(&args)
                .map(|()| ExitCode::SUCCESS)
                .map_err(|e| anyhow::anyhow!("plugin-host {}: {e}", args.plugin.display()))
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr at `ALERT_ROUTER_LOG`, else at `default`.
fn init_logging(default: &str) {
    use tracing_subscriber::EnvFilter;
    let asked = std::env::var("ALERT_ROUTER_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned());
    let mut filter = EnvFilter::try_new(&asked).unwrap_or_else(|_| EnvFilter::new(default));
    // The file watcher logs every file event at debug and trace; with the log written
    // into a watched directory (the config's), each line would be an event to log: a
    // loop that fills the disk. They stay at info unless named on purpose.
    if !asked.contains("notify") {
        for quiet in ["notify=info", "notify_debouncer_full=info"] {
            if let Ok(directive) = quiet.parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    // Colours only for a person at a terminal, never into a log file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

fn load_config(path: &Path) -> Result<Config> {
    Config::load(path).map_err(|d| anyhow::anyhow!("{d}\n{} problem(s) in the config", d.0.len()))
}

/// How long `run` keeps delivering after SIGTERM unless told otherwise.
const DEFAULT_DRAIN: Duration = Duration::from_secs(10);

/// `run`: the daemon.
fn run(
    config_path: &Path,
    listen: Option<std::net::SocketAddr>,
    drain: Duration,
    accept_data_loss: bool,
) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let listen_flag = listen;
    let listen = listen.unwrap_or(config.server.listen);
    if let Some(problem) = pipeline::Checked::insecure_listen(&config, listen_flag) {
        bail!("{problem}");
    }
    if config.server.insecure && config.server.token.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "server.insecure: the API is open to anyone who can reach this address, with no token");
    }
    let pipeline = Pipeline::start_with(config, listen_flag, accept_data_loss)
        .map_err(|d| anyhow::anyhow!("{d}"))?;
    let reload = crate::reload::start(pipeline.clone())?;
    let mut timers = crate::pipeline::timers::start(&pipeline)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("router")
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        reload_on_sighup(reload);
        tracing::info!(%addr, "alert-router listening");
        println!("alert-router listening on http://{addr}");
        {
            let pipeline = pipeline.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(1));
                loop {
                    every.tick().await;
                    pipeline.warn_of_stuck_sinks();
                }
            });
        }
        let app = crate::api::app(crate::api::AppState {
            pipeline: pipeline.clone(),
        });
        crate::api::serve(
            listener,
            app,
            crate::api::connection_limit(),
            shutdown_signal(),
        )
        .await;
        anyhow::Ok(())
    })?;
    tracing::info!(
        drain_seconds = drain.as_secs_f64(),
        "stopped taking events; delivering what waits"
    );
    // Open groups stay in the outbox and speak after the next start.
    timers.stop();
    let deadline = Instant::now() + drain;
    let p = pipeline.clone();
    let left = std::thread::spawn(move || p.shutdown(deadline))
        .join()
        .unwrap_or_default();
    for (sink, n) in &left {
        tracing::warn!(sink = %sink, waiting = n, "stopped; these messages stay in the outbox and are delivered at the next start");
    }
    if left.is_empty() {
        tracing::info!("stopped; everything accepted was delivered or dead-lettered");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP reloads the config, as daemons do.
fn reload_on_sighup(reload: crate::reload::Trigger) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP; reload with POST /v1/reload");
            return;
        };
        while hup.recv().await.is_some() {
            reload.reload("signal");
        }
    });
    #[cfg(not(unix))]
    drop(reload);
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// `check`: everything `run` would load, without starting anything. Prints every
/// problem (exit 1), then every warning: what may fail for some events without stopping
/// the config from loading (exit 0, or 1 with `--strict`).
fn check(config_path: &Path, strict: bool) -> Result<ExitCode> {
    let config = match Config::load(config_path) {
        Ok(c) => c,
        Err(d) => return Ok(report(d, &Diagnostics::default())),
    };
    let catalog = Catalog::new(config.plugin_dirs.clone()).strict_modes(config.plugin_strict_modes);
    let checked = match pipeline::check(config, &catalog) {
        Ok(c) => c,
        Err(d) => return Ok(report(d, &Diagnostics::default())),
    };
    let mut problems = Diagnostics::default();
    if let Some(problem) = pipeline::Checked::insecure_listen(&checked.config, None) {
        problems.push(problem);
    }
    for (name, loaded) in &checked.plugins {
        if let (Err(cannot), Some(sink)) = (loaded, checked.config.sinks.get(name)) {
            problems.extend(cannot.diagnostics(&checked.config.path, name, sink, ""));
        }
    }
    if !problems.is_empty() || (strict && !checked.warnings.is_empty()) {
        return Ok(report(problems, &checked.warnings));
    }
    print_warnings(&checked.warnings);
    println!(
        "ok: {} sink(s), {} route(s), templates in {}{}",
        checked.plugins.len(),
        checked.rules.routes().len(),
        checked.config.templates.display(),
        match checked.warnings.0.len() {
            0 => String::new(),
            n => format!("; {n} warning(s)"),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints every problem and warning, and says how many there are: exit code 1.
fn report(problems: Diagnostics, warnings: &Diagnostics) -> ExitCode {
    for problem in &problems.0 {
        println!("{problem}");
    }
    print_warnings(warnings);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    match (problems.0.len(), warnings.0.len()) {
        (n, 0) => eprintln!("{n} problem(s) found"),
        (0, w) => eprintln!("{w} warning(s) found (--strict)"),
        (n, w) => eprintln!("{n} problem(s) and {w} warning(s) found"),
    }
    ExitCode::FAILURE
}

/// `file:line:col: warning: message`, one a line.
fn print_warnings(warnings: &Diagnostics) {
    for w in &warnings.0 {
        let mut shown = w.clone();
        shown.message = format!("warning: {}", w.message);
        println!("{shown}");
    }
}

fn read_events(path: &Path) -> Result<Vec<Event>> {
    let mut body = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut body)?;
    } else {
        body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    }
    crate::ingest::parse_body(&body, OffsetDateTime::now_utc())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn checked(config_path: &Path) -> Result<pipeline::Checked> {
    let config = load_config(config_path)?;
    let catalog = Catalog::new(config.plugin_dirs.clone()).strict_modes(config.plugin_strict_modes);
    pipeline::check(config, &catalog).map_err(|d| anyhow::anyhow!("{d}"))
}

/// `render`: the payload `sink` would get for each event in the file.
fn render_cmd(config_path: &Path, sink: &str, event_path: &Path) -> Result<ExitCode> {
    let checked = checked(config_path)?;
    let Some(sink_config) = checked.config.sinks.get(sink) else {
        bail!(
            "no sink `{sink}` in {}: the sinks are {}",
            checked.config.path.display(),
            names(checked.config.sinks.keys())
        );
    };
    let plugin = match checked.plugins.get(sink) {
        Some(Ok(p)) => p.name().to_owned(),
        _ => sink_config.plugin.clone(),
    };
    let now_t = crate::clock::now();
    let now = format_time(now_t);
    let silences = stored_silences(&checked);
    for event in read_events(event_path)? {
        let kind = event.kind.clone();
        let hits = checked.rules.route(event.clone(), &mut |_, _| {});
        let hit = hits.iter().find(|h| h.sinks.iter().any(|s| s == sink));
        let mut grouped = false;
        let (rule, template, event) = match hit {
            Some(h) => {
                let route = &checked.rules.routes()[h.route];
                for line in explain(&checked.rules, route, &h.event, &silences, now_t) {
                    eprintln!("note: route `{}`: {line}", route.name);
                }
                grouped = route.policy.grouping.is_some();
                let template = match &route.template {
                    Some(t) => t.clone(),
                    None if grouped => "group".to_owned(),
                    None => kind,
                };
                (route.name.clone(), template, (*h.event).clone())
            }
            None => {
                eprintln!(
                    "note: no route sends this {kind} event to `{sink}`; rendering its `{kind}` template anyway"
                );
                (String::new(), kind, event)
            }
        };
        let Some(id) = checked.templates.resolve(sink, &plugin, &template) else {
            bail!(
                "no template `{template}` for sink `{sink}`: add templates/{sink}/{template}.yaml or templates/{plugin}/{template}.yaml"
            );
        };
        let mut ctx = render::context(&event.to_json(), &rule, sink, &plugin, &now);
        if grouped {
            // As its group's notification would say it, were it alone in the group.
            ctx = render::group_of_one(ctx, render::json_value(&event.to_json()), &now);
        }
        let payload = checked
            .templates
            .render(id, &ctx)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{}", serde_json::to_string_pretty(&payload)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `route`: which routes match each event and, for each sink they name, what happens:
/// the template file it renders with, or why it gets nothing.
fn route_cmd(config_path: &Path, event_path: &Path) -> Result<ExitCode> {
    let checked = checked(config_path)?;
    let now = crate::clock::now();
    let silences = stored_silences(&checked);
    for event in read_events(event_path)? {
        let (id, kind) = (event.id.clone(), event.kind.clone());
        let mut errors = Vec::new();
        let (hits, dropped) = checked
            .rules
            .route_explained(Arc::new(event), &mut |route, e| {
                errors.push(format!("{}: {e}", route.name))
            });
        println!("{kind} ({id}):");
        for &i in &dropped {
            let route = &checked.rules.routes()[i];
            println!(
                "  route `{}` ({}:{}) matches and sends nowhere (to: [])",
                route.name,
                route.file.display(),
                route.line
            );
        }
        if hits.is_empty() && dropped.is_empty() {
            println!("  no route matches: the event is accepted and goes nowhere");
        }
        for hit in &hits {
            let route = &checked.rules.routes()[hit.route];
            let template = match &route.template {
                Some(t) => t.as_str(),
                None if route.policy.grouping.is_some() => "group",
                None => &hit.event.kind,
            };
            println!(
                "  route `{}` ({}:{}), severity {}:",
                route.name,
                route.file.display(),
                route.line,
                hit.event.severity
            );
            for line in explain(&checked.rules, route, &hit.event, &silences, now) {
                println!("    - {line}");
            }
            for sink in &hit.sinks {
                println!("    {}", sink_outcome(&checked, sink, template));
            }
        }
        for e in errors {
            println!("  condition failed (no match): {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The silences of the configured storage, read without writing; a warning and none
/// when they cannot be read.
fn stored_silences(checked: &pipeline::Checked) -> Vec<crate::notify::silences::Silence> {
    crate::notify::silences::Silences::stored(&checked.config.storage.path).unwrap_or_else(|e| {
        eprintln!("warning: silences not considered: {e}");
        Vec::new()
    })
}

/// What sink `sink` does with a message a route sends it with `template`, as `route`
/// prints it: `console: templates/console/default.yaml`.
fn sink_outcome(checked: &pipeline::Checked, sink: &str, template: &str) -> String {
    let Some(config) = checked.config.sinks.get(sink) else {
        return format!("{sink}: not configured: gets nothing");
    };
    if !config.enabled {
        return format!("{sink}: disabled (enabled: false): gets nothing");
    }
    let plugin = match checked.plugins.get(sink) {
        Some(Ok(plugin)) => plugin.name(),
        Some(Err(cannot)) => {
            return format!(
                "{sink}: cannot start ({}): the message goes to its dead letters",
                cannot.reason()
            );
        }
        None => config.plugin.as_str(),
    };
    match checked.templates.resolve(sink, plugin, template) {
        Some(id) => format!("{sink}: {}", checked.templates.path(id).display()),
        None => format!(
            "{sink}: no template `{template}`: the message goes to its dead letters; add templates/{sink}/{template}.yaml, templates/{plugin}/{template}.yaml or a default.yaml"
        ),
    }
}

fn names<'a>(it: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = it.map(String::as_str).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// `plugins`: what is installed.
fn plugins(config_path: &Path) -> Result<ExitCode> {
    let (dirs, strict) = match Config::load(config_path) {
        Ok(c) => (c.plugin_dirs, c.plugin_strict_modes),
        Err(_) if !config_path.exists() => (Vec::new(), true),
        Err(d) => bail!("{d}"),
    };
    let catalog = Arc::new(Catalog::new(dirs).strict_modes(strict));
    let mut code = ExitCode::SUCCESS;
    let found = catalog.discover();
    if found.is_empty() {
        println!(
            "no plugins found in: {}",
            catalog
                .dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    for plugin in found {
        match plugin {
            Ok(p) => println!(
                "{:<12} {:<10} abi {}  {}",
                p.name(),
                p.version(),
                p.abi_version(),
                p.path().display()
            ),
            Err(e) => {
                println!("error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
