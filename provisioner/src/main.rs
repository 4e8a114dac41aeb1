//! The `provisioner` binary: parses the command line and hands over to the library.

use std::io::IsTerminal;

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    stack::cli::stop_quietly_on_broken_pipe();
    let cli = match provisioner::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return std::process::ExitCode::from(provisioner::commands::usage_error(&e)),
    };
    // The SDK's own warnings (a credentials source it could not use, a retry) are noise next to
    // our errors, which say what failed and how to fix it; LOG_LEVEL=debug shows them.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOG_LEVEL")
        .unwrap_or_else(|_| "warn,aws_config=error,aws_smithy_runtime=error,aws_runtime=error".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    std::process::ExitCode::from(provisioner::commands::run(cli).await)
}
