//! The engine drives the ATLAS flow end to end with GitHub in every role
//! but the store, against a local server speaking the GitHub REST API
//! (`fake`):
//!
//! - review → trunk: check runs of the pull request's head, and a review by
//!   another developer (pull-request reviews are the approval source);
//! - merge → dev: the merge notice's authors from the commit list, a
//!   `workflow_dispatch` of `deploy.yml` with the policy's inputs and the
//!   idempotency key, the run followed to success, then a flush run;
//! - dev → staging → prod: nightly results as check runs and a commit status;
//!   approvals are the engine's own (`Promoter::approve`), each approver's
//!   roles read from team membership. GitHub's environment reviews cannot
//!   gate these steps: a deployment review exists only on a run already
//!   dispatched and waiting on its environment, and the engine dispatches
//!   only once the gate is open (so they are a second gate inside the
//!   deploy, not the policy's approval);
//! - a later commit changing no pipeline file is deployed without a flush,
//!   as compare says.
//!
//! And what a steady-state tick costs: requests, and how many were free 304s.

mod fake;

use atlas_promote_core::Candidate;
use chrono::TimeDelta;
use fake::harness::{Harness, blockers};
use serde_json::json;

const C1: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const C2: &str = "e5bd3914e2e596debea16f433f57875b5b90bcd6";

#[tokio::test]
async fn the_engine_drives_the_atlas_flow_end_to_end_on_github() {
    let h = Harness::start().await;

    // review → trunk: alice opens a pull request; it needs its checks and a developer's review.
    h.fake.open_pull(7, C1, "feature/etl", "alice", &["pipelines/etl.py", "src/lib.rs"]);
    h.engine.open_review(Candidate::trunk(C1, ["alice"])).await.unwrap();
    let ticks = h.run().await;
    let waiting = blockers(&ticks, C1);
    assert!(waiting.iter().any(|b| b.contains("build")), "{waiting:?}");
    assert!(waiting.iter().any(|b| b.contains("developer")), "{waiting:?}");
    h.fake.check_runs(C1, &["build", "lint", "unit"], "success", TimeDelta::minutes(4));
    h.fake.review(7, "alice", "APPROVED"); // her own: does not count
    let ticks = h.run().await;
    assert_eq!(blockers(&ticks, C1), ["needs 1 more approval from developer (have 0 of 1) to enter trunk"]);
    h.fake.review(7, "bob", "COMMENTED");
    h.fake.review(7, "bob", "APPROVED");
    let ticks = h.run().await;
    let decision = ticks.iter().flat_map(|t| &t.decisions).rfind(|d| d.sha == C1).unwrap();
    assert!(decision.is_allowed(), "{decision}");
    assert_eq!(h.state(C1).await, "under review (review)");

    // Merged: the trunk → dev gate is open, nothing is live in dev, so deploy then flush.
    assert_eq!(h.fake.merge_pull(7), C1);
    h.merged(C1).await;
    assert_eq!(h.state(C1).await, "deploying to dev (attempt 1)");
    let dispatches = h.fake.dispatches();
    assert_eq!(dispatches.len(), 1, "{dispatches:#?}");
    assert_eq!(dispatches[0].0, "deploy.yml");
    assert_eq!(
        dispatches[0].1,
        json!({ "ref": "main", "return_run_details": true, "inputs": {
            "environment": "dev", "sha": C1, "key": format!("atlas.{C1}.dev.deploy.1"), "flush": "false" } }),
        "the dispatch carries the policy's inputs and the idempotency key"
    );
    h.clock.advance(TimeDelta::seconds(30));
    h.fake.start_runs();
    let ticks = h.run().await;
    assert!(ticks[0].next_wake.is_some(), "a run in flight is polled again");
    assert_eq!(h.runs_end(TimeDelta::minutes(5), "success").await, [format!("atlas.{C1}.dev.deploy.1")]);
    assert_eq!(h.state(C1).await, "flushing dev");
    let flush = &h.fake.dispatches()[1].1;
    assert_eq!(flush["inputs"]["flush"], "true");
    assert_eq!(flush["inputs"]["key"], format!("atlas.{C1}.dev.flush.1"));
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in dev");

    // dev → staging: one developer approves (roles from team membership); nightly checks advisory.
    h.clock.advance(TimeDelta::hours(2));
    let ticks = h.run().await;
    assert_eq!(blockers(&ticks, C1), ["needs 1 more approval from developer (have 0 of 1) to enter staging"]);
    h.fake.nightly(C1, true);
    h.approve("dan", "staging", C1).await;
    h.run().await;
    assert_eq!(h.state(C1).await, "deploying to staging (attempt 1)");
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in staging");

    // staging → prod: fresh nightly checks of staging, a product owner and a dev-team member.
    let ticks = h.run().await;
    let waiting = blockers(&ticks, C1);
    assert!(waiting.iter().any(|b| b.contains("data-quality")), "{waiting:?}");
    h.clock.advance(TimeDelta::hours(12));
    h.fake.nightly(C1, true);
    h.approve("pat", "prod", C1).await;
    let ticks = h.run().await;
    assert_eq!(blockers(&ticks, C1), ["needs 1 more approval from dev-team (have 0 of 1) to enter prod"]);
    h.approve("dan", "prod", C1).await;
    h.run().await;
    assert_eq!(h.state(C1).await, "deploying to prod (attempt 1)");
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in prod");

    // C2 changes documentation only: compare says no pipeline changed, so no flush in dev.
    h.clock.advance(TimeDelta::hours(1));
    h.fake.push(C2, "bob", &["docs/runbook.md"]);
    h.merged(C2).await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    assert_eq!(h.state(C2).await, "live in dev");

    let keys: Vec<String> =
        h.fake.dispatches().iter().map(|(_, b)| b["inputs"]["key"].as_str().unwrap().to_owned()).collect();
    let stages: Vec<String> = keys.iter().map(|k| k.split('.').skip(1).take(3).collect::<Vec<_>>().join(" ")).collect();
    assert_eq!(
        stages,
        [
            format!("{C1} dev deploy"),
            format!("{C1} dev flush"),
            format!("{C1} staging deploy"),
            format!("{C1} staging flush"),
            format!("{C1} prod deploy"),
            format!("{C1} prod flush"),
            format!("{C2} dev deploy"),
        ]
    );
    assert!(h.fake.runs_per_key().values().all(|n| *n == 1), "one run per key");
    let audit = h.engine.store().audit(0).await.unwrap();
    atlas_promote_core::audit::verify(&audit).expect("the audit log verifies");
    let stats = h.github.stats();
    println!("ATLAS flow on GitHub: {} requests, {} of them 304s", stats.sent, stats.not_modified);
}

#[tokio::test]
async fn a_steady_state_tick_waiting_on_approval_costs_at_most_three_requests_all_304s() {
    let h = Harness::start().await;

    // A pull request waiting for its review, checks passed.
    h.fake.open_pull(7, C1, "feature/etl", "alice", &["pipelines/etl.py"]);
    h.engine.open_review(Candidate::trunk(C1, ["alice"])).await.unwrap();
    h.fake.check_runs(C1, &["build", "lint", "unit"], "success", TimeDelta::minutes(4));
    h.run().await;
    let review = h.steady_ticks(5).await;
    println!("GitHub: (requests, 304s) per steady-state tick of a pull request waiting for review: {review:?}");
    assert!(review.iter().all(|(sent, free)| *sent <= 3 && free == sent), "{review:?}");

    // Live in dev, waiting for a developer's approval into staging, nightly passed.
    h.fake.review(7, "bob", "APPROVED");
    h.fake.merge_pull(7);
    h.merged(C1).await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    h.fake.nightly(C1, true);
    h.run().await;
    assert_eq!(h.state(C1).await, "live in dev");
    let staging = h.steady_ticks(5).await;
    println!(
        "GitHub: (requests, 304s) per steady-state tick of a candidate waiting on approval into staging: {staging:?}"
    );
    assert!(staging.iter().all(|(sent, free)| *sent <= 3 && free == sent), "{staging:?}");
}
