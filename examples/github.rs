//! Print the gate decision for a pull request or a commit from live GitHub data.
//!
//! ```text
//! ATLAS_GITHUB_TOKEN=… ATLAS_GITHUB_REPOSITORY=owner/repo \
//! ATLAS_GITHUB_TEAM_ROLES=engineers=developer,product=product-owner,platform=dev-team \
//!   cargo run --example github --features github -- pr 42
//! cargo run --example github --features github -- commit 9fceb02… trunk dev
//! ```
//!
//! Without the environment (or the arguments) it says what it needs and
//! exits with status 2. It uses the ATLAS preset policy. For a commit,
//! where the candidate is deployed comes from the engine's state, which this
//! example does not have: the decision then shows what GitHub alone says.

use std::process::ExitCode;

use atlas_promote::github::GitHubBuilder;
use atlas_promote::{ApprovalSource, Candidate, CheckQuery, CheckSource, Directory, Evidence, Policy};

const NEEDS: &str = "\
atlas-promote GitHub example: prints the gate decision for a pull request or a commit.

It needs:
  ATLAS_GITHUB_TOKEN       a token that can read the repository's pull requests, checks,
                           commit statuses, actions and deployments, and the org's teams
  ATLAS_GITHUB_REPOSITORY  the repository, as owner/repo
optionally:
  ATLAS_GITHUB_API_URL     the API URL of a GitHub Enterprise Server (https://HOST/api/v3)
  ATLAS_GITHUB_TEAM_ROLES  team=role pairs, e.g. engineers=developer,product=product-owner

usage:
  cargo run --example github --features github -- pr <number>
  cargo run --example github --features github -- commit <sha> [<from-stage> <to-stage>]";

enum Target {
    Pull(u64),
    Commit { sha: String, from: String, to: String },
}

fn target(args: &[String]) -> Option<Target> {
    match args {
        [kind, number] if kind == "pr" => number.trim_start_matches('#').parse().ok().map(Target::Pull),
        [kind, sha] if kind == "commit" => {
            Some(Target::Commit { sha: sha.clone(), from: "trunk".into(), to: "dev".into() })
        }
        [kind, sha, from, to] if kind == "commit" => {
            Some(Target::Commit { sha: sha.clone(), from: from.clone(), to: to.clone() })
        }
        _ => None,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let configured = ["ATLAS_GITHUB_TOKEN", "ATLAS_GITHUB_REPOSITORY"]
        .iter()
        .all(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()));
    let (true, Some(target)) = (configured, target(&args)) else {
        eprintln!("{NEEDS}");
        return ExitCode::from(2);
    };
    match run(target).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(target: Target) -> atlas_promote::Result<()> {
    let mut builder = GitHubBuilder::from_env();
    for pair in std::env::var("ATLAS_GITHUB_TEAM_ROLES").unwrap_or_default().split(',') {
        if let Some((team, role)) = pair.trim().split_once('=') {
            builder = builder.with_team_role(team.trim(), role.trim());
        }
    }
    let github = builder.build()?;
    let policy = Policy::atlas();
    let now = atlas_promote::chrono::Utc::now();

    let (from, to, mut evidence) = match target {
        Target::Pull(number) => {
            let (pr, candidate) = github.pull_request_candidate(number).await?;
            println!("pull request #{number}: {} → {} at {}", pr.head.branch, pr.base.branch, pr.head.sha);
            let mut evidence = Evidence::new(candidate);
            evidence.entered_at = pr.created_at;
            let (from, to) = policy_review_step(&policy);
            (from, to, evidence)
        }
        Target::Commit { sha, from, to } => {
            // The authors of the pull requests that brought the commit in.
            let prs = github.pull_requests_for_commit(&sha).await?;
            let authors: Vec<String> = prs.iter().filter_map(|pr| pr.user.as_ref().map(|u| u.login.clone())).collect();
            (from, to, Evidence::new(Candidate::trunk(sha, authors)))
        }
    };
    let gate = policy.gate(&from, &to)?;
    let sha = evidence.candidate.sha.clone();
    let names = gate.from().checks.iter().map(|c| c.name.clone()).collect();
    evidence.checks = github.checks(&CheckQuery::new(from.clone(), sha.clone(), names)).await?;
    let mut approvals = github.approvals(&to, &sha).await?;
    for record in &mut approvals {
        record.roles = github.roles(&record.approver).await?;
    }
    evidence.approvals = approvals;

    let decision = gate.evaluate(&evidence, now);
    println!("{decision}");
    println!("{}", atlas_promote::serde_json::to_string_pretty(&decision).unwrap_or_default());
    let stats = github.stats();
    println!("{} requests to GitHub ({} answered 304 from cache)", stats.sent, stats.not_modified);
    Ok(())
}

/// The review stage and the stage after it (`review → trunk` in the ATLAS preset).
fn policy_review_step(policy: &Policy) -> (String, String) {
    let review = policy.stages.iter().find(|s| s.kind == atlas_promote::StageKind::Review);
    let from = review.map_or_else(|| "review".to_owned(), |s| s.name.clone());
    let to = policy.next_stage(&from).map_or_else(|| "trunk".to_owned(), |s| s.name.clone());
    (from, to)
}
