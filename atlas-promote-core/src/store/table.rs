//! Versioned documents with all-or-nothing commits: the part of a
//! [`StateStore`](crate::StateStore) that the in-memory and file stores share.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::backend::{Document, Write};
use crate::error::{Error, Result};

/// One key's latest version. A deleted key keeps its version (a tombstone)
/// so that re-creating it continues the numbering: a writer holding the
/// version read before the delete then gets a conflict instead of
/// overwriting the new document (the ABA problem).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Slot {
    pub(crate) version: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) deleted: bool,
    #[serde(default)]
    pub(crate) value: serde_json::Value,
}

/// Documents by key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Table {
    slots: BTreeMap<String, Slot>,
}

impl Table {
    pub(crate) fn get(&self, key: &str) -> Option<Document> {
        self.slots.get(key).and_then(|slot| document(key, slot))
    }

    pub(crate) fn list(&self, prefix: &str) -> Vec<Document> {
        self.slots
            .range::<str, _>((std::ops::Bound::Included(prefix), std::ops::Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .filter_map(|(key, slot)| document(key, slot))
            .collect()
    }

    /// The first slot whose version is 0, if any: such a table was not written by us.
    pub(crate) fn invalid_key(&self) -> Option<&str> {
        self.slots.iter().find(|(_, slot)| slot.version == 0).map(|(key, _)| key.as_str())
    }

    /// Apply `writes` in order, or none of them.
    ///
    /// Every write is checked against the state left by the writes before it
    /// in the same commit, so two writes of one key must chain their
    /// versions. Returns each write's new version; a delete's version is the
    /// tombstone's.
    pub(crate) fn commit(&mut self, writes: Vec<Write>) -> Result<Vec<u64>> {
        let mut pending: HashMap<&str, (u64, bool)> = HashMap::new();
        let mut versions = Vec::with_capacity(writes.len());
        for write in &writes {
            let key = write.key();
            let (version, live) = pending
                .get(key)
                .copied()
                .or_else(|| self.slots.get(key).map(|s| (s.version, !s.deleted)))
                .unwrap_or((0, false));
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
            pending.insert(key, (next, live_after));
            versions.push(next);
        }
        for (write, version) in writes.into_iter().zip(&versions) {
            let (key, slot) = match write {
                Write::Put { key, value, .. } => (key, Slot { version: *version, deleted: false, value }),
                Write::Delete { key, .. } => {
                    (key, Slot { version: *version, deleted: true, value: serde_json::Value::Null })
                }
            };
            self.slots.insert(key, slot);
        }
        Ok(versions)
    }
}

fn document(key: &str, slot: &Slot) -> Option<Document> {
    (!slot.deleted).then(|| Document { key: key.to_owned(), version: slot.version, value: slot.value.clone() })
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
    fn a_json_null_value_is_a_document() {
        let mut t = Table::default();
        t.commit(vec![Write::Put { key: "n".into(), expected: None, value: json!(null) }]).unwrap();
        let round: Table = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(round.get("n").unwrap().value, json!(null));
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
