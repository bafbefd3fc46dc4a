//! Faults at the HTTP edge (issue 6 item 3) with GitHub as the backend: two
//! candidates on different gates while GitHub times out, drops connections,
//! answers bursts of 5xx, rate limits (429 with `retry-after`, a secondary
//! 403 without), truncated JSON, or answers slowly. The engine keeps moving
//! the other candidate, names the failing one, the backend and the
//! operation, and never dispatches a run twice.

mod fake;

use std::time::{Duration, Instant};

use atlas_promote_core::{Error, Notice, Tick};
use atlas_promote_github::RetrySettings;
use chrono::TimeDelta;
use fake::harness::Harness;
use fake::{Fault, FaultKind, repo_path};
use serde_json::json;

const A: &str = "9fceb02d0ae598e95dc970b74767f19372d61af8";
const B: &str = "e5bd3914e2e596debea16f433f57875b5b90bcd6";

/// Short client timeouts, small retry waits; through a front that can drop connections.
async fn harness() -> Harness {
    Harness::through_front(|b| {
        b.with_timeouts(Duration::from_millis(250), Duration::from_millis(250))
            .with_retry(
                RetrySettings::default()
                    .with_max_retries(3)
                    .with_backoff(Duration::from_millis(5), Duration::from_millis(20))
                    .with_max_wait(Duration::from_secs(2)),
            )
            .with_secondary_rate_limit_wait(Duration::from_millis(20))
    })
    .await
}

fn key(sha: &str, stage: &str, kind: &str) -> String {
    format!("atlas.{sha}.{stage}.{kind}.1")
}

/// The one failure of `tick`: `sha`'s, a GitHub failure of `operation`, saying so when shown.
fn the_failure<'t>(tick: &'t Tick, sha: &str, operation: &str) -> &'t Error {
    assert_eq!(tick.failures.len(), 1, "{tick}");
    let (subject, error) = &tick.failures[0];
    assert_eq!(subject, &format!("promotion/trunk/{sha}"), "{tick}");
    match error {
        Error::Backend { backend, operation: op, .. } => {
            assert_eq!((backend.as_str(), op.as_str()), ("github", operation), "{error}");
        }
        other => panic!("not a backend failure: {other:?}"),
    }
    assert!(error.to_string().starts_with(&format!("github {operation} failed: ")), "{error}");
    assert!(tick.next_wake.is_some_and(|w| w <= tick.at + TimeDelta::seconds(30)), "retried soon: {tick}");
    error
}

#[tokio::test]
async fn under_faults_the_engine_moves_the_other_candidate_names_the_failure_and_never_dispatches_twice() {
    let h = harness().await;
    // A is live in dev, its nightly passed, approved into staging; B (a pipeline change) lands on main.
    h.fake.push(A, "alice", &["pipelines/a.py"]);
    h.merged(A).await;
    h.runs_end(TimeDelta::minutes(5), "success").await;
    h.runs_end(TimeDelta::minutes(10), "success").await;
    h.fake.nightly(A, true);
    assert_eq!(h.state(A).await, "live in dev");
    h.approve("dan", "staging", A).await;
    h.clock.advance(TimeDelta::hours(1));
    h.fake.push(B, "bob", &["pipelines/b.py"]);

    // 1. B's dispatch times out after GitHub started the run; A's goes through.
    h.fake.inject(
        Fault::new(
            "POST",
            &repo_path("actions/workflows/deploy.yml/dispatches"),
            1,
            FaultKind::Delay(Duration::from_secs(1)),
        )
        .when_body_contains(&key(B, "dev", "deploy")),
    );
    let notice = Notice::Merged { sha: B.into(), at: atlas_promote_core::Clock::now(&h.clock) };
    let tick = h.engine.handle(notice).await.unwrap();
    assert!(the_failure(&tick, B, "dispatch workflow").is_temporary());
    assert_eq!(h.state(A).await, "deploying to staging (attempt 1)");
    // Looking before dispatching again, the engine finds B's run by the key in its run-name.
    h.run().await;
    assert_eq!(h.state(B).await, "deploying to dev (attempt 1)");
    assert_eq!(h.fake.dispatches_per_key()[&key(B, "dev", "deploy")], 1);
    h.fake.heal();

    // 2. A burst of 502s on A's run outlasts the retries; B's deploy ends and its flush starts.
    let a_run = h.fake.run_of(&key(A, "staging", "deploy")).unwrap();
    h.fake.inject(Fault::status("GET", &repo_path(&format!("actions/runs/{a_run}")), 4, 502, "Server Error"));
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    let tick = h.engine.tick().await.unwrap();
    assert!(the_failure(&tick, A, "get workflow run").is_temporary());
    assert_eq!(h.fake.fault_hits(), [4], "the first try and three retries");
    assert_eq!(h.state(B).await, "flushing dev");
    h.run().await;
    assert_eq!(h.state(A).await, "flushing staging");
    h.fake.heal();

    // 3. Rate limits, waited out within the tick: a 429 with retry-after on
    //    B's flush run, a secondary-limit 403 without one on A's.
    let b_flush = h.fake.run_of(&key(B, "dev", "flush")).unwrap();
    let a_flush = h.fake.run_of(&key(A, "staging", "flush")).unwrap();
    let limited = |status: u16, message: &str, headers: Vec<(String, String)>| FaultKind::Status {
        status,
        body: json!({ "message": message, "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api" }),
        headers,
    };
    h.fake.inject(Fault::new(
        "GET",
        &repo_path(&format!("actions/runs/{b_flush}")),
        1,
        limited(429, "API rate limit exceeded", vec![("retry-after".into(), "1".into())]),
    ));
    h.fake.inject(Fault::new(
        "GET",
        &repo_path(&format!("actions/runs/{a_flush}")),
        1,
        limited(
            403,
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            vec![],
        ),
    ));
    h.clock.advance(TimeDelta::minutes(10));
    h.fake.finish_runs("success");
    let waits = h.github.stats().rate_limit_waits;
    let started = Instant::now();
    let tick = h.engine.tick().await.unwrap();
    assert!(tick.failures.is_empty(), "{tick}");
    assert!(started.elapsed() >= Duration::from_secs(1), "retry-after: 1 was waited out");
    assert_eq!(h.github.stats().rate_limit_waits - waits, 2);
    assert_eq!((h.state(A).await.as_str(), h.state(B).await.as_str()), ("live in staging", "live in dev"));
    h.fake.heal();

    // 4. A's check runs come back as truncated JSON (permanent); B, approved, heads for staging.
    h.clock.advance(TimeDelta::hours(10));
    h.fake.nightly(A, true);
    h.fake.nightly(B, true);
    h.fake.inject(Fault::new("GET", &repo_path(&format!("commits/{A}/check-runs")), 1, FaultKind::Truncate));
    h.approve("dan", "staging", B).await;
    let tick = h.engine.tick().await.unwrap();
    let error = the_failure(&tick, A, "list check runs");
    assert!(!error.is_temporary(), "{error}");
    assert_eq!(h.state(B).await, "deploying to staging (attempt 1)");
    h.fake.heal();

    // 5. A's commit statuses answer too late for the client, on every try: a temporary failure, quickly.
    h.fake.inject(Fault::new(
        "GET",
        &repo_path(&format!("commits/{A}/statuses")),
        4,
        FaultKind::Delay(Duration::from_secs(1)),
    ));
    let started = Instant::now();
    let tick = h.engine.tick().await.unwrap();
    assert!(the_failure(&tick, A, "list commit statuses").is_temporary());
    assert!(started.elapsed() < Duration::from_secs(3), "timeouts cut the waits: {:?}", started.elapsed());
    h.fake.heal();

    // 6. A, approved, heads for prod. Then every connection reading its run
    //    is closed unanswered, on every try (a read is retried after a
    //    transport failure); B's staging deploy ends and its flush starts.
    h.approve("pat", "prod", A).await;
    h.approve("dan", "prod", A).await;
    h.run().await;
    assert_eq!(h.state(A).await, "deploying to prod (attempt 1)");
    let a_prod = h.fake.run_of(&key(A, "prod", "deploy")).unwrap();
    h.fake.inject(Fault::new("GET", &repo_path(&format!("actions/runs/{a_prod}")), usize::MAX, FaultKind::Drop));
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    let retries = h.github.stats().retries;
    let started = Instant::now();
    let tick = h.engine.tick().await.unwrap();
    let error = the_failure(&tick, A, "get workflow run");
    assert!(error.is_temporary(), "{error}");
    let transport = std::iter::successors(Some(error as &dyn std::error::Error), |e| e.source())
        .find_map(|e| e.downcast_ref::<reqwest::Error>())
        .expect("a transport failure");
    assert!(transport.is_request() && !transport.is_timeout(), "closed, not timed out: {transport:?}");
    let shown = error.to_string();
    assert!(shown.contains("connection closed"), "the message says what happened: {shown}");
    assert_eq!(h.fake.fault_hits(), [4], "the first try and three retries");
    assert_eq!(h.github.stats().retries - retries, 3);
    assert!(started.elapsed() < Duration::from_secs(2), "short backoffs: {:?}", started.elapsed());
    assert_eq!(h.state(B).await, "flushing staging");
    // Still dropped at the next poll: A waits, named again, B is not held up.
    h.clock.advance(TimeDelta::seconds(30));
    let tick = h.engine.tick().await.unwrap();
    assert!(the_failure(&tick, A, "get workflow run").is_temporary());
    assert_eq!(h.fake.fault_hits(), [8]);
    // Connections answered again: A's deploy is read as ended and its flush starts.
    h.fake.heal();
    h.run().await;
    assert_eq!(h.state(A).await, "flushing prod");

    // 7. A slow server (every answer 20 ms late, within the timeout): slower, nothing fails.
    h.fake.inject(Fault::new("GET", "/*", usize::MAX, FaultKind::Delay(Duration::from_millis(20))));
    h.runs_end(TimeDelta::minutes(10), "success").await;
    assert_eq!((h.state(A).await.as_str(), h.state(B).await.as_str()), ("live in prod", "live in staging"));
    h.fake.heal();

    // Never twice: one dispatch reached GitHub, and one run exists, per idempotency key.
    let dispatches = h.fake.dispatches_per_key();
    assert!(dispatches.values().all(|n| *n == 1), "{dispatches:#?}");
    assert_eq!(dispatches.len(), 10, "A: deploy and flush into 3 stages; B: into 2: {dispatches:#?}");
    assert!(h.fake.runs_per_key().values().all(|n| *n == 1));
}

#[tokio::test]
async fn a_dispatch_that_timed_out_is_not_repeated_while_its_run_is_not_listed_yet() {
    let h = harness().await;
    h.fake.push(A, "alice", &["pipelines/a.py"]);
    // GitHub starts the run but the answer never arrives; the run shows in
    // the list of runs only from the third listing on.
    h.fake.lock().list_lag = 2;
    h.fake.inject(
        Fault::new(
            "POST",
            &repo_path("actions/workflows/deploy.yml/dispatches"),
            1,
            FaultKind::Delay(Duration::from_secs(1)),
        )
        .when_body_contains(&key(A, "dev", "deploy")),
    );
    let notice = Notice::Merged { sha: A.into(), at: atlas_promote_core::Clock::now(&h.clock) };
    let tick = h.engine.handle(notice).await.unwrap();
    assert!(the_failure(&tick, A, "dispatch workflow").is_temporary());
    for _ in 0..4 {
        let tick = h.engine.tick().await.unwrap();
        if tick.failures.is_empty() {
            break;
        }
        let error = the_failure(&tick, A, "find workflow run");
        assert!(error.is_temporary() && error.to_string().contains("not listed yet"), "{error}");
    }
    assert_eq!(h.state(A).await, "deploying to dev (attempt 1)");
    assert_eq!(h.fake.dispatches_per_key()[&key(A, "dev", "deploy")], 1, "not dispatched again");
    assert_eq!(h.fake.runs_per_key()[&key(A, "dev", "deploy")], 1);
}

#[tokio::test]
async fn a_read_whose_answer_is_cut_short_of_its_declared_length_is_retried() {
    let h = harness().await;
    h.fake.push(A, "alice", &["pipelines/a.py"]);
    h.merged(A).await;
    assert_eq!(h.state(A).await, "deploying to dev (attempt 1)");
    let a_dev = h.fake.run_of(&key(A, "dev", "deploy")).unwrap();

    // Twice a 200 that declares more bytes than it sends, then closes: a
    // proxy restarting mid-answer. Reading the run succeeds on the third try.
    h.fake.inject(Fault::new("GET", &repo_path(&format!("actions/runs/{a_dev}")), 2, FaultKind::CutShort));
    h.clock.advance(TimeDelta::minutes(5));
    h.fake.finish_runs("success");
    let retries = h.github.stats().retries;
    let tick = h.engine.tick().await.unwrap();

    assert!(tick.failures.is_empty(), "a body cut short is temporary and retried: {tick}");
    assert_eq!(h.fake.fault_hits(), [2]);
    assert_eq!(h.github.stats().retries - retries, 2);
    assert_eq!(h.state(A).await, "flushing dev");
}
