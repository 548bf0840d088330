//! Routing rules (`rules/*.yaml`): which sinks get an event. Compiled once per config
//! load (globs, severity comparisons, matchers, `when:` expressions), evaluated per event
//! in order: the first match wins unless it says `continue: true`. A route may hold
//! routes of its own, tried the same way when it matches, as Alertmanager's route tree
//! does: the route itself sends only when none of them matched. Takes an [`Event`],
//! emits the [`Hit`]s: the sinks, the template, and the event as the matching rule's
//! `set` left it.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{Environment, Expression, UndefinedBehavior};
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::comparison::Comparison;
use crate::derive::rules::{AlertRule, RawAlertRule};
use crate::derive::schedules::{RawSchedule, Schedule};
use crate::diag::{Diagnostic, Diagnostics};
use crate::event::{Event, Severity};
use crate::notify::keys::Key;
use crate::notify::policy::{self, Policy, RawPolicy, RawThrottle};
use crate::notify::time_intervals::{RawTimeInterval, TimeIntervals};
use crate::render::names::{Known, Scan};

pub mod matching;

use matching::{ConditionAt, Conditions, RawMatch, at, compile_match};
pub use matching::{Match, SeverityMatch, glob_match};

/// Fuel for one `when:` evaluation: generous for any sane condition, fatal for a loop.
const EXPRESSION_FUEL: u64 = 20_000;

// ---- the files as written --------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    routes: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    alerts: Vec<Spanned<RawAlertRule>>,
    #[serde(default)]
    schedules: Vec<Spanned<RawSchedule>>,
    #[serde(default)]
    inhibit: Vec<Spanned<RawInhibition>>,
    #[serde(default)]
    time_intervals: Vec<Spanned<RawTimeInterval>>,
}

/// `inhibit:`: while an alert matching `source` fires, events matching `target` with the
/// same values of the `equal` keys are held back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInhibition {
    source: RawMatch,
    target: RawMatch,
    #[serde(default)]
    equal: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    name: Spanned<String>,
    #[serde(rename = "match", default)]
    matcher: RawMatch,
    #[serde(default)]
    set: BTreeMap<String, serde_json::Value>,
    /// Absent is a mistake unless `routes` send; `[]` drops what it matches.
    to: Option<Vec<Spanned<String>>>,
    template: Option<Spanned<String>>,
    #[serde(rename = "continue", default)]
    continue_: bool,
    // Noise control (notify/policy.rs).
    key: Option<Spanned<Vec<String>>>,
    resolve_timeout: Option<Spanned<String>>,
    group_by: Option<Spanned<Vec<String>>>,
    group_wait: Option<Spanned<String>>,
    group_interval: Option<Spanned<String>>,
    repeat_interval: Option<Spanned<String>>,
    send_resolved: Option<Spanned<bool>>,
    throttle: Option<Spanned<RawThrottle>>,
    active_during: Option<Spanned<Vec<String>>>,
    muted_during: Option<Spanned<Vec<String>>>,
    unless_severity: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    /// Tried in order when this route matches; it sends itself only if none matched.
    #[serde(default)]
    routes: Vec<Spanned<RawRoute>>,
}

// ---- compiled --------------------------------------------------------------------------

/// One compiled route.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// Where it is defined, for messages.
    pub file: PathBuf,
    pub line: u32,
    matcher: Match,
    set: BTreeMap<String, serde_json::Value>,
    pub to: Vec<String>,
    pub template: Option<String>,
    /// Where `template:` names it (line, column), for messages.
    pub template_at: (u32, u32),
    pub continue_: bool,
    /// What it does about noise: grouping, throttling, time windows, alert identity.
    pub policy: Policy,
    /// The index just past its own routes (they follow it in [`Rules::routes`]); its own
    /// index + 1 when it has none.
    pub end: usize,
    /// How deep in the tree: 0 for a route of a file's `routes:`.
    pub depth: usize,
}

/// A compiled `inhibit:` entry.
#[derive(Debug, Clone)]
pub struct Inhibition {
    pub source: Match,
    pub target: Match,
    pub equal: Vec<Key>,
    /// Where it is defined, for messages.
    pub file: PathBuf,
    pub line: u32,
}

impl Route {
    /// The types `match.type` names (names or globs); empty: every type.
    pub fn types(&self) -> &[String] {
        &self.matcher.types
    }

    /// Whether `match.type` lets events of type `kind` through.
    pub fn admits_type(&self, kind: &str) -> bool {
        self.matcher.admits_type(kind)
    }

    /// Changes `event` as the route's `set` does for its sinks.
    pub fn apply_set(&self, event: &mut Event) {
        apply_set(event, &self.set)
    }
}

type Expressions<'env> = Vec<Expression<'env, 'static>>;

self_cell::self_cell!(
    /// The expression environment and the `when:` expressions compiled in it.
    struct Compiled {
        owner: Environment<'static>,
        #[covariant]
        dependent: Expressions,
    }
);

/// Every route of every rule file, in evaluation order.
pub struct Rules {
    routes: Vec<Route>,
    alert_rules: Vec<AlertRule>,
    schedules: Vec<Schedule>,
    inhibitions: Vec<Inhibition>,
    time_intervals: TimeIntervals,
    compiled: Compiled,
    /// For each compiled condition, its native form when it is a plain comparison.
    fast: Vec<Option<Comparison>>,
    /// `when:` sources, for reload diffs.
    sources: Vec<String>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules")
            .field("routes", &self.routes)
            .finish()
    }
}

/// Where an event goes because of one route.
#[derive(Debug, Clone)]
pub struct Hit {
    /// Index of the route in [`Rules::routes`].
    pub route: usize,
    /// The sinks this route sends to that no earlier matching route already took.
    pub sinks: Vec<String>,
    /// The event as this route sees it, after its own `set` and earlier ones.
    pub event: Arc<Event>,
}

impl Rules {
    /// An empty rule set: nothing routes anywhere.
    pub fn empty() -> Rules {
        Rules {
            routes: Vec::new(),
            alert_rules: Vec::new(),
            schedules: Vec::new(),
            inhibitions: Vec::new(),
            time_intervals: TimeIntervals::default(),
            compiled: Compiled::new(expression_env(), |_| Vec::new()),
            fast: Vec::new(),
            sources: Vec::new(),
        }
    }

    /// Reads every rule file among `paths` (files, or directories of `*.yaml` files read
    /// in name order) and compiles them. `sink_exists` says whether a sink name is
    /// configured. Reports every problem found, each at its file:line:col.
    pub fn load(
        paths: &[PathBuf],
        sink_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Rules, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut files = Vec::new();
        for path in paths {
            match rule_files(path) {
                Ok(mut found) => files.append(&mut found),
                Err(d) => problems.push(d),
            }
        }
        let mut texts = Vec::new();
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => texts.push((file, text)),
                Err(e) => problems.push(Diagnostic::file(&file, format!("cannot read: {e}"))),
            }
        }
        let rules = Rules::compile(&texts, sink_exists);
        match rules {
            Ok(rules) => problems.into_result(rules),
            Err(more) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }

    /// Compiles rule files already read: `(path, text)` pairs in evaluation order.
    pub fn compile(
        files: &[(PathBuf, String)],
        sink_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Rules, Diagnostics> {
        let mut problems = Diagnostics::default();
        let mut tree = RouteTree {
            routes: Vec::new(),
            names: HashSet::new(),
            intervals: Vec::new(),
            sink_exists,
        };
        let mut conditions = Conditions::default();
        let mut alert_rules = Vec::new();
        let mut schedules = Vec::new();
        let mut schedule_names = crate::derive::Names::default();
        let mut alert_names = crate::derive::Names::default();
        let mut inhibitions = Vec::new();
        let mut time_intervals = TimeIntervals::default();
        for (file, text) in files {
            let raw: RawFile = match serde_saphyr::from_str(text) {
                Ok(raw) => raw,
                Err(e) => {
                    problems.push(Diagnostic::yaml(file, &e));
                    continue;
                }
            };
            schedules.extend(crate::derive::schedules::compile(
                file,
                raw.schedules,
                &mut problems,
                &mut schedule_names,
            ));
            alert_rules.extend(crate::derive::rules::compile(
                file,
                raw.alerts,
                &mut problems,
                &mut conditions,
                &mut alert_names,
            ));
            for spanned in raw.routes {
                tree.add(file, spanned, 0, &mut problems, &mut conditions);
            }
            time_intervals.add(file, raw.time_intervals, &mut problems);
            for (i, spanned) in raw.inhibit.into_iter().enumerate() {
                let loc = spanned.referenced;
                let raw = spanned.value;
                let what = format!("inhibit entry {} (line {})", i + 1, loc.line());
                let source = compile_match(
                    file,
                    raw.source,
                    &what,
                    "source.",
                    &mut problems,
                    &mut conditions,
                );
                let target = compile_match(
                    file,
                    raw.target,
                    &what,
                    "target.",
                    &mut problems,
                    &mut conditions,
                );
                let equal = raw
                    .equal
                    .iter()
                    .filter_map(|k| match Key::parse(&k.value) {
                        Ok(key) => Some(key),
                        Err(e) => {
                            problems.push(at(file, &k.referenced, format!("{what}: equal: {e}")));
                            None
                        }
                    })
                    .collect();
                inhibitions.push(Inhibition {
                    source,
                    target,
                    equal,
                    file: file.clone(),
                    line: loc.line() as u32,
                });
            }
        }
        let Conditions {
            sources,
            at: places,
        } = conditions;
        let compiled = Compiled::new(expression_env(), |env| {
            let mut out = Vec::with_capacity(sources.len());
            let mut known = Known::new(env, &[]);
            for (src, place) in sources.iter().zip(&places) {
                let ConditionAt {
                    file,
                    loc,
                    owner: name,
                    key,
                    variables,
                } = place;
                match env.compile_expression_owned(src.clone()) {
                    Ok(expr) => {
                        // An unknown filter would fail the condition on every event.
                        for call in Scan::expression(src).calls {
                            if let Some(problem) = known.problem(&call, &[]) {
                                problems.push(at(file, loc, format!("{name}: {key}: {problem}")));
                            }
                        }
                        let mut unknown: Vec<String> = expr
                            .undeclared_variables(false)
                            .into_iter()
                            .filter(|v| !variables.contains(&v.as_str()))
                            .collect();
                        unknown.sort();
                        if !unknown.is_empty() {
                            let hint = if variables.contains(&"state") {
                                "the state store's answers are under `state`, e.g. state.daily.pnl_pct"
                            } else {
                                "fields are under `event`, e.g. event.pnl_pct"
                            };
                            problems.push(at(
                                file,
                                loc,
                                format!(
                                    "{name}: {key}: unknown variable `{}`: {hint}",
                                    unknown.join("`, `")
                                ),
                            ));
                        }
                        out.push(expr);
                    }
                    Err(e) => {
                        let detail = e.detail().unwrap_or("invalid expression");
                        problems.push(at(
                            file,
                            loc,
                            format!("{name}: {key}: {} ({detail})", e.kind()),
                        ));
                    }
                }
            }
            out
        });
        let RouteTree {
            routes, intervals, ..
        } = tree;
        for (file, route, named) in intervals {
            if time_intervals.get(&named.name).is_none() {
                let known: Vec<&str> = time_intervals.names().collect();
                problems.push(Diagnostic::new(file, named.line, named.col, format!(
                    "route `{route}`: no time interval named `{}`: define it under `time_intervals:` in a rule file{}",
                    named.name,
                    if known.is_empty() { String::new() } else { format!(" (defined: {})", known.join(", ")) }
                )));
            }
        }
        problems.into_result(Rules {
            routes,
            alert_rules,
            schedules,
            inhibitions,
            time_intervals,
            compiled,
            fast: sources.iter().map(|s| Comparison::parse(s)).collect(),
            sources,
        })
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    pub fn alert_rules(&self) -> &[AlertRule] {
        &self.alert_rules
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    /// Evaluates compiled condition `idx` (an alert rule's) in `ctx`.
    pub fn eval_condition(&self, idx: usize, ctx: &minijinja::Value) -> Result<bool, String> {
        let expr = self
            .compiled
            .borrow_dependent()
            .get(idx)
            .ok_or_else(|| format!("no condition #{idx}"))?;
        expr.eval(ctx.clone())
            .map(|v| v.is_true())
            .map_err(|e| e.to_string())
    }

    pub fn inhibitions(&self) -> &[Inhibition] {
        &self.inhibitions
    }

    /// The named time windows of every rule file.
    pub fn time_intervals(&self) -> &TimeIntervals {
        &self.time_intervals
    }

    /// A fingerprint of each route (name → its whole definition), for reload diffs.
    pub fn fingerprints(&self) -> BTreeMap<String, String> {
        self.routes
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let when = r
                    .matcher
                    .when
                    .map(|i| self.sources[i].as_str())
                    .unwrap_or("");
                (
                    r.name.clone(),
                    format!(
                        "{:?}|{when}",
                        (
                            &r.matcher.types,
                            &r.matcher.severity,
                            &r.matcher.labels,
                            &r.matcher.matchers,
                            &r.set,
                            &r.to,
                            &r.template,
                            r.continue_,
                            &r.policy,
                            (r.depth, r.end - i),
                        )
                    ),
                )
            })
            .collect()
    }

    /// Evaluates the routes in order for `event`. A sink gets the event at most once:
    /// from the first matching route that names it. A `when:` that fails to evaluate
    /// (a missing field, say) does not match; the failure goes to `on_error`.
    pub fn route(&self, event: Event, on_error: &mut dyn FnMut(&Route, String)) -> Vec<Hit> {
        self.route_shared(Arc::new(event), on_error)
    }

    /// [`route`](Self::route) for an event the caller keeps a reference to: hits share it
    /// until a route's `set` changes it, which then changes a copy.
    pub fn route_shared(
        &self,
        event: Arc<Event>,
        on_error: &mut dyn FnMut(&Route, String),
    ) -> Vec<Hit> {
        self.route_explained(event, on_error).0
    }

    /// [`route_shared`](Self::route_shared), and the routes with `to: []` that matched
    /// and sent nowhere on purpose (for `route` to say so).
    pub fn route_explained(
        &self,
        event: Arc<Event>,
        on_error: &mut dyn FnMut(&Route, String),
    ) -> (Vec<Hit>, Vec<usize>) {
        let mut walk = Walk {
            event,
            ctx: None,
            taken: Vec::new(),
            hits: Vec::new(),
            dropped: Vec::new(),
        };
        self.walk(0, self.routes.len(), &mut walk, on_error);
        (walk.hits, walk.dropped)
    }

    /// Tries the routes `start..end` (one level: siblings, each followed by its own
    /// routes) in order, as Alertmanager walks its tree: a matching route with routes
    /// of its own tries them, and sends itself only if none matched; the level stops at
    /// the first match unless it says `continue: true`. Whether any matched.
    fn walk<'r>(
        &'r self,
        start: usize,
        end: usize,
        walk: &mut Walk<'r>,
        on_error: &mut dyn FnMut(&Route, String),
    ) -> bool {
        let mut matched = false;
        let mut i = start;
        while i < end {
            let route = &self.routes[i];
            if self.matches(&route.matcher, &walk.event, &mut walk.ctx, &mut |e| {
                on_error(route, e)
            }) {
                matched = true;
                if !route.set.is_empty() {
                    // The context holds a reference to the event: drop it first, or the
                    // change below would copy the event although nothing else shares it.
                    walk.ctx = None;
                    apply_set(Arc::make_mut(&mut walk.event), &route.set);
                }
                let children_sent =
                    route.end > i + 1 && self.walk(i + 1, route.end, walk, on_error);
                if !children_sent && route.to.is_empty() {
                    walk.dropped.push(i);
                } else if !children_sent {
                    let sinks: Vec<String> = route
                        .to
                        .iter()
                        .filter(|s| !walk.taken.contains(&s.as_str()))
                        .cloned()
                        .collect();
                    walk.taken.extend(route.to.iter().map(String::as_str));
                    if !sinks.is_empty() {
                        walk.hits.push(Hit {
                            route: i,
                            sinks,
                            event: walk.event.clone(),
                        });
                    }
                }
                if !route.continue_ {
                    break;
                }
            }
            i = route.end;
        }
        matched
    }

    /// Whether `event` passes `matcher` (a route's `match:`, an inhibition's source or
    /// target). `ctx` caches the event's value for `when:` across calls on one event.
    pub fn matches(
        &self,
        matcher: &Match,
        event: &Arc<Event>,
        ctx: &mut Option<minijinja::Value>,
        on_error: &mut dyn FnMut(String),
    ) -> bool {
        if !matcher.admits_type(&event.kind) {
            return false;
        }
        if let Some(sev) = &matcher.severity
            && !sev.matches(event.severity)
        {
            return false;
        }
        for (k, pattern) in &matcher.labels {
            match event.labels.get(k) {
                Some(v) if glob_match(pattern, v) => {}
                _ => return false,
            }
        }
        if !crate::notify::matchers::matches_all(&matcher.matchers, event) {
            return false;
        }
        let Some(idx) = matcher.when else { return true };
        match self.eval_on_event(idx, event, ctx) {
            Ok(holds) => holds,
            Err(e) => {
                on_error(format!("when: {e}"));
                false
            }
        }
    }

    /// Evaluates compiled condition `idx` over `event`: natively when it is a plain
    /// comparison of a number field, else with minijinja, reading the event in place
    /// (`ctx` keeps its template value for the next condition on the same event).
    pub fn eval_on_event(
        &self,
        idx: usize,
        event: &Arc<Event>,
        ctx: &mut Option<minijinja::Value>,
    ) -> Result<bool, String> {
        if let Some(holds) = self
            .fast
            .get(idx)
            .and_then(Option::as_ref)
            .and_then(|c| c.decide(event))
        {
            return Ok(holds);
        }
        let ctx = ctx.get_or_insert_with(
            || minijinja::context! { event => crate::render::rule_event_value(event) },
        );
        self.eval_condition(idx, ctx)
    }
}

/// One event's way through the routes.
struct Walk<'r> {
    /// As the `set`s of the routes it matched so far left it.
    event: Arc<Event>,
    /// Its value for `when:`, made once (until a `set` changes it).
    ctx: Option<minijinja::Value>,
    /// The sinks already given it: each gets it once.
    taken: Vec<&'r str>,
    hits: Vec<Hit>,
    /// Matching routes with `to: []`.
    dropped: Vec<usize>,
}

/// Applies a route's `set`: `severity` and `labels` change the reserved keys, anything
/// else a data field.
fn apply_set(event: &mut Event, set: &BTreeMap<String, serde_json::Value>) {
    for (k, v) in set {
        match (k.as_str(), v) {
            ("severity", serde_json::Value::String(s)) => {
                if let Ok(sev) = s.parse() {
                    event.severity = sev;
                }
            }
            ("labels", serde_json::Value::Object(labels)) => {
                for (lk, lv) in labels {
                    let value = lv
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| lv.to_string());
                    event.labels.insert(lk.clone(), value);
                }
            }
            _ => {
                event.data.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The routes of every file as they compile: in evaluation order, each followed by its
/// own routes (depth first), with what the whole set must check once all are read.
struct RouteTree<'a> {
    routes: Vec<Route>,
    names: HashSet<String>,
    /// The time intervals routes name: (file, route, reference).
    intervals: Vec<(PathBuf, String, policy::NamedInterval)>,
    sink_exists: &'a dyn Fn(&str) -> bool,
}

impl RouteTree<'_> {
    /// Compiles one route and, after it, its own routes.
    fn add(
        &mut self,
        file: &Path,
        spanned: Spanned<RawRoute>,
        depth: usize,
        problems: &mut Diagnostics,
        conditions: &mut Conditions,
    ) {
        let loc = spanned.referenced;
        let r = spanned.value;
        let name = r.name.value.clone();
        if !crate::config::valid_name(&name) {
            problems.push(at(
                file,
                &r.name.referenced,
                format!("route name {name:?}: use letters, digits, `_` and `-`"),
            ));
        }
        if !self.names.insert(name.clone()) {
            problems.push(at(
                file,
                &r.name.referenced,
                format!("route name `{name}` is used twice: names must be unique"),
            ));
        }
        let matcher = compile_match(
            file,
            r.matcher,
            &format!("route `{name}`"),
            "match.",
            problems,
            conditions,
        );
        if r.to.is_none() && r.routes.is_empty() {
            problems.push(at(
                file,
                &loc,
                format!(
                    "route `{name}`: `to` is missing: list the sinks it sends to (`to: []` drops what it matches)"
                ),
            ));
        }
        let to = r.to.unwrap_or_default();
        if let Some(t) = &r.template
            && !valid_template_name(&t.value)
        {
            problems.push(at(file, &t.referenced, format!(
                "route `{name}`: template `{}` is not a template's name: name a file of the sink's template folder without `.yaml` (letters, digits, `_`, `-`, `.`; no `/`)",
                t.value
            )));
        }
        for sink in &to {
            if !(self.sink_exists)(&sink.value) {
                problems.push(at(file, &sink.referenced, format!(
                    "route `{name}`: unknown sink `{}`: define it under `sinks:` in router.yaml",
                    sink.value
                )));
            }
        }
        if let Some(sev) = r.set.get("severity")
            && sev
                .as_str()
                .and_then(|s| s.parse::<Severity>().ok())
                .is_none()
        {
            problems.push(at(file, &loc, format!("route `{name}`: set.severity must be one of debug, info, warning, error, critical")));
        }
        let (policy, intervals) = policy::compile(
            file,
            &name,
            RawPolicy {
                key: r.key,
                resolve_timeout: r.resolve_timeout,
                group_by: r.group_by,
                group_wait: r.group_wait,
                group_interval: r.group_interval,
                repeat_interval: r.repeat_interval,
                send_resolved: r.send_resolved,
                throttle: r.throttle,
                active_during: r.active_during,
                muted_during: r.muted_during,
                unless_severity: r.unless_severity,
                mode: r.mode,
            },
            &mut problems.0,
        );
        self.intervals.extend(
            intervals
                .into_iter()
                .map(|i| (file.to_path_buf(), name.clone(), i)),
        );
        let index = self.routes.len();
        self.routes.push(Route {
            name,
            file: file.to_path_buf(),
            line: loc.line() as u32,
            matcher,
            set: r.set,
            to: to.into_iter().map(|s| s.value).collect(),
            template_at: r
                .template
                .as_ref()
                .map_or((loc.line() as u32, loc.column() as u32), |t| {
                    (t.referenced.line() as u32, t.referenced.column() as u32)
                }),
            template: r.template.map(|t| t.value),
            continue_: r.continue_,
            policy,
            end: index + 1,
            depth,
        });
        for child in r.routes {
            self.add(file, child, depth + 1, problems, conditions);
        }
        self.routes[index].end = self.routes.len();
    }
}

fn expression_env() -> Environment<'static> {
    let mut env = Environment::new();
    // A condition on a field the event lacks is an error (reported), never a silent match.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(EXPRESSION_FUEL));
    env
}

/// The rule files a configured path stands for.
fn rule_files(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.exists() {
        return Err(Diagnostic::file(
            path,
            "no such rule file or directory: create it or fix `rules:` in router.yaml",
        ));
    }
    let entries = std::fs::read_dir(path)
        .map_err(|e| Diagnostic::file(path, format!("cannot list rules: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A template's name is a file name in a template folder, without `.yaml`.
fn valid_template_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;

    const SINKS: [&str; 4] = ["telegram", "discord", "console", "pager"];

    fn rules(yaml: &str) -> Result<Rules, Diagnostics> {
        Rules::compile(
            &[(PathBuf::from("rules/test.yaml"), yaml.to_owned())],
            &|s| SINKS.contains(&s),
        )
    }

    fn event(v: serde_json::Value) -> Event {
        Event::from_json(v, OffsetDateTime::UNIX_EPOCH).unwrap()
    }

    /// (rule name, sinks) for each hit.
    fn route(r: &Rules, v: serde_json::Value) -> Vec<(String, Vec<String>)> {
        let mut errors = Vec::new();
        let hits = r.route(event(v), &mut |route, e| {
            errors.push(format!("{}: {e}", route.name))
        });
        hits.into_iter()
            .map(|h| (r.routes()[h.route].name.clone(), h.sinks))
            .collect()
    }

    /// A route as the property test writes it, and routes by it in the reference below.
    struct SpecRoute {
        name: String,
        types: Vec<&'static str>,
        severity: Option<(&'static str, usize)>,
        labels: Vec<(&'static str, &'static str)>,
        /// `when: "event.n > K"`.
        n_above: Option<i64>,
        /// `set: {severity: ...}`, which later routes see.
        set_severity: Option<usize>,
        to: Vec<&'static str>,
        continue_: bool,
    }

    const SEVERITIES: [&str; 5] = ["debug", "info", "warning", "error", "critical"];

    /// `*` any run, `?` any one character: the plain backtracking definition.
    fn reference_glob(pattern: &[char], text: &[char]) -> bool {
        match (pattern.first(), text.first()) {
            (None, None) => true,
            (Some('*'), _) => {
                reference_glob(&pattern[1..], text)
                    || (!text.is_empty() && reference_glob(pattern, &text[1..]))
            }
            (Some('?'), Some(_)) => reference_glob(&pattern[1..], &text[1..]),
            (Some(p), Some(t)) if p == t => reference_glob(&pattern[1..], &text[1..]),
            _ => false,
        }
    }

    fn glob(pattern: &str, text: &str) -> bool {
        let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
        reference_glob(&p, &t)
    }

    /// The rules as the README states them, written out naively: routes in order, the
    /// first route naming a sink gives it the event, `set` is seen by later routes, and
    /// routing stops at a match without `continue`.
    fn reference_route(
        routes: &[SpecRoute],
        kind: &str,
        severity: usize,
        labels: &[(&str, &str)],
        n: Option<i64>,
    ) -> Vec<(String, Vec<String>)> {
        let mut severity = severity;
        let mut taken: Vec<&str> = Vec::new();
        let mut hits = Vec::new();
        for r in routes {
            let types = r.types.is_empty() || r.types.iter().any(|t| glob(t, kind));
            let sev = r.severity.is_none_or(|(op, s)| match op {
                ">=" => severity >= s,
                "<" => severity < s,
                "!=" => severity != s,
                _ => severity == s,
            });
            let labelled = r
                .labels
                .iter()
                .all(|(k, pattern)| labels.iter().any(|(lk, lv)| lk == k && glob(pattern, lv)));
            let when = r.n_above.is_none_or(|k| n.is_some_and(|n| n > k));
            if !(types && sev && labelled && when) {
                continue;
            }
            if let Some(s) = r.set_severity {
                severity = s;
            }
            let sinks: Vec<String> =
                r.to.iter()
                    .filter(|s| !taken.contains(s))
                    .map(|s| s.to_string())
                    .collect();
            taken.extend(r.to.iter().copied());
            if !sinks.is_empty() {
                hits.push((r.name.clone(), sinks));
            }
            if !r.continue_ {
                break;
            }
        }
        hits
    }

    #[test]
    fn random_events_are_routed_as_the_naive_reference_routes_them() {
        let mut rng = 0x853c_49e6_748f_ea9bu64;
        let mut next = move |n: u64| {
            // xorshift64: the cases need spread, not cryptographic quality.
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        // Custom types: the trading domain's documented ones need fields of their own.
        const TYPES: [&str; 8] = [
            "deal_opened",
            "deal_closed",
            "fault",
            "t",
            "deal_*",
            "*_closed",
            "?ault",
            "*",
        ];
        const KINDS: [&str; 5] = ["deal_opened", "deal_closed", "fault", "t", "heartbeat"];
        const OPS: [&str; 4] = [">=", "<", "!=", "=="];
        const LABEL_KEYS: [&str; 2] = ["env", "exchange"];
        const LABEL_VALUES: [&str; 4] = ["prod", "staging", "binance", "kraken"];
        const LABEL_PATTERNS: [&str; 5] = ["prod", "st*", "*", "b?nance", "kraken"];
        for case in 0..300 {
            let mut routes = Vec::new();
            for r in 0..1 + next(6) {
                routes.push(SpecRoute {
                    name: format!("r{r}"),
                    types: (0..next(3)).map(|_| TYPES[next(8) as usize]).collect(),
                    severity: (next(3) == 0).then(|| (OPS[next(4) as usize], next(5) as usize)),
                    labels: (0..next(2))
                        .map(|_| {
                            (
                                LABEL_KEYS[next(2) as usize],
                                LABEL_PATTERNS[next(5) as usize],
                            )
                        })
                        .collect(),
                    n_above: (next(4) == 0).then(|| next(10) as i64),
                    set_severity: (next(5) == 0).then(|| next(5) as usize),
                    to: {
                        let mut to: Vec<&str> =
                            (0..1 + next(3)).map(|_| SINKS[next(4) as usize]).collect();
                        to.dedup();
                        to
                    },
                    continue_: next(2) == 0,
                });
            }
            let mut yaml = String::from("routes:\n");
            for r in &routes {
                yaml.push_str(&format!("  - name: {}\n    match:\n", r.name));
                if r.types.is_empty()
                    && r.severity.is_none()
                    && r.labels.is_empty()
                    && r.n_above.is_none()
                {
                    yaml.push_str("      type: \"*\"\n");
                }
                if !r.types.is_empty() {
                    let types: Vec<String> = r.types.iter().map(|t| format!("\"{t}\"")).collect();
                    yaml.push_str(&format!("      type: [{}]\n", types.join(", ")));
                }
                if let Some((op, s)) = r.severity {
                    yaml.push_str(&format!("      severity: \"{op} {}\"\n", SEVERITIES[s]));
                }
                if !r.labels.is_empty() {
                    let labels: Vec<String> = r
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}: \"{v}\""))
                        .collect();
                    yaml.push_str(&format!("      labels: {{{}}}\n", labels.join(", ")));
                }
                if let Some(k) = r.n_above {
                    yaml.push_str(&format!("      when: \"event.n > {k}\"\n"));
                }
                if let Some(s) = r.set_severity {
                    yaml.push_str(&format!("    set: {{severity: {}}}\n", SEVERITIES[s]));
                }
                yaml.push_str(&format!(
                    "    to: [{}]\n    continue: {}\n",
                    r.to.join(", "),
                    r.continue_
                ));
            }
            let compiled = rules(&yaml).unwrap_or_else(|e| panic!("case {case}: {e}\n{yaml}"));
            for _ in 0..20 {
                let kind = KINDS[next(5) as usize];
                let severity = next(5) as usize;
                let mut labels: Vec<(&str, &str)> = Vec::new();
                for k in LABEL_KEYS {
                    if next(2) == 0 {
                        labels.push((k, LABEL_VALUES[next(4) as usize]));
                    }
                }
                let n = (next(3) != 0).then(|| next(12) as i64);
                let mut event = json!({"type": kind, "severity": SEVERITIES[severity]});
                event["labels"] = json!(labels.iter().cloned().collect::<BTreeMap<_, _>>());
                if let Some(n) = n {
                    event["n"] = json!(n);
                }
                assert_eq!(
                    route(&compiled, event.clone()),
                    reference_route(&routes, kind, severity, &labels, n),
                    "case {case}: {event}\n{yaml}"
                );
            }
        }
    }

    const TABLE: &str = r#"
routes:
  - name: big-loss
    match:
      type: trade_closed
      when: "event.pnl_pct < -5"
    set: { severity: critical }
    to: [pager]
    continue: true
  - name: trades
    match: { type: "trade_*" }
    to: [telegram, discord]
  - name: prod-errors
    match:
      severity: ">= error"
      labels: { env: prod }
    to: [pager, telegram]
  - name: warnings-to-discord
    match: { severity: warning, type: [disk_full, "cpu_?ot"] }
    to: [discord]
  - name: everything
    to: [console]
"#;

    #[test]
    fn table_of_routing_decisions() {
        let r = rules(TABLE).unwrap();
        let closed = |pnl_pct: f64| {
            json!({"type": "trade_closed", "symbol": "E", "side": "SELL", "entry_price": 1, "exit_price": 1,
                   "quantity": 1, "pnl": 1, "pnl_pct": pnl_pct})
        };
        // (event, expected [(route, sinks)])
        type Case = (serde_json::Value, Vec<(&'static str, Vec<&'static str>)>);
        let cases: Vec<Case> = vec![
            // glob type, first match wins
            (
                json!({"type": "trade_opened", "symbol": "B", "side": "BUY", "entry_price": 1, "quantity": 1}),
                vec![("trades", vec!["telegram", "discord"])],
            ),
            // `when` + continue: the loss goes to the pager and on to the trades route
            (
                closed(-7.5),
                vec![
                    ("big-loss", vec!["pager"]),
                    ("trades", vec!["telegram", "discord"]),
                ],
            ),
            (closed(4.0), vec![("trades", vec!["telegram", "discord"])]),
            // severity comparison + labels; a sink is only used once
            (
                json!({"type": "oops", "severity": "critical", "labels": {"env": "prod"}}),
                vec![("prod-errors", vec!["pager", "telegram"])],
            ),
            (
                json!({"type": "oops", "severity": "critical", "labels": {"env": "dev"}}),
                vec![("everything", vec!["console"])],
            ),
            (
                json!({"type": "oops", "severity": "warning", "labels": {"env": "prod"}}),
                vec![("everything", vec!["console"])],
            ),
            // list of types, `?` glob, exact severity
            (
                json!({"type": "cpu_hot", "severity": "warning"}),
                vec![("warnings-to-discord", vec!["discord"])],
            ),
            (
                json!({"type": "cpu_hot", "severity": "error"}),
                vec![("everything", vec!["console"])],
            ),
        ];
        for (input, want) in cases {
            let want: Vec<(String, Vec<String>)> = want
                .into_iter()
                .map(|(n, s)| (n.to_owned(), s.into_iter().map(str::to_owned).collect()))
                .collect();
            assert_eq!(route(&r, input.clone()), want, "for {input}");
        }
    }

    #[test]
    fn set_changes_the_event_for_its_sinks_and_later_routes() {
        let r = rules(TABLE).unwrap();
        let hits = r.route(
            event(json!({"type": "trade_closed", "symbol": "E", "side": "SELL", "entry_price": 1, "exit_price": 1,
                         "quantity": 1, "pnl": -9, "pnl_pct": -9})),
            &mut |_, _| {},
        );
        assert!(hits.iter().all(|h| h.event.severity == Severity::Critical));
    }

    #[test]
    fn a_when_on_a_missing_field_does_not_match_and_is_reported() {
        let r = rules("routes:\n  - name: a\n    match: {when: \"event.pnl_pct < -5\"}\n    to: [pager]\n  - name: b\n    to: [console]\n").unwrap();
        let mut errors = Vec::new();
        let hits = r.route(event(json!({"type": "x"})), &mut |route, e| {
            errors.push((route.name.clone(), e))
        });
        assert_eq!(hits.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, "a");
    }

    #[test]
    fn problems_are_reported_with_places() {
        let err = rules(
            "routes:\n  - name: a\n    to: [telegarm]\n  - name: b\n    match: {when: \"event.x <\"}\n    to: [console]\n  - name: c\n    match: {when: \"evnt.x > 1\", severity: \"~ loud\"}\n    to: [console]\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("rules/test.yaml:3:10: route `a`: unknown sink `telegarm`"),
            "{text}"
        );
        assert!(
            text.contains("rules/test.yaml:5:19: route `b`: when: syntax error"),
            "{text}"
        );
        assert!(
            text.contains("route `c`: when: unknown variable `evnt`"),
            "{text}"
        );
        assert!(text.contains("match.severity: unknown severity"), "{text}");
        let err = rules("routes:\n  - name: a\n    to: [console]\n    colour: red\n").unwrap_err();
        assert!(err.to_string().starts_with("rules/test.yaml:4:"), "{err}");
    }

    /// Alertmanager's tree: a matching route tries its own routes, and sends itself only
    /// when none matched; each level stops at its first match unless `continue: true`.
    #[test]
    fn nested_routes_are_walked_as_alertmanagers_tree() {
        let r = rules(
            r#"
routes:
  - name: prod
    match: {labels: {env: prod}}
    to: [console]
    continue: true
    routes:
      - name: db
        match: {matchers: ['labels.team="db"']}
        to: [pager]
        routes:
          - name: db-critical
            match: {severity: critical}
            to: [telegram]
      - name: noisy
        match: {matchers: ['labels.alertname=~"Disk.*|Cpu"', 'labels.team!="db"']}
        to: [discord]
        continue: true
      - name: anything-web
        match: {labels: {team: web}}
        to: [telegram]
  - name: rest
    to: [discord]
"#,
        )
        .unwrap();
        let names = |v| -> Vec<String> { route(&r, v).into_iter().map(|(n, _)| n).collect() };
        // A child that matches takes it; the parent does not send; `prod` continues.
        assert_eq!(
            names(json!({"type": "alert", "labels": {"env": "prod", "team": "db"}})),
            ["db", "rest"]
        );
        // Deeper still; the grandchild's match keeps `db` itself quiet.
        assert_eq!(
            names(
                json!({"type": "alert", "severity": "critical", "labels": {"env": "prod", "team": "db"}})
            ),
            ["db-critical", "rest"]
        );
        // `noisy` continues to its sibling; `rest` matches too, but its discord was
        // `noisy`'s already.
        assert_eq!(
            names(
                json!({"type": "alert", "labels": {"env": "prod", "team": "web", "alertname": "DiskFull"}})
            ),
            ["noisy", "anything-web"]
        );
        assert_eq!(
            names(json!({"type": "alert", "labels": {"env": "prod", "alertname": "CpuHigh"}})),
            ["prod", "rest"],
            "`Cpu` does not match `CpuHigh`: anchored; no child matched, so prod sends"
        );
        // Outside the parent its routes are never tried.
        assert_eq!(
            names(json!({"type": "alert", "labels": {"env": "dev", "team": "db"}})),
            ["rest"]
        );
        // A sink still gets an event once: `rest`'s discord after `noisy`'s is dropped.
        let hits = route(
            &r,
            json!({"type": "alert", "labels": {"env": "prod", "alertname": "Cpu"}}),
        );
        assert_eq!(hits, [("noisy".to_owned(), vec!["discord".to_owned()])]);
    }

    #[test]
    fn a_route_without_to_needs_routes_and_to_empty_drops() {
        let err = rules("routes:\n  - name: a\n    match: {type: x}\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("rules/test.yaml:2:5: route `a`: `to` is missing"),
            "{err}"
        );
        let r = rules(
            "routes:\n  - name: blackhole\n    match: {type: x}\n    to: []\n  - name: all\n    to: [console]\n",
        )
        .unwrap();
        assert!(route(&r, json!({"type": "x"})).is_empty(), "dropped");
        let (hits, dropped) =
            r.route_explained(Arc::new(event(json!({"type": "x"}))), &mut |_, _| {});
        assert!(hits.is_empty());
        assert_eq!(dropped, [0], "`route` says which route dropped it");
        assert_eq!(route(&r, json!({"type": "y"})).len(), 1);
        let err = rules(
            "routes:\n  - name: a\n    match: {matchers: ['labels.x=~\"(\"']}\n    to: [console]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                "rules/test.yaml:3:24: route `a`: match.matchers: matcher `labels.x=~\"(\"`"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_filter_or_test_in_a_condition_is_found_when_the_rules_load() {
        let err = rules(
            "routes:\n  - name: a\n    match: {when: \"event.side|uper == 'BUY' and event.x is defind\"}\n    to: [console]\n",
        )
        .unwrap_err();
        let lines: Vec<String> = err.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "rules/test.yaml:3:19: route `a`: when: unknown filter `uper` (did you mean `upper`?)",
                "rules/test.yaml:3:19: route `a`: when: unknown test `defind` (did you mean `defined`?)",
            ]
        );
    }

    #[test]
    fn a_misspelt_severity_is_quoted_as_written() {
        let err =
            rules("routes:\n  - name: a\n    match: {severity: \">= eror\"}\n    to: [console]\n")
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rules/test.yaml:3:23: route `a`: match.severity: unknown severity \"eror\": use one of debug, info, warning, error, critical (comparisons: ==, !=, <, <=, >, >=)"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("trade_*", "trade_opened"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYc"));
        assert!(!glob_match("trade_*", "trades"));
        assert!(glob_match("cpu_?ot", "cpu_hot") && !glob_match("cpu_?ot", "cpu_ot"));
        assert!(glob_match("?x", "éx") && glob_match("*é*", "caféine") && !glob_match("a?", "a"));
        assert!(glob_match("*_*_*", "a_b_c") && !glob_match("*_*_*", "a_b"));
    }
}
