//! The working set: finished promotions leave the engine's active index but
//! stay readable, and what a tick reads does not grow with them (DESIGN §8).

use std::sync::Arc;

use chrono::TimeDelta;

use crate::backend::StateStore;
use crate::engine::records::ACTIVE_PREFIX;
use crate::policy::Policy;
use crate::testkit::CountingStore;
use crate::testkit::{Scenario, default_start};

/// How many candidates the suite merges, one after another.
const CANDIDATES: usize = 60;

/// Check the working set on `store` (empty), through the engine: trunk
/// candidates merged one after another each go live in dev and supersede
/// the one before, so all but the last end.
///
/// Then: the store's active markers (under the engine's `active/` prefix)
/// name exactly the promotions that have not ended; every ended one is
/// still readable; and the documents a merge and its ticks read (every
/// `get`, `list` and `get_if_changed` that returns one) are as many with
/// 59 ended promotions as with 10. A store whose listing walked ended
/// promotions, or an engine that read them each tick, fails here.
pub async fn working_set_suite(store: Arc<dyn StateStore>) {
    let counting = Arc::new(CountingStore::new(store));
    let mut s = Scenario::with_store(Policy::atlas(), counting.clone(), default_start());
    let mut read = Vec::with_capacity(CANDIDATES);
    for i in 0..CANDIDATES {
        let before = counting.documents_read();
        s.merge(&sha(i), "alice", &["src/app.rs"]).await.expect("the merge is recorded");
        s.run_until_idle().await.expect("the engine ticks");
        read.push(counting.documents_read() - before);
        s.advance(TimeDelta::minutes(10));
    }

    let promotions = counting.list("promotion/").await.expect("promotions are listed");
    assert_eq!(promotions.len(), CANDIDATES, "every promotion stays readable");
    let mut active: Vec<String> = Vec::new();
    let mut ended = 0;
    for i in 0..CANDIDATES {
        let record = s.engine.promotion(&sha(i)).await.expect("an ended promotion is still readable by its sha");
        if record.value.promotion.state.is_ended() {
            ended += 1;
        } else {
            active.push(record.key);
        }
    }
    assert!(ended >= CANDIDATES - 2, "each candidate supersedes the one before: {ended} of {CANDIDATES} ended");
    let mut markers: Vec<String> = counting
        .list(ACTIVE_PREFIX)
        .await
        .expect("the active index is listed")
        .into_iter()
        .filter_map(|d| d.key.strip_prefix(ACTIVE_PREFIX).map(str::to_owned))
        .collect();
    markers.sort();
    active.sort();
    assert_eq!(markers, active, "the active index holds the promotions that have not ended, and only those");

    // The first rounds fill the pipeline; from round 10 on each one is alike.
    let steady = read[10];
    for (round, n) in read.iter().enumerate().skip(10) {
        assert_eq!(
            *n, steady,
            "round {round} read {n} documents, round 10 read {steady}: the cost grows with finished promotions \
             (every round: {read:?})"
        );
    }
}

fn sha(i: usize) -> String {
    format!("{i:07x}")
}
