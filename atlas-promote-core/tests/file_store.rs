//! The file store's own promises: durability across reopen, the directory
//! lock, and what it does with damaged files.

mod common;

use std::fs;

use atlas_promote_core::audit::{self, BreakKind};
use atlas_promote_core::store::FileStore;
use atlas_promote_core::{AuditEntry, AuditRecord, Error, StateStore, Write};
use common::TempDir;
use serde_json::json;

fn put(key: &str, expected: Option<u64>, value: serde_json::Value) -> Write {
    Write::Put { key: key.into(), expected, value }
}

fn entry(n: u32) -> AuditEntry {
    AuditEntry {
        at: "2026-05-05T09:12:00Z".parse().unwrap(),
        actor: "engine".into(),
        action: "deploy.triggered".into(),
        subject: "9fceb02".into(),
        message: format!("step {n}"),
    }
}

/// A store in `dir` with three documents and `entries` audit records, one commit each.
async fn seeded(dir: &TempDir, entries: u32) -> FileStore {
    let store = FileStore::open(dir.path()).unwrap();
    store.commit(vec![put("promotion/a", None, json!({"stage": "dev"}))], vec![]).await.unwrap();
    store.commit(vec![put("promotion/a", Some(1), json!({"stage": "staging"}))], vec![]).await.unwrap();
    store.commit(vec![put("promotion/b", None, json!(null)), put("lock/x", None, json!(1))], vec![]).await.unwrap();
    for n in 1..=entries {
        store.commit(vec![], vec![entry(n)]).await.unwrap();
    }
    store
}

fn audit_lines(dir: &TempDir) -> Vec<String> {
    fs::read_to_string(dir.path().join("audit.jsonl")).unwrap().lines().map(str::to_owned).collect()
}

fn write_audit_lines(dir: &TempDir, lines: &[String]) {
    fs::write(dir.path().join("audit.jsonl"), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
}

fn expect_corrupt(result: atlas_promote_core::Result<FileStore>) -> (String, String) {
    match result {
        Err(Error::Corrupt { path, message }) => (path, message),
        Err(other) => panic!("expected Error::Corrupt, got {other}"),
        Ok(store) => panic!("expected Error::Corrupt, but it opened: {store:?}"),
    }
}

#[tokio::test]
async fn a_reopened_store_has_the_same_documents_versions_and_audit_log() {
    let dir = TempDir::new("reopen");
    let store = seeded(&dir, 2).await;
    let documents = store.list("").await.unwrap();
    let audit = store.audit(0).await.unwrap();
    drop(store);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.list("").await.unwrap(), documents);
    let a = store.get("promotion/a").await.unwrap().unwrap();
    assert_eq!((a.version, a.value), (2, json!({"stage": "staging"})));
    assert_eq!(store.get("promotion/b").await.unwrap().unwrap().value, json!(null));
    assert_eq!(store.audit(0).await.unwrap(), audit);
    assert_conflict_after_reopen(&store).await;
    let next = store.commit(vec![], vec![entry(3)]).await;
    assert!(next.is_ok());
    assert_eq!(store.audit(2).await.unwrap()[0].seq, 3, "the log continues after a reopen");
}

async fn assert_conflict_after_reopen(store: &FileStore) {
    let stale = store.commit(vec![put("promotion/a", Some(1), json!({}))], vec![]).await;
    assert!(matches!(stale, Err(Error::Conflict { expected: Some(1), found: Some(2), .. })), "{stale:?}");
}

#[tokio::test]
async fn a_deleted_document_stays_deleted_and_keeps_its_numbering_after_a_reopen() {
    let dir = TempDir::new("delete");
    let store = seeded(&dir, 0).await;
    store.commit(vec![Write::Delete { key: "promotion/a".into(), expected: 2 }], vec![]).await.unwrap();
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.get("promotion/a").await.unwrap(), None);
    assert_eq!(store.commit(vec![put("promotion/a", None, json!(1))], vec![]).await.unwrap(), [4]);
}

#[tokio::test]
async fn a_second_open_while_the_first_is_alive_is_locked() {
    let dir = TempDir::new("locked");
    let first = FileStore::open(dir.path()).unwrap();
    let err = FileStore::open(dir.path()).unwrap_err();
    assert!(matches!(&err, Error::Locked { path } if path == &dir.path().display().to_string()), "{err:?}");
    assert!(err.to_string().contains("locked by another process"), "{err}");

    drop(first);
    let again = FileStore::open(dir.path()).expect("the lock is released on drop");
    drop(again);
}

#[tokio::test]
async fn a_store_held_by_another_process_is_locked() {
    let dir = TempDir::new("locked-process");
    drop(FileStore::open(dir.path()).unwrap());
    let lock = dir.path().join("lock");
    // util-linux `flock` takes the same kind of lock (flock(2)) as std's File::lock on Linux;
    // `--no-fork` makes it run `sleep` itself, so killing it releases the lock.
    let Ok(mut holder) =
        std::process::Command::new("flock").args(["--exclusive", "--no-fork"]).arg(&lock).args(["sleep", "30"]).spawn()
    else {
        eprintln!("skipped: no flock command");
        return;
    };
    let mut result = FileStore::open(dir.path());
    for _ in 0..100 {
        if result.is_err() {
            break;
        }
        drop(result);
        std::thread::sleep(std::time::Duration::from_millis(50));
        result = FileStore::open(dir.path());
    }
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(matches!(result, Err(Error::Locked { .. })), "{result:?}");
    FileStore::open(dir.path()).expect("opens once the other process is gone");
}

#[tokio::test]
async fn a_commit_from_a_sharing_task_sees_the_others_writes() {
    let dir = TempDir::new("shared");
    let store = std::sync::Arc::new(FileStore::open(dir.path()).unwrap());
    let other = store.clone();
    let first = tokio::spawn(async move { other.commit(vec![put("k", None, json!(1))], vec![entry(1)]).await });
    first.await.unwrap().unwrap();
    let second = store.commit(vec![put("k", None, json!(2))], vec![entry(2)]).await;
    assert!(matches!(second, Err(Error::Conflict { .. })));
    assert_eq!(store.audit(0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_corrupt_state_file_is_reported_with_its_name_and_line() {
    let dir = TempDir::new("corrupt-state");
    drop(seeded(&dir, 1).await);
    let state = dir.path().join("state.json");
    fs::write(&state, "{\n  \"format\": 1,\n  \"audit\": {\"seq\": 1,, }\n}\n").unwrap();
    let (path, message) = expect_corrupt(FileStore::open(dir.path()));
    assert_eq!(path, state.display().to_string());
    assert!(message.contains("line 3"), "{message}");

    fs::write(&state, "").unwrap();
    let (path, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(path.ends_with("state.json") && message.contains("not valid JSON"), "{message}");

    fs::write(&state, "{\n  \"format\": 1,\n  \"audit\": {\"seq\": 1, \"hash\": \"x\"},\n  \"documents\": 7\n}\n")
        .unwrap();
    let (_, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(message.contains("line 4"), "{message}");
}

#[tokio::test]
async fn an_unknown_format_version_is_refused() {
    let dir = TempDir::new("format");
    drop(seeded(&dir, 0).await);
    let state = dir.path().join("state.json");
    let text = fs::read_to_string(&state).unwrap().replace("\"format\": 1", "\"format\": 2");
    fs::write(&state, text).unwrap();
    let (path, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(path.ends_with("state.json"), "{path}");
    assert!(message.contains("format version 2") && message.contains("reads format 1"), "{message}");

    fs::write(&state, "{\"documents\": {}}").unwrap();
    let (_, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(message.contains("no \"format\""), "{message}");
}

#[tokio::test]
async fn a_torn_last_audit_line_is_removed_on_open_and_reported() {
    let dir = TempDir::new("torn");
    let store = seeded(&dir, 2).await;
    let audit = store.audit(0).await.unwrap();
    drop(store);
    // A crash in the middle of appending record 3: state.json never saw it.
    let third = audit::chain(audit.last(), entry(3));
    let line = serde_json::to_string(&third).unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str(&line[..line.len() / 2]);
    fs::write(&path, &text).unwrap();

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.audit(0).await.unwrap(), audit, "the torn line is not a record");
    assert!(fs::read_to_string(&path).unwrap().ends_with('\n'), "the file ends after its last whole line");
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report}");
    let torn = report.repaired.clone().expect("the repair is reported");
    assert_eq!((torn.line, torn.bytes), (3, line.len() / 2));
    assert!(report.to_string().contains("line 3"), "{report}");

    let versions = store.commit(vec![], vec![entry(3)]).await.unwrap();
    assert!(versions.is_empty());
    assert_eq!(store.audit(2).await.unwrap()[0].seq, 3, "the next record takes the torn one's place");
    assert!(store.verify().unwrap().is_intact());
}

#[tokio::test]
async fn an_unreadable_last_audit_line_with_a_newline_is_torn_too() {
    let dir = TempDir::new("torn-newline");
    drop(seeded(&dir, 1).await);
    let path = dir.path().join("audit.jsonl");
    let mut text = fs::read_to_string(&path).unwrap();
    text.push_str("\0\0\0\0\n");
    fs::write(&path, &text).unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.verify().unwrap().repaired.map(|t| t.line), Some(2));
    assert_eq!(store.audit(0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_changed_audit_line_is_reported_by_line_and_seq() {
    let dir = TempDir::new("changed");
    let store = seeded(&dir, 4).await;
    let mut lines = audit_lines(&dir);
    lines[1] = lines[1].replace("step 2", "step 2, nothing to see");
    write_audit_lines(&dir, &lines);

    let report = store.verify().unwrap();
    let problem = report.problem.clone().expect("the change is found");
    assert_eq!((problem.line, problem.seq), (2, Some(2)));
    assert_eq!(problem.chain.map(|b| b.kind), Some(BreakKind::Changed));
    assert!(report.to_string().contains("line 2"), "{report}");
    drop(store);

    let store = FileStore::open(dir.path()).expect("a changed line in the middle does not stop the store");
    assert_eq!(store.verify().unwrap().problem.map(|p| p.line), Some(2));
}

#[tokio::test]
async fn a_removed_audit_line_is_reported_by_line_and_seq() {
    let dir = TempDir::new("removed");
    let store = seeded(&dir, 4).await;
    let mut lines = audit_lines(&dir);
    lines.remove(1);
    write_audit_lines(&dir, &lines);
    let problem = store.verify().unwrap().problem.expect("the gap is found");
    assert_eq!((problem.line, problem.seq), (2, Some(3)));
    assert_eq!(problem.chain.map(|b| b.kind), Some(BreakKind::Missing { expected: 2 }));
}

#[tokio::test]
async fn an_audit_log_cut_at_the_end_is_reported_and_refused_on_open() {
    let dir = TempDir::new("cut");
    let store = seeded(&dir, 3).await;
    let mut lines = audit_lines(&dir);
    lines.pop();
    write_audit_lines(&dir, &lines);
    let problem = store.verify().unwrap().problem.expect("the cut is found");
    assert_eq!((problem.line, problem.seq), (3, Some(3)));
    assert_eq!(problem.chain.map(|b| b.kind), Some(BreakKind::Truncated { last: 2 }));
    drop(store);

    let (path, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(path.ends_with("audit.jsonl"), "{path}");
    assert!(message.contains("head 3") && message.contains("last record is 2"), "{message}");
}

#[tokio::test]
async fn an_unreadable_audit_line_before_the_last_is_corrupt() {
    let dir = TempDir::new("garbage");
    let store = seeded(&dir, 3).await;
    let mut lines = audit_lines(&dir);
    lines[1] = "{ not json".into();
    write_audit_lines(&dir, &lines);
    let problem = store.verify().unwrap().problem.expect("the unreadable line is found");
    assert_eq!((problem.line, problem.seq, problem.chain), (2, None, None));
    drop(store);
    let (path, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(path.ends_with("audit.jsonl") && message.starts_with("line 2:"), "{message}");
}

#[tokio::test]
async fn audit_records_past_the_recorded_head_are_kept_when_they_chain() {
    let dir = TempDir::new("past-head");
    let store = seeded(&dir, 2).await;
    let audit = store.audit(0).await.unwrap();
    drop(store);
    // A crash after the audit append, before state.json was replaced.
    let attempted = audit::chain(audit.last(), entry(3));
    let mut lines = audit_lines(&dir);
    lines.push(serde_json::to_string(&attempted).unwrap());
    write_audit_lines(&dir, &lines);

    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.audit(2).await.unwrap(), std::slice::from_ref(&attempted), "attempted actions stay on record");
    assert!(store.verify().unwrap().is_intact());
    store.commit(vec![], vec![entry(4)]).await.unwrap();
    let records: Vec<AuditRecord> = store.audit(0).await.unwrap();
    assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(records[3].prev, attempted.hash);
    drop(store);
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.verify().unwrap().head.seq, 4);
}

#[tokio::test]
async fn audit_records_past_the_head_that_do_not_chain_are_corrupt() {
    let dir = TempDir::new("past-head-bad");
    drop(seeded(&dir, 2).await);
    let stranger = audit::chain(None, entry(3));
    let mut lines = audit_lines(&dir);
    lines.push(serde_json::to_string(&stranger).unwrap());
    write_audit_lines(&dir, &lines);
    let (path, message) = expect_corrupt(FileStore::open(dir.path()));
    assert!(path.ends_with("audit.jsonl") && message.contains("line 3"), "{message}");
}

#[tokio::test]
async fn a_leftover_temporary_state_file_is_ignored() {
    let dir = TempDir::new("tmp");
    drop(seeded(&dir, 0).await);
    fs::write(dir.path().join("state.json.tmp"), "{ half a state").unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    assert_eq!(store.get("promotion/a").await.unwrap().unwrap().version, 2);
    assert!(!dir.path().join("state.json.tmp").exists());
}

#[tokio::test]
async fn open_creates_a_missing_directory() {
    let dir = TempDir::new("create");
    let nested = dir.path().join("a/b");
    let store = FileStore::open(&nested).unwrap();
    assert_eq!(store.dir(), nested);
    assert!(store.list("").await.unwrap().is_empty());
    assert!(store.verify().unwrap().is_intact());
}
