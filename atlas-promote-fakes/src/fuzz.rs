//! The scaffolding of the property tests that run the fuzz targets of
//! `fuzz/` without libFuzzer: arbitrary bytes, and the committed seeds of
//! `fuzz/corpus/<target>/` edited at random. Each crate's test names its
//! targets and the tokens worth splicing into them.
//!
//! `ATLAS_FUZZ_CASES` sets the cases per property (default 256); the long
//! runs are libFuzzer's (`fuzz/run`, see RELIABILITY.md).

use proptest::prelude::*;

/// Bytes that matter to JSON, for edits to splice in: structure, numbers
/// out of range, broken escapes and UTF-8, impossible and far instants.
pub const JSON_TOKENS: &[&[u8]] = &[
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
    b"\xff",
    b"\xc3\x28",
];

/// The property tests' configuration: `ATLAS_FUZZ_CASES` cases (default
/// 256), no failure files (a failure prints its input).
pub fn config() -> ProptestConfig {
    let cases = std::env::var("ATLAS_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256);
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Arbitrary bytes, up to 512 of them.
pub fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

/// The committed seeds of a fuzz target, in file-name order.
///
/// # Panics
///
/// When the target has no corpus directory or no seed in it: a test with
/// nothing to edit would prove nothing.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = format!("{}/../fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")).map(|entry| entry.unwrap().path()).collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|path| std::fs::read(path).unwrap()).collect();
    assert!(!seeds.is_empty(), "{dir} has no seeds");
    seeds
}

/// A seed of `target` with 1 to 4 edits: at a place (taken modulo the
/// length), cut up to 8 bytes and splice in one of `tokens` or random bytes.
pub fn edited_seeds(target: &str, tokens: Vec<&'static [u8]>) -> impl Strategy<Value = Vec<u8>> + use<> {
    let seeds = seeds(target);
    let insert = prop_oneof![
        3 => proptest::sample::select(tokens).prop_map(<[u8]>::to_vec),
        1 => proptest::collection::vec(any::<u8>(), 0..6),
    ];
    let edits = proptest::collection::vec((any::<usize>(), 0usize..8, insert), 1..5);
    (0..seeds.len(), edits).prop_map(move |(i, edits)| edited(&seeds[i], &edits))
}

/// The properties of fuzz targets: for each, one on arbitrary bytes and
/// one on its edited seeds (`pick(target)`), both feeding the target's
/// entry point, which may not panic.
///
/// ```text
/// atlas_promote_fakes::fuzz_properties! {
///     pick;
///     webhook_any_bytes, webhook_edited_seeds: "github_webhook" => fuzz::fuzz_webhook;
/// }
/// ```
#[macro_export]
macro_rules! fuzz_properties {
    ($pick:path; $($any:ident, $edited:ident: $target:literal => $entry:path;)+) => {
        $crate::fuzz::proptest::proptest! {
            #![proptest_config($crate::fuzz::config())]
            $(
                #[test]
                fn $any(data in $crate::fuzz::any_bytes()) {
                    $entry(&data);
                }

                #[test]
                fn $edited(data in $pick($target)) {
                    $entry(&data);
                }
            )+
        }
    };
}

/// proptest, for [`fuzz_properties!`](crate::fuzz_properties).
pub use proptest;

fn edited(seed: &[u8], edits: &[(usize, usize, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for (at, cut, insert) in edits {
        let at = at % (bytes.len() + 1);
        let end = (at + cut).min(bytes.len());
        bytes.splice(at..end, insert.iter().copied());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_cuts_and_splices_within_the_seed_wherever_it_points() {
        assert_eq!(edited(b"abcdef", &[(2, 2, b"XY".to_vec())]), b"abXYef");
        assert_eq!(edited(b"abc", &[(10, 8, b"!".to_vec())]), b"ab!", "10 % 4 = 2: cut from there to the end");
        assert_eq!(edited(b"", &[(5, 3, b"{".to_vec())]), b"{");
    }
}
