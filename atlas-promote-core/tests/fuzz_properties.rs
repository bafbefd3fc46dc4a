//! The fuzz targets of `fuzz/` as property tests, so that CI reaches the same
//! code without libFuzzer: arbitrary bytes, and the committed seeds of
//! `fuzz/corpus/<target>/` edited at random, fed to the same entry points
//! (`atlas_promote_core::fuzz`). None may panic.
//!
//! `ATLAS_FUZZ_CASES` sets the cases per property (default 256); the long
//! runs are libFuzzer's (`fuzz/run`, see RELIABILITY.md).

use atlas_promote_core::fuzz;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("ATLAS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// The committed seeds of a fuzz target.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/../fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")).map(|entry| entry.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|path| std::fs::read(path).unwrap()).collect();
    assert!(!seeds.is_empty(), "{dir} has no seeds");
    seeds
}

/// Bytes that matter to the formats fuzzed here, for edits to splice in.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"=",
    b"\n",
    b"#",
    b"- ",
    b"null",
    b"true",
    b"1e999",
    b"-9223372036854775809",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"2026-13-45T25:61:61Z",
    b"9999-12-31T23:59:59Z",
    b"+262143-01-01T00:00:00Z",
    b"0h",
    b"99999999999d",
    b"&a",
    b"*a",
    b"!!binary",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\t",
    b"'",
    b"[[stage]]",
];

/// One edit: at a place (taken modulo the length), cut up to 8 bytes and splice in a token or random bytes.
fn edits() -> impl Strategy<Value = Vec<(usize, usize, Vec<u8>)>> {
    let insert = prop_oneof![
        3 => proptest::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec((any::<usize>(), 0usize..8, insert), 1..5)
}

fn edited(seed: &[u8], edits: &[(usize, usize, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for (at, cut, insert) in edits {
        let at = at % (bytes.len() + 1);
        let end = (at + cut).min(bytes.len());
        bytes.splice(at..end, insert.iter().copied());
    }
    bytes
}

fn pick(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (0..seeds.len(), edits()).prop_map(move |(i, edits)| edited(&seeds[i], &edits))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn policy_toml_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::fuzz_policy_toml(&data);
    }

    #[test]
    fn policy_toml_edited_seeds(data in pick("policy_toml")) {
        fuzz::fuzz_policy_toml(&data);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn policy_yaml_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::fuzz_policy_yaml(&data);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn policy_yaml_edited_seeds(data in pick("policy_yaml")) {
        fuzz::fuzz_policy_yaml(&data);
    }

    #[test]
    fn evidence_json_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::fuzz_evidence_json(&data);
    }

    #[test]
    fn evidence_json_edited_seeds(data in pick("evidence_json")) {
        fuzz::fuzz_evidence_json(&data);
    }
}
