fn main() -> std::process::ExitCode {
    alert_router::cli::main()
}
