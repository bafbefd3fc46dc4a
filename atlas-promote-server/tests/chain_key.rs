//! A store whose audit chain is keyed: `GET /api/v1/audit/verify` checks the
//! chain under the key the server was given, and says a keyed chain checked
//! without it does not verify.

mod common;

use std::sync::Arc;

use atlas_promote_core::audit::ChainKey;
use atlas_promote_core::{Candidate, Clock as _};
use atlas_promote_sql::{OpenOptions, SqlStore};

const KEY: &[u8] = b"a chain key of at least thirty-two bytes, for tests";

async fn verify(with_key: bool, db: &std::path::Path) -> serde_json::Value {
    let key = ChainKey::new(KEY).unwrap();
    let url = format!("sqlite://{}", db.display());
    let store = SqlStore::open_with(&url, OpenOptions::new().with_chain_key(key.clone())).await.unwrap();
    let w = common::world_on(Arc::new(store));
    w.source_control.commit("c1", None, "alice", &["src/app.py"]);
    let mut builder = common::builder(&w);
    if with_key {
        builder = builder.with_chain_key(key);
    }
    let running = common::start(builder.build()).await;
    running.server.promoter().merged(Candidate::trunk("c1", ["alice"]), w.clock.now()).await.unwrap();
    running.server.step().await.unwrap();
    common::get(&format!("{}/api/v1/audit/verify", running.url)).await.json().await.unwrap()
}

#[tokio::test]
async fn the_audit_is_verified_under_the_stores_chain_key() {
    let dir = std::env::temp_dir().join(format!("atlas-server-chain-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keyed = verify(true, &dir.join("with.db")).await;
    assert_eq!(keyed["ok"], true, "{keyed}");
    assert!(keyed["records"].as_u64().unwrap() > 0, "{keyed}");
    let unkeyed = verify(false, &dir.join("without.db")).await;
    assert_eq!(unkeyed["ok"], false, "a keyed chain checked without its key does not verify: {unkeyed}");
    let _ = std::fs::remove_dir_all(&dir);
}
