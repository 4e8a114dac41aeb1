//! The `loadtest` binary: reads `.env`, parses the command line, exits 0 (SLOs met), 3 (missed)
//! or 1 (the run failed).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let _ = dotenvy::dotenv();
    let cli = match loadtest::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Bad flags are a failed run (1), as documented; --help and --version are not errors.
            return std::process::ExitCode::from(if e.use_stderr() { loadtest::exit::FAILED } else { 0 });
        }
    };
    std::process::ExitCode::from(loadtest::run(cli).await)
}
