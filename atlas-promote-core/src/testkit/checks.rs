use std::collections::BTreeSet;

use crate::backend::{CheckQuery, CheckSource};
use crate::evidence::CheckResult;

/// The stage the suite's queries name; results are per commit, not per stage.
const STAGE: &str = "testkit";

fn missing<'a>(got: &[CheckResult], want: impl IntoIterator<Item = &'a CheckResult>) -> Vec<&'a CheckResult> {
    want.into_iter().filter(|w| !got.contains(w)).collect()
}

/// Check a [`CheckSource`] against its contract, given the results the
/// caller seeded it with (at least one).
///
/// For every commit in `seeded` it checks: a query with no names returns
/// every seeded result of that commit, and only results of that commit;
/// a query naming one check returns all its seeded results; a query
/// `since` a result's start returns every seeded result that started then
/// or later; `finished_at` is set exactly when a result finished. A commit
/// with no results gives `Ok(vec![])`.
pub async fn check_source_suite(source: &dyn CheckSource, seeded: &[CheckResult]) {
    assert!(!seeded.is_empty(), "check_source_suite needs seeded results");
    let shas: BTreeSet<&str> = seeded.iter().map(|r| r.sha.as_str()).collect();
    for sha in shas {
        let of_sha: Vec<&CheckResult> = seeded.iter().filter(|r| r.sha == sha).collect();
        let query = CheckQuery::new(STAGE, sha, vec![]);
        let got = source.checks(&query).await.expect("checks");
        let lost = missing(&got, of_sha.iter().copied());
        assert!(
            lost.is_empty(),
            "CheckSource contract: every result for the commit comes back (names empty: all); missing {lost:?} in {got:?}"
        );
        for r in &got {
            assert_eq!(r.sha, sha, "CheckSource contract: results for query.sha only; got {r:?}");
            assert_eq!(
                r.finished_at.is_some(),
                r.status.is_finished(),
                "CheckSource contract: finished_at is set exactly when finished; got {r:?}"
            );
        }

        let names: BTreeSet<&str> = of_sha.iter().map(|r| r.name.as_str()).collect();
        for name in names {
            let query = CheckQuery::new(STAGE, sha, vec![name.to_owned()]);
            let got = source.checks(&query).await.expect("checks by name");
            let lost = missing(&got, of_sha.iter().copied().filter(|r| r.name == name));
            assert!(
                lost.is_empty(),
                "CheckSource contract: every result of the named check comes back; missing {lost:?} in {got:?}"
            );
        }

        for since in of_sha.iter().map(|r| r.started_at) {
            let query = CheckQuery::new(STAGE, sha, vec![]).since(Some(since));
            let got = source.checks(&query).await.expect("checks since");
            let lost = missing(&got, of_sha.iter().copied().filter(|r| r.started_at >= since));
            assert!(
                lost.is_empty(),
                "CheckSource contract: results that started at or after `since` come back; missing {lost:?} in {got:?}"
            );
        }
    }

    let query = CheckQuery::new(STAGE, "testkit-sha-without-results", vec![]);
    let got = source.checks(&query).await.expect("CheckSource contract: no results is Ok, not an error");
    assert!(got.is_empty(), "CheckSource contract: a commit with no results gives no results; got {got:?}");
}
