use serde_json::{Value, json};

use crate::audit;
use crate::audit::AuditEntry;
use crate::backend::{Fetched, StateStore, Write};
use crate::error::Error;

const PREFIX: &str = "testkit/";

fn put(key: &str, expected: Option<u64>, value: Value) -> Write {
    Write::Put { key: key.to_owned(), expected, value }
}

fn entry(action: &str, message: &str) -> AuditEntry {
    AuditEntry {
        // Whole seconds: a store may keep no finer precision.
        at: chrono::DateTime::from_timestamp(1_777_968_000, 0).unwrap_or_default(),
        actor: "testkit".into(),
        action: action.into(),
        subject: "9fceb02".into(),
        message: message.into(),
    }
}

fn assert_conflict(result: crate::Result<Vec<u64>>, key: &str, rule: &str) {
    match result {
        Err(Error::Conflict { key: k, .. }) if k == key => {}
        Err(Error::Conflict { key: k, .. }) => {
            panic!("StateStore contract: {rule}: expected a conflict on {key:?}, got one on {k:?}")
        }
        other => panic!("StateStore contract: {rule}: expected Error::Conflict on {key:?}, got {other:?}"),
    }
}

/// Check a [`StateStore`] against its contract.
///
/// Run it on an empty store: it writes documents under `testkit/` and
/// audit entries with actor `testkit`, and expects the audit log to be
/// exactly what it appended.
///
/// It checks: create, read, update with the right version; a stale write is
/// a [`Conflict`](Error::Conflict) that changes nothing; a commit with one
/// stale write among several applies none of them nor its audit entries;
/// `get_if_changed` is `Unchanged` only at the current version; delete;
/// listing by prefix in key order; versions start at 1 and grow by
/// one; the audit log is numbered from 1 without gaps, `audit(after)`
/// returns what follows `after`, and the hash chain verifies.
pub async fn state_store_suite(store: &dyn StateStore) {
    let existing = store.list(PREFIX).await.expect("list");
    assert!(
        existing.is_empty(),
        "state_store_suite needs an empty store; found {} documents under {PREFIX}",
        existing.len()
    );
    let audit_before = store.audit(0).await.expect("audit(0)");
    assert!(
        audit_before.is_empty(),
        "state_store_suite needs an empty store; its audit log has {} records",
        audit_before.len()
    );

    // Create and read.
    let a = "testkit/a";
    assert_eq!(store.get(a).await.expect("get"), None, "a key never written reads as None");
    let versions = store.commit(vec![put(a, None, json!({"n": 1}))], vec![]).await.expect("create a document");
    assert_eq!(versions, [1], "StateStore contract: versions start at 1");
    let doc = store.get(a).await.expect("get").expect("a created document reads back");
    assert_eq!((doc.key.as_str(), doc.version, &doc.value), (a, 1, &json!({"n": 1})), "the document as written");

    // Creating it again is stale.
    assert_conflict(
        store.commit(vec![put(a, None, json!({"n": 99}))], vec![]).await,
        a,
        "creating a document that exists is a conflict",
    );

    // Update with the right version, then versions grow by one.
    for (expected, n) in [(1, 2), (2, 3), (3, 4)] {
        let versions = store.commit(vec![put(a, Some(expected), json!({"n": n}))], vec![]).await.expect("update");
        assert_eq!(versions, [expected + 1], "StateStore contract: versions grow by one per write");
    }
    let doc = store.get(a).await.expect("get").expect("document");
    assert_eq!((doc.version, &doc.value), (4, &json!({"n": 4})), "the latest write is read back");

    // get_if_changed: unchanged only at the current version.
    assert_eq!(
        store.get_if_changed(a, 4).await.expect("get_if_changed"),
        Fetched::Unchanged,
        "StateStore contract: get_if_changed at the current version is Unchanged"
    );
    assert_eq!(
        store.get_if_changed(a, 3).await.expect("get_if_changed"),
        Fetched::Current(Some(doc.clone())),
        "StateStore contract: get_if_changed at an older version returns the document as get does"
    );
    assert_eq!(
        store.get_if_changed("testkit/never", 1).await.expect("get_if_changed"),
        Fetched::Current(None),
        "StateStore contract: get_if_changed of a missing key is Current(None)"
    );

    // A stale write is a conflict and changes nothing.
    match store.commit(vec![put(a, Some(2), json!({"n": 99}))], vec![]).await {
        Err(Error::Conflict { key, expected, found }) => {
            assert_eq!(key, a, "the conflict names the key");
            assert_eq!(expected, Some(2), "the conflict names the version the writer expected");
            assert_eq!(found, Some(4), "the conflict names the version in the store");
        }
        other => panic!("StateStore contract: a stale write is Error::Conflict, got {other:?}"),
    }
    let doc = store.get(a).await.expect("get").expect("document");
    assert_eq!((doc.version, &doc.value), (4, &json!({"n": 4})), "StateStore contract: a stale write changes nothing");

    // Updating a document that does not exist is stale too.
    assert_conflict(
        store.commit(vec![put("testkit/ghost", Some(1), json!(null))], vec![]).await,
        "testkit/ghost",
        "a write expecting a version of a missing document is a conflict",
    );
    assert_eq!(store.get("testkit/ghost").await.expect("get"), None, "a failed write creates nothing");

    // All or nothing: one stale write among several.
    let (b, c) = ("testkit/b", "testkit/c");
    let result = store
        .commit(
            vec![put(b, None, json!("b")), put(a, Some(3), json!({"n": 99})), put(c, None, json!("c"))],
            vec![entry("testkit.failed", "must not be appended")],
        )
        .await;
    assert_conflict(result, a, "a commit with one stale write fails");
    assert_eq!(
        store.get(b).await.expect("get"),
        None,
        "StateStore contract: a failed commit applies no write (before the stale one)"
    );
    assert_eq!(
        store.get(c).await.expect("get"),
        None,
        "StateStore contract: a failed commit applies no write (after the stale one)"
    );
    assert_eq!(
        store.get(a).await.expect("get").map(|d| d.version),
        Some(4),
        "a failed commit leaves the stale key alone"
    );
    assert!(
        store.audit(0).await.expect("audit").is_empty(),
        "StateStore contract: a failed commit appends no audit entry"
    );

    // Several writes in one commit, with audit entries.
    let versions = store
        .commit(
            vec![put(b, None, json!("b")), put(a, Some(4), json!({"n": 5})), put(c, None, json!("c"))],
            vec![entry("testkit.first", "one"), entry("testkit.second", "two")],
        )
        .await
        .expect("a commit of several writes");
    assert_eq!(versions, [1, 5, 1], "commit returns each write's new version, in order");
    let audit = store.audit(0).await.expect("audit");
    assert_eq!(
        audit.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2],
        "StateStore contract: audit records are numbered from 1"
    );
    assert_eq!(audit[0].entry, entry("testkit.first", "one"), "the audit entry as appended");
    assert_eq!(audit[1].entry, entry("testkit.second", "two"), "audit entries in the order given");

    // Delete.
    let versions = store.commit(vec![Write::Delete { key: c.into(), expected: 1 }], vec![]).await.expect("delete");
    assert_eq!(versions.len(), 1, "commit returns one version per write");
    assert_eq!(store.get(c).await.expect("get"), None, "a deleted document is gone");
    assert_eq!(
        store.get_if_changed(c, 1).await.expect("get_if_changed"),
        Fetched::Current(None),
        "StateStore contract: get_if_changed of a deleted document is Current(None)"
    );
    assert_conflict(
        store.commit(vec![Write::Delete { key: b.into(), expected: 7 }], vec![]).await,
        b,
        "a delete at a stale version is a conflict",
    );
    assert!(store.get(b).await.expect("get").is_some(), "a stale delete removes nothing");
    assert_conflict(
        store.commit(vec![Write::Delete { key: c.into(), expected: 1 }], vec![]).await,
        c,
        "deleting a document that is gone is a conflict",
    );
    store.commit(vec![put(c, None, json!("again"))], vec![]).await.expect("a deleted key can be created again");
    let doc = store.get(c).await.expect("get").expect("re-created document");
    assert_eq!(doc.value, json!("again"), "the re-created document");

    // List by prefix, ordered by key.
    let keys = ["testkit/list/m", "testkit/list/a", "testkit/list/z", "testkit/lisa", "testkit/list"];
    let writes = keys.iter().map(|k| put(k, None, json!(k))).collect();
    store.commit(writes, vec![]).await.expect("create documents to list");
    let listed: Vec<String> = store.list("testkit/list/").await.expect("list").into_iter().map(|d| d.key).collect();
    assert_eq!(
        listed,
        ["testkit/list/a", "testkit/list/m", "testkit/list/z"],
        "StateStore contract: list returns the keys with the prefix, ordered by key"
    );
    let all: Vec<String> = store.list(PREFIX).await.expect("list").into_iter().map(|d| d.key).collect();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "StateStore contract: list is ordered by key");
    assert!(!all.contains(&"testkit/ghost".to_owned()), "list never shows a document that was not created");
    assert!(
        store.list("testkit/nothing-here/").await.expect("list").is_empty(),
        "a prefix with no documents lists nothing"
    );

    // An audit-only commit, and reading after a seq.
    assert_eq!(
        store.commit(vec![], vec![entry("testkit.third", "three")]).await.expect("audit-only commit"),
        Vec::<u64>::new()
    );
    let audit = store.audit(0).await.expect("audit");
    assert_eq!(
        audit.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3],
        "StateStore contract: audit records are numbered without gaps"
    );
    let after = store.audit(1).await.expect("audit(1)");
    assert_eq!(
        after.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [2, 3],
        "audit(after) returns the records with seq > after"
    );
    assert!(store.audit(3).await.expect("audit(3)").is_empty(), "audit(last) returns nothing");
    if let Err(brk) = audit::verify(&audit) {
        panic!("StateStore contract: the audit log's hash chain verifies, but: {brk}");
    }
    assert_eq!(audit[0].prev, audit::GENESIS, "the first record chains to GENESIS");
    assert_eq!(audit[2].prev, audit[1].hash, "each record carries the hash of the one before");
}
