//! The command line, as clap reads it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_STATUS_HELP;

/// Trunk-based release policies as code: decide whether a candidate may move
/// to the next stage, lint a policy, print a built-in policy.
#[derive(Debug, Parser)]
#[command(name = "atlas-promote", version, after_help = EXIT_STATUS_HELP)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Decide whether a candidate may move from one stage to the next.
    ///
    /// Prints the verdict (allowed, waiting until …, blocked), then one line
    /// per blocker and per warning.
    #[command(after_help = EXIT_STATUS_HELP)]
    Evaluate(EvaluateArgs),
    /// Check a policy file for mistakes that validation cannot see.
    ///
    /// Prints one finding per line, then a summary.
    #[command(after_help = EXIT_STATUS_HELP)]
    Lint(LintArgs),
    /// Print a built-in policy as a TOML policy file; without a name, list them.
    #[command(after_help = EXIT_STATUS_HELP)]
    Preset(PresetArgs),
}

/// Arguments of `evaluate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["policy", "preset"])))]
pub(crate) struct EvaluateArgs {
    /// The policy file (TOML; YAML with .yaml or .yml).
    #[arg(long, value_name = "FILE")]
    pub(crate) policy: Option<PathBuf>,
    /// A built-in policy instead of a file (see `atlas-promote preset`).
    #[arg(long, value_name = "NAME")]
    pub(crate) preset: Option<String>,
    /// The stage the candidate leaves.
    #[arg(long, value_name = "STAGE")]
    pub(crate) from: String,
    /// The stage the candidate would enter.
    #[arg(long, value_name = "STAGE")]
    pub(crate) to: String,
    /// The evidence file (JSON); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub(crate) evidence: PathBuf,
    /// The instant to decide for [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = parse_instant)]
    pub(crate) at: Option<DateTime<Utc>>,
    /// How to print the decision.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// Arguments of `lint`.
#[derive(Debug, Args)]
pub(crate) struct LintArgs {
    /// The policy file (TOML; YAML with .yaml or .yml).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// Arguments of `preset`.
#[derive(Debug, Args)]
pub(crate) struct PresetArgs {
    /// The preset to print, e.g. `atlas`.
    #[arg(value_name = "NAME")]
    pub(crate) name: Option<String>,
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Sentences for people.
    Text,
    /// Pretty-printed JSON for programs.
    Json,
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}; expected an RFC 3339 instant such as 2026-05-06T10:00:00Z"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn at_takes_rfc3339_with_any_offset() {
        let cli = Cli::try_parse_from([
            "atlas-promote",
            "evaluate",
            "--preset",
            "atlas",
            "--from",
            "staging",
            "--to",
            "prod",
            "--evidence",
            "e.json",
            "--at",
            "2026-05-06T12:00:00+02:00",
        ])
        .unwrap();
        let Command::Evaluate(args) = cli.command else { panic!("parsed as another command") };
        assert_eq!(args.at, Some("2026-05-06T10:00:00Z".parse().unwrap()));
        assert_eq!(args.format, Format::Text);
    }

    #[test]
    fn at_refuses_a_date_without_time() {
        assert!(parse_instant("2026-05-06").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn evaluate_needs_a_policy_or_a_preset_but_not_both() {
        let base = ["atlas-promote", "evaluate", "--from", "dev", "--to", "staging", "--evidence", "e.json"];
        assert!(Cli::try_parse_from(base).is_err());
        let both = [&base[..], &["--policy", "p.toml", "--preset", "atlas"]].concat();
        assert!(Cli::try_parse_from(both).is_err());
    }
}
