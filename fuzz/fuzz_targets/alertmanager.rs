//! `POST /v1/alertmanager` notifications (Alertmanager's webhook). Any bytes: an error or
//! events, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = alert_router::alertmanager::events(data, time::OffsetDateTime::UNIX_EPOCH);
});
