fn main() -> std::process::ExitCode {
    // The domains this build serves: their event types, state and demo.
    alert_router::cli::main(&[
        #[cfg(feature = "trading")]
        &alert_router_trading::TRADING,
    ])
}
