//! Hashing of store keys for the maps the engine and the stores look
//! documents up in, on every read and write.
//!
//! The standard hasher (SipHash) costs more than the lookups it serves: keys
//! are short strings the engine builds (`promotion/trunk/9fceb02`), hashed
//! many times a tick. This one folds eight bytes at a time, in the manner of
//! rustc's `FxHasher`, from a seed drawn at random for each map, so that which
//! keys share a bucket differs between maps and runs.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A [`std::collections::HashMap`] keyed by store keys.
pub(crate) type KeyMap<K, V> = std::collections::HashMap<K, V, KeyHash>;

/// A [`std::collections::HashSet`] of store keys.
pub(crate) type KeySet<K> = std::collections::HashSet<K, KeyHash>;

/// Builds a [`KeyHasher`] from this map's random seed.
#[derive(Debug, Clone)]
pub(crate) struct KeyHash {
    seed: u64,
}

impl Default for KeyHash {
    fn default() -> Self {
        Self { seed: RandomState::new().hash_one(0x9e37_79b9_u32) }
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher { hash: self.seed }
    }
}

/// The hasher [`KeyHash`] builds.
#[derive(Debug, Clone)]
pub(crate) struct KeyHasher {
    hash: u64,
}

/// The multiplier of rustc's `FxHasher`.
const K: u64 = 0x517c_c1b7_2722_0a95;

impl KeyHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length tells `ab` from `ab\0`.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        // The product's high bits are its best mixed; a hash table indexes by the low ones.
        self.hash.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_differ_anywhere_hash_apart() {
        let hash = KeyHash::default();
        let keys = ["", "a", "ab", "ab\0", "promotion/trunk/0000001", "promotion/trunk/0000002", "environment/prod"];
        let hashes: Vec<u64> = keys.iter().map(|k| hash.hash_one(k)).collect();
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn a_map_of_many_keys_finds_each() {
        let mut map: KeyMap<String, usize> = KeyMap::default();
        for i in 0..50_000 {
            map.insert(format!("promotion/trunk/{i:07x}"), i);
        }
        for i in 0..50_000 {
            assert_eq!(map.get(&format!("promotion/trunk/{i:07x}")), Some(&i));
        }
        assert_eq!(map.get("promotion/trunk/"), None);
    }
}
