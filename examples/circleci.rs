//! A candidate's `staging → prod` decision from live CircleCI data.
//!
//! ```text
//! ATLAS_CIRCLECI_TOKEN=… ATLAS_CIRCLECI_PROJECT_SLUG=gh/acme/atlas \
//!   cargo run --example circleci --features circleci -- <sha> [--policy atlas.toml] [--deployed-at RFC3339]
//! ```
//!
//! The commit may also come from `ATLAS_SHA`, the staging deploy time from
//! `ATLAS_DEPLOYED_AT` (without one the decision says the candidate is not
//! deployed), the candidate's authors from `ATLAS_AUTHORS` (comma-separated).
//! Nightly checks and approvals are read through the CircleCI backend; the
//! approvers' roles come from the policy's `[directory]`.
//! Without the variables it says which it needs and exits with status 2.

use std::process::ExitCode;

use atlas_promote::circleci::CircleCiBuilder;
use atlas_promote::circleci::config::{ENV_PROJECT_SLUG, ENV_TOKEN};
use atlas_promote::{ApprovalSource, Candidate, CheckQuery, CheckSource, Deployment, Evidence, Policy};

const FROM: &str = "staging";
const TO: &str = "prod";

struct Args {
    sha: Option<String>,
    policy: Option<String>,
    deployed_at: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let mut args = Args { sha: env("ATLAS_SHA"), policy: None, deployed_at: env("ATLAS_DEPLOYED_AT") };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--policy" => args.policy = Some(it.next().ok_or("--policy needs a file")?),
            "--deployed-at" => args.deployed_at = Some(it.next().ok_or("--deployed-at needs an RFC 3339 time")?),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            sha => args.sha = Some(sha.to_owned()),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("circleci example: {e}");
            return ExitCode::from(2);
        }
    };
    let mut missing: Vec<&str> = [ENV_TOKEN, ENV_PROJECT_SLUG]
        .into_iter()
        .filter(|v| std::env::var(v).map_or(true, |s| s.trim().is_empty()))
        .collect();
    if args.sha.is_none() {
        missing.push("ATLAS_SHA (or the commit as the first argument)");
    }
    if !missing.is_empty() {
        eprintln!(
            "circleci example: needs these environment variables: {}\n\
             optional: ATLAS_CIRCLECI_BASE_URL, ATLAS_DEPLOYED_AT, ATLAS_AUTHORS\n\
             usage: cargo run --example circleci --features circleci -- <sha> [--policy FILE] [--deployed-at RFC3339]",
            missing.join(", ")
        );
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("circleci example: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("circleci example: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let policy = match &args.policy {
        Some(path) => Policy::from_path(path)?,
        None => Policy::atlas(),
    };
    let gate = policy.gate(FROM, TO)?;
    let sha = args.sha.unwrap_or_default();
    let circleci = CircleCiBuilder::from_env().build()?;

    let authors: Vec<String> = std::env::var("ATLAS_AUTHORS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let mut evidence = Evidence::new(Candidate::trunk(sha.clone(), authors));
    if let Some(at) = &args.deployed_at {
        evidence.deployment = Some(Deployment { deployed_at: at.parse()?, flush_required: false, flushed_at: None });
    }
    let names = gate.from().checks.iter().map(|c| c.name.clone()).collect();
    let since = evidence.deployment.as_ref().map(|d| d.deployed_at);
    evidence.checks = circleci.checks(&CheckQuery::new(FROM, sha.clone(), names).since(since)).await?;
    evidence.approvals = circleci.approvals(TO, &sha).await?;
    for record in &mut evidence.approvals {
        record.roles = policy.directory.get(&record.approver).cloned().unwrap_or_default();
    }

    let decision = gate.evaluate(&evidence, atlas_promote::chrono::Utc::now());
    println!("{decision}");
    println!("{}", atlas_promote::serde_json::to_string_pretty(&decision)?);
    eprintln!("({} CircleCI API requests)", circleci.request_count());
    Ok(())
}
