//! A disk that refuses: a full file system and a read-only directory make a
//! commit fail with a typed I/O error naming the database, and leave the
//! database as it was.
//!
//! Both need a file system of their own: a small tmpfs for the full disk, a
//! read-only bind mount for the read-only directory (a permission bit would
//! not stop root, and the project's machines run the tests as root). Where
//! mounting is not allowed the tests say they are skipped and why; with
//! `CI=true` they must run.
#![cfg(target_os = "linux")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use atlas_promote_core::{Error, StateStore, Write};
use atlas_promote_sql::SqlStore;
use common::TempDir;
use serde_json::json;

const KEY: &str = "promotion/9fceb02";

/// A mount that is undone when dropped.
struct Mount(PathBuf);

impl Mount {
    /// Run `mount ARGS… TARGET`; `None` (after saying why the test is
    /// skipped) when this machine does not allow it, a failure under CI.
    fn new(test: &str, args: &[&str], target: &Path) -> Option<Self> {
        let output = Command::new("mount").args(args).arg(target).output();
        match output {
            Ok(out) if out.status.success() => Some(Self(target.to_owned())),
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    Err(e) => e.to_string(),
                };
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "{test} must run in CI, but mount {args:?} failed: {why}"
                );
                eprintln!("skipped {test}: this machine does not allow mounting a test file system ({why})");
                None
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).stderr(std::process::Stdio::null()).status();
    }
}

fn url(dir: &Path) -> String {
    format!("sqlite://{}/atlas.db", dir.display())
}

/// A store in `dir` holding one document at version 2 and two audit records.
async fn seeded(dir: &Path) -> SqlStore {
    let store = SqlStore::open(&url(dir)).await.unwrap();
    store.commit(vec![put(None, json!({"step": 1}))], vec![common::entry(1)]).await.unwrap();
    store.commit(vec![put(Some(1), json!({"step": 2}))], vec![common::entry(2)]).await.unwrap();
    store
}

fn put(expected: Option<u64>, value: serde_json::Value) -> Write {
    Write::Put { key: KEY.into(), expected, value }
}

/// The store in `dir` still holds exactly what [`seeded`] wrote.
async fn as_it_was(dir: &Path) {
    let store = SqlStore::open(&url(dir)).await.expect("the database opens again");
    let document = store.get(KEY).await.unwrap().expect("the document is there");
    assert_eq!((document.version, document.value), (2, json!({"step": 2})));
    assert_eq!(store.audit(0).await.unwrap().len(), 2, "no audit record of the failed commit");
    store.verify().await.expect("the chain verifies");
    store.close().await;
}

/// The error is an I/O error of the given kind about the database file.
fn assert_io(error: &Error, kind: std::io::ErrorKind, dir: &Path) {
    match error {
        Error::Io { path, source } => {
            assert_eq!(source.kind(), kind, "{error}");
            assert!(path.contains(&dir.display().to_string()), "the error names the database: {error}");
        }
        other => panic!("expected a typed I/O error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_commit_with_a_typed_io_error_and_changes_nothing() {
    let base = TempDir::new("full-disk");
    let Some(_mount) = Mount::new("a_full_disk…", &["-t", "tmpfs", "-o", "size=4m", "tmpfs"], base.path()) else {
        return;
    };
    let store = seeded(base.path()).await;
    // Fill what is left of the file system.
    let filler = base.path().join("filler");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }
    let big = json!({"step": 3, "padding": "x".repeat(1 << 20)});
    let error = store.commit(vec![put(Some(2), big)], vec![common::entry(3)]).await.expect_err("the disk is full");
    assert_io(&error, std::io::ErrorKind::StorageFull, base.path());
    store.close().await;
    std::fs::remove_file(&filler).unwrap();
    as_it_was(base.path()).await;
}

#[tokio::test]
async fn a_read_only_directory_fails_with_a_typed_io_error_and_changes_nothing() {
    let dir = TempDir::new("read-write");
    seeded(dir.path()).await.close().await;
    let view = TempDir::new("read-only");
    let Some(_bind) = Mount::new("a_read_only_directory…", &["--bind", &dir.path().display().to_string()], view.path())
    else {
        return;
    };
    let Some(_ro) = Mount::new("a_read_only_directory…", &["-o", "remount,bind,ro"], view.path()) else {
        return;
    };
    // Opening read-only may already refuse (the write-ahead log cannot be
    // created); if it opens, the commit must refuse.
    let error = match SqlStore::open(&url(view.path())).await {
        Err(e) => atlas_promote_core::Error::from(e),
        Ok(store) => {
            let e = store.commit(vec![put(Some(2), json!({"step": 3}))], vec![common::entry(3)]).await;
            store.close().await;
            e.expect_err("the directory is read-only")
        }
    };
    assert_io(&error, std::io::ErrorKind::ReadOnlyFilesystem, view.path());
    as_it_was(dir.path()).await;
}
