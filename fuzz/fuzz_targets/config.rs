//! router.yaml, with `${VAR}` substitution: the input's first line is the value every
//! variable has (as a `.env` or the environment might give it), the rest the file. Any
//! text: a config or diagnostics, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (value, file) = text.split_once('\n').unwrap_or(("", text));
    let _ = alert_router::config::Config::parse(Path::new("/fuzz/router.yaml"), file, &|_| {
        Some(value.to_owned())
    });
});
