//! Rule files: any text compiles to rules or diagnostics, never a panic; rules that
//! compile route an event without one either.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = [(PathBuf::from("/fuzz/rules.yaml"), text.to_owned())];
    let Ok(rules) = alert_router::rules::Rules::compile(&files, &|_| true) else {
        return;
    };
    let event = serde_json::json!({"type": "deal", "severity": "error", "labels": {"env": "prod"}, "n": 3, "s": "x"});
    if let Ok(event) =
        alert_router::event::Event::from_json(event, time::OffsetDateTime::UNIX_EPOCH)
    {
        let _ = rules.route(event, &mut |_, _| {});
    }
});
