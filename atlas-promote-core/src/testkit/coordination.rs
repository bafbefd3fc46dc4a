//! Conformance suites for what several instances share through a
//! [`StateStore`]: leases, deliveries and the outbox.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::backend::{AuditEntry, StateStore, Write};
use crate::coordination::{ClaimOutbox, Commit, Delivery, LeaseOutcome, OutboxEntry};
use crate::error::Error;

/// A fixed start, in whole seconds (a store may keep no finer precision).
fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_777_968_000, 0).unwrap_or_default()
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

/// Check a [`StateStore`]'s leases against its contract.
///
/// Run it on a store with no lease under `testkit/`. It checks: a free lease
/// is granted with token 1; another holder is refused while it runs and
/// told who holds it; the holder acquiring again renews it with the same
/// token; renewal extends it only while it has not lapsed; a lapsed lease
/// goes to the next holder with the next token, and the old holder can
/// neither renew nor release it; release frees it at once; listing by
/// prefix.
pub async fn lease_suite(store: &dyn StateStore) {
    let name = "testkit/lease/a";
    let ttl = secs(30);
    assert!(
        store.leases("testkit/").await.expect("leases").is_empty(),
        "lease_suite needs a store without leases under testkit/"
    );

    // A free lease is granted.
    let first = match store.acquire_lease(name, "one", t0(), ttl).await.expect("acquire") {
        LeaseOutcome::Acquired(lease) => lease,
        held => panic!("StateStore contract: a free lease is granted, got {held:?}"),
    };
    assert_eq!(
        (first.name.as_str(), first.holder.as_str(), first.until, first.token),
        (name, "one", t0() + ttl, 1),
        "StateStore contract: a granted lease runs until now + ttl, with token 1 the first time"
    );

    // Another holder is refused while it runs.
    match store.acquire_lease(name, "two", t0() + secs(29), ttl).await.expect("acquire") {
        LeaseOutcome::Held(held) => assert_eq!(held, first, "a refusal names the lease as held"),
        got => panic!("StateStore contract: a running lease is refused to another holder, got {got:?}"),
    }

    // The holder acquiring again renews it, same token.
    let again = store.acquire_lease(name, "one", t0() + secs(10), ttl).await.expect("acquire").acquired();
    let again = again.expect("StateStore contract: the holder acquiring its own lease again gets it");
    assert_eq!((again.until, again.token), (t0() + secs(40), 1), "re-acquiring renews the lease, same token");

    // Renewal extends it while it runs.
    let renewed = store.renew_lease(&again, t0() + secs(20), ttl).await.expect("renew");
    let renewed = renewed.expect("StateStore contract: a running lease is renewed for its holder");
    assert_eq!((renewed.until, renewed.token), (t0() + secs(50), 1), "renewal runs until now + ttl");

    // It lapses: the next holder gets it with the next token.
    let lapsed_at = t0() + secs(50);
    assert_eq!(
        store.renew_lease(&renewed, lapsed_at, ttl).await.expect("renew"),
        None,
        "StateStore contract: a lapsed lease is not renewed (until <= now)"
    );
    let second = store.acquire_lease(name, "two", lapsed_at, ttl).await.expect("acquire").acquired();
    let second = second.expect("StateStore contract: a lapsed lease is granted to another holder");
    assert_eq!(
        (second.holder.as_str(), second.until, second.token),
        ("two", lapsed_at + ttl, 2),
        "a lease changing hands gets the next token"
    );

    // The old holder has lost it.
    assert_eq!(
        store.renew_lease(&renewed, lapsed_at + secs(1), ttl).await.expect("renew"),
        None,
        "StateStore contract: a holder whose lease changed hands cannot renew it"
    );
    assert!(
        !store.release_lease(&renewed).await.expect("release"),
        "StateStore contract: a holder whose lease changed hands cannot release it"
    );
    match store.acquire_lease(name, "one", lapsed_at + secs(1), ttl).await.expect("acquire") {
        LeaseOutcome::Held(held) => assert_eq!(held, second, "the new holder keeps it"),
        got => panic!("StateStore contract: the old holder is refused a lease that changed hands, got {got:?}"),
    }

    // Release frees it at once, and only once.
    assert!(store.release_lease(&second).await.expect("release"), "the holder releases its lease");
    assert!(
        !store.release_lease(&second).await.expect("release"),
        "StateStore contract: a released lease is not released twice"
    );
    assert_eq!(
        store.renew_lease(&second, lapsed_at + secs(2), ttl).await.expect("renew"),
        None,
        "StateStore contract: a released lease is not renewed"
    );
    let third = store.acquire_lease(name, "one", lapsed_at + secs(2), ttl).await.expect("acquire").acquired();
    let third = third.expect("StateStore contract: a released lease is free at once");
    assert_eq!(third.token, 3, "a released lease changing hands gets the next token");

    // Listing by prefix, ordered by name.
    for other in ["testkit/lease/c", "testkit/lease/b", "testkit/leasex"] {
        store.acquire_lease(other, "one", t0(), ttl).await.expect("acquire");
    }
    let names: Vec<String> =
        store.leases("testkit/lease/").await.expect("leases").into_iter().map(|l| l.name).collect();
    assert_eq!(
        names,
        ["testkit/lease/a", "testkit/lease/b", "testkit/lease/c"],
        "StateStore contract: leases(prefix) lists the names with the prefix, ordered"
    );
}

/// Check a [`StateStore`]'s delivery records against its contract.
///
/// Run it on a store with no delivery recorded from the source `testkit`.
/// It checks: a delivery id is first once and a duplicate after; the same
/// id from another source is another delivery; pruning forgets what was
/// recorded before the given time, and only that.
pub async fn delivery_suite(store: &dyn StateStore) {
    let record = |id: &'static str, source: &'static str, at| async move {
        store.record_delivery(source, id, at).await.expect("record_delivery")
    };
    assert_eq!(
        record("d-1", "testkit", t0()).await,
        Delivery::First,
        "StateStore contract: a new delivery id is first"
    );
    assert_eq!(
        record("d-1", "testkit", t0() + secs(5)).await,
        Delivery::Duplicate,
        "StateStore contract: a delivery id recorded before is a duplicate"
    );
    assert_eq!(
        record("d-1", "testkit-other", t0()).await,
        Delivery::First,
        "StateStore contract: the same id from another source is another delivery"
    );
    assert_eq!(record("d-2", "testkit", t0() + secs(60)).await, Delivery::First, "a second id is first");

    // Prune what was recorded before t0 + 60 s: d-1 (both sources), not d-2.
    let pruned = store.prune_deliveries(t0() + secs(60)).await.expect("prune_deliveries");
    assert_eq!(
        pruned, 2,
        "StateStore contract: pruning removes the deliveries recorded before the time, and says how many"
    );
    assert_eq!(
        record("d-2", "testkit", t0() + secs(61)).await,
        Delivery::Duplicate,
        "StateStore contract: pruning keeps the deliveries recorded at or after the time"
    );
    assert_eq!(
        record("d-1", "testkit", t0() + secs(61)).await,
        Delivery::First,
        "StateStore contract: a pruned delivery id is first again"
    );
}

/// Check a [`StateStore`]'s outbox against its contract.
///
/// Run it on a store whose outbox is empty and with no document under
/// `testkit/outbox/`. It checks: entries are appended by a commit, with its
/// writes, and not by a failed one; an id already in the outbox is a
/// conflict that writes nothing; claiming returns the due entries oldest
/// first, counts the attempt and hides them until the claim's hold ends;
/// a failed attempt is claimed again at its next attempt time with its
/// error; a delivered entry is never claimed again.
pub async fn outbox_suite(store: &dyn StateStore) {
    let created = t0();
    let entry =
        |id: &str, n: i64| OutboxEntry::new(id, "promoted", json!({"sha": "9fceb02", "n": n}), created + secs(n));
    let doc = "testkit/outbox/doc";
    let put = |expected| Write::Put { key: doc.to_owned(), expected, value: json!({"n": 1}) };
    let audit = AuditEntry {
        at: created,
        actor: "testkit".into(),
        action: "testkit.outbox".into(),
        subject: "9fceb02".into(),
        message: "outbox entries appended".into(),
    };

    assert!(
        store.claim_outbox(ClaimOutbox::at(created + secs(3600))).await.expect("claim_outbox").is_empty(),
        "outbox_suite needs a store with an empty outbox"
    );

    // A commit appends entries with its writes.
    let versions = store
        .commit_with(
            Commit::new()
                .with_writes(vec![put(None)])
                .with_audit(vec![audit.clone()])
                .with_outbox(entry("testkit-b", 2))
                .with_outbox(entry("testkit-a", 1)),
        )
        .await
        .expect("a commit with outbox entries");
    assert_eq!(versions, [1], "commit_with returns the versions of its writes");

    // A failed commit appends nothing.
    let stale = store.commit_with(Commit::new().with_writes(vec![put(None)]).with_outbox(entry("testkit-c", 3))).await;
    assert!(
        matches!(stale, Err(Error::Conflict { .. })),
        "StateStore contract: a stale write in commit_with is a conflict, got {stale:?}"
    );
    // An id already in the outbox is a conflict, and nothing is written.
    let taken =
        store.commit_with(Commit::new().with_writes(vec![put(Some(1))]).with_outbox(entry("testkit-a", 4))).await;
    match taken {
        Err(Error::Conflict { key, .. }) => {
            assert_eq!(key, "outbox/testkit-a", "the conflict names the outbox id")
        }
        other => panic!("StateStore contract: an outbox id already taken is a conflict, got {other:?}"),
    }
    assert_eq!(
        store.get(doc).await.expect("get").map(|d| d.version),
        Some(1),
        "StateStore contract: a commit refused for its outbox writes nothing"
    );

    // Nothing is due before it was created.
    assert!(
        store.claim_outbox(ClaimOutbox::at(created - secs(1))).await.expect("claim").is_empty(),
        "an entry is due from the time it was written"
    );

    // Claim: oldest first, attempt counted, held from others.
    let now = created + secs(10);
    let claimed = store.claim_outbox(ClaimOutbox::at(now).with_hold(secs(30))).await.expect("claim");
    let ids: Vec<&str> = claimed.iter().map(|i| i.entry.id.as_str()).collect();
    assert_eq!(ids, ["testkit-a", "testkit-b"], "StateStore contract: claim returns due entries, oldest first");
    assert_eq!(claimed[0].entry, entry("testkit-a", 1), "the entry as appended");
    assert_eq!(
        (claimed[0].attempts, claimed[0].next_attempt_at, claimed[0].last_error.as_deref()),
        (1, now + secs(30), None),
        "StateStore contract: a claim counts the attempt and holds the entry until now + hold"
    );
    assert!(
        store.claim_outbox(ClaimOutbox::at(now + secs(29))).await.expect("claim").is_empty(),
        "StateStore contract: a claimed entry is not claimed again while the claim holds"
    );

    // A failed attempt is due again at its next attempt time, with its error.
    store.outbox_failed("testkit-a", "receiver answered 503", now + secs(5)).await.expect("outbox_failed");
    store.outbox_delivered("testkit-b").await.expect("outbox_delivered");
    let again = store.claim_outbox(ClaimOutbox::at(now + secs(5)).with_limit(10)).await.expect("claim");
    assert_eq!(again.len(), 1, "StateStore contract: a delivered entry is never claimed again");
    assert_eq!(
        (again[0].entry.id.as_str(), again[0].attempts, again[0].last_error.as_deref()),
        ("testkit-a", 2, Some("receiver answered 503")),
        "StateStore contract: a failed entry is claimed again with its attempts and last error"
    );

    // A claim whose claimant died is claimed again once its hold ends.
    let hold_end = again[0].next_attempt_at;
    let retaken = store.claim_outbox(ClaimOutbox::at(hold_end).with_limit(1)).await.expect("claim");
    assert_eq!(retaken.iter().map(|i| i.attempts).collect::<Vec<_>>(), [3], "an abandoned claim lapses");

    // Delivered: gone for good; unknown ids are NotFound.
    store.outbox_delivered("testkit-a").await.expect("outbox_delivered");
    assert!(
        store.claim_outbox(ClaimOutbox::at(hold_end + secs(3600))).await.expect("claim").is_empty(),
        "StateStore contract: delivered entries are never claimed again"
    );
    for result in [
        store.outbox_delivered("testkit-a").await,
        store.outbox_delivered("testkit-none").await,
        store.outbox_failed("testkit-none", "x", now).await,
    ] {
        assert!(
            matches!(result, Err(Error::NotFound { .. })),
            "StateStore contract: marking an unknown or delivered entry is NotFound, got {result:?}"
        );
    }
    // A delivered id stays taken.
    let reused = store.commit_with(Commit::new().with_outbox(entry("testkit-b", 9))).await;
    assert!(
        matches!(reused, Err(Error::Conflict { .. })),
        "StateStore contract: a delivered entry's id stays taken, got {reused:?}"
    );
    // The limit is honoured.
    let many = (0..5).fold(Commit::new(), |c, n| c.with_outbox(entry(&format!("testkit-m{n}"), 100 + n)));
    store.commit_with(many).await.expect("a commit of five outbox entries");
    let limited = store.claim_outbox(ClaimOutbox::at(created + secs(200)).with_limit(2)).await.expect("claim");
    assert_eq!(
        limited.iter().map(|i| i.entry.id.as_str()).collect::<Vec<_>>(),
        ["testkit-m0", "testkit-m1"],
        "StateStore contract: claim returns at most limit entries, oldest first"
    );
}
