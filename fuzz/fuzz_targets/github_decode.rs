#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atlas_promote_github::fuzz::fuzz_decode(data));
