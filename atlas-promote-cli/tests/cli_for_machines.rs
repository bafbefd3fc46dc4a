//! A CLI both people and programs read: standard input, JSON errors, closed pipes, defaults.

mod common;

use std::process::{Command, Stdio};

use common::{atlas_promote, atlas_promote_with_stdin, evaluate_atlas, fixture, root, sample};

#[test]
fn policy_and_lint_read_standard_input() {
    let text = std::fs::read_to_string(root().join("examples/policies/atlas.toml")).unwrap();
    let evidence = sample("staging-to-prod.json");
    let args = ["evaluate", "--policy", "-", "--from", "staging", "--to", "prod", "--evidence", &evidence];
    let run = atlas_promote_with_stdin(&[&args[..], &["--at", "2026-05-06T10:00:00Z"]].concat(), &text);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    let lint = atlas_promote_with_stdin(&["lint", "-"], &text);
    assert_eq!(lint.code, 0, "{}", lint.stderr);
    assert!(lint.stdout.ends_with("<stdin>: 0 errors and 0 warnings\n"), "{}", lint.stdout);
    let yaml = std::fs::read_to_string(root().join("examples/policies/atlas.yaml")).unwrap();
    assert_eq!(atlas_promote_with_stdin(&["lint", "-"], &yaml).code, 0);
    let bad = atlas_promote_with_stdin(&["lint", "-"], "name = \"x\"\n[[stage]]\nname = \"t\"\nkind = \"trunc\"\n");
    common::assert_bad_input(&bad, &["<stdin>:4:"]);
}

#[test]
fn json_errors_are_json_with_kind_message_file_line_and_column() {
    let policy = fixture("policy-invalid.toml");
    let run = atlas_promote(&["lint", &policy, "--format", "json"]);
    assert_eq!(run.code, 2);
    let error = &run.json()["error"];
    assert_eq!(error["kind"], "bad_input");
    assert_eq!(error["file"], policy.as_str());
    assert_eq!(error["line"], 9);
    assert!(error["column"].is_u64() && error["message"].as_str().unwrap().contains("enviroment"), "{error}");
}

#[test]
fn each_json_blocker_carries_its_sentence() {
    let run = evaluate_atlas("staging-to-prod-blocked.json", "staging", "prod", "2026-05-06T10:00:00Z");
    let json = run.json();
    let text = atlas_promote(&[
        "evaluate",
        "--preset",
        "atlas",
        "--from",
        "staging",
        "--to",
        "prod",
        "--evidence",
        &sample("staging-to-prod-blocked.json"),
        "--at",
        "2026-05-06T10:00:00Z",
    ]);
    for (blocker, line) in json["blockers"].as_array().unwrap().iter().zip(text.stdout.lines().skip(1)) {
        assert_eq!(format!("  blocked: {}", blocker["message"].as_str().unwrap()), line);
    }
}

#[test]
fn a_closed_pipe_ends_quietly_with_status_0() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atlas-promote"))
        .args(["preset", "atlas"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -0`: the reader is gone before the first write.
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(output.stderr.is_empty(), "{}", String::from_utf8_lossy(&output.stderr));
}

#[test]
fn evaluate_between_stages_that_are_not_adjacent_names_the_gates_and_decides_the_first() {
    let run = evaluate_atlas("dev-to-staging.json", "dev", "prod", "2026-05-05T09:00:00Z");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let json = run.json();
    assert_eq!((json["from"].as_str(), json["to"].as_str()), (Some("dev"), Some("staging")));
    assert!(json["note"].as_str().unwrap().contains("dev → staging, staging → prod"), "{json}");
}

#[test]
fn atlas_policy_names_the_default_policy_file() {
    let evidence = sample("trunk-to-dev.json");
    let args = ["evaluate", "--from", "trunk", "--to", "dev", "--evidence", &evidence, "--at", "2026-05-04T11:30:00Z"];
    let run = Command::new(env!("CARGO_BIN_EXE_atlas-promote"))
        .args(args)
        .current_dir(root())
        .env("ATLAS_POLICY", "examples/policies/atlas.toml")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let lint = Command::new(env!("CARGO_BIN_EXE_atlas-promote"))
        .arg("lint")
        .current_dir(root())
        .env("ATLAS_POLICY", "examples/policies/atlas.toml")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&lint.stdout).contains("examples/policies/atlas.toml: 0 errors"));
}
