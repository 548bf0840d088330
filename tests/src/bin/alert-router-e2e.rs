//! The `alert-router` binary, for the end-to-end tests: the same `main`, with the same
//! domain. With `ALERT_ROUTER_TEST_CLOCK=<file>` its clock is that file (an RFC 3339
//! instant the test rewrites), so tests of group timers, silences and time windows move
//! time instead of waiting for it.
fn main() -> std::process::ExitCode {
    if let Some(path) = std::env::var_os("ALERT_ROUTER_TEST_CLOCK") {
        alert_router::clock::install_file_clock(path.into());
    }
    alert_router::cli::main(&[&alert_router_trading::TRADING])
}
