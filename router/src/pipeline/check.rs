//! `check`: reads a config into what can start, without starting anything: rules,
//! templates, every enabled sink's plugin and settings, and a rehearsal of every
//! template with sample events. Start-up, reload and `alert-router check` all go
//! through [`check`], so the three agree on what is valid.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::{Config, Isolation, SinkConfig};
use crate::diag::{Diagnostic, Diagnostics};
use crate::plugins::{Catalog, Markup, Plugin, PluginError, ProcessOptions, SettingProblem};
use crate::render::samples::{self, Sample};
use crate::render::{self, Templates};
use crate::rules::Rules;

/// The parts of a config that can be checked without starting anything: rules,
/// templates, and every enabled sink's plugin and settings.
pub struct Checked {
    pub config: Config,
    pub rules: Rules,
    pub templates: Templates,
    /// Every enabled sink: its plugin, or why it cannot start.
    pub plugins: BTreeMap<String, Result<Arc<Plugin>, CannotStart>>,
    /// What may fail for some events but does not stop this config from loading.
    pub warnings: Diagnostics,
    /// Where plugin files are copied before loading (the catalog's): a plugin's own
    /// process copies there too.
    pub plugin_copies: PathBuf,
}

/// Why an enabled sink cannot start.
#[derive(Debug, Clone)]
pub enum CannotStart {
    /// Its plugin could not be loaded (not found, not a plugin, another ABI): the reason,
    /// said at the sink's place.
    Plugin(String),
    /// Its settings do not fit the plugin (its manifest, its `validate`, or its
    /// `create`): each problem at the place of the setting it is about.
    Settings(Diagnostics),
}

impl CannotStart {
    /// The problem on one line, for `/v1/status` and the sink's dead letters.
    pub fn reason(&self) -> String {
        match self {
            CannotStart::Plugin(reason) => reason.clone(),
            CannotStart::Settings(problems) => problems
                .0
                .iter()
                .map(|d| d.message.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        }
    }

    /// Every problem at its place in `config`. A plugin that could not be loaded is
    /// reported at sink `name`'s place, as "sink `name`", then `lead` (" did not start"
    /// for a start, nothing for `check`), then the reason.
    pub fn diagnostics(
        &self,
        config: &std::path::Path,
        name: &str,
        sink: &SinkConfig,
        lead: &str,
    ) -> Diagnostics {
        match self {
            CannotStart::Plugin(reason) => Diagnostics::from(Diagnostic::new(
                config,
                sink.line,
                sink.col,
                format!("sink `{name}`{lead}: {reason}"),
            )),
            CannotStart::Settings(problems) => problems.clone(),
        }
    }
}

/// Checks sink `name`'s settings against its plugin's manifest (each problem at the
/// place of the setting it is about, named as `sinks.<name>.settings.<setting>`), then,
/// when they fit it, asks the plugin's `validate` (a refusal at the settings' place).
fn check_settings(
    config: &Config,
    name: &str,
    sink: &SinkConfig,
    plugin: &Arc<Plugin>,
    copies: &Path,
) -> Diagnostics {
    let manifest = plugin.manifest();
    let takes: Vec<&str> = manifest.settings.keys().map(String::as_str).collect();
    let places = &sink.settings_places;
    let mut problems = Diagnostics::default();
    for problem in manifest.check_settings(&sink.settings) {
        let message = problem.message(plugin.name(), &takes);
        let (place, what) = match &problem {
            SettingProblem::Unknown { name: setting, .. } => (
                places.name_of(setting),
                format!("sinks.{name}.settings.{setting}"),
            ),
            SettingProblem::WrongType { name: setting, .. } => (
                places.value_of(setting),
                format!("sinks.{name}.settings.{setting}"),
            ),
            SettingProblem::Missing { .. } | SettingProblem::NotAMapping { .. } => {
                (places.whole, format!("sinks.{name}.settings"))
            }
        };
        problems.push(Diagnostic::new(
            &config.path,
            place.line,
            place.col,
            format!("{what}: {message}"),
        ));
    }
    // The plugin's own judgement, once the settings have the shape it declares: the
    // same refusal `create` would give, found before anything starts.
    if problems.is_empty() {
        let judged = match process_options(config, sink, plugin, copies) {
            Ok(None) => plugin.validate(name, &sink.settings),
            Ok(Some(options)) => plugin.validate_isolated(name, &sink.settings, options),
            Err(e) => Err(e),
        };
        if let Err(e) = judged {
            problems.push(refused(config, name, sink, e));
        }
    }
    problems
}

/// How sink `sink`'s plugin runs in a process of its own, or `None` when it runs in the
/// router's (its `isolation`, by default where the plugin file is).
pub(super) fn process_options(
    config: &Config,
    sink: &SinkConfig,
    plugin: &Plugin,
    copies: &Path,
) -> Result<Option<ProcessOptions>, PluginError> {
    let isolation = sink
        .isolation
        .unwrap_or_else(|| Isolation::default_for(plugin.path()));
    if isolation == Isolation::InProcess {
        return Ok(None);
    }
    let program = std::env::current_exe().map_err(|e| PluginError::Io {
        path: "/proc/self/exe".into(),
        action: "find the router's executable to run the plugin's process",
        error: e,
    })?;
    Ok(Some(ProcessOptions {
        program,
        copies: copies.to_owned(),
        strict: config.plugin_strict_modes,
        deliver_timeout: sink.deliver_timeout,
    }))
}

/// A plugin's `validate` or `create` refused sink `name`'s settings: said at the place
/// of the setting the reason starts with (`settings.url: ...`, the convention of the
/// first-party plugins) when it is written, else at the settings' place.
pub(super) fn refused(
    config: &Config,
    name: &str,
    sink: &SinkConfig,
    error: PluginError,
) -> Diagnostic {
    let places = &sink.settings_places;
    let (message, place) = match error {
        PluginError::Refused { plugin, reason, .. } => {
            // The SDK says "settings: " before serde's words; this line says it already.
            let reason = reason.strip_prefix("settings: ").unwrap_or(&reason);
            // `settings.headers.X: ...` and `settings.to[1]: ...` are about `headers`, `to`.
            let setting = reason
                .strip_prefix("settings.")
                .and_then(|rest| rest.split([':', '.', '[', ' ']).next());
            (
                format!("sinks.{name}.settings: plugin `{plugin}` refused them: {reason}"),
                setting.map_or(places.whole, |setting| places.value_of(setting)),
            )
        }
        other => (format!("sinks.{name}.settings: {other}"), places.whole),
    };
    Diagnostic::new(&config.path, place.line, place.col, message)
}

/// Loads and checks everything `config` names. Problems with rules and templates are
/// fatal; a sink whose plugin cannot be loaded or whose settings are wrong is reported
/// in `plugins`: a diagnostic for `check`, a failed reload, and at startup either a
/// refusal to start (settings) or a broken sink beside the others (plugin).
pub fn check(config: Config, catalog: &Catalog) -> Result<Checked, Diagnostics> {
    let mut plugins = BTreeMap::new();
    for (name, sink) in config.enabled_sinks() {
        let loaded = match catalog.load(&sink.plugin) {
            Err(e) => Err(CannotStart::Plugin(e.to_string())),
            Ok(plugin) => {
                let problems = check_settings(&config, name, sink, &plugin, catalog.copies());
                if problems.is_empty() {
                    Ok(plugin)
                } else {
                    Err(CannotStart::Settings(problems))
                }
            }
        };
        plugins.insert(name.clone(), loaded);
    }
    let markup_of = |group: &str| -> Markup {
        if let Some(Ok(plugin)) = plugins.get(group) {
            return plugin.manifest().markup;
        }
        plugins
            .values()
            .filter_map(|p| p.as_ref().ok())
            .find(|p| p.name() == group)
            .map(|p| p.manifest().markup)
            .unwrap_or(Markup::None)
    };
    let mut problems = Diagnostics::default();
    let templates = Templates::load(&config.templates, &markup_of);
    let rules = Rules::load(&config.rules, &|sink| config.sinks.contains_key(sink));
    let (templates, rules) = match (templates, rules) {
        (Ok(t), Ok(r)) => (t, r),
        (t, r) => {
            if let Err(e) = t {
                problems.extend(e);
            }
            if let Err(e) = r {
                problems.extend(e);
            }
            return Err(problems);
        }
    };
    let missing = missing_templates(&config, &plugins, &rules, &templates);
    if !missing.is_empty() {
        return Err(missing);
    }
    let warnings = rehearse_sends(&plugins, &rules, &templates);
    Ok(Checked {
        config,
        rules,
        templates,
        plugins,
        warnings,
        plugin_copies: catalog.copies().to_owned(),
    })
}

/// Every template a route would render for a sink that can start must be there: the one
/// it names (no falling back to `default` in its place: a typo would go unnoticed), or
/// the sink's `default`. A sink no route sends to needs none.
fn missing_templates(
    config: &Config,
    plugins: &BTreeMap<String, Result<Arc<Plugin>, CannotStart>>,
    rules: &Rules,
    templates: &Templates,
) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let mut without_default = std::collections::BTreeSet::new();
    let folders = |sink: &str, plugin: &str| {
        let dir = &config.templates;
        if sink == plugin {
            dir.join(sink).display().to_string()
        } else {
            format!(
                "{} or {}",
                dir.join(sink).display(),
                dir.join(plugin).display()
            )
        }
    };
    for route in rules.routes() {
        for sink in &route.to {
            let Some(Ok(plugin)) = plugins.get(sink) else {
                continue;
            };
            match &route.template {
                Some(name) if templates.find(sink, plugin.name(), name).is_none() => {
                    let (line, col) = route.template_at;
                    problems.push(Diagnostic::new(
                        &route.file,
                        line,
                        col,
                        format!(
                            "route `{}`: no template `{name}` for sink `{sink}`: write {name}.yaml in {}",
                            route.name,
                            folders(sink, plugin.name())
                        ),
                    ));
                }
                // A group's notification renders `group`, else the default.
                None if route.policy.grouping.is_some()
                    && templates.find(sink, plugin.name(), "group").is_none()
                    && templates.find(sink, plugin.name(), "default").is_none() =>
                {
                    problems.push(Diagnostic::new(
                        &route.file,
                        route.line,
                        0,
                        format!(
                            "route `{}` groups its messages: no template `group` (nor a default) for sink `{sink}`: write group.yaml in {}",
                            route.name,
                            folders(sink, plugin.name())
                        ),
                    ));
                }
                // Without a name, an event of a route that does not group renders with
                // its type's template, else the default: fine when there is a default,
                // or when the route names only types that each have their own.
                None if route.policy.grouping.is_none()
                    && templates.find(sink, plugin.name(), "default").is_none()
                    && (route.types().is_empty()
                        || route.types().iter().any(|t| {
                            t.contains(['*', '?'])
                                || templates.find(sink, plugin.name(), t).is_none()
                        })) =>
                {
                    without_default.insert((sink.clone(), plugin.name().to_owned()));
                }
                _ => {}
            }
        }
    }
    for (sink, plugin) in without_default {
        let Some(place) = config.sinks.get(&sink) else {
            continue;
        };
        problems.push(Diagnostic::new(
            &config.path,
            place.line,
            place.col,
            format!(
                "sink `{sink}` has no template, and routes send to it without naming one: write default.yaml in {}",
                folders(&sink, &plugin)
            ),
        ));
    }
    problems
}

/// Renders every template the sinks that can start would use with sample events of the
/// types it serves (see `render::rehearse`): what fails is a warning, at its place.
fn rehearse_sends(
    plugins: &BTreeMap<String, Result<Arc<Plugin>, CannotStart>>,
    rules: &Rules,
    templates: &Templates,
) -> Diagnostics {
    let sinks: Vec<(String, String)> = plugins
        .iter()
        .filter_map(|(name, p)| Some((name.clone(), p.as_ref().ok()?.name().to_owned())))
        .collect();
    let documented = samples::documented();
    let named: Vec<render::Named> = rules
        .routes()
        .iter()
        .filter_map(|route| {
            // A grouped route's notifications render its template, else `group`.
            let grouped = route.policy.grouping.is_some()
                || route
                    .policy
                    .window
                    .as_ref()
                    .is_some_and(|w| w.mode == crate::notify::policy::Mode::Delay);
            let template = match &route.template {
                Some(t) => t.clone(),
                None if grouped => "group".to_owned(),
                None => return None,
            };
            let mut samples: Vec<Sample> = documented
                .iter()
                .filter(|s| route.admits_type(&s.event.kind))
                .cloned()
                .collect();
            // A custom event too: one of each type the route names that is not documented
            // (`heartbeat`), or any when it names none.
            let custom: Vec<&str> = if route.types().is_empty() {
                vec![samples::CUSTOM_TYPE]
            } else {
                route
                    .types()
                    .iter()
                    .map(String::as_str)
                    .filter(|t| !t.contains(['*', '?']))
                    .filter(|t| !documented.iter().any(|s| s.event.kind == *t))
                    .collect()
            };
            for kind in custom {
                samples.extend(samples::custom(kind));
            }
            for sample in &mut samples {
                route.apply_set(&mut sample.event);
            }
            Some(render::Named {
                template,
                route: route.name.clone(),
                sinks: route.to.clone(),
                samples,
                grouped,
            })
        })
        .collect();
    render::rehearse(templates, &sinks, &named)
}

impl Checked {
    /// A token is required when the API listens off loopback: without one, anyone who can
    /// reach the port can post events, drop dead letters and reload the config. The
    /// dashboard plugin holds its own listener to the same rule. `server.insecure: true`
    /// says the operator wants it anyway. `flag` is the `run --listen` address, which counts
    /// instead of `server.listen`; a problem about the file's address is at its place.
    /// (Here, beside the other checks, for `check` and `run` alike.)
    pub fn insecure_listen(config: &Config, flag: Option<SocketAddr>) -> Option<Diagnostic> {
        let server = &config.server;
        let listen = flag.unwrap_or(server.listen);
        if server.token.is_some() || server.insecure || listen.ip().is_loopback() {
            return None;
        }
        let what = match flag {
            Some(_) => format!("--listen {listen}"),
            None => format!("server.listen ({listen})"),
        };
        let message = format!(
            "server.token: required because {what} is not a loopback address: anyone who can \
         reach that port could post events, drop dead letters and reload the config. Set a \
         token (e.g. token: \"${{ALERT_ROUTER_TOKEN}}\"), listen on 127.0.0.1, or write \
         server.insecure: true to serve it without one anyway"
        );
        Some(match (flag, server.listen_at) {
            (None, Some((line, col))) => Diagnostic::new(&config.path, line, col, message),
            _ => Diagnostic::file(&config.path, message),
        })
    }
}
