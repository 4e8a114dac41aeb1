//! The `monitor` binary: reads `.env`, parses the command line, exits with the Nagios code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stack::cli::stop_quietly_on_broken_pipe();
    // API_KEY may come from .env, as for the app; variables already set win.
    let _ = dotenvy::dotenv();
    let cli = match monitor::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version: what was asked for, exit 0.
            let _ = e.print();
            return std::process::ExitCode::SUCCESS;
        }
        Err(e) => {
            // A usage error means nothing was checked: UNKNOWN (3), never clap's 2 (CRITICAL),
            // with the plugin's `UNKNOWN - …` line on stdout (Nagios shows stdout only) and
            // clap's whole message, usage and hint, on stderr.
            let json = std::env::args().any(|a| a == "--json");
            let _ = e.print();
            return std::process::ExitCode::from(monitor::usage_error(&e.to_string(), json));
        }
    };
    std::process::ExitCode::from(monitor::run(cli).await)
}
