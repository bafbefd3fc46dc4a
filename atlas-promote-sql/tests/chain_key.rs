//! A keyed audit chain (HMAC-SHA256, the key kept outside the database):
//! the store opens only with its key, a log rewritten without the key is
//! refused, and the key never shows.

mod common;

use atlas_promote_core::audit::{AuditHead, ChainKey, chain_after};
use atlas_promote_core::{AuditEntry, StateStore, Write};
use atlas_promote_sql::{Error, OpenOptions, SqlStore};
use common::{TempDir, entry};
use serde_json::json;

const SECRET: &[u8] = b"k3y-only-the-operator-holds";

fn key() -> ChainKey {
    ChainKey::new(SECRET.to_vec()).unwrap()
}

fn keyed() -> OpenOptions {
    OpenOptions::new().with_chain_key(key())
}

/// A store keyed with [`key`], with five audit records and one document.
async fn seeded(url: &str, options: OpenOptions) {
    let store = SqlStore::open_with(url, options).await.unwrap();
    let put = Write::Put { key: "promotion/9fceb02".into(), expected: None, value: json!({}) };
    store.commit(vec![put], vec![entry(1), entry(2)]).await.unwrap();
    store.commit(vec![], vec![entry(3), entry(4), entry(5)]).await.unwrap();
    store.close().await;
}

async fn connection(dir: &TempDir) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;
    sqlx::SqliteConnection::connect(&dir.url()).await.unwrap()
}

fn shows_no_secret(text: &str) {
    assert!(!text.contains("k3y-only"), "the key shows: {text}");
}

#[tokio::test]
async fn a_keyed_store_opens_only_with_its_key() {
    let dir = TempDir::new("keyed");
    seeded(&dir.url(), keyed()).await;

    let store = SqlStore::open_with(&dir.url(), keyed()).await.expect("its own key opens it");
    assert_eq!(store.verify().await.unwrap().records, 5);
    store.commit(vec![], vec![entry(6)]).await.unwrap();
    shows_no_secret(&format!("{store:?}"));
    store.close().await;

    let error = SqlStore::open(&dir.url()).await.unwrap_err();
    assert!(matches!(error, Error::ChainKeyRequired { .. }), "{error:?}");
    assert!(error.to_string().contains("ATLAS_AUDIT_CHAIN_KEY"), "{error}");

    let other = OpenOptions::new().with_chain_key(ChainKey::new(b"a key of another operator".to_vec()).unwrap());
    let error = SqlStore::open_with(&dir.url(), other.clone()).await.unwrap_err();
    assert!(matches!(error, Error::WrongChainKey { .. }), "{error:?}");
    let error = SqlStore::open_unchecked(&dir.url(), other).await.unwrap_err();
    assert!(matches!(error, Error::WrongChainKey { .. }), "an unchecked open cannot write with a wrong key: {error:?}");
    shows_no_secret(&format!("{error} {error:?}"));
}

#[tokio::test]
async fn the_chain_is_hashed_with_the_key() {
    let dir = TempDir::new("keyed-hashes");
    seeded(&dir.url(), keyed()).await;
    let store = SqlStore::open_with(&dir.url(), keyed()).await.unwrap();
    let records = store.audit(0).await.unwrap();
    let plain = chain_after(&AuditHead::empty(), entry(1));
    assert_ne!(records[0].hash, plain.hash, "a keyed record is not hashed with plain SHA-256");
    let keyed = atlas_promote_core::audit::chain_after_keyed(&AuditHead::empty(), entry(1), Some(&key()));
    assert_eq!(records[0].hash, keyed.hash);
}

#[tokio::test]
async fn a_log_rewritten_without_the_key_is_refused() {
    let dir = TempDir::new("keyed-rewritten");
    seeded(&dir.url(), keyed()).await;
    // Whoever can write the database rewrites record 3 and recomputes every
    // hash after it, and the head, with plain SHA-256.
    let mut conn = connection(&dir).await;
    let kept: (String,) = sqlx::query_as("SELECT hash FROM audit WHERE seq = 2").fetch_one(&mut conn).await.unwrap();
    let mut head = AuditHead { seq: 2, hash: kept.0 };
    for n in 3..=5 {
        let record = chain_after(&head, AuditEntry { actor: "mallory".into(), ..entry(n) });
        sqlx::query("UPDATE audit SET actor = $1, prev = $2, hash = $3 WHERE seq = $4")
            .bind(&record.entry.actor)
            .bind(&record.prev)
            .bind(&record.hash)
            .bind(i64::from(n))
            .execute(&mut conn)
            .await
            .unwrap();
        head = AuditHead::of(Some(&record));
    }
    sqlx::query("UPDATE meta SET value = $1 WHERE name = 'audit_head_hash'")
        .bind(&head.hash)
        .execute(&mut conn)
        .await
        .unwrap();
    match SqlStore::open_with(&dir.url(), keyed()).await.unwrap_err() {
        Error::BrokenChain { brk, .. } => assert_eq!(brk.seq, 3),
        other => panic!("expected a broken chain at 3, got {other:?}"),
    }

    // Removing the record of the key as well does not make it pass as an unkeyed store.
    sqlx::query("UPDATE meta SET value = '' WHERE name = 'chain_key'").execute(&mut conn).await.unwrap();
    let error = SqlStore::open_with(&dir.url(), keyed()).await.unwrap_err();
    assert!(matches!(error, Error::UnkeyedChain { .. }), "{error:?}");
}

#[tokio::test]
async fn an_unkeyed_store_refuses_a_key_but_an_empty_one_takes_it() {
    let dir = TempDir::new("unkeyed");
    seeded(&dir.url(), OpenOptions::new()).await;
    let error = SqlStore::open_with(&dir.url(), keyed()).await.unwrap_err();
    assert!(matches!(error, Error::UnkeyedChain { .. }), "{error:?}");
    SqlStore::open(&dir.url()).await.expect("without a key it opens").close().await;

    let fresh = TempDir::new("unkeyed-empty");
    SqlStore::open(&fresh.url()).await.unwrap().close().await;
    SqlStore::open_with(&fresh.url(), keyed()).await.expect("an empty store takes the key").close().await;
    let error = SqlStore::open(&fresh.url()).await.unwrap_err();
    assert!(matches!(error, Error::ChainKeyRequired { .. }), "{error:?}");
}

#[tokio::test]
async fn a_keyed_store_on_postgres_opens_only_with_its_key() {
    let Some(url) = common::postgres_url("a_keyed_store_on_postgres_opens_only_with_its_key") else { return };
    let schema = common::fresh_schema("keyed");
    seeded(&url, keyed().with_schema(&schema)).await;
    let store = SqlStore::open_with(&url, keyed().with_schema(&schema)).await.unwrap();
    assert_eq!(store.verify().await.unwrap().records, 5);
    store.close().await;
    let error = SqlStore::open_with(&url, OpenOptions::new().with_schema(&schema)).await.unwrap_err();
    assert!(matches!(error, Error::ChainKeyRequired { .. }), "{error:?}");
}

#[test]
fn options_show_no_key() {
    shows_no_secret(&format!("{:?}", keyed()));
}
