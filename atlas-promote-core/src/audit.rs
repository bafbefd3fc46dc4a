//! The audit log's hash chain.
//!
//! Every [`AuditRecord`] carries the hash of the record before it, so a
//! record that is changed, removed, or moved afterwards breaks the chain and
//! [`verify`] says where. Stores build records with [`chain`]; nothing else
//! should compute hashes, so that every store's log verifies the same way.
//!
//! ```
//! use atlas_promote_core::AuditEntry;
//! use atlas_promote_core::audit::{chain, verify};
//!
//! let entry = |action: &str| AuditEntry {
//!     at: "2026-05-05T09:12:00Z".parse().unwrap(),
//!     actor: "engine".into(),
//!     action: action.into(),
//!     subject: "9fceb02".into(),
//!     message: "deploy to prod triggered".into(),
//! };
//! let first = chain(None, entry("deploy.triggered"));
//! let second = chain(Some(&first), entry("deploy.succeeded"));
//! assert_eq!(second.seq, 2);
//! assert!(verify(&[first.clone(), second.clone()]).is_ok());
//!
//! let mut changed = second.clone();
//! changed.entry.actor = "mallory".into();
//! assert_eq!(verify(&[first, changed]).unwrap_err().seq, 2);
//! ```

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// An event worth keeping forever: who did what to which candidate, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who: a person, or `engine`.
    pub actor: String,
    /// What, e.g. `deploy.triggered`, `approval.recorded`, `override.refused`.
    pub action: String,
    /// Which candidate or environment.
    pub subject: String,
    /// Details, as a sentence a person can read.
    pub message: String,
}

/// An [`AuditEntry`] as stored: numbered and chained to the one before by hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1 for the first entry, one more for each after.
    pub seq: u64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The hash of the entry before (64 zeros for the first).
    pub prev: String,
    /// The SHA-256 of `prev` and this entry.
    pub hash: String,
}

/// The `prev` of the first record: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The record `entry` becomes when appended after `prev` (`None`: the log is empty).
///
/// `seq` is one more than `prev`'s (1 for the first record), and
/// `hash = hex(SHA-256(prev_hash ‖ canonical(seq, entry)))`, where
/// `prev_hash` is the 64 hex digits of `prev.hash` ([`GENESIS`] for the first
/// record) and `canonical` is the compact JSON object
/// `{"seq":…,"at":…,"actor":…,"action":…,"subject":…,"message":…}` with the
/// fields in that order and `at` in RFC 3339, UTC, `Z`, with as many
/// fractional digits as needed. Any store can recompute it.
pub fn chain(prev: Option<&AuditRecord>, entry: AuditEntry) -> AuditRecord {
    chain_after(&AuditHead::of(prev), entry)
}

/// The record `entry` becomes when appended after the record `head` names
/// (a store that keeps only its head need not read the last record):
/// the same record as [`chain`] gives.
pub fn chain_after(head: &AuditHead, entry: AuditEntry) -> AuditRecord {
    chain_after_keyed(head, entry, None)
}

/// [`chain_after`] for a keyed chain: with `Some(key)` the hash is
/// `hex(HMAC-SHA256(key, prev_hash ‖ canonical(seq, entry)))` (the same
/// message as [`chain`] hashes), so only someone who holds the key can
/// rewrite a record and the ones after it; `None` is [`chain_after`].
pub fn chain_after_keyed(head: &AuditHead, entry: AuditEntry, key: Option<&ChainKey>) -> AuditRecord {
    let seq = head.seq.saturating_add(1);
    let hash = digest(key, &head.hash, seq, &entry);
    AuditRecord { seq, entry, prev: head.hash.clone(), hash }
}

/// The secret of a keyed audit chain (HMAC-SHA256).
///
/// Without a key anyone who can write the store can rewrite a record and
/// recompute every hash after it, head included. With one, the chain
/// verifies only under the same key, so the key must be kept away from the
/// data (an environment variable, a secret manager), never stored with it.
/// `Debug` shows no byte of it; [`fingerprint`](Self::fingerprint) is what
/// a store may keep to tell a wrong key from a broken chain.
#[derive(Clone, PartialEq, Eq)]
pub struct ChainKey(Arc<[u8]>);

/// The fewest bytes a [`ChainKey`] may have.
pub const CHAIN_KEY_MIN_LEN: usize = 16;

/// Why bytes were refused as a [`ChainKey`] (never showing them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an audit chain key needs at least {CHAIN_KEY_MIN_LEN} bytes, this one has {len}")]
pub struct ShortChainKey {
    /// How many bytes it had.
    pub len: usize,
}

impl ChainKey {
    /// The key made of `bytes`: at least [`CHAIN_KEY_MIN_LEN`] of them.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, ShortChainKey> {
        let bytes: Vec<u8> = bytes.into();
        if bytes.len() < CHAIN_KEY_MIN_LEN {
            return Err(ShortChainKey { len: bytes.len() });
        }
        Ok(Self(bytes.into()))
    }

    /// A value that identifies the key without revealing it:
    /// `hex(HMAC-SHA256(key, "atlas-promote audit chain key"))`.
    pub fn fingerprint(&self) -> String {
        let mut mac = self.mac();
        mac.update(b"atlas-promote audit chain key");
        hex(&mac.finalize().into_bytes())
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }
}

impl fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// The hash a record with these contents must have.
fn digest(key: Option<&ChainKey>, prev: &str, seq: u64, entry: &AuditEntry) -> String {
    #[derive(Serialize)]
    struct Canonical<'a> {
        seq: u64,
        at: String,
        actor: &'a str,
        action: &'a str,
        subject: &'a str,
        message: &'a str,
    }
    let canonical = Canonical {
        seq,
        at: entry.at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        actor: &entry.actor,
        action: &entry.action,
        subject: &entry.subject,
        message: &entry.message,
    };
    // Serializing a struct of strings and an integer to JSON cannot fail.
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    if let Some(key) = key {
        let mut mac = key.mac();
        mac.update(prev.as_bytes());
        mac.update(&json);
        return hex(&mac.finalize().into_bytes());
    }
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(&json);
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The last record of a log, as a store remembers it to detect records
/// removed from the end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditHead {
    /// The last record's `seq` (0: the log is empty).
    pub seq: u64,
    /// The last record's hash ([`GENESIS`] when the log is empty).
    pub hash: String,
}

impl AuditHead {
    /// The head of an empty log.
    pub fn empty() -> Self {
        Self { seq: 0, hash: GENESIS.to_owned() }
    }

    /// The head of a log whose last record is `last` (`None`: empty).
    pub fn of(last: Option<&AuditRecord>) -> Self {
        last.map_or_else(Self::empty, |r| Self { seq: r.seq, hash: r.hash.clone() })
    }
}

impl Default for AuditHead {
    fn default() -> Self {
        Self::empty()
    }
}

/// Where and why an audit log's hash chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct AuditBreak {
    /// The `seq` of the first record that does not fit (for [`BreakKind::Truncated`]: the expected head's).
    pub seq: u64,
    /// Its position in the records checked, from 0 (for [`BreakKind::Truncated`]: one past the end).
    pub index: usize,
    /// What is wrong.
    pub kind: BreakKind,
}

/// What is wrong at an [`AuditBreak`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakKind {
    /// The record's hash does not match its content: the entry (or the hash) was changed.
    Changed,
    /// Its `seq` skips ahead of `expected`: the records in between were removed.
    Missing {
        /// The `seq` that should have come here.
        expected: u64,
    },
    /// Its `seq` is not the `expected` one, which comes later or came
    /// before: records were reordered or duplicated.
    Reordered {
        /// The `seq` that should have come here.
        expected: u64,
    },
    /// Its content matches its hash, but its `prev` is not the hash of the
    /// record before it: that record was rewritten (hash recomputed), or this
    /// one was taken from another log.
    Unlinked,
    /// The log ends at `last` before the expected head: records were removed from the end.
    Truncated {
        /// The last `seq` present (0: none).
        last: u64,
    },
    /// The record at the expected head's `seq` has another hash: the log was rewritten.
    Diverged,
}

impl AuditBreak {
    fn describe(&self) -> String {
        let seq = self.seq;
        match &self.kind {
            BreakKind::Changed => format!("audit record {seq} was changed: its content does not match its hash"),
            BreakKind::Missing { expected } => {
                format!(
                    "audit records {expected} to {} are missing (found {seq} where {expected} belongs)",
                    seq.saturating_sub(1)
                )
            }
            BreakKind::Reordered { expected } => {
                format!("audit records are out of order: found {seq} where {expected} belongs")
            }
            BreakKind::Unlinked => format!(
                "audit record {seq} does not link to the record before it: that record was rewritten, \
                 or this one was moved here"
            ),
            BreakKind::Truncated { last } => {
                format!(
                    "audit log ends at record {last}, but its head is record {seq}: records were removed from the end"
                )
            }
            BreakKind::Diverged => {
                format!("audit record {seq} differs from the recorded head: the log was rewritten")
            }
        }
    }
}

/// Check that `records` form one unbroken chain from the first record (seq 1).
///
/// Returns the first break. A log cut at the end cannot be seen from the
/// records alone; [`verify_head`] also checks against a remembered head.
pub fn verify(records: &[AuditRecord]) -> Result<(), AuditBreak> {
    verify_from(&AuditHead::empty(), records, &AuditHead::empty())
}

/// [`verify`], and check that the log reaches `head` with the same hash.
///
/// Records after the head are accepted: a store may have appended them
/// after it last recorded its head.
pub fn verify_head(records: &[AuditRecord], head: &AuditHead) -> Result<(), AuditBreak> {
    verify_from(&AuditHead::empty(), records, head)
}

/// [`verify_head`] for a log checked from a checkpoint: `records` must
/// continue the chain after `from` (the head of the records before them,
/// already verified; [`AuditHead::empty`] for the whole log) and reach `head`
/// with the same hash. A `head` of seq 0, or before `from`, is not checked.
pub fn verify_from(from: &AuditHead, records: &[AuditRecord], head: &AuditHead) -> Result<(), AuditBreak> {
    verify_from_keyed(from, records, head, None)
}

/// [`verify_from`] for a chain built by [`chain_after_keyed`] with `key`:
/// a record hashed under another key (or none) is [`BreakKind::Changed`].
pub fn verify_from_keyed(
    from: &AuditHead,
    records: &[AuditRecord],
    head: &AuditHead,
    key: Option<&ChainKey>,
) -> Result<(), AuditBreak> {
    let (mut seq, mut hash) = (from.seq, from.hash.as_str());
    for (index, record) in records.iter().enumerate() {
        let expected = seq.saturating_add(1);
        if record.seq != expected {
            let later = records[index + 1..].iter().any(|r| r.seq == expected);
            let kind = if record.seq > expected && !later {
                BreakKind::Missing { expected }
            } else {
                BreakKind::Reordered { expected }
            };
            return Err(AuditBreak { seq: record.seq, index, kind });
        }
        if digest(key, &record.prev, record.seq, &record.entry) != record.hash {
            return Err(AuditBreak { seq: record.seq, index, kind: BreakKind::Changed });
        }
        if record.prev != hash {
            return Err(AuditBreak { seq: record.seq, index, kind: BreakKind::Unlinked });
        }
        (seq, hash) = (record.seq, record.hash.as_str());
    }
    if head.seq == 0 || head.seq < from.seq {
        return Ok(());
    }
    if head.seq == from.seq {
        return if from.hash == head.hash {
            Ok(())
        } else {
            Err(AuditBreak { seq: head.seq, index: 0, kind: BreakKind::Diverged })
        };
    }
    // The seqs after `from` are consecutive (checked above): the head's record is at a known place.
    let index = usize::try_from(head.seq - from.seq - 1).unwrap_or(usize::MAX);
    match records.get(index) {
        None => Err(AuditBreak { seq: head.seq, index: records.len(), kind: BreakKind::Truncated { last: seq } }),
        Some(r) if r.hash != head.hash => Err(AuditBreak { seq: r.seq, index, kind: BreakKind::Diverged }),
        Some(_) => Ok(()),
    }
}

impl fmt::Display for AuditHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {} ({})", self.seq, self.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u32) -> AuditEntry {
        AuditEntry {
            at: "2026-05-05T09:12:00Z".parse().unwrap(),
            actor: "engine".into(),
            action: "deploy.triggered".into(),
            subject: "9fceb02".into(),
            message: format!("step {n}"),
        }
    }

    fn log(n: u32) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for i in 1..=n {
            let r = chain(out.last(), entry(i));
            out.push(r);
        }
        out
    }

    #[test]
    fn an_untouched_log_verifies() {
        let records = log(5);
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
        assert_eq!(records[0].prev, GENESIS);
        assert_eq!(records[0].hash.len(), 64);
        assert_eq!(verify(&records), Ok(()));
        assert_eq!(verify_head(&records, &AuditHead::of(records.last())), Ok(()));
        assert_eq!(verify(&[]), Ok(()));
    }

    #[test]
    fn the_hash_follows_the_documented_canonical_form() {
        // Computed outside Rust from the form documented on `chain`
        // (sha256 of 64 zeros followed by the canonical JSON). Pinned so that a
        // change of the form is noticed: logs written before it would no
        // longer verify.
        let first = chain(None, entry(1));
        assert_eq!(first.hash, "80a9fad6ddc1ba54bb419f50ce6f9c3cad63d7afd304ad8ec95471731c499eac");
        assert_ne!(first.hash, chain(None, entry(2)).hash);
    }

    #[test]
    fn a_changed_entry_breaks_the_chain_at_its_seq() {
        let mut records = log(4);
        records[2].entry.message = "nothing happened".into();
        let err = verify(&records).unwrap_err();
        assert_eq!((err.seq, err.index, err.kind.clone()), (3, 2, BreakKind::Changed));
        assert!(err.to_string().contains("record 3 was changed"), "{err}");
    }

    #[test]
    fn a_rewritten_entry_with_a_recomputed_hash_breaks_the_link_after_it() {
        let mut records = log(4);
        records[1] = chain(Some(&records[0]), AuditEntry { actor: "mallory".into(), ..entry(2) });
        let err = verify(&records).unwrap_err();
        assert_eq!((err.seq, err.kind), (3, BreakKind::Unlinked));
    }

    #[test]
    fn a_removed_entry_is_a_gap() {
        let mut records = log(5);
        records.remove(2);
        let err = verify(&records).unwrap_err();
        assert_eq!((err.seq, err.index, err.kind.clone()), (4, 2, BreakKind::Missing { expected: 3 }));
        assert!(err.to_string().contains("records 3 to 3 are missing"), "{err}");
    }

    #[test]
    fn a_removed_first_entry_is_a_gap() {
        let records = log(3);
        let err = verify(&records[1..]).unwrap_err();
        assert_eq!((err.seq, err.kind), (2, BreakKind::Missing { expected: 1 }));
    }

    #[test]
    fn reordered_entries_are_named() {
        let mut records = log(5);
        records.swap(1, 3);
        let err = verify(&records).unwrap_err();
        assert_eq!((err.seq, err.index, err.kind), (4, 1, BreakKind::Reordered { expected: 2 }));
    }

    #[test]
    fn a_duplicated_entry_is_out_of_order() {
        let mut records = log(3);
        records.insert(2, records[1].clone());
        let err = verify(&records).unwrap_err();
        assert_eq!((err.seq, err.kind), (2, BreakKind::Reordered { expected: 3 }));
    }

    #[test]
    fn a_log_cut_at_the_end_is_caught_against_its_head() {
        let records = log(5);
        let head = AuditHead::of(records.last());
        assert_eq!(verify(&records[..3]), Ok(()), "the records alone cannot show the cut");
        let err = verify_head(&records[..3], &head).unwrap_err();
        assert_eq!((err.seq, err.index, err.kind.clone()), (5, 3, BreakKind::Truncated { last: 3 }));
        assert!(err.to_string().contains("ends at record 3"), "{err}");
        let err = verify_head(&[], &head).unwrap_err();
        assert_eq!(err.kind, BreakKind::Truncated { last: 0 });
    }

    #[test]
    fn records_past_the_head_are_accepted() {
        let records = log(5);
        assert_eq!(verify_head(&records, &AuditHead::of(records.get(2))), Ok(()));
        assert_eq!(verify_head(&records, &AuditHead::empty()), Ok(()));
    }

    #[test]
    fn a_rewritten_log_diverges_from_its_head() {
        let records = log(3);
        let head = AuditHead::of(records.last());
        let mut other = log(2);
        let third = chain(other.last(), AuditEntry { actor: "mallory".into(), ..entry(3) });
        other.push(third);
        let err = verify_head(&other, &head).unwrap_err();
        assert_eq!((err.seq, err.kind), (3, BreakKind::Diverged));
    }

    #[test]
    fn records_survive_a_json_round_trip() {
        let records = log(2);
        let line = serde_json::to_string(&records[1]).unwrap();
        let back: AuditRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, records[1]);
        assert_eq!(verify(&[records[0].clone(), back]), Ok(()));
    }

    #[test]
    fn a_keyed_chain_verifies_only_under_its_key() {
        let key = ChainKey::new(b"correct horse battery staple".to_vec()).unwrap();
        let other = ChainKey::new(b"another key of sixteen bytes".to_vec()).unwrap();
        let mut records: Vec<AuditRecord> = Vec::new();
        for i in 1..=3 {
            let r = chain_after_keyed(&AuditHead::of(records.last()), entry(i), Some(&key));
            records.push(r);
        }
        let head = AuditHead::of(records.last());
        assert_eq!(verify_from_keyed(&AuditHead::empty(), &records, &head, Some(&key)), Ok(()));
        assert_ne!(records[0].hash, chain(None, entry(1)).hash, "keyed hashes differ from plain ones");
        let brk = verify_from_keyed(&AuditHead::empty(), &records, &head, Some(&other)).unwrap_err();
        assert_eq!((brk.seq, brk.kind), (1, BreakKind::Changed));
        assert_eq!(verify_from(&AuditHead::empty(), &records, &head).unwrap_err().seq, 1);

        // Rewriting a record and recomputing the plain hashes after it does not verify under the key.
        let mut rewritten = records[..1].to_vec();
        for i in 2..=3 {
            let r = chain(rewritten.last(), AuditEntry { actor: "mallory".into(), ..entry(i) });
            rewritten.push(r);
        }
        let brk = verify_from_keyed(&AuditHead::empty(), &rewritten, &AuditHead::of(rewritten.last()), Some(&key))
            .unwrap_err();
        assert_eq!((brk.seq, brk.kind), (2, BreakKind::Changed));
    }

    #[test]
    fn a_chain_key_never_shows_and_is_not_too_short() {
        let key = ChainKey::new(b"s3cret-chain-key-0123".to_vec()).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert_eq!(key.fingerprint().len(), 64);
        assert!(!key.fingerprint().contains("s3cret"));
        assert_ne!(key.fingerprint(), ChainKey::new(b"s3cret-chain-key-0124".to_vec()).unwrap().fingerprint());
        let short = ChainKey::new(b"short".to_vec()).unwrap_err();
        assert_eq!(short, ShortChainKey { len: 5 });
        assert!(!short.to_string().contains("short"), "{short}");
    }

    #[test]
    fn checking_from_a_checkpoint_agrees_with_checking_the_whole_log() {
        let records = log(6);
        let head = AuditHead::of(records.last());
        assert_eq!(verify_from(&AuditHead::empty(), &records, &head), Ok(()));
        assert_eq!(verify_from(&AuditHead::of(records.get(2)), &records[3..], &head), Ok(()));

        let mut changed = records.clone();
        changed[4].entry.actor = "mallory".into();
        let brk = verify_from(&AuditHead::of(records.get(2)), &changed[3..], &head).unwrap_err();
        assert_eq!((brk.seq, brk.kind), (5, BreakKind::Changed));

        let mut removed = records.clone();
        removed.remove(4);
        let brk = verify_from(&AuditHead::of(records.get(2)), &removed[3..], &head).unwrap_err();
        assert_eq!((brk.seq, brk.kind), (6, BreakKind::Missing { expected: 5 }));

        let brk = verify_from(&AuditHead::empty(), &records[..4], &head).unwrap_err();
        assert_eq!((brk.seq, brk.kind), (6, BreakKind::Truncated { last: 4 }));

        let mut rewritten = records[..5].to_vec();
        rewritten.push(chain(rewritten.last(), entry(99)));
        let brk = verify_from(&AuditHead::empty(), &rewritten, &head).unwrap_err();
        assert_eq!((brk.seq, brk.kind), (6, BreakKind::Diverged));
    }
}
