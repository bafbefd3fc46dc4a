//! `atlas-promote diff OLD NEW`: what a policy change changes.

mod common;

use common::{assert_bad_input, atlas_policy_file, atlas_promote, scratch_file};

/// The ATLAS policy file with `from` replaced by `to`.
fn changed_atlas(name: &str, from: &str, to: &str) -> String {
    let text = atlas_promote(&["preset", "atlas"]).stdout;
    assert!(text.contains(from), "the preset has {from:?}:\n{text}");
    scratch_file(name, &text.replacen(from, to, 1)).to_str().unwrap().to_owned()
}

#[test]
fn a_policy_does_not_differ_from_itself() {
    let policy = atlas_policy_file("diff-same.toml");
    let policy = policy.to_str().unwrap();
    let run = atlas_promote(&["diff", policy, policy, "--cases", "2000"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("staging → prod: 0 of 2000 cases decided differently"), "{}", run.stdout);
}

#[test]
fn a_shorter_max_age_shows_ready_to_paste_cases_that_the_new_policy_passes() {
    let old = atlas_policy_file("diff-old.toml");
    let new = changed_atlas("diff-new.toml", "max_age = \"26h\"", "max_age = \"20h\"");
    let run = atlas_promote(&["diff", old.to_str().unwrap(), &new, "--cases", "3000", "--seed", "4"]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("[[case]]"), "{}", run.stdout);
    assert!(run.stdout.contains("check_stale"), "{}", run.stdout);
    // The cases are a test file's: pasted under a `policy` line they pass against NEW.
    let cases = run.stdout.split_once("\n\n").expect("cases after the summary").1;
    let file = scratch_file("diff-pasted.toml", &format!("policy = \"diff-new.toml\"\n\n{cases}"));
    let test = atlas_promote(&["test", file.to_str().unwrap()]);
    assert_eq!(test.code, 0, "{}{}", test.stdout, test.stderr);
}

#[test]
fn the_same_seed_gives_the_same_differences() {
    let old = atlas_policy_file("diff-seed-old.toml");
    let new = changed_atlas("diff-seed-new.toml", "ttl = \"3d\"", "ttl = \"1d\"");
    let args = ["diff", old.to_str().unwrap(), &new, "--cases", "1000", "--seed", "9", "--format", "json"];
    let (a, b) = (atlas_promote(&args), atlas_promote(&args));
    assert_eq!(a.code, 4, "{}", a.stderr);
    assert_eq!(a.stdout, b.stdout);
    let json = a.json();
    let prod = json["gates"].as_array().unwrap().iter().find(|g| g["to"] == "prod").unwrap().clone();
    assert!(prod["differing"].as_u64().unwrap() > 0, "{prod}");
    let sizes: Vec<u64> = prod["differences"].as_array().unwrap().iter().map(|d| d["size"].as_u64().unwrap()).collect();
    assert!(sizes.windows(2).all(|w| w[0] <= w[1]), "smallest first: {sizes:?}");
}

#[test]
fn a_gate_one_policy_lacks_is_a_difference() {
    let old = atlas_policy_file("diff-gates-old.toml");
    let new = changed_atlas("diff-gates-new.toml", "name = \"dev\"", "name = \"qa\"");
    let run = atlas_promote(&["diff", old.to_str().unwrap(), &new, "--cases", "10"]);
    assert_eq!(run.code, 4, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("diff-gates-old.toml: the gate trunk → dev"), "{}", run.stdout);
    assert!(run.stdout.contains("diff-gates-new.toml: the gate trunk → qa"), "{}", run.stdout);
}

#[test]
fn diff_of_bad_input_exits_2() {
    let policy = atlas_policy_file("diff-bad.toml");
    let policy = policy.to_str().unwrap();
    assert_bad_input(&atlas_promote(&["diff", policy, "nope.toml"]), &["nope.toml: cannot read"]);
    let invalid = "atlas-promote-cli/tests/fixtures/policy-invalid.toml";
    assert_bad_input(&atlas_promote(&["diff", invalid, policy]), &[invalid, "enviroment"]);
    assert_bad_input(&atlas_promote(&["diff", policy, policy, "--cases", "0"]), &["--cases"]);
    assert_bad_input(&atlas_promote(&["diff", "-", "-"]), &["standard input"]);
    let run = atlas_promote(&["diff", policy, "nope.toml", "--format", "json"]);
    assert_eq!(run.code, 2);
    assert_eq!(run.json()["error"]["kind"], "bad_input");
}
