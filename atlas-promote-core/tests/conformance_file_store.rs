//! The state store conformance suite against the file store, fresh and reopened.

mod common;

use atlas_promote_core::store::FileStore;
use atlas_promote_core::{StateStore, testkit};
use common::TempDir;

#[tokio::test]
async fn file_store_conforms() {
    let dir = TempDir::new("conformance");
    let store = FileStore::open(dir.path()).unwrap();
    testkit::state_store_suite(&store).await;
    assert!(store.verify().unwrap().is_intact());
}

#[tokio::test]
async fn file_store_keeps_conforming_after_a_reopen() {
    let dir = TempDir::new("conformance-reopen");
    let store = FileStore::open(dir.path()).unwrap();
    testkit::state_store_suite(&store).await;
    let documents = store.list("").await.unwrap();
    let audit = store.audit(0).await.unwrap();
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.list("").await.unwrap(), documents);
    assert_eq!(store.audit(0).await.unwrap(), audit);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report}");
}
