//! A deleted document leaves the table that listings walk: the engine
//! deletes a promotion's marker under `active/` when it ends, and listing the
//! active ones must not step over every marker ever deleted.

mod common;

use atlas_promote_core::{Error as CoreError, StateStore, Write};
use atlas_promote_sql::SqlStore;
use common::TempDir;
use serde_json::json;

const ENDED: usize = 500;

/// `ENDED` markers written and deleted, two left live.
async fn history(store: &SqlStore) {
    for i in 0..ENDED + 2 {
        let key = format!("active/promotion/trunk/{i:07x}");
        store.commit(vec![Write::Put { key: key.clone(), expected: None, value: json!(true) }], vec![]).await.unwrap();
        if i < ENDED {
            store.commit(vec![Write::Delete { key, expected: 1 }], vec![]).await.unwrap();
        }
    }
}

#[tokio::test]
async fn deleted_markers_leave_the_rows_a_listing_walks() {
    let dir = TempDir::new("tombstones");
    let store = SqlStore::open(&dir.url()).await.unwrap();
    history(&store).await;
    assert_eq!(store.list("active/").await.unwrap().len(), 2);
    store.close().await;

    use sqlx::Connection as _;
    let mut conn = sqlx::SqliteConnection::connect(&dir.url()).await.unwrap();
    let walked: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM documents WHERE key >= 'active/' AND key < 'active0'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(walked, 2, "the range a listing of active/ walks holds only the live markers");
    let kept: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tombstones").fetch_one(&mut conn).await.unwrap();
    assert_eq!(kept, i64::try_from(ENDED).unwrap(), "each deleted key keeps its version");
    conn.close().await.unwrap();
}

#[tokio::test]
async fn a_deleted_key_keeps_counting_its_versions_after_a_reopen() {
    let dir = TempDir::new("tombstone-versions");
    let store = SqlStore::open(&dir.url()).await.unwrap();
    let key = "active/promotion/trunk/9fceb02";
    let put = |expected| Write::Put { key: key.into(), expected, value: json!(true) };
    store.commit(vec![put(None)], vec![]).await.unwrap();
    assert_eq!(store.commit(vec![Write::Delete { key: key.into(), expected: 1 }], vec![]).await.unwrap(), [2]);
    store.close().await;

    let store = SqlStore::open(&dir.url()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), None);
    assert!(matches!(store.commit(vec![put(Some(1))], vec![]).await, Err(CoreError::Conflict { .. })));
    assert_eq!(store.commit(vec![put(None)], vec![]).await.unwrap(), [3], "re-created, the numbering goes on");
    assert_eq!(store.get(key).await.unwrap().unwrap().version, 3);
    assert_eq!(store.list("active/").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_store_of_schema_2_moves_its_deleted_keys_to_the_tombstones() {
    let dir = TempDir::new("tombstone-migration");
    SqlStore::open(&dir.url()).await.unwrap().close().await;
    // Back to schema 2, where a deleted key was a row of `documents` without a value.
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::SqliteConnection::connect(&dir.url()).await.unwrap();
        for sql in [
            "DELETE FROM _sqlx_migrations WHERE version = 3",
            "DROP TABLE tombstones",
            "INSERT INTO documents (key, version, value) VALUES ('active/promotion/trunk/old', 4, NULL)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    }
    let store = SqlStore::open(&dir.url()).await.unwrap();
    assert!(store.list("active/").await.unwrap().is_empty());
    let put = Write::Put { key: "active/promotion/trunk/old".into(), expected: None, value: json!(true) };
    assert_eq!(store.commit(vec![put], vec![]).await.unwrap(), [5], "the deleted key's version carried over");
}
