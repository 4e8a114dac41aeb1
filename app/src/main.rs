//! The `app` binary: reads `.env`, parses the command line and hands over to `app::run`.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // A missing .env is normal (containers get their environment from ECS); variables already set win.
    let _ = dotenvy::dotenv();
    app::run(app::config::Cli::parse())
}
