//! Templates: what each sink says about an event.
//!
//! A template is a YAML file `templates/<group>/<name>.yaml`, where `<group>` is a sink
//! or plugin name and `<name>` may contain `/` (`telegram/commands/status.yaml` is
//! group `telegram`, name `commands/status`). The file is the sink's payload written as
//! YAML (Telegram's `sendMessage` fields, a Discord webhook body, ...), and every string
//! value in it is a minijinja template rendered with `event`, `rule`, `sink`, `plugin`
//! and `now` (see [`context`]). Mapping keys are plain text.
//!
//! - Numbers, booleans and null pass through; maps and lists keep their shape and order.
//! - A string that is exactly one `{{ expr }}` keeps the expression's type:
//!   `disable_notification: "{{ event.severity == 'info' }}"` gives JSON `true`.
//! - Every interpolated value is escaped for the group's markup ([`Markup`]): HTML for
//!   Telegram, markdown for Discord, mrkdwn for Slack, nothing for `none`; the template's
//!   own text never is. `|safe` opts a value out (do that for URLs and ids you put in
//!   a single-expression value, which is escaped too). `|escape` escapes for the
//!   group's markup.
//! - A missing field is an error that names the file, line and column, not an empty
//!   string; guard optional fields with `is defined` or `|default(..)`.
//! - A filter, test or function the environment does not have is an error at load, at
//!   its place (`names.rs`), not at the first render that reaches it.
//! - A runaway template stops after [`FUEL`] steps with an error.
//! - Filters for the trading domain: `money`, `percent`, `qty`, `number`, `duration`,
//!   `datetime`, `severity_emoji`; and `truncate(n)`, at most `n` characters ending in
//!   `…` when cut, cut before escaping (see `filters.rs`).
//! - `{% set %}` in one string is visible in the strings after it in the same file;
//!   names starting with `__n` are taken.
//!
//! Lookup for sink S of plugin P and template T (the rule's `template`, else the event
//! type): `S/T`, `P/T`, `S/default`, `P/default` ([`Templates::resolve`]).
//!
//! `rehearse.rs` renders what each sink would use with sample events of the documented
//! types (`samples.rs`), for `check`, startup and reload to warn about.
//!
//! Each file is compiled once, at load, into one minijinja template holding all of its
//! strings (see `compile.rs`); a render runs it once and fills the payload's shape.
//! [`Templates::render_json`] writes the payload as JSON text directly, which is much
//! cheaper for a large payload than building the [`serde_json::Value`] tree.

mod alertmanager;
mod compile;
mod error;
mod escape;
mod filters;
mod json;
mod locate;
pub(crate) mod names;
mod rehearse;
pub(crate) mod samples;
mod templates;
pub(crate) mod tree;
mod view;

use std::sync::Arc;

use minijinja::Value;

use crate::event::Event;

pub use crate::plugins::Markup;
pub use error::RenderError;
pub use escape::escape;
pub(crate) use rehearse::{Named, rehearse};
pub use templates::{TemplateId, Templates};

/// The most steps (and, at about 64 bytes each, the most memory) one render of a
/// template file may take.
pub const FUEL: u64 = 50_000;

/// The variables a template sees: `event` (the whole event: `type`, `severity`, `time`,
/// `id`, `labels`, `source` and its data fields), `rule` (the name of the rule that
/// routed it), `sink` and `plugin` (names), and `now` (RFC 3339).
pub fn context(
    event: &serde_json::Value,
    rule: &str,
    sink: &str,
    plugin: &str,
    now: &str,
) -> Value {
    context_with(view::value(event), rule, sink, plugin, now)
}

/// [`context`] with `event` already a template value: [`event_value`] or [`json_value`].
/// Make the event's value once and clone it (a reference count) for each sink.
pub fn context_with(event: Value, rule: &str, sink: &str, plugin: &str, now: &str) -> Value {
    minijinja::context! {
        event => event,
        rule => rule,
        sink => sink,
        plugin => plugin,
        now => now,
    }
}

/// A grouped notification's variables (a route with `group_by`, or a summary of what a
/// time window held back): [`context_with`]'s, with `event` the newest event, plus
/// - `alerts`: oldest first, each `{status, fingerprint, starts_at, ends_at, count,
///   event}`: `status` is `firing` or `resolved`, `ends_at` none while firing, `count` the
///   events seen for that alert, `event` its newest (an event without `status` is an
///   entry of its own, `firing`, sent once);
/// - `group`: the `group_by` keys and their values (`{"component": "exchange"}`);
/// - `counts`: `{firing, resolved, total}` (`total` may exceed `alerts`' length when a
///   notification lists only the first ones);
/// - `window`: `{name, ended_at}` when a `muted_during` window held them back, else none.
pub fn group_context(
    base: Value,
    alerts: Value,
    group: Value,
    counts: Value,
    window: Value,
) -> Value {
    minijinja::context! {
        alerts => alerts,
        group => group,
        counts => counts,
        window => window,
        ..base
    }
}

/// [`group_context`] for a group of one firing alert, `event`, seen at `now`: what `check`
/// rehearses a group template with, and what `render` shows for a grouped route.
pub fn group_of_one(base: Value, event: Value, now: &str) -> Value {
    let alert = minijinja::context! {
        status => "firing",
        fingerprint => "0000000000000000",
        starts_at => now,
        ends_at => (),
        count => 1,
        event => event,
    };
    let counts = minijinja::context! { firing => 1, resolved => 0, total => 1 };
    group_context(
        base,
        Value::from(vec![alert]),
        minijinja::context! {},
        counts,
        Value::from(()),
    )
}

/// A throttled route's next message: [`context_with`]'s variables plus `suppressed`,
/// `{count, since}`: how many like it were held back, and since when (RFC 3339).
pub fn suppressed_context(base: Value, count: u64, since: &str) -> Value {
    minijinja::context! {
        suppressed => minijinja::context! { count => count, since => since },
        ..base
    }
}

/// `event` as templates see it: what [`json_value`] makes of `event.to_json()`, read from
/// the shared event rather than from a copy of it.
pub fn event_value(event: &Arc<Event>) -> Value {
    view::event(event)
}

/// An event's JSON (`Event::to_json`, or the stored text parsed back) as templates see it.
pub fn json_value(event: &serde_json::Value) -> Value {
    view::value(event)
}

/// `event` as rule `when:` expressions see it: as minijinja's own conversion of
/// `event.to_json()` would (maps list their keys sorted), read in place.
pub(crate) fn rule_event_value(event: &Arc<Event>) -> Value {
    view::event_sorted(event)
}

#[cfg(test)]
mod tests;
