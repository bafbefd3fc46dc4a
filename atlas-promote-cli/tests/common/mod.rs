//! Running the built `atlas-promote` binary from the workspace root.
#![allow(dead_code, unreachable_pub)] // each test file uses a different part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What one run of the command did.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// The kinds of the blockers of a `--format json` decision.
    pub fn blocker_kinds(&self) -> Vec<String> {
        let json = self.json();
        let blockers = json["blockers"].as_array().expect("blockers is a list");
        blockers.iter().map(|b| b["kind"].as_str().expect("a blocker has a kind").to_owned()).collect()
    }

    /// The kinds of the warnings of a `--format json` decision.
    pub fn warning_kinds(&self) -> Vec<String> {
        let json = self.json();
        let warnings = json["warnings"].as_array().expect("warnings is a list");
        warnings.iter().map(|w| w["kind"].as_str().expect("a warning has a kind").to_owned()).collect()
    }
}

/// The workspace root: relative paths in arguments and messages start here.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the CLI crate sits in the workspace").to_owned()
}

/// A fixture of the CLI tests, as a path relative to the workspace root.
pub fn fixture(name: &str) -> String {
    format!("atlas-promote-cli/tests/fixtures/{name}")
}

/// A sample evidence file, as a path relative to the workspace root.
pub fn sample(name: &str) -> String {
    format!("examples/evidence/{name}")
}

/// Run `atlas-promote ARGS…` in the workspace root.
pub fn atlas_promote(args: &[&str]) -> Run {
    atlas_promote_with_stdin(args, "")
}

/// Run `atlas-promote ARGS…` in the workspace root with `stdin` as its input.
pub fn atlas_promote_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_atlas-promote"))
        .args(args)
        .current_dir(root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the atlas-promote binary runs");
    // The command may exit before reading its input; a closed pipe is fine then.
    let _ = child.stdin.take().expect("stdin is piped").write_all(stdin.as_bytes());
    let output = child.wait_with_output().expect("atlas-promote finishes");
    Run {
        code: output.status.code().expect("atlas-promote exits with a code, not a signal"),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// `atlas-promote evaluate --preset atlas` on a sample at an instant, as JSON.
pub fn evaluate_atlas(evidence: &str, from: &str, to: &str, at: &str) -> Run {
    let evidence = sample(evidence);
    atlas_promote(&[
        "evaluate",
        "--preset",
        "atlas",
        "--from",
        from,
        "--to",
        to,
        "--evidence",
        &evidence,
        "--at",
        at,
        "--format",
        "json",
    ])
}

/// The cases of the test file `examples/tests/atlas.toml`, one per sample
/// decision: `evidence` (a file name in `examples/evidence/`), `from`, `to`,
/// `at`, `verdict` and `blockers`.
pub fn index() -> Vec<serde_json::Value> {
    let tests = atlas_promote_core::policy_test::PolicyTests::from_path(root().join("examples/tests/atlas.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    tests
        .cases
        .iter()
        .map(|case| {
            let file = case.evidence_file.as_ref().expect("every sample case names its evidence file");
            serde_json::json!({
                "evidence": file.file_name().expect("a file name").to_string_lossy(),
                "from": case.from,
                "to": case.to,
                "at": case.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                "verdict": case.expect.verdict,
                "blockers": case.expect.blockers.clone().expect("every sample case lists its blockers"),
            })
        })
        .collect()
}

/// Write `text` to a fresh file under this test target's scratch directory.
pub fn scratch_file(name: &str, text: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, text).expect("the scratch directory is writable");
    path
}

/// The ATLAS preset written to a policy file of this name, via `preset atlas`.
pub fn atlas_policy_file(name: &str) -> PathBuf {
    let run = atlas_promote(&["preset", "atlas"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    scratch_file(name, &run.stdout)
}

/// Assert the run failed with bad input (exit 2) and an `error: ` line mentioning each of `needles`.
#[track_caller]
pub fn assert_bad_input(run: &Run, needles: &[&str]) {
    assert_eq!(run.code, 2, "exit code; stderr:\n{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "stderr starts with `error: `:\n{}", run.stderr);
    for needle in needles {
        assert!(run.stderr.contains(needle), "stderr mentions {needle:?}:\n{}", run.stderr);
    }
    assert!(run.stdout.is_empty(), "nothing on stdout:\n{}", run.stdout);
}
