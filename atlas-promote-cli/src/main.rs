//! The `atlas-promote` command: evaluate a gate, lint a policy, print a preset.
//!
//! Exit status: 0 allowed (or success), 1 any other failure, 2 bad input,
//! 3 wait, 4 blocked (or lint errors); `atlas-promote --help` shows the table.
#![forbid(unsafe_code)]

mod args;
mod evaluate;
mod exit;
mod lint;
mod preset;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors are clap's: it prints them and exits 2.
    let cli = args::Cli::parse();
    let now = chrono::Utc::now();
    let status = match run(cli.command, now, &mut std::io::stdout().lock()) {
        Ok(status) => status,
        Err(failure) => {
            // One `error: ` line per mistake (a policy file may have
            // several). Nothing better to do if stderr is gone too.
            let mut stderr = std::io::stderr().lock();
            for line in failure.to_string().lines() {
                let _ = writeln!(stderr, "error: {line}");
            }
            failure.status()
        }
    };
    ExitCode::from(status.code())
}

/// Run one command, writing its output to `out`; `now` is the instant
/// `evaluate` decides for unless `--at` says otherwise.
fn run(
    command: args::Command,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
) -> Result<exit::Status, exit::Failure> {
    let status = match command {
        args::Command::Evaluate(args) => evaluate::run(&args, now, out)?,
        args::Command::Lint(args) => lint::run(&args, out)?,
        args::Command::Preset(args) => preset::run(&args, out)?,
    };
    out.flush().map_err(exit::Failure::output)?;
    Ok(status)
}
