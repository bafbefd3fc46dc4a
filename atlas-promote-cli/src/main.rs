//! The `atlas-promote` command: evaluate a gate, lint, test and compare
//! policies, print a preset, run the service, and operate a release
//! through a running one (status, plan, approve, hold, release, override,
//! rollback, retry, audit).
//!
//! Exit status: 0 allowed (or success), 1 any other failure, 2 bad input,
//! 3 wait, 4 blocked (or lint errors, failed tests, differences);
//! `atlas-promote --help` shows the table.
#![forbid(unsafe_code)]

mod args;
mod completions;
mod diff;
mod evaluate;
mod exit;
mod input;
mod lint;
mod operate;
mod preset;
mod remote;
mod serve;
mod test;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Usage errors are clap's: it prints them and exits 2.
    let cli = args::Cli::parse();
    let json = cli.command.wants_json();
    let now = chrono::Utc::now();
    let status = match run(cli.command, now, &mut std::io::stdout().lock()) {
        Ok(status) => status,
        Err(failure) => {
            report(&failure, json);
            failure.status()
        }
    };
    ExitCode::from(status.code())
}

/// Print why the command failed: one `error: ` line per mistake on stderr
/// (a file may have several), or with `--format json` one JSON object on stdout.
fn report(failure: &exit::Failure, json: bool) {
    // Nothing better to do if the output is gone too.
    if *failure == exit::Failure::ClosedPipe {
        return;
    }
    if json {
        let text = serde_json::to_string_pretty(&failure.to_json()).unwrap_or_default();
        let _ = writeln!(std::io::stdout().lock(), "{text}");
        return;
    }
    let mut stderr = std::io::stderr().lock();
    for line in failure.to_string().lines() {
        let _ = writeln!(stderr, "error: {line}");
    }
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
        args::Command::Test(args) => test::run(&args, out)?,
        args::Command::Diff(args) => diff::run(&args, out)?,
        args::Command::Preset(args) => preset::run(&args, out)?,
        args::Command::Serve(args) => serve::serve(&args)?,
        args::Command::Config(args::ConfigCommand::Check(args)) => serve::check(&args, out)?,
        args::Command::Status(args) => operate::run(operate::Operation::Status(args), out)?,
        args::Command::Plan(args) => operate::run(operate::Operation::Plan(args), out)?,
        args::Command::Approve(args) => operate::run(operate::Operation::Approve(args), out)?,
        args::Command::Hold(args) => operate::run(operate::Operation::Hold(args), out)?,
        args::Command::Release(args) => operate::run(operate::Operation::Release(args), out)?,
        args::Command::Override(args) => operate::run(operate::Operation::Override(args), out)?,
        args::Command::Rollback(args) => operate::run(operate::Operation::Rollback(args), out)?,
        args::Command::Retry(args) => operate::run(operate::Operation::Retry(args), out)?,
        args::Command::Audit(args) => operate::run(operate::Operation::Audit(args), out)?,
        args::Command::Completions(args) => completions::completions(&args, out)?,
        args::Command::Man => completions::man(out)?,
    };
    out.flush().map_err(exit::Failure::output)?;
    Ok(status)
}
