//! `atlas-promote preset` and `atlas-promote lint`.

mod common;

use atlas_promote_core::Policy;
use common::{assert_bad_input, atlas_policy_file, atlas_promote, fixture, root};

#[test]
fn preset_atlas_prints_a_policy_file_that_reads_back_as_the_atlas_policy() {
    let run = atlas_promote(&["preset", "atlas"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let policy = Policy::from_toml_str(&run.stdout, "preset atlas").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy, Policy::atlas());
}

#[test]
fn preset_without_a_name_lists_the_presets() {
    let run = atlas_promote(&["preset"]);
    assert_eq!(run.code, 0);
    assert!(run.stdout.starts_with("atlas "), "{}", run.stdout);
}

#[test]
fn an_unknown_preset_is_bad_input_listing_the_known_ones() {
    let run = atlas_promote(&["preset", "trunk-only"]);
    assert_bad_input(&run, &["unknown preset \"trunk-only\"; known presets: atlas"]);
}

#[test]
fn lint_passes_the_atlas_preset() {
    let policy = atlas_policy_file("atlas-lint.toml");
    let run = atlas_promote(&["lint", policy.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("error: "), "{}", run.stdout);
    let summary = run.stdout.lines().last().unwrap_or_default();
    assert!(summary.ends_with("atlas-lint.toml: 0 errors and 0 warnings"), "{}", run.stdout);
}

#[test]
fn lint_json_gives_the_file_the_counts_and_the_findings() {
    let policy = atlas_policy_file("atlas-lint-json.toml");
    let policy = policy.to_str().unwrap();
    let run = atlas_promote(&["lint", policy, "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json = run.json();
    assert_eq!(json["file"], policy);
    let findings = json["findings"].as_array().expect("findings is a list");
    assert_eq!(json["errors"], 0);
    assert_eq!(json["warnings"], findings.len());
    assert!(findings.iter().all(|f| f["severity"] == "warning"), "{findings:?}");
}

#[test]
fn lint_passes_the_atlas_example_policy() {
    assert!(root().join("examples/policies/atlas.toml").exists(), "examples/policies/atlas.toml is missing");
    let run = atlas_promote(&["lint", "examples/policies/atlas.toml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("error: "), "{}", run.stdout);
}

#[test]
fn the_atlas_example_policy_has_the_stages_of_the_atlas_preset() {
    let policy = Policy::from_path(root().join("examples/policies/atlas.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(policy.stages, Policy::atlas().stages);
}

#[test]
fn lint_of_an_invalid_policy_is_bad_input() {
    let policy = fixture("policy-invalid.toml");
    let run = atlas_promote(&["lint", &policy]);
    assert_bad_input(&run, &[&policy, "enviroment"]);
}

#[test]
fn lint_of_a_missing_file_is_bad_input() {
    let run = atlas_promote(&["lint", "nope.toml"]);
    assert_bad_input(&run, &["nope.toml: cannot read"]);
}

#[test]
fn lint_of_a_policy_with_several_mistakes_names_each_on_its_own_line() {
    let policy = fixture("policy-three-mistakes.toml");
    let run = atlas_promote(&["lint", &policy]);
    assert_bad_input(
        &run,
        &[
            &format!("error: {policy}:10:"),
            "stage[1].approvals.require.developer",
            &format!("error: {policy}:15:"),
            "stage[2].windows[0]",
            &format!("error: {policy}:17:"),
            "stage[2].flush.paths[0]",
        ],
    );
    assert_eq!(run.stderr.lines().count(), 3, "{}", run.stderr);
}
