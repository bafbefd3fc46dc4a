#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atlas_promote_core::fuzz::fuzz_policy_yaml(data));
