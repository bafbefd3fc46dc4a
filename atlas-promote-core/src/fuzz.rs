//! Entry points for the fuzz targets in `fuzz/` and for the property tests
//! that stand in for them in CI (`tests/fuzz_properties.rs`). Not part of the
//! API: hidden, and free to change.
//!
//! Each takes arbitrary bytes and must return without panicking, whatever
//! they are (DESIGN §6: never panic on input from outside); the asserts
//! inside are properties every input must keep.

use chrono::{DateTime, Utc};

use crate::evidence::{Candidate, Evidence};
use crate::file::PolicyError;
use crate::policy::Policy;

/// Read `data` as a TOML policy file; check the error is located, or that
/// the policy lints, writes back to TOML that reads as the same policy, and
/// decides every gate it has.
#[doc(hidden)]
pub fn fuzz_policy_toml(data: &[u8]) {
    // A file that is not UTF-8 never reaches the parser (`from_path` refuses it).
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(policy) = located(Policy::from_toml_str(text, "fuzz.toml")) {
        exercise(&policy);
    }
}

/// [`fuzz_policy_toml`] for a YAML policy file.
#[cfg(feature = "yaml")]
#[doc(hidden)]
pub fn fuzz_policy_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(policy) = located(Policy::from_yaml_str(text, "fuzz.yaml")) {
        exercise(&policy);
    }
}

/// Read `data` as an evidence file; check the error names its place, or
/// that every gate of the ATLAS policy decides on it and the evidence
/// writes back to JSON that reads as the same evidence.
#[doc(hidden)]
pub fn fuzz_evidence_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let evidence = match Evidence::from_json_str(text, "fuzz.json") {
        Ok(evidence) => evidence,
        Err(e) => {
            assert!(e.line.is_none_or(|l| l >= 1) && e.column.is_none_or(|c| c >= 1), "{e}");
            let _ = e.to_string();
            return;
        }
    };
    let policy = Policy::atlas();
    decide_every_gate(&policy, &evidence);
    let json = serde_json::to_string(&evidence).unwrap_or_default();
    let again = Evidence::from_json_str(&json, "again.json");
    assert_eq!(again.as_ref(), Ok(&evidence), "evidence does not survive a round trip through {json}");
}

/// The policy, or `None` after checking the error says where.
fn located(result: Result<Policy, PolicyError>) -> Option<Policy> {
    match result {
        Ok(policy) => Some(policy),
        Err(e) => {
            for mistake in e.mistakes() {
                let located = mistake.line.is_some_and(|l| l >= 1) && mistake.column.is_some_and(|c| c >= 1);
                assert!(located, "unlocated: {mistake}");
            }
            let _ = e.to_string();
            None
        }
    }
}

fn exercise(policy: &Policy) {
    for finding in policy.lint() {
        let _ = finding.to_string();
    }
    let text = policy.to_toml_string();
    let again = Policy::from_toml_str(&text, "again.toml");
    assert_eq!(again.as_ref(), Ok(policy), "the policy does not survive a round trip through\n{text}");
    let candidate = Candidate::trunk("9fceb02", ["alice"]);
    decide_every_gate(policy, &Evidence::new(candidate));
}

fn decide_every_gate(policy: &Policy, evidence: &Evidence) {
    let instants = [1_778_000_000, 1_798_761_600, 0].map(|s| DateTime::<Utc>::from_timestamp(s, 0).unwrap_or_default());
    for (i, from) in policy.stages.iter().enumerate() {
        for to in &policy.stages[i + 1..] {
            let Ok(gate) = policy.gate(&from.name, &to.name) else { continue };
            for now in instants {
                let decision = gate.evaluate(evidence, now);
                let _ = decision.to_string();
                let _ = serde_json::to_string(&decision);
            }
        }
    }
}
