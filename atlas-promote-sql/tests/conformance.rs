//! Every state store conformance suite of the testkit, on SQLite and on PostgreSQL.

mod common;

use atlas_promote_core::{StateStore, testkit};
use atlas_promote_sql::{OpenOptions, SqlStore};
use common::TempDir;

#[tokio::test]
async fn sqlite_store_conforms() {
    let dir = TempDir::new("conformance");
    let store = SqlStore::open(&dir.url()).await.unwrap();
    testkit::state_store_suite(&store).await;
    assert_eq!(store.verify().await.unwrap().records, 3);
}

#[tokio::test]
async fn sqlite_store_keeps_conforming_after_a_reopen() {
    let dir = TempDir::new("conformance-reopen");
    let store = SqlStore::open(&dir.url()).await.unwrap();
    testkit::state_store_suite(&store).await;
    let documents = store.list("").await.unwrap();
    let audit = store.audit(0).await.unwrap();
    drop(store);

    let store = SqlStore::open(&dir.url()).await.unwrap();
    assert_eq!(store.list("").await.unwrap(), documents);
    assert_eq!(store.audit(0).await.unwrap(), audit);
    store.verify().await.unwrap();
}

#[tokio::test]
async fn sqlite_store_leases_conform() {
    let dir = TempDir::new("leases");
    testkit::lease_suite(&SqlStore::open(&dir.url()).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_store_deliveries_conform() {
    let dir = TempDir::new("deliveries");
    testkit::delivery_suite(&SqlStore::open(&dir.url()).await.unwrap()).await;
}

#[tokio::test]
async fn sqlite_store_outbox_conforms() {
    let dir = TempDir::new("outbox");
    testkit::outbox_suite(&SqlStore::open(&dir.url()).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_store_conforms() {
    let Some((store, url, schema)) = common::postgres("postgres_store_conforms").await else { return };
    testkit::state_store_suite(&store).await;
    assert_eq!(store.verify().await.unwrap().records, 3);
    let audit = store.audit(0).await.unwrap();
    drop(store);
    let store = SqlStore::open_with(&url, OpenOptions::new().with_schema(schema)).await.unwrap();
    assert_eq!(store.audit(0).await.unwrap(), audit, "the log as it was, after a reopen");
}

#[tokio::test]
async fn postgres_store_leases_conform() {
    let Some((store, ..)) = common::postgres("postgres_store_leases_conform").await else { return };
    testkit::lease_suite(&store).await;
}

#[tokio::test]
async fn postgres_store_deliveries_conform() {
    let Some((store, ..)) = common::postgres("postgres_store_deliveries_conform").await else { return };
    testkit::delivery_suite(&store).await;
}

#[tokio::test]
async fn postgres_store_outbox_conforms() {
    let Some((store, ..)) = common::postgres("postgres_store_outbox_conforms").await else { return };
    testkit::outbox_suite(&store).await;
}

#[tokio::test]
async fn sqlite_store_working_set_does_not_grow_with_history() {
    let dir = TempDir::new("working-set");
    testkit::working_set_suite(std::sync::Arc::new(SqlStore::open(&dir.url()).await.unwrap())).await;
}

#[tokio::test]
async fn postgres_store_working_set_does_not_grow_with_history() {
    let Some((store, ..)) = common::postgres("postgres_store_working_set_does_not_grow_with_history").await else {
        return;
    };
    testkit::working_set_suite(std::sync::Arc::new(store)).await;
}
