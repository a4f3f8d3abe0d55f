//! `unmask`: every engine task from the shell.

mod args;
mod run;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    unmask::alloc::keep_freed_buffers();
    let cli = args::Cli::parse();
    match run::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
