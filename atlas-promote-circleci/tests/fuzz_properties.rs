//! The CircleCI fuzz targets of `fuzz/` as property tests, so that CI reaches
//! the same code without libFuzzer: arbitrary bytes, and the committed seeds
//! of `fuzz/corpus/<target>/` edited at random, fed to the same entry points
//! (`atlas_promote_circleci::fuzz`). None may panic.
//!
//! The scaffolding (seeds, edits, `ATLAS_FUZZ_CASES`) is
//! `atlas_promote_fakes::fuzz`'s.

use atlas_promote_circleci::fuzz;
use atlas_promote_fakes::fuzz as fuzz_kit;
use proptest::strategy::Strategy;

/// Bytes that matter to the fields read, spliced in besides JSON's.
const TOKENS: &[&[u8]] = &[
    b"\"approve-prod\"",
    b"\"job-completed\"",
    b"\"workflow-completed\"",
    b"\"main\"",
    b"\"approval\"",
    b"\"success\"",
    b"\"atlas.9fceb02.prod.deploy.1\"",
];

fn pick(target: &str) -> impl Strategy<Value = Vec<u8>> + use<> {
    fuzz_kit::edited_seeds(target, [fuzz_kit::JSON_TOKENS, TOKENS].concat())
}

atlas_promote_fakes::fuzz_properties! {
    pick;
    webhook_any_bytes, webhook_edited_seeds: "circleci_webhook" => fuzz::fuzz_webhook;
    decode_any_bytes, decode_edited_seeds: "circleci_decode" => fuzz::fuzz_decode;
}
