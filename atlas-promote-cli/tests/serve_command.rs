//! `atlas-promote serve` and `config check` as an operator runs them.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{atlas_promote, root};

const CONFIG: &str = "examples/serve/atlas-promote.toml";

/// Fake credentials for every secret the example config names.
const FAKE_SECRETS: [(&str, &str); 6] = [
    ("ATLAS_GITHUB_TOKEN", "ghp_fake-token-for-tests"),
    ("ATLAS_GITHUB_WEBHOOK_SECRET", "fake-webhook-secret"),
    ("ATLAS_CIRCLECI_TOKEN", "fake-circle-token"),
    ("ATLAS_CIRCLECI_WEBHOOK_SECRET", "fake-circle-secret"),
    ("ATLAS_NOTIFY_WEBHOOK_URL", "http://127.0.0.1:9/notify"),
    ("ATLAS_NOTIFY_WEBHOOK_SECRET", "fake-notify-secret"),
];

#[test]
fn config_check_reads_the_example_and_lists_the_secrets_it_needs() {
    let run = atlas_promote(&["config", "check", CONFIG]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with(&format!("{CONFIG}: ok\n")), "{}", run.stdout);
    assert!(run.stdout.contains("policy atlas (5 stages)"), "{}", run.stdout);
    for (variable, _) in FAKE_SECRETS {
        assert!(run.stdout.contains(&format!("secret {variable} (")), "{}", run.stdout);
    }
}

#[test]
fn config_check_locates_a_mistake_and_exits_2() {
    let dir = std::env::temp_dir().join(format!("atlas-config-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, "policy = \"p.toml\"\nstore = \"memory://\"\nlisten = \"nowhere\"\n[backends]\nci = \"github\"\ndirectory = \"policy\"\nsource_control = \"github\"\n").unwrap();
    let run = atlas_promote(&["config", "check", file.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(run.stderr.contains("bad.toml:3:10: listen: `nowhere` is not an address"), "{}", run.stderr);
    assert!(
        run.stderr.contains("backends.ci: `github` is named but the config has no [github] section"),
        "{}",
        run.stderr
    );
}

#[test]
fn serve_without_its_secrets_names_each_missing_variable_and_exits_2() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-promote"));
    command.args(["serve", "--config", CONFIG, "--listen", "127.0.0.1:0"]).current_dir(root());
    for (variable, _) in FAKE_SECRETS {
        command.env_remove(variable);
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error: the environment variable ATLAS_GITHUB_WEBHOOK_SECRET is not set (named by github.webhook_secret_env)"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().filter(|l| l.contains("is not set")).count(), FAKE_SECRETS.len(), "{stderr}");
}

/// Run `serve` on the example config with `store`, the fake secrets and
/// `env`; check that it answers `/healthz` and stops with 0 on SIGTERM;
/// return its logs.
fn serve_once(store: &str, env: &[(&str, &str)]) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-promote"));
    command
        .args(["serve", "--config", CONFIG, "--listen", "127.0.0.1:0", "--log-format", "json", "--store", store])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (variable, value) in FAKE_SECRETS.iter().chain(env) {
        command.env(variable, value);
    }
    let mut child = command.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut logs = String::new();
    let bound = loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "serve stopped before it listened:\n{logs}");
        logs.push_str(&line);
        let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        if event["fields"]["message"] == "atlas-promote is serving" {
            break event["fields"]["bound"].as_str().unwrap().to_owned();
        }
    };
    let mut stream = TcpStream::connect(&bound).unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    stderr.read_to_string(&mut logs).unwrap();
    assert_eq!(status.code(), Some(0), "{logs}");
    logs
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("atlas-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn serve_starts_on_the_example_with_fake_credentials_answers_and_stops_cleanly_on_sigterm() {
    let dir = temp_dir("serve");
    let db = dir.join("atlas.db");
    let logs = serve_once(&format!("sqlite://{}", db.display()), &[]);
    assert!(logs.contains("shutting down"), "{logs}");
    for (_, value) in FAKE_SECRETS {
        assert!(!logs.contains(value), "a secret in the logs: {logs}");
    }
    assert!(db.exists(), "the SQLite store was created");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_keys_the_audit_chain_from_the_environment_and_refuses_the_store_without_its_key() {
    const KEY: &str = "a chain key of at least thirty-two bytes, for tests";
    let dir = temp_dir("serve-keyed");
    let store = format!("sqlite://{}", dir.join("atlas.db").display());
    let logs = serve_once(&store, &[("ATLAS_AUDIT_CHAIN_KEY", KEY)]);
    assert!(!logs.contains(KEY), "the chain key in the logs: {logs}");

    let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-promote"));
    command.args(["serve", "--config", CONFIG, "--listen", "127.0.0.1:0", "--store", &store]).current_dir(root());
    for (variable, value) in FAKE_SECRETS {
        command.env(variable, value);
    }
    let output = command.env_remove("ATLAS_AUDIT_CHAIN_KEY").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("its audit chain is keyed"), "{stderr}");
    assert!(stderr.contains("ATLAS_AUDIT_CHAIN_KEY"), "says where the key comes from: {stderr}");

    let short = command.env("ATLAS_AUDIT_CHAIN_KEY", "short").output().unwrap();
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert_eq!(short.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ATLAS_AUDIT_CHAIN_KEY"), "{stderr}");
    assert!(!stderr.contains("short\n") && !stderr.contains("`short`"), "the key's value is never shown: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
