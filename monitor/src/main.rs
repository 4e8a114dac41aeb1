//! The `monitor` binary: reads `.env`, parses the command line, exits with the Nagios code.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // API_KEY may come from .env, as for the app; variables already set win.
    let _ = dotenvy::dotenv();
    let cli = match monitor::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // A usage error means nothing was checked: UNKNOWN (3), never clap's 2 (CRITICAL).
            return std::process::ExitCode::from(if e.use_stderr() { 3 } else { 0 });
        }
    };
    std::process::ExitCode::from(monitor::run(cli).await)
}
