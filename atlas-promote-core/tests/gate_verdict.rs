//! The verdict and how a decision reads: JSON for machines, sentences for people.

mod gate_support;

use atlas_promote_core::{Decision, Verdict};
use gate_support::*;
use serde_json::{Value, json};

fn to_json(decision: &Decision) -> Value {
    serde_json::to_value(decision).expect("a decision serializes")
}

#[test]
fn an_allowed_decision_has_no_until_and_empty_lists() {
    let decision = staging_to_prod(&ready_for_prod(), NOW);
    let json = to_json(&decision);
    assert_eq!(json["verdict"], "allow");
    assert!(json.get("until").is_none(), "{json}");
    assert_eq!(json["blockers"], json!([]));
    assert_eq!(json["warnings"], json!([]));
    assert_eq!(json["from"], "staging");
    assert_eq!(json["to"], "prod");
    assert_eq!(json["sha"], SHA);
}

#[test]
fn a_waiting_decision_says_until_when_in_rfc_3339() {
    // Given a freeze of prod until 12:00
    let mut policy = atlas_promote_core::Policy::atlas();
    policy.stages[4].freezes = vec![freeze("2026-05-05T00:00:00Z", Some("2026-05-05T12:00:00Z"))];
    let decision = policy.gate("staging", "prod").unwrap().evaluate(&ready_for_prod(), at(NOW));
    let json = to_json(&decision);
    assert_eq!(json["verdict"], "wait");
    assert_eq!(json["until"], "2026-05-05T12:00:00Z");
    assert_eq!(
        json["blockers"],
        json!([{ "kind": "frozen", "stage": "prod", "reason": "holidays", "until": "2026-05-05T12:00:00Z" }])
    );
    // And nothing goes stale or expires before then
    assert_eq!(json["warnings"], json!([]));
}

/// The ATLAS staging → prod gate, with prod frozen from now until `until`.
fn frozen_until(evidence: &atlas_promote_core::Evidence, until: &str) -> Decision {
    let mut policy = atlas_promote_core::Policy::atlas();
    policy.stages[4].freezes = vec![freeze("2026-05-05T00:00:00Z", Some(until))];
    policy.gate("staging", "prod").unwrap().evaluate(evidence, at(NOW))
}

#[test]
fn a_wait_warns_of_checks_that_go_stale_before_it_ends() {
    // Given last night's passes (finished 2026-05-04 22:40, max_age 26h) and a
    // freeze that lasts past 2026-05-06 00:40
    let decision = frozen_until(&ready_for_prod(), "2026-05-06T06:00:00Z");
    // Then the verdict is still a wait: only the freeze blocks now
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-06T06:00:00Z") });
    assert_eq!(decision.blockers.len(), 1);
    // But it warns that each check will be stale when the freeze ends
    let json = to_json(&decision);
    assert_eq!(
        json["warnings"][0],
        json!({ "kind": "blocked_when_wait_ends", "until": "2026-05-06T06:00:00Z",
                "blocker": { "kind": "check_stale", "check": "integration",
                             "finished_at": "2026-05-04T22:40:00Z", "max_age": "26h" } })
    );
    let stale: Vec<_> = json["warnings"].as_array().unwrap().iter().map(|w| &w["blocker"]["check"]).collect();
    assert_eq!(stale, ["integration", "system", "data-quality"]);
    let text = decision.to_string();
    assert!(
        text.contains(
            "warning: the wait ends at 2026-05-06 06:00 UTC, but by then: check integration last passed at \
             2026-05-04 22:40 UTC, more than 26h ago; it must run again"
        ),
        "{text}"
    );
    // And a decision made then says the same as the warning did
    let then = staging_to_prod(&ready_for_prod(), "2026-05-06T06:00:00Z");
    let blockers: Vec<_> = then.blockers.iter().map(|b| b.kind()).collect();
    assert_eq!(blockers, ["check_stale", "check_stale", "check_stale"]);
}

#[test]
fn a_wait_warns_of_approvals_that_expire_before_it_ends_and_names_them() {
    // Given fresh checks that never go stale, and approvals from 2026-05-05
    // (ttl 72h) before a freeze until 2026-05-08 10:00
    let mut evidence = ready_for_prod();
    evidence.approvals[1].at = at("2026-05-05T09:00:00Z");
    let mut policy = atlas_promote_core::Policy::atlas();
    for check in &mut policy.stages[3].checks {
        check.max_age = None;
    }
    policy.stages[4].freezes = vec![freeze("2026-05-05T00:00:00Z", Some("2026-05-08T10:00:00Z"))];
    let decision = policy.gate("staging", "prod").unwrap().evaluate(&evidence, at(NOW));
    assert_eq!(decision.verdict, Verdict::Wait { until: at("2026-05-08T10:00:00Z") });
    // Then one warning says the approvals will be missing, and whose expire
    let json = to_json(&decision);
    assert_eq!(
        json["warnings"],
        json!([{ "kind": "blocked_when_wait_ends", "until": "2026-05-08T10:00:00Z",
                 "blocker": { "kind": "approvals_missing", "stage": "prod",
                              "short": [{ "role": "dev-team", "need": 1, "have": 0 },
                                        { "role": "product-owner", "need": 1, "have": 0 }] },
                 "expiring": ["dan", "pat"] }])
    );
    assert!(
        decision.to_string().contains("(the approvals by dan and pat expire first; they must approve again)"),
        "{decision}"
    );
    let back: Decision = serde_json::from_value(json).expect("a decision deserializes");
    assert_eq!(back, decision);

    // And when only pat's approval (2026-05-05 09:12) expires before the
    // freeze ends at 2026-05-08 09:20, only pat is named
    evidence.approvals[1].at = at("2026-05-05T09:30:00Z");
    policy.stages[4].freezes = vec![freeze("2026-05-05T00:00:00Z", Some("2026-05-08T09:20:00Z"))];
    let decision = policy.gate("staging", "prod").unwrap().evaluate(&evidence, at(NOW));
    assert_eq!(
        decision.warnings.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["the wait ends at 2026-05-08 09:20 UTC, but by then: needs 1 more approval from product-owner \
          (have 0 of 1) to enter prod (the approval by pat expires first; they must approve again)"]
    );
}

#[test]
fn a_blocked_decision_lists_every_blocker_by_kind_and_every_warning() {
    // Given a candidate with a failed check, a missing approval and a self-approval
    let mut evidence = ready_for_prod();
    evidence.checks[0].status = atlas_promote_core::CheckStatus::Failed;
    evidence.approvals = vec![
        approves_prod("pat", &["product-owner"], "2026-05-05T09:12:00Z"),
        approves_prod("alice", &["dev-team"], "2026-05-05T09:30:00Z"),
    ];
    let decision = staging_to_prod(&evidence, NOW);
    let json = to_json(&decision);
    assert_eq!(json["verdict"], "block");
    assert!(json.get("until").is_none());
    let kinds: Vec<&str> = json["blockers"].as_array().unwrap().iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["check_failed", "approvals_missing"]);
    assert_eq!(
        json["blockers"][1],
        json!({ "kind": "approvals_missing", "stage": "prod",
                "short": [{ "role": "dev-team", "need": 1, "have": 0 }] })
    );
    assert_eq!(json["warnings"], json!([{ "kind": "self_approval_ignored", "approver": "alice" }]));
}

#[test]
fn a_decision_reads_back_from_its_json() {
    let mut frozen = atlas_promote_core::Policy::atlas();
    frozen.stages[4].freezes = vec![freeze("2026-05-05T00:00:00Z", Some("2026-05-05T12:00:00Z"))];
    let untouched = atlas_promote_core::Evidence::new(atlas_promote_core::Candidate::trunk(SHA, ["alice"]));
    for decision in [
        staging_to_prod(&ready_for_prod(), NOW),
        frozen.gate("staging", "prod").unwrap().evaluate(&ready_for_prod(), at(NOW)),
        staging_to_prod(&untouched, NOW),
    ] {
        let back: Decision = serde_json::from_value(to_json(&decision)).expect("a decision deserializes");
        assert_eq!(back, decision);
    }
}

#[test]
fn a_decision_renders_as_sentences_a_person_can_act_on() {
    let mut evidence = ready_for_prod();
    evidence.approvals.remove(0);
    let decision = staging_to_prod(&evidence, NOW);
    assert_eq!(decision.verdict, Verdict::Block);
    assert_eq!(
        decision.to_string(),
        "staging → prod for 9fceb02: blocked\n  \
         blocked: needs 1 more approval from product-owner (have 0 of 1) to enter prod\n"
    );
}
