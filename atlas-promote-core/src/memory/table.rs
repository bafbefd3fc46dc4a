//! Versioned documents with all-or-nothing commits: the document part of the
//! in-memory [`StateStore`](crate::StateStore).

use std::collections::BTreeSet;

use crate::backend::{self, Write};
use crate::error::{Error, Result};
use crate::key_hash::KeyMap;

/// Documents by key.
///
/// Tombstones are kept apart from the documents, so that listing a prefix
/// walks only the documents that exist, however many were deleted under it
/// (the engine deletes a marker each time a promotion ends). A deleted key
/// keeps its version (a tombstone) so that re-creating it continues the
/// numbering: a writer holding the version read before the delete then gets
/// a conflict instead of overwriting the new document (the ABA problem).
///
/// Documents are found by hashing their key: keys share long prefixes
/// (`promotion/trunk/…`), which a search of an ordered map compares again
/// at every step, and every read and write looks one up. The keys are also
/// kept in order, for listing a prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Table {
    /// The documents that exist.
    documents: KeyMap<String, Document>,
    /// The keys of `documents`, in order.
    names: BTreeSet<String>,
    /// Deleted keys, and the version of their deletion.
    tombstones: KeyMap<String, u64>,
}

/// A document's version and content.
#[derive(Debug, Clone, PartialEq)]
struct Document {
    version: u64,
    value: serde_json::Value,
}

impl Table {
    pub(crate) fn get(&self, key: &str) -> Option<backend::Document> {
        self.documents.get(key).map(|d| document(key, d))
    }

    pub(crate) fn get_if_changed(&self, key: &str, version: u64) -> backend::Fetched {
        match self.documents.get(key) {
            Some(d) if d.version == version => backend::Fetched::Unchanged,
            d => backend::Fetched::Current(d.map(|d| document(key, d))),
        }
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<backend::Document> {
        self.names
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|key| key.starts_with(prefix))
            .filter_map(|key| self.documents.get(key).map(|d| document(key, d)))
            .collect()
    }

    /// Apply `writes` in order, or none of them.
    ///
    /// Every write is checked against the state left by the writes before it
    /// in the same commit, so two writes of one key must chain their
    /// versions. Returns each write's new version; a delete's version is the
    /// tombstone's.
    pub(crate) fn commit(&mut self, writes: Vec<Write>) -> Result<Vec<u64>> {
        // Each write's key, new version and whether the key existed (as a
        // document or a tombstone) before this commit. A commit writes a
        // handful of keys: a list is cheaper to search than a map.
        let mut pending: Vec<(&str, u64, bool)> = Vec::with_capacity(writes.len());
        let mut versions = Vec::with_capacity(writes.len());
        let mut existed = Vec::with_capacity(writes.len());
        for write in &writes {
            let key = write.key();
            let earlier = pending.iter().rev().find(|(k, ..)| *k == key);
            let (version, live, was) = match earlier {
                Some(&(_, version, live)) => (version, live, Existed::Earlier),
                None => match self.documents.get(key) {
                    Some(d) => (d.version, true, Existed::Document),
                    None => match self.tombstones.get(key) {
                        Some(v) => (*v, false, Existed::Tombstone),
                        None => (0, false, Existed::No),
                    },
                },
            };
            existed.push(was);
            let found = live.then_some(version);
            let (expected, live_after) = match write {
                Write::Put { expected, .. } => (*expected, true),
                Write::Delete { expected, .. } => (Some(*expected), false),
            };
            if expected != found {
                return Err(Error::Conflict { key: key.to_owned(), expected, found });
            }
            let next = version.checked_add(1).ok_or_else(|| Error::Invalid {
                what: format!("write of {key}"),
                message: "the document's version cannot grow any more".into(),
            })?;
            pending.push((key, next, live_after));
            versions.push(next);
        }
        for ((write, version), existed) in writes.into_iter().zip(&versions).zip(existed) {
            let version = *version;
            match write {
                Write::Put { key, value, .. } => {
                    if matches!(existed, Existed::Document | Existed::Earlier)
                        && let Some(d) = self.documents.get_mut(&key)
                    {
                        // The common case, a document replaced: the key is kept.
                        *d = Document { version, value };
                        continue;
                    }
                    if existed != Existed::No {
                        self.tombstones.remove(&key);
                    }
                    self.names.insert(key.clone());
                    self.documents.insert(key, Document { version, value });
                }
                Write::Delete { key, .. } => {
                    if existed != Existed::No && self.documents.remove(&key).is_some() {
                        self.names.remove(&key);
                    }
                    self.tombstones.insert(key, version);
                }
            }
        }
        Ok(versions)
    }
}

/// Where a written key was when its write was checked: what applying it
/// needs to look at (a key is never both a document and a tombstone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existed {
    /// An earlier write of the same commit wrote it: it may be anywhere now.
    Earlier,
    /// A document.
    Document,
    /// A tombstone.
    Tombstone,
    /// Nowhere.
    No,
}

fn document(key: &str, d: &Document) -> backend::Document {
    backend::Document { key: key.to_owned(), version: d.version, value: d.value.clone() }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn put(key: &str, expected: Option<u64>, n: i64) -> Write {
        Write::Put { key: key.into(), expected, value: json!(n) }
    }

    #[test]
    fn two_writes_of_one_key_in_one_commit_chain_their_versions() {
        let mut t = Table::default();
        assert_eq!(t.commit(vec![put("a", None, 1), put("a", Some(1), 2)]).unwrap(), [1, 2]);
        assert_eq!(t.get("a").unwrap().value, json!(2));
        let err = t.commit(vec![put("a", Some(2), 3), put("a", Some(2), 4)]).unwrap_err();
        assert!(matches!(err, Error::Conflict { expected: Some(2), found: Some(3), .. }), "{err}");
        assert_eq!(t.get("a").unwrap().version, 2, "nothing applied");
    }

    #[test]
    fn a_recreated_key_continues_its_numbering() {
        let mut t = Table::default();
        t.commit(vec![put("a", None, 1)]).unwrap();
        assert_eq!(t.commit(vec![Write::Delete { key: "a".into(), expected: 1 }]).unwrap(), [2]);
        assert_eq!(t.get("a"), None);
        assert!(t.list("").is_empty());
        let err = t.commit(vec![put("a", Some(1), 9)]).unwrap_err();
        assert!(matches!(err, Error::Conflict { expected: Some(1), found: None, .. }), "{err}");
        assert_eq!(t.commit(vec![put("a", None, 3)]).unwrap(), [3]);
    }

    #[test]
    fn list_stops_at_the_end_of_the_prefix() {
        let mut t = Table::default();
        t.commit(vec![put("p/b", None, 1), put("p/a", None, 1), put("q", None, 1), put("p", None, 1)]).unwrap();
        let keys: Vec<_> = t.list("p/").into_iter().map(|d| d.key).collect();
        assert_eq!(keys, ["p/a", "p/b"]);
        assert_eq!(t.list("").len(), 4);
    }
}
