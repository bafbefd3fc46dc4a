//! Engine bugs found by the deterministic simulation (`tests/simulation.rs`),
//! each pinned by the smallest scenario that shows it. Each test fails on
//! the engine as it was before its fix.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use atlas_promote_core::testkit::{Scenario, default_start};
use atlas_promote_core::{
    ApprovalDecision, Candidate, ChangedFiles, CheckStatus, CiProvider, Clock, Error, IdempotencyKey, ManualClock,
    MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, OverrideRule, Policy, Promoter, Result, Run, RunId,
    RunRequest, SourceControl, StaticDirectory,
};
use chrono::TimeDelta;

fn atlas() -> Scenario {
    let mut policy = Policy::atlas();
    policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    let mut s = Scenario::new(policy);
    s.person("dan", &["developer", "dev-team"]).person("pat", &["product-owner"]).person("rita", &["release-manager"]);
    s
}

async fn audited(s: &Scenario, action: &str) -> Result<usize> {
    Ok(s.audit().await?.iter().filter(|r| r.entry.action == action).count())
}

/// c1 is live in staging, its nightly passed, and pat and dan approved it
/// into prod; deploys into prod fail, so it ends `failed in prod`.
async fn failed_in_prod(s: &mut Scenario) -> Result<()> {
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    s.approve("dan", "staging", "c1").await?;
    s.run_until_idle().await?;
    s.nightly("staging", "c1", CheckStatus::Passed);
    s.approve("pat", "prod", "c1").await?;
    s.approve("dan", "prod", "c1").await?;
    s.deploys_fail("prod");
    s.run_until_idle().await?;
    assert!(s.state("c1").await?.to_string().starts_with("failed in prod"), "{}", s.timeline().join("\n"));
    s.deploys_succeed("prod");
    Ok(())
}

/// An override promoted a candidate into a stage under a hold,
/// although a hold stops the line ("nothing is promoted into `stage` until
/// release"). An override bypasses named gate rules, not a hold.
#[tokio::test]
async fn an_override_does_not_promote_into_a_held_stage() -> Result<()> {
    let mut s = atlas();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in dev");
    s.engine.hold("staging", "dan", "incident 42").await?;

    let refused = s.engine.override_gate("c1", "rita", &["approvals_missing"], "hotfix").await;
    assert!(matches!(&refused, Err(Error::Refused { reason }) if reason.contains("held by dan")), "{refused:?}");
    assert_eq!(s.state("c1").await?.to_string(), "live in dev");
    assert_eq!(s.ci.requests().iter().filter(|r| r.stage == "staging").count(), 0);
    assert_eq!(audited(&s, "override.refused").await?, 1);

    s.engine.release("staging", "dan").await?;
    s.engine.override_gate("c1", "rita", &["approvals_missing"], "hotfix").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in staging");
    Ok(())
}

/// A retry re-entered prod while a product owner's rejection
/// stood. A retry enters the stage again, so the stage's own rules must
/// still hold when it is asked for.
#[tokio::test]
async fn a_retry_is_refused_while_a_rejection_stands() -> Result<()> {
    let mut s = atlas();
    failed_in_prod(&mut s).await?;
    s.reject("pat", "prod", "c1").await?;

    let refused = s.engine.retry("c1", "prod", "dan").await;
    assert!(matches!(&refused, Err(Error::Refused { reason }) if reason.contains("rejected by pat")), "{refused:?}");
    assert!(s.state("c1").await?.to_string().starts_with("failed in prod"));
    assert_eq!(audited(&s, "retry.refused").await?, 1);

    // Later (at the same instant the rejection would win), pat approves after all.
    s.advance(TimeDelta::minutes(5));
    s.approve("pat", "prod", "c1").await?;
    s.engine.retry("c1", "prod", "dan").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in prod");
    Ok(())
}

/// A retry re-entered a stage after an approver lost
/// the role that counted, and during a hold.
#[tokio::test]
async fn a_retry_is_refused_without_the_approvals_or_under_a_hold() -> Result<()> {
    let mut s = atlas();
    failed_in_prod(&mut s).await?;
    s.directory.revoke("pat", "product-owner");
    let refused = s.engine.retry("c1", "prod", "dan").await;
    assert!(
        matches!(&refused, Err(Error::Refused { reason }) if reason.contains("needs 1 more approval from product-owner")),
        "{refused:?}"
    );

    s.directory.grant("pat", "product-owner");
    s.engine.hold("prod", "pat", "incident 7").await?;
    let refused = s.engine.retry("c1", "prod", "dan").await;
    assert!(matches!(&refused, Err(Error::Refused { reason }) if reason.contains("held by pat")), "{refused:?}");
    assert!(s.state("c1").await?.to_string().starts_with("failed in prod"));

    s.engine.release("prod", "pat").await?;
    s.engine.retry("c1", "prod", "dan").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c1").await?.to_string(), "live in prod");
    Ok(())
}

/// After a rollback from c3 to c2, a second rollback brought c3
/// back (c3 had been pushed onto the environment's earlier live commits
/// when c2 replaced it). A rolled-back commit is never a rollback target.
#[tokio::test]
async fn rolling_back_twice_goes_further_back_not_to_the_rolled_back_commit() -> Result<()> {
    let mut s = atlas();
    for sha in ["c1", "c2", "c3"] {
        s.merge(sha, "alice", &["src/app.rs"]).await?;
        s.run_until_idle().await?;
        assert_eq!(s.state(sha).await?.to_string(), "live in dev");
    }
    s.engine.rollback("dev", "dan", "c3 breaks the nightly").await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");

    s.engine.rollback("dev", "dan", "c2 breaks it too").await?;
    s.run_until_idle().await?;
    let timeline = s.timeline().join("\n");
    assert_eq!(s.state("c1").await?.to_string(), "live in dev", "{timeline}");
    assert_eq!(s.state("c3").await?.to_string(), "rolled back from dev", "{timeline}");
    Ok(())
}

/// A CI that fails its first trigger (nothing starts), and once armed runs
/// another engine's tick inside the next `find`, after the lookup: that
/// engine acts between this engine's `find` and its `trigger`.
#[derive(Debug)]
struct Meddling {
    inner: MemoryCi,
    fail_next_trigger: AtomicBool,
    other: Mutex<Option<Promoter>>,
}

#[async_trait]
impl CiProvider for Meddling {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        if self.fail_next_trigger.swap(false, Ordering::SeqCst) {
            let source = "CI unreachable".into();
            return Err(Error::Backend { backend: "ci".into(), operation: "trigger".into(), temporary: true, source });
        }
        self.inner.trigger(request).await
    }

    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        let found = self.inner.find(key).await;
        let other = self.other.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(other) = other {
            other.tick().await?;
        }
        found
    }

    async fn status(&self, run: &RunId) -> Result<Run> {
        self.inner.status(run).await
    }

    async fn cancel(&self, run: &RunId) -> Result<()> {
        self.inner.cancel(run).await
    }
}

/// Two engines resumed the same pending trigger once its lease was over:
/// its owner (restarted after a crash) went straight to `find` and
/// `trigger`, while the other engine claimed the step and triggered it too,
/// so the deploy ran twice with one idempotency key. Now the owner claims an
/// expired step as well, and of the two claims only one commits.
#[tokio::test]
async fn two_engines_resuming_an_expired_trigger_start_it_once() -> Result<()> {
    let clock = ManualClock::new(default_start());
    let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
    let store = Arc::new(MemoryStore::new());
    let source = MemorySourceControl::new();
    source.commit("c1", None, "alice", &["src/app.rs"]);
    let meddling =
        Arc::new(Meddling { inner: ci.clone(), fail_next_trigger: AtomicBool::new(true), other: Mutex::new(None) });
    let engine = |id: &str, ci: Arc<dyn CiProvider>| {
        Promoter::builder(Policy::atlas())
            .with_ci(ci)
            .with_checks(Arc::new(MemoryChecks::new()))
            .with_directory(Arc::new(StaticDirectory::default()))
            .with_source_control(Arc::new(source.clone()))
            .with_store(store.clone())
            .with_clock(Arc::new(clock.clone()))
            .with_id(id)
            .build()
    };
    let a = engine("A", meddling.clone())?;
    let b = engine("B", Arc::new(ci.clone()))?;

    a.merged(Candidate::trunk("c1", ["alice"]), clock.now()).await?;
    let first = a.tick().await?;
    assert_eq!(first.failures.len(), 1, "the trigger fails: {first}");
    assert!(a.promotion("c1").await?.value.promotion.pending_run(a.policy()).is_some());

    clock.advance(TimeDelta::minutes(11));
    *meddling.other.lock().unwrap_or_else(|p| p.into_inner()) = Some(b.clone());
    a.tick().await?;
    b.run_until_idle(10).await?;
    a.run_until_idle(10).await?;
    let keys: Vec<String> = ci.requests().iter().map(|r| r.key.to_string()).collect();
    assert_eq!(keys, ["atlas.c1.dev.deploy.1", "atlas.c1.dev.flush.1"]);
    assert_eq!(a.promotion("c1").await?.value.promotion.state.to_string(), "live in dev");
    Ok(())
}

/// What a person does while the engine gathers the evidence for a decision.
#[derive(Debug, Clone, Copy)]
enum Meanwhile {
    Hold,
    Withdraw,
}

/// Source control that, once armed, has a person act through the engine
/// while the engine asks what changed (to know whether a flush is needed):
/// after it read everything it decides on, before it commits the decision.
#[derive(Debug)]
struct Interrupting {
    inner: MemorySourceControl,
    armed: Mutex<Option<(Promoter, Meanwhile)>>,
}

#[async_trait]
impl SourceControl for Interrupting {
    async fn changed_files(&self, base: &str, head: &str) -> Result<ChangedFiles> {
        let armed = self.armed.lock().unwrap_or_else(|p| p.into_inner()).take();
        match armed {
            Some((engine, Meanwhile::Hold)) => engine.hold("staging", "pat", "incident 9").await?,
            Some((engine, Meanwhile::Withdraw)) => {
                engine.approve("dan", "staging", head, ApprovalDecision::Withdraw).await?;
            }
            None => {}
        }
        self.inner.changed_files(base, head).await
    }

    async fn authors(&self, base: Option<&str>, head: &str) -> Result<Vec<String>> {
        self.inner.authors(base, head).await
    }
}

/// c0 is live in staging, c1 in dev, and dan approved c1 into staging; the
/// next tick promotes c1, but `meanwhile` happens while it decides.
async fn decide_while(meanwhile: Meanwhile) -> Result<(Promoter, MemoryCi)> {
    let clock = ManualClock::new(default_start());
    let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
    let source = MemorySourceControl::new();
    source.commit("c0", None, "alice", &["src/app.rs"]);
    source.commit("c1", Some("c0"), "alice", &["src/app.rs"]);
    let interrupting = Arc::new(Interrupting { inner: source, armed: Mutex::new(None) });
    let engine = Promoter::builder(Policy::atlas())
        .with_ci(Arc::new(ci.clone()))
        .with_checks(Arc::new(MemoryChecks::new()))
        .with_directory(Arc::new(StaticDirectory::new([("dan".into(), vec!["developer".into()])].into())))
        .with_source_control(interrupting.clone())
        .with_store(Arc::new(MemoryStore::new()))
        .with_clock(Arc::new(clock.clone()))
        .build()?;
    for sha in ["c0", "c1"] {
        engine.merged(Candidate::trunk(sha, ["alice"]), clock.now()).await?;
        engine.run_until_idle(10).await?;
        engine.approve("dan", "staging", sha, ApprovalDecision::Approve).await?;
        clock.advance(TimeDelta::minutes(5));
        if sha == "c1" {
            *interrupting.armed.lock().unwrap_or_else(|p| p.into_inner()) = Some((engine.clone(), meanwhile));
        }
        engine.run_until_idle(10).await?;
    }
    Ok((engine, ci))
}

/// A hold committed while a tick was deciding (after it had looked for a
/// hold, before it committed) was overtaken: the candidate went into the
/// held stage after `hold` had returned. The decision's commit now rewrites
/// the hold document at the version it read, so it conflicts instead, and
/// the next tick sees the hold.
#[tokio::test]
async fn a_hold_committed_while_the_gate_decides_stops_the_line() -> Result<()> {
    let (engine, ci) = decide_while(Meanwhile::Hold).await?;
    assert!(engine.held("staging").await?.is_some());
    assert_eq!(engine.promotion("c0").await?.value.promotion.state.to_string(), "live in staging");
    assert_eq!(engine.promotion("c1").await?.value.promotion.state.to_string(), "live in dev");
    assert!(ci.requests().iter().all(|r| r.key.as_str() != "atlas.c1.staging.deploy.1"), "{:?}", ci.requests());
    Ok(())
}

/// The same race with a withdrawal of the engine's own approval: the
/// decision committed on the approval after `approve(.., Withdraw)` had
/// returned. The decision's commit now also rewrites the native approvals
/// it read, at their version.
#[tokio::test]
async fn a_withdrawal_committed_while_the_gate_decides_counts() -> Result<()> {
    let (engine, ci) = decide_while(Meanwhile::Withdraw).await?;
    assert_eq!(engine.promotion("c1").await?.value.promotion.state.to_string(), "live in dev");
    assert!(ci.requests().iter().all(|r| r.key.as_str() != "atlas.c1.staging.deploy.1"), "{:?}", ci.requests());
    Ok(())
}

/// A merge notice that arrived late (c1's, after c2 and c3, both built on
/// it) made c1 the newest candidate by arrival: it superseded c3 in trunk
/// and was deployed to dev over c2, so dev went back to older code and c3,
/// the newest commit, never moved on. A late notice of a commit that a
/// candidate on its way is built on is now registered as superseded by it.
#[tokio::test]
async fn a_late_merge_notice_never_overtakes_the_commits_built_on_it() -> Result<()> {
    let mut s = atlas();
    s.source.commit("c1", None, "alice", &["src/a.rs"]);
    s.source.commit("c2", Some("c1"), "bob", &["src/b.rs"]);
    s.source.commit("c3", Some("c2"), "carol", &["src/c.rs"]);
    let at = s.now();
    s.engine.merged(Candidate::trunk("c2", ["bob"]), at).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");
    s.engine.merged(Candidate::trunk("c3", ["carol"]), at).await?;
    s.engine.merged(Candidate::trunk("c1", ["alice"]), at).await?;
    s.run_until_idle().await?;
    let timeline = s.timeline().join("\n");
    assert_eq!(s.state("c1").await?.to_string(), "superseded in trunk by c3", "{timeline}");
    assert_eq!(s.state("c3").await?.to_string(), "live in dev", "{timeline}");
    assert!(s.ci.requests().iter().all(|r| r.candidate.sha != "c1"), "{timeline}");
    Ok(())
}

/// c1's deploy into dev failed; c2, built on c1, then went live in dev. A
/// retry of c1 deployed it over c2, taking dev back to older code. A retry
/// is now refused when a newer commit built on the candidate is live there
/// (and c2, reaching the gate c1 failed at, supersedes c1: issue 10, item 3).
#[tokio::test]
async fn a_retry_never_takes_an_environment_back_to_older_code() -> Result<()> {
    let mut s = atlas();
    s.deploys_fail("dev");
    s.merge("c1", "alice", &["src/a.rs"]).await?;
    s.run_until_idle().await?;
    assert!(s.state("c1").await?.to_string().starts_with("failed in dev"));
    s.deploys_succeed("dev");
    s.merge("c2", "bob", &["src/b.rs"]).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");

    let refused = s.engine.retry("c1", "dev", "alice").await;
    assert!(
        matches!(&refused, Err(Error::Refused { reason }) if reason.starts_with("c1 is superseded in dev by c2")),
        "{refused:?}"
    );
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");
    assert_eq!(s.ci.requests().iter().filter(|r| r.candidate.sha == "c1").count(), 1);
    Ok(())
}

/// The same for a commit whose pull request the engine knew: its late merge
/// notice moved it to trunk as if it were on its way, although c2, built on
/// it, was live in dev; until the next tick superseded it, an override took
/// it into dev over c2. It is now superseded as it is merged.
#[tokio::test]
async fn a_late_merge_notice_of_a_reviewed_commit_never_overtakes_the_commits_built_on_it() -> Result<()> {
    let mut s = atlas();
    s.source.commit("c1", None, "alice", &["src/a.rs"]);
    s.source.commit("c2", Some("c1"), "bob", &["src/b.rs"]);
    s.engine.open_review(Candidate::trunk("c1", ["alice"])).await?;
    let at = s.now();
    s.engine.merged(Candidate::trunk("c2", ["bob"]), at).await?;
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");

    s.engine.merged(Candidate::trunk("c1", ["alice"]), at).await?;
    assert_eq!(s.state("c1").await?.to_string(), "superseded in trunk by c2");
    let refused = s.engine.override_gate("c1", "rita", &["approvals_missing"], "hotfix").await;
    assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
    s.run_until_idle().await?;
    assert_eq!(s.state("c2").await?.to_string(), "live in dev");
    assert!(s.ci.requests().iter().all(|r| r.candidate.sha != "c1"));
    Ok(())
}
