//! The `alert-router` binary, for the end-to-end tests: the same `main`, with the same
//! domain.
fn main() -> std::process::ExitCode {
    alert_router::cli::main(&[&alert_router_trading::TRADING])
}
