//! The command line, as clap reads it.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use crate::exit::EXIT_STATUS_HELP;
use crate::operate;

/// Trunk-based release policies as code: decide whether a candidate may move
/// to the next stage, lint a policy, test it, compare two, print a built-in one;
/// run the service, and operate a release through it.
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
    #[command(after_help = EVALUATE_HELP)]
    Evaluate(EvaluateArgs),
    /// Check a policy file for mistakes that validation cannot see.
    ///
    /// Prints one finding per line, then a summary.
    #[command(after_help = LINT_HELP)]
    Lint(LintArgs),
    /// Run policy test files: `[[case]]`s (one gate decision each) and
    /// `[[scenario]]`s (a timeline through the engine on a simulated clock).
    ///
    /// Prints one line per case and scenario, the failing ones with what was
    /// expected and what the decision said, then a summary.
    #[command(after_help = TEST_HELP)]
    Test(TestArgs),
    /// Compare two policies: generated evidence that probes every rule's
    /// boundaries, decided by both, for every gate they share.
    ///
    /// Prints the gates one policy lacks, then each difference, smallest
    /// evidence first, as a `[[case]]` ready to paste into a test file.
    #[command(after_help = DIFF_HELP)]
    Diff(DiffArgs),
    /// Print a built-in policy as a TOML policy file; without a name, list them.
    #[command(after_help = PRESET_HELP)]
    Preset(PresetArgs),
    /// Run the service: webhook intake, the reconcile loop, notifications,
    /// /healthz, /readyz and /metrics, until SIGTERM or Ctrl-C.
    ///
    /// Secrets come from the environment variables the config names; a
    /// missing one is named and the service does not start.
    #[command(after_help = SERVE_HELP)]
    Serve(ServeArgs),
    /// Work with the service's config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// What is live in each environment, what is on its way, and what
    /// stands in the way of each active candidate (from a running service).
    #[command(after_help = STATUS_HELP)]
    Status(operate::StatusArgs),
    /// The road ahead of a candidate: each gate still to pass and what it
    /// needs, the next one as the live decision says it.
    #[command(after_help = PLAN_HELP)]
    Plan(operate::PlanArgs),
    /// Approve (or reject, or withdraw) a candidate's entry into a stage, as
    /// the operator whose token is in ATLAS_TOKEN.
    #[command(after_help = APPROVE_HELP)]
    Approve(operate::ApproveArgs),
    /// Stop the line: nothing is promoted into the environment until `release`.
    #[command(after_help = HOLD_HELP)]
    Hold(operate::HoldArgs),
    /// Lift a hold; a candidate it stopped moves on at once.
    #[command(after_help = RELEASE_HELP)]
    Release(operate::ReleaseArgs),
    /// Let a candidate through its gate bypassing named blockers, with a
    /// reason (only for roles the policy's `overrides` names).
    #[command(after_help = OVERRIDE_HELP)]
    Override(operate::OverrideArgs),
    /// Take an environment back to its previous live commit.
    #[command(after_help = ROLLBACK_HELP)]
    Rollback(operate::RollbackArgs),
    /// Retry a candidate's failed deploy.
    #[command(after_help = RETRY_HELP)]
    Retry(operate::RetryArgs),
    /// The service's audit log: verify its hash chain, or print it.
    #[command(subcommand, after_help = AUDIT_HELP)]
    Audit(operate::AuditCommand),
    /// Print a shell completion script.
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(crate::completions::CompletionsArgs),
    /// Print the manual page atlas-promote(1), in roff.
    #[command(after_help = MAN_HELP)]
    Man,
}

const EVALUATE_HELP: &str = "\
Examples:
  atlas-promote evaluate --preset atlas --from staging --to prod --evidence examples/evidence/staging-to-prod.json
  atlas-promote evaluate --policy policy.toml --from dev --to staging --evidence - --format json < evidence.json

Exit status: see the table in `atlas-promote --help`.";

const LINT_HELP: &str = "\
Examples:
  atlas-promote lint examples/policies/atlas.toml
  ATLAS_POLICY=policy.toml atlas-promote lint --format json

Exit status: see the table in `atlas-promote --help`.";

const TEST_HELP: &str = "\
Examples:
  atlas-promote test examples/tests
  atlas-promote test tests/prod.toml --format junit > report.xml

Exit status: see the table in `atlas-promote --help`.";

const DIFF_HELP: &str = "\
Examples:
  atlas-promote diff policy.toml policy-new.toml
  atlas-promote diff old.toml new.toml --cases 100000 --seed 7 --format json

Exit status: see the table in `atlas-promote --help`.";

const PRESET_HELP: &str = "\
Examples:
  atlas-promote preset
  atlas-promote preset atlas > policy.toml

Exit status: see the table in `atlas-promote --help`.";

const SERVE_HELP: &str = "\
Examples:
  atlas-promote serve --config examples/serve/atlas-promote.toml
  atlas-promote serve --config atlas-promote.toml --listen 0.0.0.0:8080 --log-format json

Exit status: see the table in `atlas-promote --help`.";

const CONFIG_CHECK_HELP: &str = "\
Example:
  atlas-promote config check examples/serve/atlas-promote.toml

Exit status: see the table in `atlas-promote --help`.";

const AUDIT_HELP: &str = "\
Examples:
  atlas-promote audit verify --expect-head 3f2a…   # the head you wrote down last week
  atlas-promote audit log --after 120 --format json

Exit status: see the table in `atlas-promote --help`.";

const COMPLETIONS_HELP: &str = "\
Examples:
  source <(atlas-promote completions bash)
  atlas-promote completions zsh > ~/.zfunc/_atlas-promote
  atlas-promote completions fish > ~/.config/fish/completions/atlas-promote.fish
  atlas-promote completions powershell | Out-String | Invoke-Expression

Exit status: see the table in `atlas-promote --help`.";

const MAN_HELP: &str = "\
Examples:
  atlas-promote man > /usr/local/share/man/man1/atlas-promote.1
  atlas-promote man | man -l -

Exit status: see the table in `atlas-promote --help`.";

const STATUS_HELP: &str = "\
Examples:
  ATLAS_TOKEN=… atlas-promote status --server https://atlas.example.com
  atlas-promote status --format json | jq '.environments[] | {stage, live: .live.sha}'

Exit status: see the table in `atlas-promote --help`.";

const PLAN_HELP: &str = "\
Examples:
  atlas-promote plan 9fceb02          # exit 0 allowed, 3 waiting, 4 blocked
  atlas-promote plan 9fceb02 --format json

Exit status: see the table in `atlas-promote --help`.";

const APPROVE_HELP: &str = "\
Examples:
  atlas-promote approve 9fceb02 --into prod --comment 'release notes checked'
  atlas-promote approve 9fceb02 --into prod --reject --comment 'wait for the fix'
  atlas-promote approve 9fceb02 --into prod --withdraw

Exit status: see the table in `atlas-promote --help`.";

const HOLD_HELP: &str = "\
Example:
  atlas-promote hold prod --reason 'incident 4711: nothing goes out'

Exit status: see the table in `atlas-promote --help`.";

const RELEASE_HELP: &str = "\
Example:
  atlas-promote release prod

Exit status: see the table in `atlas-promote --help`.";

const OVERRIDE_HELP: &str = "\
Example:
  atlas-promote override 9fceb02 --into prod --bypass window_closed --reason 'hotfix for incident 4711'

Exit status: see the table in `atlas-promote --help`.";

const ROLLBACK_HELP: &str = "\
Example:
  atlas-promote rollback prod --reason 'data-quality alerts since the deploy'

Exit status: see the table in `atlas-promote --help`.";

const RETRY_HELP: &str = "\
Example:
  atlas-promote retry 9fceb02

Exit status: see the table in `atlas-promote --help`.";

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Check a config file and the policy it names without starting the
    /// service; list the secrets it needs and whether they are set.
    #[command(after_help = CONFIG_CHECK_HELP)]
    Check(ConfigCheckArgs),
}

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The config file (TOML).
    #[arg(long, value_name = "FILE", default_value = "atlas-promote.toml")]
    pub(crate) config: PathBuf,
    /// Listen here instead of the config's `listen`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<std::net::SocketAddr>,
    /// Use this store instead of the config's `store` (`sqlite://PATH`, `postgres://…`, `memory://`).
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
    /// How logs are written to standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Arguments of `config check`.
#[derive(Debug, Args)]
pub(crate) struct ConfigCheckArgs {
    /// The config file (TOML).
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

impl Command {
    /// Whether the command was asked for JSON, so that its errors are JSON too.
    pub(crate) fn wants_json(&self) -> bool {
        match self {
            Self::Evaluate(args) => args.format == Format::Json,
            Self::Lint(args) => args.format == Format::Json,
            Self::Test(args) => args.format == TestFormat::Json,
            Self::Diff(args) => args.format == Format::Json,
            Self::Preset(_) | Self::Serve(_) | Self::Config(_) | Self::Completions(_) | Self::Man => false,
            Self::Status(a) => a.server.format == Format::Json,
            Self::Plan(a) => a.server.format == Format::Json,
            Self::Approve(a) => a.server.format == Format::Json,
            Self::Hold(a) => a.server.format == Format::Json,
            Self::Release(a) => a.server.format == Format::Json,
            Self::Override(a) => a.server.format == Format::Json,
            Self::Rollback(a) => a.server.format == Format::Json,
            Self::Retry(a) => a.server.format == Format::Json,
            Self::Audit(operate::AuditCommand::Verify(a)) => a.server.format == Format::Json,
            Self::Audit(operate::AuditCommand::Log(a)) => a.server.format == Format::Json,
        }
    }
}

/// Arguments of `evaluate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").args(["policy", "preset"])))]
pub(crate) struct EvaluateArgs {
    /// The policy file (TOML; YAML with .yaml or .yml); `-` reads standard
    /// input [default: the file ATLAS_POLICY names].
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
    /// The policy file (TOML; YAML with .yaml or .yml); `-` reads standard
    /// input [default: the file ATLAS_POLICY names].
    #[arg(value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// Arguments of `test`.
#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Test files, or directories: every *.toml, *.yaml and *.yml in them
    /// whose top level has `[[case]]` or `[[scenario]]`.
    #[arg(value_name = "FILE|DIR", required = true)]
    pub(crate) paths: Vec<PathBuf>,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = TestFormat::Text)]
    pub(crate) format: TestFormat,
}

/// Arguments of `diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The policy as it is (TOML; YAML with .yaml or .yml).
    #[arg(value_name = "OLD")]
    pub(crate) old: PathBuf,
    /// The policy as it would be.
    #[arg(value_name = "NEW")]
    pub(crate) new: PathBuf,
    /// How many pieces of evidence to generate per shared gate.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub(crate) cases: usize,
    /// The generator's seed: the same seed generates the same evidence.
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub(crate) seed: u64,
    /// How to print the differences.
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

/// How `test` prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TestFormat {
    /// One line per case and scenario.
    Text,
    /// Pretty-printed JSON for programs.
    Json,
    /// JUnit XML, which CI systems render.
    Junit,
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
    fn evaluate_takes_a_policy_or_a_preset_but_not_both() {
        let base = ["atlas-promote", "evaluate", "--from", "dev", "--to", "staging", "--evidence", "e.json"];
        let both = [&base[..], &["--policy", "p.toml", "--preset", "atlas"]].concat();
        assert!(Cli::try_parse_from(both).is_err());
    }
}
