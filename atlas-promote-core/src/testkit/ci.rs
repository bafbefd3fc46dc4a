use crate::backend::CiProvider;
use crate::error::Error;
use crate::run::{IdempotencyKey, RunId, RunRequest};

/// Check a [`CiProvider`] against its contract, triggering `sample` once.
///
/// It checks: `trigger` returns a run started with `sample.key`; `find` by
/// that key returns the same run; `find` with a key never triggered returns
/// `None`; `status` of the run is that run and never leaves a finished
/// status; `cancel` succeeds, also on a run already cancelled; `status` and
/// `cancel` of an unknown run id are [`Error::NotFound`].
///
/// Choose a `sample` whose key was never triggered before.
pub async fn ci_provider_suite(ci: &dyn CiProvider, sample: RunRequest) {
    let unknown = IdempotencyKey::new("0000000000000000000000000000000000000000", "testkit-never", sample.kind, 9_999);
    assert_ne!(unknown, sample.key, "pick a sample key other than the suite's unknown key");
    assert_eq!(
        ci.find(&unknown).await.expect("find with an unknown key"),
        None,
        "CiProvider contract: find with a key never triggered returns None"
    );

    let run = ci.trigger(&sample).await.expect("trigger");
    assert_eq!(run.key, sample.key, "CiProvider contract: trigger returns the run started with the request's key");
    assert!(!run.id.0.is_empty(), "a run has an id");

    let found = ci.find(&sample.key).await.expect("find").unwrap_or_else(|| {
        panic!("CiProvider contract: once trigger returned, find with its key returns the run (key {})", sample.key)
    });
    assert_eq!(found.id, run.id, "CiProvider contract: find returns the run trigger started");
    assert_eq!(found.key, sample.key, "the found run carries its key");

    let status = ci.status(&run.id).await.expect("status of the triggered run");
    assert_eq!(status.id, run.id, "status returns the run asked about");
    assert_eq!(status.key, sample.key, "status returns the run with its key");
    assert_eq!(
        status.finished_at.is_some(),
        status.status.is_finished(),
        "finished_at is set when, and only when, the run finished"
    );

    ci.cancel(&run.id).await.expect("CiProvider contract: cancel stops a run");
    let after = ci.status(&run.id).await.expect("status after cancel");
    if status.status.is_finished() {
        assert_eq!(after.status, status.status, "CiProvider contract: a run never goes back from a finished status");
    }
    ci.cancel(&run.id).await.expect("CiProvider contract: cancelling a run again (perhaps finished) is not an error");
    let again = ci.status(&run.id).await.expect("status after a second cancel");
    if after.status.is_finished() {
        assert_eq!(again.status, after.status, "CiProvider contract: a run never goes back from a finished status");
    }

    let missing = RunId("atlas-testkit-no-such-run".into());
    match ci.status(&missing).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("CiProvider contract: status of an unknown run is Error::NotFound, got {other:?}"),
    }
}
