//! The fuzz targets of `fuzz/` as property tests, so that CI reaches the same
//! code without libFuzzer: arbitrary bytes, and the committed seeds of
//! `fuzz/corpus/<target>/` edited at random, fed to the same entry points
//! (`atlas_promote_core::fuzz`). None may panic.
//!
//! The scaffolding (seeds, edits, `ATLAS_FUZZ_CASES`) is
//! `atlas_promote_fakes::fuzz`'s.

use atlas_promote_core::fuzz;
use atlas_promote_fakes::fuzz as fuzz_kit;
use proptest::prelude::*;

/// Bytes that matter to TOML, YAML, durations and instants, spliced in besides JSON's.
const TOKENS: &[&[u8]] = &[
    b"=",
    b"\n",
    b"#",
    b"- ",
    b"-9223372036854775809",
    b"2026-13-45T25:61:61Z",
    b"9999-12-31T23:59:59Z",
    b"+262143-01-01T00:00:00Z",
    b"0h",
    b"99999999999d",
    b"&a",
    b"*a",
    b"!!binary",
    b"\xff\xfe",
    b"\t",
    b"'",
    b"[[stage]]",
];

fn pick(target: &str) -> impl Strategy<Value = Vec<u8>> + use<> {
    fuzz_kit::edited_seeds(target, [fuzz_kit::JSON_TOKENS, TOKENS].concat())
}

proptest! {
    #![proptest_config(fuzz_kit::config())]

    #[test]
    fn policy_toml_any_bytes(data in fuzz_kit::any_bytes()) {
        fuzz::fuzz_policy_toml(&data);
    }

    #[test]
    fn policy_toml_edited_seeds(data in pick("policy_toml")) {
        fuzz::fuzz_policy_toml(&data);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn policy_yaml_any_bytes(data in fuzz_kit::any_bytes()) {
        fuzz::fuzz_policy_yaml(&data);
    }

    #[cfg(feature = "yaml")]
    #[test]
    fn policy_yaml_edited_seeds(data in pick("policy_yaml")) {
        fuzz::fuzz_policy_yaml(&data);
    }

    #[test]
    fn evidence_json_any_bytes(data in fuzz_kit::any_bytes()) {
        fuzz::fuzz_evidence_json(&data);
    }

    #[test]
    fn evidence_json_edited_seeds(data in pick("evidence_json")) {
        fuzz::fuzz_evidence_json(&data);
    }
}
