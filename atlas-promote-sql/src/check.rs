//! What opening a store checks, and what `verify` and `repair` do.

use std::collections::BTreeMap;

use async_trait::async_trait;
use atlas_promote_core::audit::{AuditBreak, AuditHead, ChainKey};
use atlas_promote_core::{AuditEntry, AuditRecord, StateStore};
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};

/// The tables behind a store, as the checks read them.
#[async_trait]
pub(crate) trait Tables: StateStore {
    fn location(&self) -> &str;
    /// The key the store's chain is hashed with.
    fn chain_key(&self) -> Option<&ChainKey>;
    /// Record `fingerprint` as the chain's key if the chain is not keyed and
    /// the log is empty, in one transaction; whether it was recorded.
    async fn adopt_chain_key(&self, fingerprint: &str) -> atlas_promote_core::Result<bool>;
    async fn records(&self, after: u64, upto: u64) -> atlas_promote_core::Result<Vec<AuditRecord>>;
    async fn head(&self) -> atlas_promote_core::Result<AuditHead>;
    async fn meta(&self, name: &str) -> atlas_promote_core::Result<String>;
    async fn set_meta(&self, values: &[(&str, String)]) -> atlas_promote_core::Result<()>;
    async fn commits_after(&self, after: i64) -> atlas_promote_core::Result<(Vec<(String, u64)>, i64)>;
    async fn stored_version(&self, key: &str) -> atlas_promote_core::Result<Option<u64>>;
}

/// What [`verify`](crate::SqlStore::verify) found: the log is one unbroken chain up to `head`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verified {
    /// The database.
    pub location: String,
    /// How many records were checked.
    pub records: u64,
    /// The last record.
    pub head: AuditHead,
    /// The seqs of breaks accepted by [`repair`](crate::SqlStore::repair) and passed over.
    pub accepted: Vec<u64>,
}

fn core(location: &str) -> impl Fn(atlas_promote_core::Error) -> Error + '_ {
    move |e| match e {
        atlas_promote_core::Error::Backend { operation, temporary, source, .. } => Error::Database {
            location: location.to_owned(),
            operation,
            temporary,
            source: sqlx::Error::Protocol(source.to_string()),
        },
        other => Error::Damaged { location: location.to_owned(), what: "the store".into(), message: other.to_string() },
    }
}

async fn checkpoint(store: &dyn Tables) -> Result<(AuditHead, i64)> {
    let err = core(store.location());
    let seq = store.meta("checkpoint_seq").await.map_err(&err)?;
    let hash = store.meta("checkpoint_hash").await.map_err(&err)?;
    let commit = store.meta("checkpoint_commit").await.map_err(&err)?;
    let bad = |what: &str, value: &str| Error::Damaged {
        location: store.location().to_owned(),
        what: "the verified checkpoint".into(),
        message: format!("{what} {value:?} is not a number"),
    };
    Ok((
        AuditHead { seq: seq.parse().map_err(|_| bad("seq", &seq))?, hash },
        commit.parse().map_err(|_| bad("commit", &commit))?,
    ))
}

async fn accepted(store: &dyn Tables) -> Result<Vec<u64>> {
    let text = store.meta("accepted_breaks").await.unwrap_or_default();
    Ok(text.split(',').filter_map(|s| s.trim().parse().ok()).collect())
}

/// Check the log from `from` to `head`, passing over the accepted breaks.
fn walk(
    key: Option<&ChainKey>,
    from: &AuditHead,
    records: &[AuditRecord],
    head: &AuditHead,
    accepted: &[u64],
) -> Result<(), AuditBreak> {
    let mut from = from.clone();
    let mut rest = records;
    loop {
        match atlas_promote_core::audit::verify_from_keyed(&from, rest, head, key) {
            Ok(()) => return Ok(()),
            Err(brk) if accepted.contains(&brk.seq) && brk.index < rest.len() => {
                from = AuditHead::of(Some(&rest[brk.index]));
                rest = &rest[brk.index + 1..];
            }
            Err(brk) => return Err(brk),
        }
    }
}

/// Whether the key given is the one the chain was written with (a key
/// given for a new store, its log empty, becomes its key).
pub(crate) async fn chain_key(store: &dyn Tables) -> Result<()> {
    let err = core(store.location());
    let location = || store.location().to_owned();
    let recorded = store.meta("chain_key").await.map_err(&err)?;
    match (store.chain_key(), recorded.as_str()) {
        (None, "") => Ok(()),
        (None, _) => Err(Error::ChainKeyRequired { location: location() }),
        (Some(key), "") => {
            if store.adopt_chain_key(&key.fingerprint()).await.map_err(&err)? {
                Ok(())
            } else {
                Err(Error::UnkeyedChain { location: location() })
            }
        }
        (Some(key), recorded) if key.fingerprint() == recorded => Ok(()),
        (Some(_), _) => Err(Error::WrongChainKey { location: location() }),
    }
}

/// On open: the chain from the last verified checkpoint, and the documents
/// against the commits since; then the checkpoint moves to the head.
pub(crate) async fn on_open(store: &dyn Tables) -> Result<()> {
    let err = core(store.location());
    let (from, from_commit) = checkpoint(store).await?;
    let head = store.head().await.map_err(&err)?;
    let accepted = accepted(store).await?;
    let mut records = store.records(from.seq.saturating_sub(1), head.seq).await.map_err(&err)?;
    // The checkpoint's own record must still be the one verified.
    let base = if from.seq > 0 {
        match records.first() {
            Some(r) if r.seq == from.seq && r.hash == from.hash => AuditHead::of(Some(&records.remove(0))),
            _ if accepted.contains(&from.seq) => from.clone(),
            first => {
                let kind = match first {
                    Some(r) if r.seq == from.seq => atlas_promote_core::audit::BreakKind::Diverged,
                    _ => atlas_promote_core::audit::BreakKind::Truncated { last: from.seq.saturating_sub(1) },
                };
                let brk = AuditBreak { seq: from.seq, index: 0, kind };
                return Err(Error::BrokenChain { location: store.location().to_owned(), brk });
            }
        }
    } else {
        AuditHead::empty()
    };
    walk(store.chain_key(), &base, &records, &head, &accepted)
        .map_err(|brk| Error::BrokenChain { location: store.location().to_owned(), brk })?;

    let (committed, last_commit) = store.commits_after(from_commit).await.map_err(&err)?;
    let mut newest: BTreeMap<String, u64> = BTreeMap::new();
    for (key, version) in committed {
        let slot = newest.entry(key).or_default();
        *slot = (*slot).max(version);
    }
    let mut lost = Vec::new();
    for (key, version) in newest {
        let stored = store.stored_version(&key).await.map_err(&err)?;
        if stored.is_none_or(|s| s < version) {
            lost.push((key, stored, version));
        }
    }
    if !lost.is_empty() {
        return Err(Error::LostState { location: store.location().to_owned(), documents: lost });
    }
    store
        .set_meta(&[
            ("checkpoint_seq", head.seq.to_string()),
            ("checkpoint_hash", head.hash.clone()),
            ("checkpoint_commit", last_commit.to_string()),
        ])
        .await
        .map_err(&err)
}

/// The whole log, from its first record.
pub(crate) async fn verify(store: &dyn Tables) -> Result<Verified> {
    let err = core(store.location());
    let head = store.head().await.map_err(&err)?;
    let accepted = accepted(store).await?;
    let records = store.records(0, head.seq).await.map_err(&err)?;
    walk(store.chain_key(), &AuditHead::empty(), &records, &head, &accepted)
        .map_err(|brk| Error::BrokenChain { location: store.location().to_owned(), brk })?;
    Ok(Verified {
        location: store.location().to_owned(),
        records: u64::try_from(records.len()).unwrap_or(u64::MAX),
        head,
        accepted,
    })
}

/// Accept what `on_open` refused: the head moves to the last record there
/// is, the break is recorded in the log (and passed over by `verify`), the
/// lost documents are named there, and the checkpoint moves past them.
pub(crate) async fn repair(store: &dyn Tables, problem: &Error, actor: &str, at: DateTime<Utc>) -> Result<AuditHead> {
    let err = core(store.location());
    let last = store.records(0, u64::MAX >> 1).await.map_err(&err)?.pop();
    let actual = AuditHead::of(last.as_ref());
    let mut accepted = accepted(store).await?;
    if let Error::BrokenChain { brk, .. } = problem {
        accepted.push(brk.seq);
    }
    let list = accepted.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    store
        .set_meta(&[
            ("audit_head_seq", actual.seq.to_string()),
            ("audit_head_hash", actual.hash.clone()),
            ("accepted_breaks", list),
        ])
        .await
        .map_err(&err)?;
    let entry = AuditEntry {
        at,
        actor: actor.to_owned(),
        action: "store.break.accepted".into(),
        subject: store.location().to_owned(),
        message: problem.to_string(),
    };
    store.commit(vec![], vec![entry]).await.map_err(&err)?;
    let head = store.head().await.map_err(&err)?;
    let (_, last_commit) = store.commits_after(0).await.map_err(&err)?;
    store
        .set_meta(&[
            ("checkpoint_seq", head.seq.to_string()),
            ("checkpoint_hash", head.hash.clone()),
            ("checkpoint_commit", last_commit.to_string()),
        ])
        .await
        .map_err(&err)?;
    Ok(head)
}
