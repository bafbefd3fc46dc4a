//! G1 origin: environments take trunk candidates; ephemeral environments
//! take branch builds and nothing else; other stages take both.

mod gate_support;

use std::collections::BTreeMap;

use atlas_promote_core::{Candidate, Evidence, Origin, Policy, Stage, StageKind, Verdict};
use gate_support::*;

/// `review → preview (ephemeral) → trunk → dev`, no other rules.
fn with_preview() -> Policy {
    let mut preview = Stage::new("preview", StageKind::Environment);
    preview.ephemeral = true;
    let stages = vec![
        Stage::new("review", StageKind::Review),
        preview,
        Stage::new("trunk", StageKind::Trunk),
        Stage::new("dev", StageKind::Environment),
    ];
    Policy { name: "preview".into(), directory: BTreeMap::new(), overrides: None, stages }
}

fn in_review(candidate: Candidate) -> Evidence {
    let mut evidence = Evidence::new(candidate);
    evidence.entered_at = Some(at("2026-05-04T08:00:00Z"));
    evidence
}

#[test]
fn g1_a_branch_build_never_enters_prod() {
    // Given a branch build that otherwise meets every rule of staging → prod
    let mut evidence = ready_for_prod();
    evidence.candidate = Candidate::branch(SHA, "feature/x", ["alice"]);
    // When it asks to enter prod
    let decision = staging_to_prod(&evidence, NOW);
    // Then prod refuses its origin, and only time would not change that
    assert_eq!(blockers(&decision), ["origin_not_accepted"]);
    assert_eq!(decision.verdict, Verdict::Block);
    assert!(decision.blockers[0].to_string().contains("prod takes trunk candidates only"));
}

#[test]
fn g1_a_trunk_candidate_never_enters_an_ephemeral_environment() {
    // Given a trunk candidate in review
    let evidence = in_review(Candidate::trunk(SHA, ["alice"]));
    // When it asks to enter the ephemeral preview environment
    let decision = with_preview().gate("review", "preview").unwrap().evaluate(&evidence, at(NOW));
    // Then preview refuses it
    assert_eq!(blockers(&decision), ["origin_not_accepted"]);
    assert!(matches!(
        &decision.blockers[0],
        atlas_promote_core::Blocker::OriginNotAccepted { origin: Origin::Trunk, .. }
    ));
}

#[test]
fn g1_a_branch_build_enters_an_ephemeral_environment() {
    let evidence = in_review(Candidate::branch(SHA, "feature/x", ["alice"]));
    let decision = with_preview().gate("review", "preview").unwrap().evaluate(&evidence, at(NOW));
    assert_eq!(decision.verdict, Verdict::Allow);
}

#[test]
fn g1_stages_that_are_not_environments_take_any_origin() {
    // Given a branch build in review (the pull request)
    let evidence = in_review(Candidate::branch(SHA, "feature/x", ["alice"]));
    // When it asks to enter trunk, which is not an environment
    let decision = with_preview().gate("review", "trunk").unwrap().evaluate(&evidence, at(NOW));
    // Then its origin is no reason to block
    assert_eq!(decision.verdict, Verdict::Allow);
}
