//! The `lpbridge` binary: parse, run, map the error to a message and an exit code
//! (see [`lpbridge::error`]: 0 ok, 1 error, 2 usage, 3 partial failure).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = lpbridge::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            lpbridge::note!("error: cannot start the async runtime: {e}");
            return ExitCode::from(lpbridge::error::EXIT_ERROR);
        }
    };
    match runtime.block_on(lpbridge::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            lpbridge::note!("error: {}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}
