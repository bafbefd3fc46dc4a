#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atlas_promote_core::fuzz::fuzz_evidence_json(data));
