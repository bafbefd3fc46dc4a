use chrono::{DateTime, Utc};

use crate::backend::ApprovalSource;
use crate::error::Error;
use crate::evidence::{ApprovalDecision, ApprovalRecord};

/// What an [`ApprovalSource`] under test can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Whether [`submit`](ApprovalSource::submit) records decisions (else it must be [`Error::Unsupported`]).
    pub can_submit: bool,
}

fn record(approver: &str, stage: &str, sha: &str, decision: ApprovalDecision, secs: i64) -> ApprovalRecord {
    ApprovalRecord {
        approver: approver.into(),
        roles: vec![],
        stage: stage.into(),
        sha: sha.into(),
        decision,
        // Whole seconds: a source may keep no finer precision.
        at: DateTime::<Utc>::from_timestamp(1_777_968_000 + secs, 0).unwrap_or_default(),
    }
}

/// Whether `got` holds `want`, ignoring roles (a source may leave them for the engine to fill in).
fn holds(got: &[ApprovalRecord], want: &ApprovalRecord) -> bool {
    got.iter().any(|r| {
        r.approver == want.approver
            && r.stage == want.stage
            && r.sha == want.sha
            && r.decision == want.decision
            && r.at == want.at
    })
}

/// Check an [`ApprovalSource`] against its contract.
///
/// With `can_submit`, it submits an approval, a rejection and a withdrawal
/// for stage `testkit-prod` and commit `testkit-sha-1`, plus records for
/// another stage and another commit, and checks that
/// [`approvals`](ApprovalSource::approvals) returns every record for its
/// stage and commit, with any records of other stages or commits returned
/// being only extras. Without it, `submit` must be [`Error::Unsupported`].
/// Either way, asking about a commit with no records is `Ok`.
pub async fn approval_source_suite(source: &dyn ApprovalSource, capabilities: Capabilities) {
    let (stage, sha) = ("testkit-prod", "testkit-sha-1");
    let none = source.approvals(stage, "testkit-sha-without-records").await;
    assert!(none.is_ok(), "ApprovalSource contract: a commit with no records is Ok, got {none:?}");

    let ours = [
        record("testkit-pat", stage, sha, ApprovalDecision::Approve, 0),
        record("testkit-dan", stage, sha, ApprovalDecision::Reject, 60),
        record("testkit-erin", stage, sha, ApprovalDecision::Approve, 120),
        record("testkit-erin", stage, sha, ApprovalDecision::Withdraw, 180),
    ];
    if !capabilities.can_submit {
        match source.submit(&ours[0]).await {
            Err(Error::Unsupported { .. }) => return,
            other => {
                panic!("ApprovalSource contract: a source that cannot submit returns Error::Unsupported, got {other:?}")
            }
        }
    }

    let others = [
        record("testkit-pat", "testkit-staging", sha, ApprovalDecision::Approve, 0),
        record("testkit-pat", stage, "testkit-sha-2", ApprovalDecision::Reject, 0),
    ];
    source.submit(&ours[0]).await.expect("submit an approval");
    let got = source.approvals(stage, sha).await.expect("approvals");
    assert!(
        holds(&got, &ours[0]),
        "ApprovalSource contract: after submit returns, approvals includes the record; got {got:?}"
    );

    for r in ours[1..].iter().chain(&others) {
        source.submit(r).await.expect("submit");
    }
    let got = source.approvals(stage, sha).await.expect("approvals");
    for want in &ours {
        assert!(
            holds(&got, want),
            "ApprovalSource contract: approvals returns every record (approvals, rejections, withdrawals) for the stage and commit; missing {want:?} in {got:?}"
        );
    }
    let other_sha = source.approvals(stage, "testkit-sha-2").await.expect("approvals of another commit");
    assert!(
        holds(&other_sha, &others[1]),
        "records of another commit are kept apart and returned for it; got {other_sha:?}"
    );
    let other_stage = source.approvals("testkit-staging", sha).await.expect("approvals for another stage");
    assert!(
        holds(&other_stage, &others[0]),
        "records of another stage are kept apart and returned for it; got {other_stage:?}"
    );
}
