//! Tampering, lost state and foreign files are refused on open, with a typed
//! error naming the record or the file; `repair` accepts a break and records it.

mod common;

use atlas_promote_core::audit::BreakKind;
use atlas_promote_core::{StateStore, Write};
use atlas_promote_sql::{Error, OpenOptions, SqlStore};
use common::{TempDir, entry};
use serde_json::json;

/// A store with five audit records and one document at version 3.
async fn seeded(dir: &TempDir) -> SqlStore {
    let store = SqlStore::open(&dir.url()).await.unwrap();
    let key = "promotion/9fceb02";
    for (n, expected) in [(1, None), (2, Some(1)), (3, Some(2))] {
        let put = Write::Put { key: key.into(), expected, value: json!({"step": n}) };
        store.commit(vec![put], vec![entry(n)]).await.unwrap();
    }
    store.commit(vec![], vec![entry(4), entry(5)]).await.unwrap();
    store
}

/// Run `sql` on the database file behind the store's back.
async fn tamper(dir: &TempDir, sql: &'static str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&format!("{}?mode=rwc", dir.url())).await.unwrap();
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

async fn refused(dir: &TempDir) -> Error {
    SqlStore::open(&dir.url()).await.expect_err("the damaged store must be refused")
}

fn broken_at(error: &Error) -> (u64, BreakKind) {
    match error {
        Error::BrokenChain { brk, .. } => (brk.seq, brk.kind.clone()),
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[tokio::test]
async fn a_changed_audit_record_is_refused_on_open_naming_its_seq() {
    let dir = TempDir::new("changed");
    seeded(&dir).await.close().await;
    tamper(&dir, "UPDATE audit SET actor = 'mallory' WHERE seq = 3").await;
    let error = refused(&dir).await;
    assert_eq!(broken_at(&error), (3, BreakKind::Changed));
    assert!(error.to_string().contains("audit record 3 was changed"), "{error}");
}

#[tokio::test]
async fn a_removed_audit_record_is_refused_on_open_naming_its_seq() {
    let dir = TempDir::new("removed");
    seeded(&dir).await.close().await;
    tamper(&dir, "DELETE FROM audit WHERE seq = 2").await;
    assert_eq!(broken_at(&refused(&dir).await), (3, BreakKind::Missing { expected: 2 }));
}

#[tokio::test]
async fn reordered_audit_records_are_refused_on_open_naming_the_seq() {
    let dir = TempDir::new("reordered");
    seeded(&dir).await.close().await;
    // Swap the contents of records 2 and 4 (the seq stays the key).
    tamper(
        &dir,
        "UPDATE audit SET message = CASE seq WHEN 2 THEN 'step 4' ELSE 'step 2' END, \
         hash = (SELECT hash FROM audit a WHERE a.seq = 6 - audit.seq) WHERE seq IN (2, 4)",
    )
    .await;
    let (seq, _) = broken_at(&refused(&dir).await);
    assert_eq!(seq, 2, "the first record out of place is named");
}

#[tokio::test]
async fn records_cut_from_the_end_are_refused_on_open() {
    let dir = TempDir::new("cut");
    seeded(&dir).await.close().await;
    tamper(&dir, "DELETE FROM audit WHERE seq >= 4").await;
    assert_eq!(broken_at(&refused(&dir).await), (5, BreakKind::Truncated { last: 3 }));
}

#[tokio::test]
async fn a_change_before_the_checkpoint_is_found_by_verify() {
    let dir = TempDir::new("verify");
    seeded(&dir).await.close().await;
    // Opened once more: the checkpoint is now at the head.
    drop(SqlStore::open(&dir.url()).await.unwrap());
    tamper(&dir, "UPDATE audit SET message = 'nothing happened' WHERE seq = 2").await;
    let store = SqlStore::open(&dir.url()).await.expect("a change before the checkpoint is not rechecked on open");
    let error = store.verify().await.unwrap_err();
    assert_eq!(broken_at(&error), (2, BreakKind::Changed));
}

#[tokio::test]
async fn documents_older_than_the_log_are_lost_state() {
    let dir = TempDir::new("lost");
    seeded(&dir).await.close().await;
    tamper(&dir, "UPDATE documents SET version = 2, value = '{\"step\":2}'").await;
    match refused(&dir).await {
        Error::LostState { documents, .. } => {
            assert_eq!(documents, [("promotion/9fceb02".to_owned(), Some(2), 3)]);
        }
        other => panic!("expected lost state, got {other:?}"),
    }
    tamper(&dir, "DELETE FROM documents").await;
    let error = refused(&dir).await;
    assert!(error.to_string().contains("promotion/9fceb02 is missing, but version 3 was committed"), "{error}");
}

#[tokio::test]
async fn repair_records_the_break_and_the_store_opens_again() {
    let dir = TempDir::new("repair");
    seeded(&dir).await.close().await;
    tamper(&dir, "UPDATE audit SET actor = 'mallory' WHERE seq = 3").await;
    let problem = refused(&dir).await;

    let store = SqlStore::open_unchecked(&dir.url(), OpenOptions::new()).await.unwrap();
    let at = "2026-05-06T08:00:00Z".parse().unwrap();
    let head = store.repair(&problem, "ops", at).await.unwrap();
    assert_eq!(head.seq, 6, "the break is recorded as the next record");
    let last = store.audit(5).await.unwrap().pop().unwrap();
    assert_eq!((last.entry.action.as_str(), last.entry.actor.as_str()), ("store.break.accepted", "ops"));
    assert!(last.entry.message.contains("audit record 3 was changed"), "{}", last.entry.message);
    drop(store);

    let store = SqlStore::open(&dir.url()).await.expect("an accepted break opens");
    let verified = store.verify().await.unwrap();
    assert_eq!((verified.head.seq, verified.accepted.as_slice()), (6, &[3][..]));
}

#[tokio::test]
async fn verify_against_an_expected_head_catches_a_rewritten_log() {
    let dir = TempDir::new("expect-head");
    let store = seeded(&dir).await;
    let head = store.verify().await.unwrap().head;
    store.verify_expecting_head(&head.hash).await.unwrap();
    drop(store);
    // Whoever can write the database can rewrite a record and every hash
    // after it; the chain then verifies, but not against the head kept elsewhere.
    let store = SqlStore::open(&dir.url()).await.unwrap();
    store.commit(vec![], vec![entry(6)]).await.unwrap();
    match store.verify_expecting_head(&head.hash).await {
        Err(Error::UnexpectedHead { seq, expected, .. }) => assert_eq!((seq, expected), (6, head.hash)),
        other => panic!("expected an unexpected head, got {other:?}"),
    }
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused_saying_so() {
    let dir = TempDir::new("newer");
    seeded(&dir).await.close().await;
    tamper(
        &dir,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'from the future', 1, x'00', 0)",
    )
    .await;
    let error = refused(&dir).await;
    assert!(
        matches!(error, Error::NewerSchema { found: 99, supported: atlas_promote_sql::SCHEMA_VERSION, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("written by schema version 99"), "{error}");
}

#[tokio::test]
async fn another_programs_sqlite_file_is_refused_naming_the_file() {
    let dir = TempDir::new("foreign");
    tamper(&dir, "CREATE TABLE customers (id INTEGER PRIMARY KEY)").await;
    let error = refused(&dir).await;
    assert!(matches!(error, Error::NotAStore { .. }), "{error:?}");
    assert!(error.to_string().contains("atlas.db is not an atlas-promote store"), "{error}");
}

#[tokio::test]
async fn a_file_of_random_bytes_is_refused_naming_the_file() {
    let dir = TempDir::new("random");
    let bytes: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("atlas.db"), bytes).unwrap();
    let error = refused(&dir).await;
    assert!(matches!(error, Error::Damaged { .. }), "{error:?}");
    assert!(error.to_string().contains("atlas.db"), "{error}");
}

#[tokio::test]
async fn a_truncated_database_file_is_refused_naming_the_file() {
    let dir = TempDir::new("truncated");
    seeded(&dir).await.close().await;
    let path = dir.path().join("atlas.db");
    assert!(!dir.path().join("atlas.db-wal").exists(), "closing checkpoints the log into the file");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let error = refused(&dir).await;
    assert!(error.to_string().contains("atlas.db"), "{error}");
    assert!(!matches!(error, Error::Url { .. }), "{error:?}");
}

#[tokio::test]
async fn a_postgres_password_is_never_shown() {
    let url = "postgres://atlas:hunter2@127.0.0.1:1/atlas";
    let error = SqlStore::open_with(url, OpenOptions::new().with_schema("atlas")).await.unwrap_err();
    assert!(error.is_temporary(), "a server that cannot be reached may be reached later: {error:?}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}
