//! Faults at the HTTP edge (issue 6 item 3): two candidates on different
//! gates, CircleCI misbehaving for one of them at a time — timeouts,
//! dropped connections, bursts of 5xx, 429 with Retry-After (seconds and
//! HTTP date), truncated JSON, a slow server. The engine keeps moving the
//! other one, names the failing candidate, the backend and the operation,
//! and never starts a run twice.

mod common;
mod fake;

use std::time::{Duration, Instant};

use atlas_promote_circleci::RetrySettings;
use atlas_promote_core::{Error, Tick};
use chrono::TimeDelta;
use fake::harness::Harness;
use fake::{Fault, FaultKind};

/// A merged first, B (which changes a pipeline) an hour later.
const A: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const B: &str = "e5bd3914e2e596debea16f433f57875b5b90bcd6";

/// Short client timeouts, tiny backoffs; a server's `Retry-After` is honoured up to 3 s.
async fn harness() -> Harness {
    Harness::through_front(|b| {
        b.with_timeouts(Duration::from_millis(250), Duration::from_millis(250)).with_retry(
            RetrySettings::default()
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
                .with_max_wait(Duration::from_secs(3)),
        )
    })
    .await
}

fn key(sha: &str, stage: &str, kind: &str) -> String {
    format!("atlas.{sha}.{stage}.{kind}.1")
}

/// The one failure of `tick`: it is `sha`'s, a CircleCI failure of
/// `operation`, and says so when shown.
fn the_failure<'t>(tick: &'t Tick, sha: &str, operation: &str) -> &'t Error {
    assert_eq!(tick.failures.len(), 1, "{tick}");
    let (subject, error) = &tick.failures[0];
    assert_eq!(subject, &format!("promotion/trunk/{sha}"), "{tick}");
    match error {
        Error::Backend { backend, operation: op, .. } => {
            assert_eq!((backend.as_str(), op.as_str()), ("circleci", operation), "{error}");
        }
        other => panic!("not a backend failure: {other:?}"),
    }
    let shown = error.to_string();
    assert!(shown.starts_with(&format!("circleci {operation} failed: ")), "{shown}");
    assert!(tick.next_wake.is_some_and(|w| w <= tick.at + TimeDelta::seconds(30)), "a failure is retried soon: {tick}");
    error
}

/// A live in dev (nightly passed, approve-staging approved just now); B merged, heading for dev.
async fn two_candidates(h: &mut Harness) {
    h.merge(A, "alice", &["pipelines/a.py"]).await;
    h.run().await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    h.fake.nightly(A, "success");
    assert_eq!(h.state(A).await, "live in dev");
    h.clock.advance(TimeDelta::hours(1));
    h.merge(B, "bob", &["pipelines/b.py"]).await;
    h.fake.approve(A, "approve-staging", "dan");
}

#[tokio::test]
async fn under_faults_the_engine_moves_the_other_candidate_names_the_failure_and_never_triggers_twice() {
    let mut h = harness().await;
    two_candidates(&mut h).await;

    // 1. B's deploy trigger times out after CircleCI created the pipeline,
    //    which then takes a few reads to compile. A moves on to staging.
    h.fake.lock().compile_reads = 3;
    h.fake.inject(
        Fault::new("POST", "/project/gh/foo/bar/pipeline", 1, FaultKind::Delay(Duration::from_secs(1)))
            .when_body_contains(&key(B, "dev", "deploy")),
    );
    let tick = h.tick().await;
    let error = the_failure(&tick, B, "trigger pipeline");
    assert!(error.is_temporary(), "{error}");
    assert_eq!(h.state(A).await, "deploying to staging (attempt 1)");
    assert_eq!(h.state(B).await, "deploying to dev (attempt 1)");
    // The engine looks for the run by its key before triggering again; while
    // the new pipeline cannot be read yet, it waits rather than trigger blind.
    let mut waited = 0;
    for _ in 0..5 {
        let tick = h.tick().await;
        if tick.failures.is_empty() {
            break;
        }
        let error = the_failure(&tick, B, "find pipeline");
        assert!(error.is_temporary() && error.to_string().contains("still being set up"), "{error}");
        waited += 1;
    }
    assert!(waited >= 1, "the engine met the pipeline while it was being set up");
    h.fake.lock().compile_reads = 0;
    h.run().await;
    assert_eq!(h.fake.posts_per_key()[&key(B, "dev", "deploy")], 1, "the timed-out trigger was not repeated");
    assert_eq!(h.fake.pipelines_per_key()[&key(B, "dev", "deploy")], 1);

    // 2. A burst of 503s on A's staging deploy outlasts the retries; B's deploy
    //    ends and its flush starts. Then A's deploy is read again.
    let a_deploy = h.fake.pipeline_of(&key(A, "staging", "deploy")).unwrap();
    h.fake.inject(Fault::status("GET", &format!("/pipeline/{a_deploy}/workflow"), 4, 503, "Service unavailable."));
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    let tick = h.tick().await;
    assert!(the_failure(&tick, A, "list workflows").is_temporary());
    assert_eq!(h.fake.fault_hits(), [1, 4], "the first try and three retries");
    assert_eq!(h.state(B).await, "flushing dev");
    h.run().await;
    assert_eq!(h.state(A).await, "flushing staging");
    h.fake.heal();

    // 3. 429s with Retry-After, in seconds for B and as an HTTP date for A:
    //    waited out and retried within the tick; both move on.
    let b_flush = h.fake.pipeline_of(&key(B, "dev", "flush")).unwrap();
    let a_flush = h.fake.pipeline_of(&key(A, "staging", "flush")).unwrap();
    let in_two_seconds = (chrono::Utc::now() + TimeDelta::seconds(2)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    for (pipeline, retry_after) in [(&b_flush, "1".to_owned()), (&a_flush, in_two_seconds)] {
        h.fake.inject(Fault::new(
            "GET",
            &format!("/pipeline/{pipeline}/workflow"),
            1,
            FaultKind::Status {
                status: 429,
                body: "Rate limited.".into(),
                headers: vec![("retry-after".into(), retry_after)],
            },
        ));
    }
    h.clock.advance(TimeDelta::minutes(10));
    h.fake.finish_runs("success");
    let started = Instant::now();
    let tick = h.tick().await;
    assert!(tick.failures.is_empty(), "{tick}");
    assert!(started.elapsed() >= Duration::from_millis(950), "the waits asked for: {:?}", started.elapsed());
    assert_eq!(h.fake.fault_hits(), [1, 1]);
    assert_eq!((h.state(A).await.as_str(), h.state(B).await.as_str()), ("live in staging", "live in dev"));
    h.fake.heal();

    // 4. B's approval jobs come back as truncated JSON (permanent: not
    //    retried); A, checked and approved, heads for prod.
    h.clock.advance(TimeDelta::hours(10));
    h.fake.nightly(A, "success");
    h.fake.approve(A, "approve-prod--product-owner", "pat");
    h.fake.approve(A, "approve-prod--dev-team", "dan");
    let b_promote = h.fake.promote_workflow(B);
    h.fake.inject(Fault::new("GET", &format!("/workflow/{b_promote}/job"), 1, FaultKind::Truncate));
    let tick = h.tick().await;
    let error = the_failure(&tick, B, "list workflow jobs");
    assert!(!error.is_temporary() && error.to_string().contains("unexpected response body"), "{error}");
    assert_eq!(h.state(A).await, "deploying to prod (attempt 1)");
    h.fake.heal();
    let tick = h.tick().await;
    assert!(tick.failures.is_empty(), "{tick}");
    assert!(tick.decisions.iter().any(|d| d.sha == B && !d.is_allowed()), "B waits for its approval: {tick}");

    // 5. A's prod deploy: connections dropped, then answers too slow for the
    //    client's timeout, on every try. B, approved, heads for staging.
    let a_prod = h.fake.pipeline_of(&key(A, "prod", "deploy")).unwrap();
    let workflows = format!("/pipeline/{a_prod}/workflow");
    h.fake.inject(Fault::new("GET", &workflows, 4, FaultKind::Drop));
    h.fake.approve(B, "approve-staging", "dan");
    let tick = h.tick().await;
    let error = the_failure(&tick, A, "list workflows");
    assert!(error.is_temporary(), "{error}");
    assert!(error.to_string().contains("connection closed"), "the message says what happened: {error}");
    assert_eq!(h.state(B).await, "deploying to staging (attempt 1)");
    h.fake.heal();
    h.fake.inject(Fault::new("GET", &workflows, 4, FaultKind::Delay(Duration::from_secs(1))));
    let started = Instant::now();
    let tick = h.tick().await;
    let error = the_failure(&tick, A, "list workflows");
    assert!(error.is_temporary(), "{error}");
    assert!(error.to_string().contains("timed out"), "the message says what happened: {error}");
    assert!(started.elapsed() < Duration::from_secs(3), "timeouts cut the waits: {:?}", started.elapsed());
    h.fake.heal();

    // 6. A slow server (every answer 20 ms late, within the timeout): slower, nothing fails.
    h.fake.inject(Fault::new("GET", "/*", usize::MAX, FaultKind::Delay(Duration::from_millis(20))));
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!((h.state(A).await.as_str(), h.state(B).await.as_str()), ("live in prod", "live in staging"));
    h.fake.heal();

    // Never twice: one POST, and one pipeline, per idempotency key.
    let posts = h.fake.posts_per_key();
    assert!(posts.values().all(|n| *n == 1), "{posts:#?}");
    assert_eq!(posts.len(), 10, "A: a deploy and a flush into each of 3 stages; B: into 2: {posts:#?}");
    let pipelines = h.fake.pipelines_per_key();
    assert!(pipelines.values().all(|n| *n == 1), "{pipelines:#?}");
    let audit = h.engine.store().audit(0).await.unwrap();
    atlas_promote_core::audit::verify(&audit).expect("the audit log verifies");
}

#[tokio::test]
async fn a_trigger_answered_5xx_is_found_if_it_created_a_pipeline_and_repeated_once_if_not() {
    let mut h = harness().await;
    h.merge(A, "alice", &["pipelines/a.py"]).await;

    // A gateway error after CircleCI created the pipeline: found by its key, not triggered again.
    h.fake.inject(Fault::new("POST", "/project/gh/foo/bar/pipeline", 1, FaultKind::AfterWork(502)));
    let tick = h.tick().await;
    assert!(the_failure(&tick, A, "trigger pipeline").is_temporary());
    h.run().await;
    assert_eq!(h.state(A).await, "deploying to dev (attempt 1)");
    assert_eq!(h.fake.posts_per_key()[&key(A, "dev", "deploy")], 1);

    // A 503 before CircleCI did anything: nothing to find, so the flush is triggered again, once.
    h.fake.inject(Fault::status("POST", "/project/gh/foo/bar/pipeline", 1, 503, "Service unavailable."));
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    let tick = h.tick().await;
    assert!(the_failure(&tick, A, "trigger pipeline").is_temporary());
    h.run().await;
    assert_eq!(h.state(A).await, "flushing dev");
    assert_eq!(h.fake.posts_per_key()[&key(A, "dev", "flush")], 2);
    let pipelines = h.fake.pipelines_per_key();
    assert!(pipelines.values().all(|n| *n == 1), "{pipelines:#?}");
}

#[tokio::test]
async fn the_pipeline_of_a_timed_out_trigger_is_not_taken_for_someone_else_s() {
    let mut h = harness().await;
    two_candidates(&mut h).await;

    // B's deploy trigger times out after CircleCI created the pipeline; A's staging deploy starts.
    h.fake.inject(
        Fault::new("POST", "/project/gh/foo/bar/pipeline", 1, FaultKind::Delay(Duration::from_secs(1)))
            .when_body_contains(&key(B, "dev", "deploy")),
    );
    let tick = h.tick().await;
    the_failure(&tick, B, "trigger pipeline");

    // A's deploy ends: looking for its flush run, the engine reads B's
    // pipeline first (it is newer). B then looks for its own, and finds it.
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    h.run().await;
    assert_eq!(h.state(A).await, "flushing staging");
    assert_eq!(h.fake.posts_per_key()[&key(B, "dev", "deploy")], 1, "B's deploy was triggered once");
    assert_eq!(h.state(B).await, "flushing dev", "B's deploy (which ended with A's) was found");
}

#[tokio::test]
async fn a_read_whose_answer_is_cut_short_of_its_declared_length_is_retried() {
    let mut h = harness().await;
    h.merge(A, "alice", &["pipelines/a.py"]).await;
    h.run().await;
    assert_eq!(h.state(A).await, "deploying to dev (attempt 1)");
    let a_dev = h.fake.pipeline_of(&key(A, "dev", "deploy")).unwrap();

    // Twice a 200 that declares more bytes than it sends, then closes: a
    // proxy restarting mid-answer. Reading the run's workflows succeeds on the third try.
    h.fake.inject(Fault::new("GET", &format!("/pipeline/{a_dev}/workflow"), 2, FaultKind::CutShort));
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    let sent = h.circleci.request_count();
    let tick = h.tick().await;

    assert!(tick.failures.is_empty(), "a body cut short is temporary and retried: {tick}");
    assert_eq!(h.fake.fault_hits(), [2]);
    assert!(h.circleci.request_count() - sent >= 3, "the cut-short GETs were sent again");
    assert_eq!(h.state(A).await, "flushing dev");
}
