//! `import-alertmanager`: any text converts to a router configuration or one diagnostic,
//! never a panic; the rules of a conversion compile or say why (an Alertmanager time
//! interval it copied may be one the router refuses too), and route an Alertmanager
//! alert through the tree without one either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(imported) = alert_router::am_import::convert(Path::new("/fuzz/am.yml"), text, &[])
    else {
        return;
    };
    let Some((_, rules)) = imported
        .files
        .iter()
        .find(|(p, _)| p == Path::new("rules/alertmanager.yaml"))
    else {
        panic!("a conversion without its rules");
    };
    let files = [(PathBuf::from("/fuzz/rules.yaml"), rules.clone())];
    let Ok(rules) = alert_router::rules::Rules::compile(&files, &|_| true) else {
        return;
    };
    let at = time::macros::datetime!(2026-03-08 06:30 UTC);
    let event = serde_json::json!({"type": "alert", "status": "firing",
        "labels": {"alertname": "x", "severity": "critical", "team": "db"}});
    if let Ok(event) = alert_router::event::Event::from_json(event, at) {
        let _ = rules.route(event, &mut |_, _| {});
    }
});
