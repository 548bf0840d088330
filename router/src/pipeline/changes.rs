//! What a reload changed, said in words for its log line and `/v1/status`: routes and
//! template files added, removed or changed.

use std::collections::BTreeMap;

use crate::render::Templates;
use crate::rules::Rules;

/// "rules added: a, b" and the like, for the reload log line.
pub(super) fn rule_changes(old: &Rules, new: &Rules) -> Vec<String> {
    let (old, new) = (old.fingerprints(), new.fingerprints());
    let added: Vec<&str> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .map(String::as_str)
        .collect();
    let removed: Vec<&str> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(String::as_str)
        .collect();
    let changed: Vec<&str> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| k.as_str())
        .collect();
    let mut out = Vec::new();
    for (what, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !names.is_empty() {
            out.push(format!("routes {what}: {}", names.join(", ")));
        }
    }
    out
}

/// "templates changed: console/trade_opened.yaml" and the like.
pub(super) fn template_changes(old: &Templates, new: &Templates) -> Vec<String> {
    let old: BTreeMap<&std::path::Path, u64> = old.files().collect();
    let new: BTreeMap<&std::path::Path, u64> = new.files().collect();
    let name = |p: &std::path::Path| p.display().to_string();
    let added: Vec<String> = new
        .keys()
        .filter(|k| !old.contains_key(*k))
        .map(|p| name(p))
        .collect();
    let removed: Vec<String> = old
        .keys()
        .filter(|k| !new.contains_key(*k))
        .map(|p| name(p))
        .collect();
    let changed: Vec<String> = new
        .iter()
        .filter(|(k, v)| old.get(*k).is_some_and(|o| o != *v))
        .map(|(k, _)| name(k))
        .collect();
    let mut out = Vec::new();
    for (what, names) in [("added", added), ("removed", removed), ("changed", changed)] {
        if !names.is_empty() {
            out.push(format!("templates {what}: {}", names.join(", ")));
        }
    }
    out
}
