//! The embedded store: promotion state and the audit log in one directory.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::table::Table;
use crate::audit::{self, AuditBreak, AuditHead};
use crate::audit::{AuditEntry, AuditRecord};
use crate::backend::{Document, Fetched, StateStore, Write};
use crate::error::{Error, Result};
use crate::memory::lock;

/// The `format` of `state.json` this version writes and reads.
const FORMAT: u64 = 1;
const LOCK: &str = "lock";
const STATE: &str = "state.json";
const STATE_TMP: &str = "state.json.tmp";
const AUDIT: &str = "audit.jsonl";

/// A [`StateStore`] in one directory on a local disk.
///
/// The directory holds:
/// - `lock`: held with an exclusive file lock while a `FileStore` is open,
///   so that a second opener, in this or another process, gets
///   [`Error::Locked`] instead of corrupting the state. The lock is released
///   when the `FileStore` is dropped (or its process ends).
/// - `state.json`: every document with its version, the format version, and
///   the audit log's head (last seq and hash). It is replaced atomically on
///   each commit: written to `state.json.tmp`, synced, renamed over
///   `state.json`, and the directory synced.
/// - `audit.jsonl`: the audit log, one [`AuditRecord`] as JSON per line,
///   appended and synced **before** `state.json` is replaced.
///
/// Because of that order, a crash can leave records in `audit.jsonl` past
/// the head that `state.json` recorded: they are the audit entries of a
/// commit that did not take effect. [`open`](Self::open) keeps them when
/// they continue the chain (they record actions that were attempted, which
/// is worth knowing) and the next records chain after them. A torn last
/// line (no trailing newline, or not valid JSON) is the remains of an append
/// cut short: `open` removes it with a warning, and [`verify`](Self::verify)
/// reports it.
///
/// Documents are kept in memory after `open`: reads do not touch the disk.
/// The store does blocking file I/O inside its `async` methods; commits are
/// small and rare (a few per promotion step), so it does not hand them to a
/// thread pool. Wrap it in an `Arc` to share it.
///
/// When a commit fails with [`Error::Io`] after it started writing, whether
/// it took effect is unknown (as with any database): read again before
/// retrying.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), atlas_promote_core::Error> {
/// use atlas_promote_core::store::FileStore;
/// use atlas_promote_core::{Error, StateStore, Write};
///
/// # let dir = std::env::temp_dir().join(format!("atlas-promote-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let store = FileStore::open(&dir)?;
/// let put = Write::Put { key: "promotion/9fceb02".into(), expected: None, value: serde_json::json!({}) };
/// store.commit(vec![put], vec![]).await?;
/// assert!(matches!(FileStore::open(&dir), Err(Error::Locked { .. })));
/// drop(store);
/// let store = FileStore::open(&dir)?;
/// assert_eq!(store.get("promotion/9fceb02").await?.unwrap().version, 1);
/// assert!(store.verify()?.is_intact());
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # Ok(())
/// # }
/// ```
pub struct FileStore {
    dir: PathBuf,
    lock: File,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    table: Table,
    /// The audit head recorded in `state.json`.
    head: AuditHead,
    /// The records in `audit.jsonl` (past `head` after a failed commit).
    records: Vec<AuditRecord>,
    /// The length of `audit.jsonl` in bytes.
    audit_len: u64,
    /// The torn line removed at open.
    repaired: Option<TornLine>,
    /// Set when a failed append could not be undone: the log's end is unknown.
    poisoned: Option<String>,
}

#[derive(Deserialize)]
struct StateFile {
    #[serde(rename = "format")]
    _format: u64,
    audit: AuditHead,
    documents: Table,
}

#[derive(Serialize)]
struct StateFileRef<'a> {
    format: u64,
    audit: &'a AuditHead,
    documents: &'a Table,
}

/// The last line of `audit.jsonl` that [`FileStore::open`] found unfinished and removed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TornLine {
    /// Its line number, from 1.
    pub line: usize,
    /// How many bytes were removed.
    pub bytes: usize,
}

impl fmt::Display for TornLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} ({} bytes) was an unfinished append and was removed when the store was opened",
            self.line, self.bytes
        )
    }
}

/// What [`FileStore::verify`] found in `audit.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// The file checked.
    pub path: PathBuf,
    /// How many lines were read as records.
    pub records: usize,
    /// The head `state.json` recorded; the log must reach it.
    pub head: AuditHead,
    /// The first place the log is cut, changed or unreadable; `None` when it is intact.
    pub problem: Option<AuditProblem>,
    /// The torn last line removed when the store was opened (not a break of the chain: an append cut short).
    pub repaired: Option<TornLine>,
}

impl AuditReport {
    /// Whether the log is one unbroken chain that reaches the recorded head.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            None => write!(f, "{}: {} records, intact", self.path.display(), self.records)?,
            Some(problem) => write!(f, "{}: {problem}", self.path.display())?,
        }
        if let Some(torn) = &self.repaired {
            write!(f, "; {torn}")?;
        }
        Ok(())
    }
}

/// Where and how an audit log file is broken.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditProblem {
    /// The line, from 1 (for a log cut at the end: the line where the missing record belongs).
    pub line: usize,
    /// The `seq` of the record concerned, when known.
    pub seq: Option<u64>,
    /// The chain break, when the line could be read as a record.
    pub chain: Option<AuditBreak>,
    /// What is wrong, as a sentence.
    pub message: String,
}

impl fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("audit_head", &inner.head.seq)
            .field("audit_records", &inner.records.len())
            .finish_non_exhaustive()
    }
}

impl FileStore {
    /// Open the store in `dir`, creating the directory and an empty store if needed.
    ///
    /// # Errors
    /// - [`Error::Locked`] when another `FileStore` (in this or another process) has it open.
    /// - [`Error::Corrupt`] naming the file and what is wrong when `state.json`
    ///   is unreadable or of an unknown format version, or when `audit.jsonl`
    ///   does not reach the head `state.json` recorded (records were removed
    ///   or rewritten), has an unreadable line before its last, or has records
    ///   past the head that do not continue the chain.
    /// - [`Error::Io`] when the files cannot be read or written.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let lock_path = dir.join(LOCK);
        let lock_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_at(&lock_path))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(Error::Locked { path: dir.display().to_string() }),
            Err(TryLockError::Error(e)) => return Err(io_at(&lock_path)(e)),
        }

        let (table, head) = read_state(&dir.join(STATE))?;
        let audit_path = dir.join(AUDIT);
        let loaded = read_audit(&audit_path)?;
        check_tail(&audit_path, &loaded, &head)?;
        if let Err(brk) = audit::verify(&loaded.records) {
            tracing::warn!(path = %audit_path.display(), line = brk.index + 1, "audit log does not verify: {brk}");
        }
        if let Some(torn) = &loaded.torn {
            let repair = || -> io::Result<()> {
                let file = OpenOptions::new().write(true).open(&audit_path)?;
                file.set_len(loaded.len)?;
                file.sync_all()
            };
            repair().map_err(io_at(&audit_path))?;
            tracing::warn!(path = %audit_path.display(), "audit log: {torn}");
        }
        match fs::remove_file(dir.join(STATE_TMP)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_at(&dir.join(STATE_TMP))(e)),
            _ => {}
        }
        let inner = Inner {
            table,
            head,
            records: loaded.records,
            audit_len: loaded.len,
            repaired: loaded.torn,
            poisoned: None,
        };
        Ok(Self { dir, lock: lock_file, inner: Mutex::new(inner) })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-read `audit.jsonl` and check its hash chain against the head
    /// `state.json` recorded; the report says where the log is cut, changed
    /// or unreadable (line and seq), and which torn line `open` removed.
    ///
    /// # Errors
    /// [`Error::Io`] when the file cannot be read; a broken log is a report, not an error.
    pub fn verify(&self) -> Result<AuditReport> {
        let inner = lock(&self.inner);
        let path = self.dir.join(AUDIT);
        let bytes = read_or_empty(&path)?;
        let mut records = Vec::new();
        let mut unreadable = None;
        for line in lines(&bytes) {
            match line.parse() {
                Ok(record) => records.push(record),
                Err(message) => {
                    unreadable = Some(AuditProblem { line: line.number, seq: None, chain: None, message });
                    break;
                }
            }
        }
        let checked = match unreadable {
            Some(_) => audit::verify(&records),
            None => audit::verify_head(&records, &inner.head),
        };
        let problem = match checked {
            Err(brk) => Some(AuditProblem {
                line: brk.index + 1,
                seq: Some(brk.seq),
                message: format!("record {}: {brk}", brk.seq),
                chain: Some(brk),
            }),
            Ok(()) => unreadable,
        };
        Ok(AuditReport {
            path,
            records: records.len(),
            head: inner.head.clone(),
            problem,
            repaired: inner.repaired.clone(),
        })
    }

    fn append(&self, inner: &mut Inner, records: &[AuditRecord]) -> Result<()> {
        let path = self.dir.join(AUDIT);
        let mut buf = Vec::new();
        for record in records {
            serde_json::to_writer(&mut buf, record).map_err(|e| io_at(&path)(e.into()))?;
            buf.push(b'\n');
        }
        let created = inner.audit_len == 0;
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(&buf)?;
            file.sync_data()?;
            if created {
                sync_dir(&self.dir)?;
            }
            Ok(())
        };
        if let Err(e) = write() {
            // Undo a partial append so the next one does not continue a torn line.
            let undo = match OpenOptions::new().write(true).open(&path) {
                Ok(file) => file.set_len(inner.audit_len).and_then(|()| file.sync_all()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            if let Err(undo) = undo {
                inner.poisoned = Some(format!("a failed append ({e}) could not be undone ({undo})"));
            }
            return Err(io_at(&path)(e));
        }
        inner.audit_len += buf.len() as u64;
        Ok(())
    }

    /// Replace `state.json`; an error means it was not replaced (the directory is synced by the caller).
    fn write_state(&self, table: &Table, head: &AuditHead) -> Result<()> {
        let tmp = self.dir.join(STATE_TMP);
        let state = StateFileRef { format: FORMAT, audit: head, documents: table };
        let write = || -> io::Result<()> {
            let mut bytes = serde_json::to_vec_pretty(&state)?;
            bytes.push(b'\n');
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()
        };
        write().map_err(io_at(&tmp))?;
        let target = self.dir.join(STATE);
        fs::rename(&tmp, &target).map_err(io_at(&target))
    }
}

impl Drop for FileStore {
    fn drop(&mut self) {
        // Closing the file would release the lock too; say it explicitly.
        let _ = self.lock.unlock();
    }
}

#[async_trait]
impl StateStore for FileStore {
    async fn get(&self, key: &str) -> Result<Option<Document>> {
        Ok(lock(&self.inner).table.get(key))
    }

    async fn list(&self, prefix: &str) -> Result<Vec<Document>> {
        Ok(lock(&self.inner).table.list(prefix))
    }

    async fn get_if_changed(&self, key: &str, version: u64) -> Result<Fetched> {
        Ok(lock(&self.inner).table.get_if_changed(key, version))
    }

    async fn commit(&self, writes: Vec<Write>, entries: Vec<AuditEntry>) -> Result<Vec<u64>> {
        let mut inner = lock(&self.inner);
        if let Some(reason) = &inner.poisoned {
            return Err(Error::Corrupt {
                path: self.dir.join(AUDIT).display().to_string(),
                message: format!("{reason}; reopen the store to repair the log"),
            });
        }
        if writes.is_empty() && entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut table = inner.table.clone();
        let versions = table.commit(writes)?;
        let mut records: Vec<AuditRecord> = Vec::with_capacity(entries.len());
        for entry in entries {
            let record = audit::chain(records.last().or(inner.records.last()), entry);
            records.push(record);
        }
        if !records.is_empty() {
            self.append(&mut inner, &records)?;
            // Durable now: later records chain after these even if the state write fails.
            inner.records.extend(records);
        }
        let head = AuditHead::of(inner.records.last());
        self.write_state(&table, &head)?;
        inner.table = table;
        inner.head = head;
        tracing::debug!(dir = %self.dir.display(), versions = ?versions, audit_head = inner.head.seq, "committed");
        sync_dir(&self.dir).map_err(io_at(&self.dir))?;
        Ok(versions)
    }

    async fn audit(&self, after: u64) -> Result<Vec<AuditRecord>> {
        Ok(lock(&self.inner).records.iter().filter(|r| r.seq > after).cloned().collect())
    }
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.display().to_string(), source }
}

fn corrupt(path: &Path, message: impl Into<String>) -> Error {
    Error::Corrupt { path: path.display().to_string(), message: message.into() }
}

fn read_or_empty(path: &Path) -> Result<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_at(path)(e)),
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    // Directories cannot be opened as files here; the rename is as durable as the platform makes it.
    Ok(())
}

fn read_state(path: &Path) -> Result<(Table, AuditHead)> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Table::default(), AuditHead::empty())),
        Err(e) => return Err(io_at(path)(e)),
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(path, format!("not valid JSON: {e}")))?;
    match value.get("format").map(serde_json::Value::as_u64) {
        None => {
            return Err(corrupt(path, "it has no \"format\" field: it was not written by atlas-promote"));
        }
        Some(Some(FORMAT)) => {}
        Some(Some(other)) => {
            return Err(corrupt(
                path,
                format!(
                    "it has format version {other}, which this version of atlas-promote cannot read \
                     (it reads format {FORMAT}); was it written by a newer version?"
                ),
            ));
        }
        Some(None) => return Err(corrupt(path, "its \"format\" is not a version number")),
    }
    let state: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(path, e.to_string()))?;
    if let Some(key) = state.documents.invalid_key() {
        return Err(corrupt(path, format!("document {key:?} has version 0")));
    }
    Ok((state.documents, state.audit))
}

/// One line of `audit.jsonl`.
struct Line<'a> {
    /// From 1.
    number: usize,
    /// Where it starts in the file.
    start: usize,
    /// Without the newline.
    text: &'a [u8],
    /// Whether it ends with a newline.
    complete: bool,
}

impl Line<'_> {
    fn parse(&self) -> Result<AuditRecord, String> {
        if !self.complete {
            return Err("the last line is unfinished (no newline at its end)".into());
        }
        serde_json::from_slice(self.text).map_err(|e| {
            // serde_json counts lines within this one line; say only the column.
            let message = e.to_string();
            let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m);
            format!("not an audit record (column {}): {message}", e.column())
        })
    }

    fn len(&self) -> usize {
        self.text.len() + usize::from(self.complete)
    }
}

fn lines(bytes: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut start = 0;
    let mut number = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        number += 1;
        let rest = &bytes[start..];
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => Line { number, start, text: &rest[..end], complete: true },
            None => Line { number, start, text: rest, complete: false },
        };
        start += line.len();
        Some(line)
    })
}

struct LoadedAudit {
    records: Vec<AuditRecord>,
    /// The file's length without the torn line.
    len: u64,
    torn: Option<TornLine>,
}

fn read_audit(path: &Path) -> Result<LoadedAudit> {
    let bytes = read_or_empty(path)?;
    let mut records = Vec::new();
    let mut torn = None;
    for line in lines(&bytes) {
        let last = line.start + line.len() == bytes.len();
        match line.parse() {
            Ok(record) => records.push(record),
            Err(_) if last => {
                torn = Some((line.start, TornLine { line: line.number, bytes: line.len() }));
            }
            Err(message) => return Err(corrupt(path, format!("line {}: {message}", line.number))),
        }
    }
    let len = torn.as_ref().map_or(bytes.len(), |(start, _)| *start) as u64;
    Ok(LoadedAudit { records, len, torn: torn.map(|(_, t)| t) })
}

/// Check that the log reaches `head` and that records past it continue the chain.
fn check_tail(path: &Path, loaded: &LoadedAudit, head: &AuditHead) -> Result<()> {
    let records = &loaded.records;
    let torn = loaded.torn.as_ref().map(|t| format!(" (line {} was torn)", t.line)).unwrap_or_default();
    let start = if head.seq == 0 {
        0
    } else {
        let at = records.iter().rposition(|r| r.seq == head.seq).ok_or_else(|| {
            let last = records.last().map_or(0, |r| r.seq);
            corrupt(
                path,
                format!(
                    "state.json records audit head {} but the log's last record is {last}{torn}: \
                     audit records were lost or removed",
                    head.seq
                ),
            )
        })?;
        if records[at].hash != head.hash {
            return Err(corrupt(
                path,
                format!(
                    "line {}: record {} has hash {} but state.json recorded {}: the log was rewritten",
                    at + 1,
                    head.seq,
                    records[at].hash,
                    head.hash
                ),
            ));
        }
        at + 1
    };
    for i in start..records.len() {
        let prev = i.checked_sub(1).map(|p| &records[p]);
        if records[i] != audit::chain(prev, records[i].entry.clone()) {
            return Err(corrupt(
                path,
                format!(
                    "line {}: record {} comes after the head state.json recorded ({}) but does not continue the chain",
                    i + 1,
                    records[i].seq,
                    head.seq
                ),
            ));
        }
    }
    Ok(())
}
