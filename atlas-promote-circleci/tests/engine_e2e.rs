//! The engine drives the ATLAS flow end to end with CircleCI as its CI
//! provider, check source and approval source, against a local server
//! speaking the CircleCI API (`fake`): merge → dev deploy and flush →
//! nightly checks → approval job → staging → nightly checks → two approval
//! jobs → prod. And what a steady-state tick costs in requests.

mod common;
mod fake;

use std::collections::BTreeSet;

use chrono::TimeDelta;
use fake::harness::{Harness, blockers};
use serde_json::json;

const C1: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const C2: &str = "e5bd3914e2e596debea16f433f57875b5b90bcd6";
const C3: &str = "7638417db6d59f3c431d3e1f261cc637155684cd";

#[tokio::test]
async fn the_engine_drives_the_atlas_flow_end_to_end_on_circleci() {
    let mut h = Harness::start().await;

    // Merge: the trunk → dev gate is open; nothing is live in dev, so a flush follows the deploy.
    h.merge(C1, "alice", &["pipelines/etl.py", "src/lib.rs"]).await;
    h.run().await;
    assert_eq!(h.state(C1).await, "deploying to dev (attempt 1)");
    let posts = h.fake.trigger_posts();
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(
        posts[0],
        json!({ "branch": "main", "parameters": {
            "atlas_key": format!("atlas.{C1}.dev.deploy.1"), "atlas_workflow": "deploy", "atlas_stage": "dev",
            "atlas_sha": C1, "atlas_flush": false, "atlas_environment": "dev" } }),
        "the POST carries the policy's parameters and the idempotency key"
    );

    // The deploy pipeline runs: the engine polls it and waits.
    h.clock.advance(TimeDelta::seconds(30));
    let ticks = h.run().await;
    assert_eq!(h.state(C1).await, "deploying to dev (attempt 1)");
    assert!(ticks[0].next_wake.is_some(), "a run in flight is polled again");

    // It succeeds: the flush starts, with the flush flag and its own key.
    assert_eq!(h.runs_end(TimeDelta::minutes(5), "success").await, [format!("atlas.{C1}.dev.deploy.1")]);
    assert_eq!(h.state(C1).await, "flushing dev");
    let flush = &h.fake.trigger_posts()[1];
    assert_eq!(flush["parameters"]["atlas_key"], format!("atlas.{C1}.dev.flush.1"));
    assert_eq!(flush["parameters"]["atlas_flush"], true);
    assert_eq!(flush["parameters"]["atlas_workflow"], "flush");
    assert_eq!(flush["parameters"]["atlas_environment"], "dev", "the README's flush job flushes this environment");

    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in dev");

    // dev → staging needs a developer's approval (its approval job); the nightly checks are advisory.
    h.clock.advance(TimeDelta::hours(2));
    let ticks = h.run().await;
    assert_eq!(blockers(&ticks, C1), ["needs 1 more approval from developer (have 0 of 1) to enter staging"]);
    h.fake.nightly(C1, "success");
    h.clock.advance(TimeDelta::hours(6));
    h.fake.approve(C1, "approve-staging", "dan");
    h.run().await;
    assert_eq!(h.state(C1).await, "deploying to staging (attempt 1)");
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in staging");

    // staging → prod: last night's checks count only if they ran after staging was ready.
    let ticks = h.run().await;
    let waiting = blockers(&ticks, C1);
    assert!(waiting.iter().any(|b| b.contains("integration")), "{waiting:?}");
    assert!(waiting.iter().any(|b| b.contains("product-owner")), "{waiting:?}");
    h.clock.advance(TimeDelta::hours(12));
    h.fake.nightly(C1, "success");
    h.fake.approve(C1, "approve-prod--product-owner", "pat");
    let ticks = h.run().await;
    assert_eq!(blockers(&ticks, C1), ["needs 1 more approval from dev-team (have 0 of 1) to enter prod"]);
    h.fake.approve(C1, "approve-prod--dev-team", "dan");
    h.run().await;
    assert_eq!(h.state(C1).await, "deploying to prod (attempt 1)");
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in prod");

    // Six pipelines, one per key: deploy and flush into each environment.
    let per_key = h.fake.posts_per_key();
    let stages: BTreeSet<String> = per_key.keys().map(|k| k.split('.').nth(2).unwrap().to_owned()).collect();
    assert_eq!(stages, BTreeSet::from(["dev".into(), "staging".into(), "prod".into()]));
    assert_eq!(per_key.len(), 6, "{per_key:?}");
    assert!(per_key.values().all(|n| *n == 1), "one POST per key: {per_key:?}");
    let audit = h.engine.store().audit(0).await.unwrap();
    atlas_promote_core::audit::verify(&audit).expect("the audit log verifies");
    println!("ATLAS flow on CircleCI: {} API requests", h.circleci.request_count());
}

#[tokio::test]
async fn a_flush_follows_the_deploy_only_when_pipeline_files_changed() {
    let mut h = Harness::start().await;
    h.merge(C1, "alice", &["pipelines/etl.py"]).await;
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in dev");

    // C2 changes documentation only: deployed, not flushed.
    h.clock.advance(TimeDelta::hours(1));
    h.merge(C2, "alice", &["docs/runbook.md"]).await;
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    assert_eq!(h.state(C2).await, "live in dev");

    // C3 changes a pipeline: deployed, then flushed.
    h.clock.advance(TimeDelta::hours(1));
    h.merge(C3, "alice", &["pipelines/etl/sources.py"]).await;
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    assert_eq!(h.state(C3).await, "flushing dev");
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C3).await, "live in dev");

    let kinds: Vec<String> = h
        .fake
        .trigger_posts()
        .iter()
        .map(|b| {
            let key = b["parameters"]["atlas_key"].as_str().unwrap();
            let parts: Vec<&str> = key.split('.').collect();
            format!("{} {}", &parts[1][..2], parts[3])
        })
        .collect();
    assert_eq!(kinds, ["9f deploy", "9f flush", "e5 deploy", "76 deploy", "76 flush"]);
    assert!(h.state(C1).await.starts_with("superseded in dev"), "{}", h.state(C1).await);
}

#[tokio::test]
async fn a_steady_state_tick_of_a_candidate_waiting_on_approval_costs_at_most_two_requests() {
    let mut h = Harness::start().await;
    h.merge(C1, "alice", &["pipelines/etl.py"]).await;
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    h.fake.nightly(C1, "success");
    assert_eq!(h.state(C1).await, "live in dev");

    // Waiting for approve-staging. The first tick reads what it has not seen yet.
    h.clock.advance(TimeDelta::minutes(1));
    h.run().await;
    let mut per_tick = Vec::new();
    for _ in 0..5 {
        h.clock.advance(TimeDelta::seconds(30));
        let before = h.circleci.request_count();
        let tick = h.engine.tick().await.unwrap();
        assert!(tick.failures.is_empty() && tick.actions.is_empty(), "{tick}");
        per_tick.push(h.circleci.request_count() - before);
    }
    println!("CircleCI: requests per steady-state tick waiting on approve-staging: {per_tick:?}");
    assert!(per_tick.iter().all(|n| *n <= 2), "requests per tick: {per_tick:?}");

    // The same, one gate further: live in staging, waiting on the two prod approval jobs.
    h.fake.approve(C1, "approve-staging", "dan");
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in staging");
    h.fake.nightly(C1, "success");
    h.fake.approve(C1, "approve-prod--product-owner", "pat");
    h.run().await;
    let mut per_tick = Vec::new();
    for _ in 0..5 {
        h.clock.advance(TimeDelta::seconds(30));
        let before = h.circleci.request_count();
        let tick = h.engine.tick().await.unwrap();
        assert!(tick.failures.is_empty() && tick.actions.is_empty(), "{tick}");
        per_tick.push(h.circleci.request_count() - before);
    }
    println!("CircleCI: requests per steady-state tick waiting on approve-prod--dev-team: {per_tick:?}");
    assert!(per_tick.iter().all(|n| *n <= 2), "requests per tick: {per_tick:?}");
}

#[tokio::test]
async fn once_settled_workflow_lists_expire_a_tick_rereads_only_pipelines_that_can_hold_checks_or_approvals() {
    // A settled TTL of zero: every tick is the one right after the TTL expired.
    let mut h = Harness::start_with(|b| b.with_settled_ttl(std::time::Duration::ZERO)).await;
    h.merge(C1, "alice", &["pipelines/etl.py"]).await;
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    h.fake.nightly(C1, "success");
    h.fake.approve(C1, "approve-staging", "dan");
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!(h.state(C1).await, "live in staging");
    h.fake.nightly(C1, "success");
    h.run().await;

    let before = h.circleci.request_count();
    h.clock.advance(TimeDelta::seconds(30));
    let tick = h.engine.tick().await.unwrap();
    assert!(tick.failures.is_empty() && tick.actions.is_empty(), "{tick}");
    let cost = h.circleci.request_count() - before;
    println!("CircleCI: a tick right after the settled TTL costs {cost} requests");
    // Page 1 of trunk pipelines, the two nightly pipelines' workflows (a rerun
    // of a check counts), the promote workflow's jobs; not the four deploy and
    // flush pipelines atlas started, which hold neither checks nor approvals.
    assert_eq!(cost, 4);
}
