//! Rule files: any text compiles to rules or diagnostics, never a panic; rules that
//! compile route an event, have their alert rules read it and look at the time, and
//! their time windows and schedules answer, without one either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = [(PathBuf::from("/fuzz/rules.yaml"), text.to_owned())];
    let Ok(rules) = alert_router::rules::Rules::compile(&files, &|_| true) else {
        return;
    };
    let at = time::macros::datetime!(2026-03-08 06:30 UTC);
    let event = serde_json::json!({"type": "deal", "severity": "error", "labels": {"env": "prod"},
        "n": 3, "s": "x", "status": "firing"});
    if let Ok(event) = alert_router::event::Event::from_json(event, at) {
        let event = Arc::new(event);
        let text: Arc<str> = event.to_json_string().into();
        let evaluator = alert_router::derive::eval::Evaluator::default();
        let mut alerts = Vec::new();
        evaluator.on_event(&rules, &event, &text, 1_000, &mut alerts);
        let _ = evaluator.on_tick(&rules, 3_600_000, &|_| Ok(true));
        let _ = evaluator.take_dirty();
        let _ = rules.route((*event).clone(), &mut |_, _| {});
    }
    let windows = rules.time_intervals();
    for name in windows.names() {
        let _ = windows.contains(name, at);
        if let Some(window) = windows.get(name) {
            let _ = window.next_change(at);
        }
    }
    for schedule in rules.schedules() {
        let _ = schedule.next(None, at);
        let _ = schedule.due(None, at, at + time::Duration::days(3));
    }
});
