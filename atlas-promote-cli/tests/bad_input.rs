//! Bad input exits 2 with `error: ` and a message naming the file and the place.

mod common;

use common::{assert_bad_input, atlas_promote, fixture, sample};

fn evaluate(policy: &[&str], from: &str, to: &str, evidence: &str) -> common::Run {
    let args = ["--from", from, "--to", to, "--evidence", evidence, "--at", "2026-05-06T10:00:00Z"];
    atlas_promote(&[&["evaluate"][..], policy, &args[..]].concat())
}

const ATLAS: &[&str] = &["--preset", "atlas"];

#[test]
fn a_missing_evidence_file_is_named() {
    let run = evaluate(ATLAS, "trunk", "dev", "examples/evidence/nope.json");
    assert_bad_input(&run, &["examples/evidence/nope.json: cannot read: "]);
}

#[test]
fn invalid_json_is_reported_with_line_and_column() {
    let file = fixture("evidence-syntax-error.json");
    let run = evaluate(ATLAS, "trunk", "dev", &file);
    assert_bad_input(&run, &[&format!("{file}:3:3: expected `,` or `}}`")]);
}

#[test]
fn an_unknown_evidence_field_is_reported_with_its_place() {
    let file = fixture("evidence-unknown-field.json");
    let run = evaluate(ATLAS, "trunk", "dev", &file);
    assert_bad_input(&run, &[&format!("{file}:4:"), "unknown field `aprovals`"]);
}

#[test]
fn a_malformed_instant_in_evidence_says_rfc_3339() {
    let file = fixture("evidence-bad-instant.json");
    let run = evaluate(ATLAS, "trunk", "dev", &file);
    assert_bad_input(&run, &[&format!("{file}:3:"), "RFC 3339"]);
}

#[test]
fn a_missing_policy_file_is_named() {
    let run = evaluate(&["--policy", "policies/nope.toml"], "trunk", "dev", &sample("trunk-to-dev.json"));
    assert_bad_input(&run, &["policies/nope.toml: cannot read"]);
}

#[test]
fn an_invalid_policy_file_is_named_with_what_is_wrong() {
    let policy = fixture("policy-invalid.toml");
    let run = evaluate(&["--policy", &policy], "trunk", "dev", &sample("trunk-to-dev.json"));
    assert_bad_input(&run, &[&policy, "enviroment"]);
}

#[test]
fn an_invalid_policy_file_is_reported_with_line_and_column() {
    let policy = fixture("policy-invalid.toml");
    let run = evaluate(&["--policy", &policy], "trunk", "dev", &sample("trunk-to-dev.json"));
    assert_bad_input(&run, &[&format!("{policy}:9:")]);
}

#[test]
fn an_unknown_stage_names_the_policy_and_its_stages() {
    let run = evaluate(ATLAS, "dev", "qa", &sample("dev-to-staging.json"));
    assert_bad_input(&run, &["preset atlas: ", "no stage named \"qa\"", "review, trunk, dev, staging, prod"]);

    let policy = fixture("soak.toml");
    let run = evaluate(&["--policy", &policy], "dev", "prod", &sample("dev-to-staging.json"));
    assert_bad_input(&run, &[&format!("{policy}: "), "no stage named \"prod\""]);
}

#[test]
fn a_stage_before_the_source_has_no_gate() {
    let backwards = evaluate(ATLAS, "prod", "staging", &sample("dev-to-staging.json"));
    assert_bad_input(&backwards, &["\"staging\" does not follow \"prod\""]);
}

#[test]
fn an_unknown_stage_gets_a_did_you_mean() {
    let run = evaluate(ATLAS, "stagign", "prod", &sample("staging-to-prod.json"));
    assert_bad_input(&run, &["no stage named \"stagign\"", "did you mean \"staging\"?"]);
    let far = evaluate(ATLAS, "dev", "qa", &sample("dev-to-staging.json"));
    assert!(!far.stderr.contains("did you mean"), "{}", far.stderr);
}

#[test]
fn an_unknown_preset_lists_the_known_ones() {
    let run = evaluate(&["--preset", "atlantis"], "trunk", "dev", &sample("trunk-to-dev.json"));
    assert_bad_input(&run, &["unknown preset \"atlantis\"; known presets: atlas"]);
}

#[test]
fn a_bad_at_is_a_usage_error() {
    let evidence = sample("trunk-to-dev.json");
    let args = ["evaluate", "--preset", "atlas", "--from", "trunk", "--to", "dev", "--evidence", &evidence];
    let run = atlas_promote(&[&args[..], &["--at", "tomorrow"]].concat());
    assert_bad_input(&run, &["'--at <RFC3339>'", "tomorrow", "RFC 3339"]);
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["evaluate", "--from", "trunk", "--to", "dev", "--evidence", "e.json"][..],
        &["evaluate", "--preset", "atlas", "--from", "trunk", "--evidence", "e.json"],
        &["evaluate", "--preset", "atlas", "--format", "yaml"],
        &["lint"],
        &["promote"],
        &[],
    ] {
        let run = atlas_promote(args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.starts_with("error: ") || run.stderr.contains("Usage:"), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn the_top_level_help_has_the_one_exit_code_table() {
    let run = atlas_promote(&["--help"]);
    assert_eq!(run.code, 0);
    for line in [
        "0  evaluate: allowed",
        "test: every case",
        "diff: no difference",
        "1  any other failure",
        "2  bad input",
        "3  evaluate: wait",
        "4  evaluate: blocked",
        "test: a case or scenario",
        "ATLAS_POLICY",
    ] {
        assert!(run.stdout.contains(line), "--help mentions {line:?}:\n{}", run.stdout);
    }
    for command in ["evaluate", "lint", "test", "diff", "preset"] {
        let run = atlas_promote(&[command, "--help"]);
        assert_eq!(run.code, 0);
        assert!(run.stdout.contains("see the table in `atlas-promote --help`"), "{command}:\n{}", run.stdout);
        assert!(!run.stdout.contains("2  bad input"), "{command} repeats the table:\n{}", run.stdout);
    }
}
