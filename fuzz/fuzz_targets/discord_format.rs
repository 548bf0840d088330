//! Discord's formatter: any rendered payload (content, embeds, fields, each possibly over
//! Discord's limits) becomes webhook bodies or an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = discord::bodies_for_fuzzing(data);
});
