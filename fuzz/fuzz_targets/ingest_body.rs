//! `POST /v1/events` bodies: one object, an array, or NDJSON. Any bytes: an error or
//! events, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = alert_router::ingest::parse_body(data, time::OffsetDateTime::UNIX_EPOCH);
});
