//! `unmask`: every engine task from the shell.

mod args;
mod progress;
mod regions;
mod run;
mod runner;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    unmask::alloc::keep_freed_buffers();
    unmask::threads::decide_once();
    let cli = args::Cli::parse();
    let profile = cli.profile;
    if profile {
        unmask::profile::start();
    }
    let started = std::time::Instant::now();
    let result = run::run(cli);
    if let Some(p) = unmask::profile::finish().filter(|_| profile) {
        let mut v = serde_json::to_value(&p).unwrap_or_default();
        v["wall_ms"] = (started.elapsed().as_secs_f64() * 1e3).into();
        v["ok"] = result.is_ok().into();
        eprintln!("{v}");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
