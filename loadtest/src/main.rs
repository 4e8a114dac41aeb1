//! The `loadtest` binary: reads `.env`, parses the command line, runs on the runtime `--threads`
//! asks for, and exits 0 (SLOs met), 3 (missed) or 1 (the run failed).

use clap::Parser;

fn main() -> std::process::ExitCode {
    stack::cli::stop_quietly_on_broken_pipe();
    let _ = dotenvy::dotenv();
    let cli = match loadtest::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Bad flags are a failed run (1), as documented; --help and --version are not errors.
            return std::process::ExitCode::from(if e.use_stderr() { loadtest::exit::FAILED } else { 0 });
        }
    };
    let runtime = if cli.run.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(usize::from(cli.run.threads)).enable_all().build()
    };
    match runtime {
        Ok(rt) => std::process::ExitCode::from(rt.block_on(loadtest::run(cli))),
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            std::process::ExitCode::from(loadtest::exit::FAILED)
        }
    }
}
