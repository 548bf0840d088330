//! Counts per route and per alert rule, beside the per-sink ones: which route sent or
//! held back how many messages, and how often each alert rule fired and resolved.
//! `/v1/status` shows them (`routes`, `events.alert_rules`); `replay` compares them
//! between two configurations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde_json::{Value, json};

use crate::notify::engine::{HeldCounts, Reason};

/// One route's messages: written for a sink, or held back (by reason), one per sink.
#[derive(Debug, Default)]
struct RouteCounts {
    routed: u64,
    held_back: HeldCounts,
}

/// How many alerts one alert rule fired and resolved.
#[derive(Debug, Default, Clone, Copy)]
struct RuleCounts {
    firing: u64,
    resolved: u64,
}

/// The counts since the router started (a route or rule gone in a reload keeps its own
/// until the process ends, as a removed sink's stats do).
#[derive(Debug, Default)]
pub struct Tally {
    routes: Mutex<BTreeMap<String, RouteCounts>>,
    alert_rules: Mutex<BTreeMap<String, RuleCounts>>,
}

impl Tally {
    /// Counts messages of routes: `None` for one written for a sink, else the reason it
    /// was held back.
    pub fn routes<'a>(&self, messages: impl IntoIterator<Item = (&'a str, Option<Reason>)>) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        for (route, reason) in messages {
            // Looked up before inserting: `entry` would allocate the name every time.
            let counts = match routes.get_mut(route) {
                Some(c) => c,
                None => routes.entry(route.to_owned()).or_default(),
            };
            match reason {
                None => counts.routed += 1,
                Some(reason) => counts.held_back.add(reason, 1),
            }
        }
    }

    /// Counts alert rules' alerts: (rule, whether it fired (else it resolved)).
    pub fn alerts<'a>(&self, alerts: impl IntoIterator<Item = (&'a str, bool)>) {
        let mut rules = self.alert_rules.lock().unwrap_or_else(|e| e.into_inner());
        for (rule, firing) in alerts {
            let counts = rules.entry(rule.to_owned()).or_default();
            if firing {
                counts.firing += 1;
            } else {
                counts.resolved += 1;
            }
        }
    }

    /// `{route: {routed, held_back: {reason: n}}}` for `names` (the routes in force, each
    /// listed even before it did anything) and any other route counted since the start.
    pub fn routes_json<'a>(&self, names: impl Iterator<Item = &'a str>) -> Value {
        let routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = serde_json::Map::new();
        for name in names {
            out.insert(name.to_owned(), route_json(routes.get(name)));
        }
        for (name, counts) in routes.iter() {
            if !out.contains_key(name) {
                out.insert(name.clone(), route_json(Some(counts)));
            }
        }
        out.into()
    }

    /// `{rule: {firing, resolved}}` for `names` (the alert rules in force) and any other
    /// rule counted since the start.
    pub fn alert_rules_json<'a>(&self, names: impl Iterator<Item = &'a str>) -> Value {
        let rules = self.alert_rules.lock().unwrap_or_else(|e| e.into_inner());
        let rule_json = |c: RuleCounts| json!({"firing": c.firing, "resolved": c.resolved});
        let mut out = serde_json::Map::new();
        for name in names {
            let counts = rules.get(name).copied().unwrap_or_default();
            out.insert(name.to_owned(), rule_json(counts));
        }
        for (name, counts) in rules.iter() {
            if !out.contains_key(name) {
                out.insert(name.clone(), rule_json(*counts));
            }
        }
        out.into()
    }
}

fn route_json(counts: Option<&RouteCounts>) -> Value {
    match counts {
        Some(c) => json!({"routed": c.routed, "held_back": c.held_back.to_json()}),
        None => json!({"routed": 0, "held_back": HeldCounts::default().to_json()}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_rules_in_force_are_listed_from_zero_and_gone_ones_stay() {
        let tally = Tally::default();
        tally.routes([
            ("a", None),
            ("a", None),
            ("a", Some(Reason::Grouped)),
            ("old", Some(Reason::Silenced)),
        ]);
        tally.alerts([("r", true), ("r", false), ("r", true)]);
        let routes = tally.routes_json(["a", "b"].into_iter());
        assert_eq!(routes["a"]["routed"], 2);
        assert_eq!(routes["a"]["held_back"]["grouped"], 1);
        assert_eq!(routes["b"]["routed"], 0);
        assert_eq!(routes["b"]["held_back"]["silenced"], 0);
        assert_eq!(routes["old"]["held_back"]["silenced"], 1);
        let rules = tally.alert_rules_json(["r", "quiet"].into_iter());
        assert_eq!(rules["r"], json!({"firing": 2, "resolved": 1}));
        assert_eq!(rules["quiet"], json!({"firing": 0, "resolved": 0}));
    }
}
