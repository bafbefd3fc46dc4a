//! The GitHub fuzz targets of `fuzz/` as property tests, so that CI reaches
//! the same code without libFuzzer: arbitrary bytes, and the committed seeds
//! of `fuzz/corpus/<target>/` edited at random, fed to the same entry points
//! (`atlas_promote_github::fuzz`). None may panic.
//!
//! `ATLAS_FUZZ_CASES` sets the cases per property (default 256); the long
//! runs are libFuzzer's (`fuzz/run`, see RELIABILITY.md).

use atlas_promote_github::fuzz;
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

/// Bytes that matter to JSON and to the fields read, for edits to splice in.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"\"2026-13-45T25:61:61Z\"",
    b"\"+262143-01-01T00:00:00Z\"",
    b"\"approved\"",
    b"\"requested\"",
    b"\"completed\"",
    b"\"APPROVED\"",
    b"\"DISMISSED\"",
    b"\"success\"",
    b"\"inactive\"",
    b"\"atlas.9fceb02.prod.deploy.1\"",
    b"\xff",
    b"\xc3\x28",
];

/// Edits: at a place (modulo the length), cut up to 8 bytes and splice in a token or random bytes.
fn edits() -> impl Strategy<Value = Vec<(usize, usize, Vec<u8>)>> {
    let insert = prop_oneof![
        3 => proptest::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..6),
    ];
    proptest::collection::vec((any::<usize>(), 0usize..8, insert), 1..5)
}

fn pick(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (0..seeds.len(), edits()).prop_map(move |(i, edits)| {
        let mut bytes = seeds[i].clone();
        for (at, cut, insert) in &edits {
            let at = at % (bytes.len() + 1);
            let end = (at + cut).min(bytes.len());
            bytes.splice(at..end, insert.iter().copied());
        }
        bytes
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn webhook_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::fuzz_webhook(&data);
    }

    #[test]
    fn webhook_edited_seeds(data in pick("github_webhook")) {
        fuzz::fuzz_webhook(&data);
    }

    #[test]
    fn decode_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        fuzz::fuzz_decode(&data);
    }

    #[test]
    fn decode_edited_seeds(data in pick("github_decode")) {
        fuzz::fuzz_decode(&data);
    }
}
