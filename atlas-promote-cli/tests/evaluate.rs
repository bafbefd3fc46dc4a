//! `atlas-promote evaluate` on the sample evidence: verdicts, exit codes, formats.
//!
//! The verdicts are those DESIGN §4 gives; the test file
//! `examples/tests/atlas.toml` and the evidence README list the same.

mod common;

use common::{
    atlas_policy_file, atlas_promote, atlas_promote_with_stdin, evaluate_atlas, fixture, index, root, sample,
};

// --- given the sample evidence, the ATLAS policy decides per DESIGN §4 ---

#[test]
fn review_to_trunk_is_allowed_with_passing_checks_and_another_developers_approval() {
    let run = evaluate_atlas("review-to-trunk.json", "review", "trunk", "2026-05-04T11:00:00Z");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["verdict"], "allow");
    assert!(run.blocker_kinds().is_empty());
}

#[test]
fn trunk_to_dev_is_automatic() {
    let run = evaluate_atlas("trunk-to-dev.json", "trunk", "dev", "2026-05-04T11:30:00Z");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["verdict"], "allow");
}

#[test]
fn g2_dev_to_staging_is_blocked_while_the_flush_is_pending() {
    let run = evaluate_atlas("dev-to-staging-flush-pending.json", "dev", "staging", "2026-05-04T12:00:00Z");
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert_eq!(run.json()["verdict"], "block");
    assert_eq!(run.blocker_kinds(), ["flush_pending"]);
}

#[test]
fn g3_dev_to_staging_only_warns_about_a_failed_advisory_check() {
    let run = evaluate_atlas("dev-to-staging.json", "dev", "staging", "2026-05-05T09:00:00Z");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.blocker_kinds().is_empty());
    assert!(run.warning_kinds().contains(&"advisory_check_failed".to_owned()), "{}", run.stdout);
}

#[test]
fn staging_to_prod_is_allowed_with_fresh_checks_and_two_different_approvers() {
    let run = evaluate_atlas("staging-to-prod.json", "staging", "prod", "2026-05-06T10:00:00Z");
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(run.json()["verdict"], "allow");
    assert!(run.blocker_kinds().is_empty());
}

#[test]
fn g3_staging_to_prod_blocks_a_check_older_than_26h() {
    let run = evaluate_atlas("staging-to-prod.json", "staging", "prod", "2026-05-07T01:00:00Z");
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert_eq!(run.blocker_kinds(), ["check_stale"]);
    assert_eq!(run.json()["blockers"][0]["check"], "integration");
}

#[test]
fn g3_g5_staging_to_prod_blocks_a_failed_check_and_a_self_approval() {
    let run = evaluate_atlas("staging-to-prod-blocked.json", "staging", "prod", "2026-05-06T10:00:00Z");
    assert_eq!(run.code, 4, "{}", run.stdout);
    assert_eq!(run.blocker_kinds(), ["check_failed", "approvals_missing"]);
    let json = run.json();
    assert_eq!(json["blockers"][0]["check"], "data-quality");
    assert_eq!(json["blockers"][1]["short"], serde_json::json!([{ "role": "dev-team", "need": 1, "have": 0 }]));
}

#[test]
fn text_output_is_the_verdict_then_one_line_per_blocker() {
    let evidence = sample("staging-to-prod-blocked.json");
    let run = atlas_promote(&[
        "evaluate",
        "--preset",
        "atlas",
        "--from",
        "staging",
        "--to",
        "prod",
        "--evidence",
        &evidence,
        "--at",
        "2026-05-06T10:00:00Z",
    ]);
    assert_eq!(run.code, 4);
    let lines: Vec<_> = run.stdout.lines().collect();
    assert_eq!(lines[0], "staging → prod for b7e21d4: blocked");
    assert!(lines[1].starts_with("  blocked: check data-quality failed at 2026-05-05 23:30 UTC"), "{}", run.stdout);
    assert_eq!(lines[2], "  blocked: needs 1 more approval from dev-team (have 0 of 1) to enter prod");
}

#[test]
fn g4_a_soak_makes_the_gate_wait_and_exit_3() {
    let (policy, evidence) = (fixture("soak.toml"), sample("dev-to-staging.json"));
    let args = ["evaluate", "--policy", &policy, "--from", "dev", "--to", "staging", "--evidence", &evidence];
    // Ready in dev at 12:25 (the flush); 24 h of soak.
    let run = atlas_promote(&[&args[..], &["--at", "2026-05-05T09:00:00Z", "--format", "json"]].concat());
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert_eq!(run.json()["verdict"], "wait");
    assert_eq!(run.json()["until"], "2026-05-05T12:25:00Z");
    assert_eq!(run.blocker_kinds(), ["soaking"]);

    let later = atlas_promote(&[&args[..], &["--at", "2026-05-05T12:25:00Z"]].concat());
    assert_eq!(later.code, 0, "{}", later.stdout);
}

#[test]
fn every_indexed_sample_gets_its_verdict_and_exit_code() {
    for entry in index() {
        let field = |name: &str| entry[name].as_str().unwrap_or_else(|| panic!("{name} in {entry}")).to_owned();
        let run = evaluate_atlas(&field("evidence"), &field("from"), &field("to"), &field("at"));
        let code = match field("verdict").as_str() {
            "allow" => 0,
            "wait" => 3,
            _ => 4,
        };
        assert_eq!(run.code, code, "{entry}\n{}", run.stdout);
        assert_eq!(run.json()["verdict"], entry["verdict"], "{entry}");
        assert_eq!(serde_json::json!(run.blocker_kinds()), entry["blockers"], "{entry}");
    }
}

// --- the command's shape, whatever the gate decides ---

#[test]
fn the_index_lists_every_sample_and_only_existing_ones() {
    let dir = root().join("examples/evidence");
    let indexed: std::collections::BTreeSet<String> =
        index().iter().map(|e| e["evidence"].as_str().expect("evidence is a file name").to_owned()).collect();
    let on_disk: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("examples/evidence is readable")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    assert_eq!(indexed, on_disk);
}

#[test]
fn every_sample_is_valid_evidence() {
    for entry in index() {
        let file = root().join("examples/evidence").join(entry["evidence"].as_str().unwrap());
        if let Err(e) = atlas_promote_core::Evidence::from_path(&file) {
            panic!("{e}");
        }
    }
}

#[test]
fn json_output_is_the_decision() {
    let run = evaluate_atlas("staging-to-prod.json", "staging", "prod", "2026-05-06T10:00:00Z");
    assert_eq!(run.code, 0, "the sample is allowed at 10:00: {}", run.stderr);
    let json = run.json();
    assert_eq!(json["verdict"], "allow", "{json}");
    assert_eq!(json["from"], "staging");
    assert_eq!(json["to"], "prod");
    assert_eq!(json["sha"], "9fceb02");
    assert_eq!(json["at"], "2026-05-06T10:00:00Z");
    assert_eq!(json["blockers"], serde_json::json!([]), "{json}");
    assert!(json["warnings"].is_array(), "{json}");
}

#[test]
fn the_exit_code_follows_the_json_verdict() {
    for entry in index() {
        let field = |name: &str| entry[name].as_str().unwrap().to_owned();
        let run = evaluate_atlas(&field("evidence"), &field("from"), &field("to"), &field("at"));
        let expected = match run.json()["verdict"].as_str() {
            Some("allow") => 0,
            Some("wait") => 3,
            Some("block") => 4,
            other => panic!("unexpected verdict {other:?}"),
        };
        assert_eq!(run.code, expected, "{entry}");
    }
}

#[test]
fn without_at_it_decides_for_now() {
    let evidence = sample("trunk-to-dev.json");
    let before = chrono::Utc::now() - chrono::TimeDelta::seconds(1);
    let run = atlas_promote(&[
        "evaluate",
        "--preset",
        "atlas",
        "--from",
        "trunk",
        "--to",
        "dev",
        "--evidence",
        &evidence,
        "--format",
        "json",
    ]);
    let after = chrono::Utc::now() + chrono::TimeDelta::seconds(1);
    let at: chrono::DateTime<chrono::Utc> = run.json()["at"].as_str().unwrap().parse().unwrap();
    assert!(before <= at && at <= after, "{at} is not now");
}

#[test]
fn evidence_can_come_from_stdin() {
    let path = sample("staging-to-prod.json");
    let text = std::fs::read_to_string(root().join(&path)).unwrap();
    let base = ["evaluate", "--preset", "atlas", "--from", "staging", "--to", "prod", "--at", "2026-05-06T10:00:00Z"];
    let from_stdin = atlas_promote_with_stdin(&[&base[..], &["--evidence", "-"]].concat(), &text);
    let from_file = atlas_promote(&[&base[..], &["--evidence", &path]].concat());
    assert_eq!((from_stdin.code, &from_stdin.stdout), (from_file.code, &from_file.stdout), "{}", from_stdin.stderr);
}

#[test]
fn a_policy_file_decides_like_the_preset_it_was_printed_from() {
    let policy = atlas_policy_file("atlas-evaluate.toml");
    let policy = policy.to_str().unwrap();
    for entry in index() {
        let field = |name: &str| entry[name].as_str().unwrap().to_owned();
        let (evidence, from, to, at) = (sample(&field("evidence")), field("from"), field("to"), field("at"));
        let common = ["--from", &from, "--to", &to, "--evidence", &evidence, "--at", &at, "--format", "json"];
        let by_file = atlas_promote(&[&["evaluate", "--policy", policy][..], &common].concat());
        let by_preset = atlas_promote(&[&["evaluate", "--preset", "atlas"][..], &common].concat());
        assert_eq!((by_file.code, &by_file.stdout), (by_preset.code, &by_preset.stdout), "{}", by_file.stderr);
    }
}
