//! Test fakes shared by the atlas-promote backends' tests (dev-only, never
//! published).
//!
//! - [`relay`]: a TCP front of a local HTTP server (wiremock) that drops a
//!   connection unanswered or cuts an answer short, faults an HTTP server
//!   that always answers in full cannot produce.
//! - [`errors`]: every text an error shows, for tests that prove a secret never does.
//! - [`fuzz`]: the scaffolding of the property tests that run the fuzz
//!   targets without libFuzzer (seeds, edits, configuration).
#![forbid(unsafe_code)]

pub mod errors;
pub mod fuzz;
pub mod relay;
