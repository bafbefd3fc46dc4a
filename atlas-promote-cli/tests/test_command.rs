//! `atlas-promote test`: policy test files of cases and scenarios.

mod common;

use common::{assert_bad_input, atlas_promote, fixture};

#[test]
fn the_sample_test_file_passes_one_line_per_case_and_scenario() {
    let run = atlas_promote(&["test", "examples/tests"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 7 + 2 + 1, "{}", run.stdout);
    assert!(lines[..9].iter().all(|l| l.starts_with("ok    examples/tests/atlas.toml: ")), "{}", run.stdout);
    assert_eq!(lines[9], "9 passed, 0 failed");
}

#[test]
fn a_failing_case_shows_expected_and_the_decisions_own_sentences_and_exits_4() {
    let file = fixture("tests-failing.toml");
    let run = atlas_promote(&["test", &file]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    // The sentence the decision itself renders, taken from `evaluate`.
    let evaluate = atlas_promote(&[
        "evaluate",
        "--policy",
        "examples/policies/atlas.toml",
        "--from",
        "staging",
        "--to",
        "prod",
        "--evidence",
        "examples/evidence/staging-to-prod.json",
        "--at",
        "2026-05-07T01:00:00Z",
    ]);
    let blocker = evaluate.stdout.lines().nth(1).expect("a blocker line").trim();
    assert!(run.stdout.contains(&format!("FAIL  {file}: case expects allow but is stale")), "{}", run.stdout);
    assert!(run.stdout.contains("expected: allowed\n"), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("got:      {}", evaluate.stdout.lines().next().unwrap())), "{}", run.stdout);
    assert!(run.stdout.contains(blocker), "{}", run.stdout);
    assert!(run.stdout.contains("at step 2:\n"), "a scenario names its failing step:\n{}", run.stdout);
    assert!(run.stdout.ends_with("0 passed, 3 failed\n"), "{}", run.stdout);
}

#[test]
fn json_results_carry_expected_got_and_the_decision() {
    let run = atlas_promote(&["test", "--format", "json", &fixture("tests-failing.toml")]);
    assert_eq!(run.code, 4);
    let json = run.json();
    assert_eq!((json["passed"].as_u64(), json["failed"].as_u64()), (Some(0), Some(3)));
    let first = &json["results"][0];
    assert_eq!(first["kind"], "case");
    assert_eq!(first["passed"], false);
    assert_eq!(first["failure"]["expected"], "allowed");
    assert_eq!(first["decision"]["blockers"][0]["kind"], "check_stale");
    assert_eq!(json["results"][2]["failure"]["step"], 1);
}

#[test]
fn junit_has_a_testsuite_per_file_and_a_failure_per_failing_case() {
    let run = atlas_promote(&["test", "--format", "junit", &fixture("tests-failing.toml"), "examples/tests"]);
    assert_eq!(run.code, 4);
    assert!(run.stdout.starts_with("<?xml"), "{}", run.stdout);
    assert!(run.stdout.contains(r#"<testsuites name="atlas-promote test" tests="12" failures="3">"#), "{}", run.stdout);
    assert_eq!(run.stdout.matches("<testsuite ").count(), 2);
    assert_eq!(run.stdout.matches("<failure ").count(), 3);
    assert_eq!(run.stdout.matches("<testcase ").count(), 12);
}

#[test]
fn yaml_test_files_are_read_too() {
    let run = atlas_promote(&["test", &fixture("tests-atlas.yaml")]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.ends_with("1 passed, 0 failed\n"), "{}", run.stdout);
}

#[test]
fn every_mistake_of_a_test_file_is_located_by_line_column_and_field() {
    let file = fixture("tests-bad.toml");
    let run = atlas_promote(&["test", &file]);
    assert_bad_input(
        &run,
        &[
            &format!("error: {file}:5:8: case[0].from: "),
            "did you mean \"staging\"?",
            &format!("error: {file}:14:3: scenario[0].steps[0]: a step does one thing, this one has merge and approve"),
            &format!("error: {file}:15:3: scenario[0].steps[1]: an approve step needs `into`"),
            &format!("error: {file}:16:40: scenario[0].steps[2].into: "),
        ],
    );
    assert_eq!(run.stderr.lines().count(), 4, "{}", run.stderr);
}

#[test]
fn a_missing_evidence_file_is_located_at_the_field_naming_it() {
    let policy = common::root().join("examples/policies/atlas.toml");
    let text = format!(
        "policy = {:?}\n\n[[case]]\nname = \"x\"\nfrom = \"trunk\"\nto = \"dev\"\nat = \"2026-05-04T11:30:00Z\"\nevidence = \"nope.json\"\nexpect = {{ verdict = \"allow\" }}\n",
        policy.to_str().unwrap()
    );
    let path = common::scratch_file("tests-missing-evidence.toml", &text);
    let run = atlas_promote(&["test", path.to_str().unwrap()]);
    assert_bad_input(&run, &[":8:12: case[0].evidence: ", "nope.json: cannot read"]);
}

#[test]
fn test_refuses_a_file_with_nothing_to_test_and_a_directory_without_test_files() {
    let run = atlas_promote(&["test", "atlas-promote-cli/tests/fixtures/soak.toml"]);
    assert_bad_input(&run, &["soak.toml"]);
    let run = atlas_promote(&["test", "examples/evidence"]);
    assert_bad_input(&run, &["examples/evidence: no test files"]);
    let run = atlas_promote(&["test", "--format", "json", &fixture("tests-bad.toml")]);
    assert_eq!(run.code, 2);
    assert_eq!(run.json()["error"]["field"], "case[0].from");
}
