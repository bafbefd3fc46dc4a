//! The documents the engine keeps in a [`crate::StateStore`], and
//! typed access to them.

use std::any::Any;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::backend::{Document, Fetched, StateStore, Write};
use crate::error::{Error, Result};
use crate::evidence::{ApprovalRecord, Candidate, Origin};
use crate::key_hash::KeyMap;
use crate::machine::Promotion;
use crate::policy::Person;

/// The store key of a candidate's promotion document.
pub fn promotion_key(candidate: &Candidate) -> String {
    match (candidate.origin, &candidate.branch) {
        (Origin::Branch, Some(branch)) => ["promotion/branch/", branch, "/", &candidate.sha].concat(),
        (Origin::Branch, None) => ["promotion/branch/", &candidate.sha].concat(),
        (Origin::Trunk, _) => ["promotion/trunk/", &candidate.sha].concat(),
    }
}

/// The store key of an environment's document. An ephemeral environment
/// exists once per branch: each branch's builds replace each other there.
pub fn environment_key(stage: &str, candidate: &Candidate) -> String {
    match (candidate.origin, &candidate.branch) {
        (Origin::Branch, Some(branch)) => ["environment/", stage, "/", branch].concat(),
        _ => ["environment/", stage].concat(),
    }
}

/// Where the markers of active (not ended) promotions live: one per
/// promotion, at this prefix followed by the promotion's key, so that a tick
/// reads the promotions still moving and not every one ever made.
pub const ACTIVE_PREFIX: &str = "active/";

/// Present once the store keeps a marker under [`ACTIVE_PREFIX`] for every
/// active promotion. A store without it (written before the markers) is
/// read in full, and indexed on the next candidate it registers.
pub const ACTIVE_INDEX: &str = "meta/active-index";

/// The store key of the marker saying the promotion at `promotion_key` is active.
pub fn active_key(promotion_key: &str) -> String {
    [ACTIVE_PREFIX, promotion_key].concat()
}

/// The store key of an environment's hold (stop the line): one per stage.
pub fn hold_key(stage: &str) -> String {
    ["hold/", stage].concat()
}

/// The store key of the native approval records for (stage, sha).
pub fn approvals_key(stage: &str, sha: &str) -> String {
    ["approvals/", stage, "/", sha].concat()
}

/// A promotion as stored: the state machine's value, and which engine
/// instance owns its pending trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromotionRecord {
    /// The promotion.
    pub promotion: Promotion,
    /// The ephemeral environment a branch build was asked to go to.
    #[serde(default)]
    pub target: Option<String>,
    /// The engine instance that committed the last transition.
    pub owner: String,
    /// When it did.
    #[serde(serialize_with = "crate::instant::serialize")]
    pub owned_at: DateTime<Utc>,
}

/// A stop-the-line hold on an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Who holds it.
    pub by: Person,
    /// Why.
    pub reason: String,
    /// Since when.
    #[serde(serialize_with = "crate::instant::serialize")]
    pub at: DateTime<Utc>,
}

/// How many earlier live commits of an environment the engine keeps as
/// rollback targets. The environment document is read on every decision
/// about it, so an unbounded history would make each one slower than the
/// last; nobody rolls back further than this one step at a time.
pub const ROLLBACK_DEPTH: usize = 10;

impl EnvironmentRecord {
    /// `key` was live here and is replaced: keep it as the newest rollback
    /// target, forgetting the oldest beyond [`ROLLBACK_DEPTH`].
    pub fn push_previous(&mut self, key: String) {
        self.previous.push(key);
        let excess = self.previous.len().saturating_sub(ROLLBACK_DEPTH);
        self.previous.drain(..excess);
    }
}

/// What the engine knows about one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentRecord {
    /// The promotion key of the candidate live here.
    pub live: Option<String>,
    /// The commit live here.
    pub live_sha: Option<String>,
    /// Earlier live promotions, newest last (rollback targets); at most
    /// [`ROLLBACK_DEPTH`] of them.
    #[serde(default)]
    pub previous: Vec<String>,
    /// The promotion whose deploy or flush is in flight here.
    pub in_flight: Option<String>,
    /// Monitored results that finished at or before this instant have been acted on.
    #[serde(serialize_with = "crate::instant::option::serialize")]
    pub monitored_until: Option<DateTime<Utc>>,
}

/// Native approval records for one (stage, sha).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalsRecord {
    /// The records, oldest first.
    pub records: Vec<ApprovalRecord>,
}

/// A typed document and the version it was read at (`None`: not stored yet).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The key.
    pub key: String,
    /// The version read.
    pub version: Option<u64>,
    /// The value.
    pub value: T,
}

impl<T: Serialize> Versioned<T> {
    /// A write replacing this document, based on the version read.
    pub fn write(&self) -> Result<Write> {
        let value = serde_json::to_value(&self.value)
            .map_err(|e| Error::Invalid { what: format!("document {}", self.key), message: e.to_string() })?;
        Ok(Write::Put { key: self.key.clone(), expected: self.version, value })
    }
}

/// Decode a stored document.
pub fn decode<T: DeserializeOwned>(doc: Document) -> Result<Versioned<T>> {
    let value = serde_json::from_value(doc.value).map_err(|e| Error::Corrupt {
        path: doc.key.clone(),
        message: format!("document {} does not hold what the engine wrote: {e}", doc.key),
    })?;
    Ok(Versioned { key: doc.key, version: Some(doc.version), value })
}

/// The typed documents an engine decoded, by key and version: a document
/// read again at the same version (most are, tick after tick) is cloned
/// from here instead of copied out of the store and decoded again. Every
/// read still asks the store ([`StateStore::get_if_changed`]), so another
/// engine's writes are seen as before.
#[derive(Clone, Default)]
pub(crate) struct Decoded {
    map: Arc<Mutex<DecodedMap>>,
}

/// Key → (version, the decoded value).
type DecodedMap = KeyMap<String, (u64, Arc<dyn Any + Send + Sync>)>;

/// Past this many documents the cache starts again from empty: an engine
/// rereads its active promotions and their environments, a few dozen
/// documents, not the whole history.
const DECODED_LIMIT: usize = 4096;

impl std::fmt::Debug for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoded").field("documents", &self.lock().len()).finish()
    }
}

impl Decoded {
    fn lock(&self) -> std::sync::MutexGuard<'_, DecodedMap> {
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The document at `key`, decoded.
    pub(crate) async fn get<T>(&self, store: &dyn StateStore, key: &str) -> Result<Option<Versioned<T>>>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        let known = self.lock().get(key).map(|(version, value)| (*version, Arc::clone(value)));
        let doc = match known {
            Some((version, value)) => match store.get_if_changed(key, version).await? {
                Fetched::Unchanged => match value.downcast_ref::<T>() {
                    Some(value) => {
                        let value = value.clone();
                        return Ok(Some(Versioned { key: key.to_owned(), version: Some(version), value }));
                    }
                    // Read as another type: read it whole.
                    None => store.get(key).await?,
                },
                Fetched::Current(doc) => doc,
            },
            None => store.get(key).await?,
        };
        let Some(doc) = doc else {
            self.lock().remove(key);
            return Ok(None);
        };
        let record: Versioned<T> = decode(doc)?;
        if let Some(version) = record.version {
            self.keep(record.key.clone(), version, Arc::new(record.value.clone()));
        }
        Ok(Some(record))
    }

    /// Keep `record` as the decoded document at its version: call it once
    /// a commit that wrote it at that version succeeded.
    pub(crate) fn keep_record<T: Send + Sync + 'static>(&self, record: Versioned<T>) {
        let Some(version) = record.version else { return };
        self.keep(record.key, version, Arc::new(record.value));
    }

    /// Keep `value` as the decoded document at `key` and `version`: call it
    /// once a commit that wrote it at that version succeeded.
    pub(crate) fn keep(&self, key: String, version: u64, value: Arc<dyn Any + Send + Sync>) {
        let mut map = self.lock();
        if map.len() >= DECODED_LIMIT {
            map.clear();
        }
        map.insert(key, (version, value));
    }

    /// The document at `key`, decoded, or its default when absent.
    pub(crate) async fn get_or_default<T>(&self, store: &dyn StateStore, key: &str) -> Result<Versioned<T>>
    where
        T: DeserializeOwned + Clone + Default + Send + Sync + 'static,
    {
        Ok(self.get(store, key).await?.unwrap_or_else(|| Versioned {
            key: key.to_owned(),
            version: None,
            value: T::default(),
        }))
    }
}

/// Read a typed document, or its default when absent.
pub async fn read_or_default<T: DeserializeOwned + Default>(store: &dyn StateStore, key: &str) -> Result<Versioned<T>> {
    match store.get(key).await? {
        Some(doc) => decode(doc),
        None => Ok(Versioned { key: key.to_owned(), version: None, value: T::default() }),
    }
}
