//! The conditional-request cache: the last answer to each URL with its
//! `ETag`, so that an unchanged poll is a free `304` (reference §1.3).
//! Bounded: beyond its capacity the least recently used entry goes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use reqwest::header::HeaderValue;

/// A cached answer: what a `304` stands for.
#[derive(Debug, Clone)]
pub(crate) struct CachedResponse {
    pub(crate) etag: HeaderValue,
    pub(crate) body: Arc<[u8]>,
    pub(crate) link: Option<HeaderValue>,
}

/// Answers by URL, at most `capacity` of them, each stamped with when it
/// was last read or written.
#[derive(Debug)]
pub(crate) struct EtagCache {
    capacity: usize,
    entries: HashMap<String, (CachedResponse, u64)>,
    /// Stamp → URL, oldest first.
    order: BTreeMap<u64, String>,
    clock: u64,
}

impl EtagCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity: capacity.max(1), entries: HashMap::new(), order: BTreeMap::new(), clock: 0 }
    }

    /// The answer cached for `url`, now the most recently used.
    pub(crate) fn get(&mut self, url: &str) -> Option<CachedResponse> {
        let stamp = self.tick();
        let (entry, used) = self.entries.get_mut(url)?;
        self.order.remove(used);
        *used = stamp;
        self.order.insert(stamp, url.to_owned());
        Some(entry.clone())
    }

    /// Cache `entry` for `url`, making room by dropping the least recently used.
    pub(crate) fn put(&mut self, url: String, entry: CachedResponse) {
        let stamp = self.tick();
        if let Some((_, used)) = self.entries.insert(url.clone(), (entry, stamp)) {
            self.order.remove(&used);
        }
        self.order.insert(stamp, url);
        while self.entries.len() > self.capacity {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.entries.remove(&oldest);
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(etag: &'static str) -> CachedResponse {
        CachedResponse { etag: HeaderValue::from_static(etag), body: Arc::from(&b"[]"[..]), link: None }
    }

    #[test]
    fn the_etag_cache_evicts_the_least_recently_used_entry() {
        let mut cache = EtagCache::new(3);
        for url in ["a", "b", "c"] {
            cache.put(url.into(), entry("\"1\""));
        }
        // `a` is read, `b` rewritten: `c` is now the least recently used.
        assert!(cache.get("a").is_some());
        cache.put("b".into(), entry("\"2\""));
        cache.put("d".into(), entry("\"1\""));

        assert!(cache.get("c").is_none(), "the least recently used entry went");
        for url in ["a", "b", "d"] {
            assert!(cache.get(url).is_some(), "{url} was kept");
        }
        assert_eq!(cache.get("b").unwrap().etag, "\"2\"");
        assert_eq!((cache.entries.len(), cache.order.len()), (3, 3));
    }
}
