//! The `alert-router` binary, for the end-to-end tests: the same `main`.
fn main() -> std::process::ExitCode {
    alert_router::cli::main()
}
