//! The operator's commands against a running service: a server on the
//! in-memory backends in this process, the built `atlas-promote` binary
//! talking to it over loopback HTTP with ATLAS_TOKEN.

mod common;

use std::process::Command;
use std::sync::Arc;

use atlas_promote_core::{
    Candidate, ManualClock, MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, OverrideRule,
    Policy, Promoter, StateStore, StaticDirectory,
};
use atlas_promote_server::auth::token_sha256;
use atlas_promote_server::{Operators, Server};

const DAN: &str = "dan-cli-token-1";
const PAT: &str = "pat-cli-token-2";
const RITA: &str = "rita-cli-token-3";

struct Service {
    runtime: tokio::runtime::Runtime,
    url: String,
    promoter: Promoter,
    clock: ManualClock,
    ci: MemoryCi,
    source_control: MemorySourceControl,
    store: Arc<dyn StateStore>,
}

impl Service {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let clock = ManualClock::new("2026-05-04T08:00:00Z".parse().unwrap());
        let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
        let source_control = MemorySourceControl::new();
        let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
        let directory = StaticDirectory::new(Default::default());
        for (person, role) in
            [("dan", "developer"), ("dan", "dev-team"), ("pat", "product-owner"), ("rita", "release-manager")]
        {
            directory.grant(person, role);
        }
        let directory = Arc::new(directory);
        let mut policy = Policy::atlas();
        policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
        let promoter = Promoter::builder(policy)
            .with_store(store.clone())
            .with_ci(Arc::new(ci.clone()))
            .with_checks(Arc::new(MemoryChecks::new()))
            .with_approvals(Arc::new(MemoryApprovals::new()))
            .with_directory(directory.clone())
            .with_source_control(Arc::new(source_control.clone()))
            .with_clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let operators = [("dan", DAN), ("pat", PAT), ("rita", RITA)]
            .into_iter()
            .try_fold(Operators::new(), |o, (person, token)| o.with_operator(person, &token_sha256(token)))
            .unwrap();
        let server = Server::builder(promoter.clone()).with_operators(operators).with_directory(directory).build();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { server.serve(listener, std::future::pending()).await });
        Self { runtime, url, promoter, clock, ci, source_control, store }
    }

    fn merge(&self, sha: &str, parent: Option<&str>) {
        self.source_control.commit(sha, parent, "alice", &["pipelines/etl.py"]);
        let candidate = Candidate::trunk(sha, ["alice"]);
        self.runtime.block_on(self.promoter.merged(candidate, self.promoter.now())).unwrap();
        self.settle();
    }

    fn settle(&self) {
        for _ in 0..20 {
            self.clock.advance(chrono::TimeDelta::minutes(1));
            if self.runtime.block_on(self.promoter.tick()).unwrap().is_idle() {
                break;
            }
        }
    }

    fn state(&self, sha: &str) -> String {
        self.runtime.block_on(self.promoter.promotion(sha)).unwrap().value.promotion.state.to_string()
    }

    /// `atlas-promote ARGS --server URL` with `token` in ATLAS_TOKEN.
    fn run(&self, token: Option<&str>, args: &[&str]) -> common::Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-promote"));
        command.args(args).args(["--server", &self.url]).env_remove("ATLAS_TOKEN").env_remove("ATLAS_SERVER");
        if let Some(token) = token {
            command.env("ATLAS_TOKEN", token);
        }
        let output = command.output().unwrap();
        common::Run {
            code: output.status.code().unwrap(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    }
}

#[test]
fn a_release_manager_follows_the_seed_from_the_terminal() {
    let s = Service::start();
    s.merge("c1", None);

    let status = s.run(None, &["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("dev        c1 live since 2026-05-04"), "{}", status.stdout);
    assert!(
        status.stdout.contains("needs 1 more approval from developer (have 0 of 1) to enter staging"),
        "{}",
        status.stdout
    );

    let plan = s.run(None, &["plan", "c1"]);
    assert_eq!(plan.code, 4, "blocked: {}{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.starts_with("c1 is live in dev; ahead:\n  dev → staging: blocked\n"), "{}", plan.stdout);

    let approve = s.run(Some(DAN), &["approve", "c1", "--into", "staging", "--comment", "ok"]);
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    assert_eq!(approve.stdout, "dan (developer, dev-team) approves c1 into staging\n");
    s.settle();
    assert_eq!(s.state("c1"), "live in staging");

    let hold = s.run(Some(PAT), &["hold", "prod", "--reason", "incident 42"]);
    assert_eq!((hold.code, hold.stdout.as_str()), (0, "prod is held by pat: incident 42\n"), "{}", hold.stderr);
    let status = s.run(None, &["status", "--format", "json"]);
    assert_eq!(status.json()["holds"][0]["by"], "pat");
    let release = s.run(Some(PAT), &["release", "prod"]);
    assert_eq!(release.code, 0, "{}", release.stderr);
    assert!(release.stdout.starts_with("prod released\n"), "{}", release.stdout);

    let overridden = s.run(
        Some(RITA),
        &["override", "c1", "--into", "prod", "--bypass", "approvals_missing", "check_missing", "--reason", "hotfix"],
    );
    assert_eq!(overridden.code, 0, "{}", overridden.stderr);
    assert!(overridden.stdout.contains("rita overrode staging → prod"), "{}", overridden.stdout);
    s.settle();
    assert_eq!(s.state("c1"), "live in prod");

    // A second commit goes to prod the same way; then prod is rolled back to c1.
    s.merge("c2", Some("c1"));
    s.run(Some(DAN), &["approve", "c2", "--into", "staging"]);
    s.settle();
    s.run(
        Some(RITA),
        &["override", "c2", "--into", "prod", "--bypass", "approvals_missing", "check_missing", "--reason", "x"],
    );
    s.settle();
    assert_eq!(s.state("c2"), "live in prod");
    let rollback = s.run(Some(PAT), &["rollback", "prod", "--reason", "bad data"]);
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    s.settle();
    assert_eq!(s.state("c1"), "live in prod");

    // c3's deploy to dev fails; a retry gets it there.
    s.ci.set_default_outcome(atlas_promote_core::Outcome::Fail);
    s.merge("c3", Some("c2"));
    assert!(s.state("c3").starts_with("failed"), "{}", s.state("c3"));
    s.ci.set_default_outcome(atlas_promote_core::Outcome::Succeed);
    let retry = s.run(Some(DAN), &["retry", "c3"]);
    assert_eq!(retry.code, 0, "{}", retry.stderr);
    assert!(retry.stdout.contains("dan retries the deploy of c3 to dev"), "{}", retry.stdout);
    s.settle();
    assert_eq!(s.state("c3"), "live in dev");

    let verify = s.run(None, &["audit", "verify"]);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(verify.stdout.starts_with("audit log intact: "), "{}", verify.stdout);
    let head = s.runtime.block_on(s.store.audit(0)).unwrap().last().unwrap().hash.clone();
    assert!(verify.stdout.contains(&head), "{}", verify.stdout);
    let verify = s.run(None, &["audit", "verify", "--expect-head", &"0f".repeat(32)]);
    assert_eq!(verify.code, 4, "{}", verify.stdout);
    assert!(verify.stdout.starts_with("audit log BROKEN: "), "{}", verify.stdout);

    let log = s.run(None, &["audit", "log", "--after", "1"]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    assert!(log.stdout.starts_with("    2 2026-05-04"), "{}", log.stdout);
    for line in [
        "dan approval.approve c1",
        "pat hold prod",
        "pat release prod",
        "rita override.granted c1",
        "pat rollback c2",
        "dan retry c3",
    ] {
        assert!(log.stdout.contains(line), "{line} not in:\n{}", log.stdout);
    }
    let json = s.run(None, &["audit", "log", "--format", "json"]);
    assert_eq!(json.json()["records"][0]["seq"], 1);
}

#[test]
fn refusals_exit_4_bad_requests_2_and_an_unreachable_server_1() {
    let s = Service::start();
    s.merge("c1", None);

    let no_token = s.run(None, &["approve", "c1", "--into", "staging"]);
    assert_eq!(no_token.code, 4, "{}", no_token.stderr);
    assert!(
        no_token.stderr.contains("401 unauthorized") && no_token.stderr.contains("set ATLAS_TOKEN"),
        "{}",
        no_token.stderr
    );
    let unknown = s.run(Some("nobodys-token"), &["hold", "prod", "--reason", "x"]);
    assert_eq!(unknown.code, 4);
    assert!(!unknown.stderr.contains("nobodys-token"), "the token is never printed: {}", unknown.stderr);
    let forbidden =
        s.run(Some(DAN), &["override", "c1", "--into", "staging", "--bypass", "approvals_missing", "--reason", "x"]);
    assert_eq!(forbidden.code, 4);
    assert!(forbidden.stderr.contains("403 forbidden"), "{}", forbidden.stderr);

    let json = s.run(Some(DAN), &["retry", "c1", "--format", "json"]);
    assert_eq!(json.code, 4);
    assert_eq!(json.json()["error"]["kind"], "refused", "{}", json.stdout);

    let unknown_commit = s.run(None, &["plan", "nope"]);
    assert_eq!(unknown_commit.code, 2, "{}", unknown_commit.stderr);
    assert!(unknown_commit.stderr.contains("404 not_found"), "{}", unknown_commit.stderr);
    let unknown_stage = s.run(Some(DAN), &["approve", "c1", "--into", "moon"]);
    assert_eq!(unknown_stage.code, 2, "{}", unknown_stage.stderr);

    let usage = s.run(Some(DAN), &["approve", "c1", "--into", "staging", "--reject", "--withdraw"]);
    assert_eq!(usage.code, 2);

    let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-promote"));
    let gone = command.args(["status", "--server", "http://127.0.0.1:9"]).output().unwrap();
    assert_eq!(gone.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&gone.stderr).contains("GET http://127.0.0.1:9/api/v1/status"));
}

#[test]
fn the_top_level_help_documents_the_exit_statuses_and_the_token_once() {
    let help = common::atlas_promote(&["--help"]);
    assert!(help.stdout.contains("ATLAS_TOKEN"), "{}", help.stdout);
    assert!(help.stdout.contains("4  evaluate: blocked; plan: the next gate blocks"), "{}", help.stdout);
    for command in ["status", "plan", "approve", "hold", "release", "override", "rollback", "retry", "audit"] {
        assert!(help.stdout.contains(&format!("  {command} ")), "{command} missing from:\n{}", help.stdout);
    }
    let approve = common::atlas_promote(&["approve", "--help"]);
    assert!(approve.stdout.contains("Examples:"), "{}", approve.stdout);
}

/// A config whose one operator, dan, has the token `test`; its backends
/// point at a closed port (hold and status need none of them).
const CONFIG: &str = r#"policy = "POLICY"
store = "sqlite://atlas.db"

[github]
repository = "acme/atlas"
api_url = "http://127.0.0.1:9"
token_env = "T"
webhook_secret_env = "W"

[circleci]
project_slug = "gh/acme/atlas"
api_url = "http://127.0.0.1:9"
token_env = "T"
webhook_secret_env = "W"

[backends]
ci = "circleci"
directory = "policy"
source_control = "github"

[[operator]]
person = "dan"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
"#;

#[test]
fn without_a_running_service_the_commands_act_on_the_configs_store() {
    let dir = std::env::temp_dir().join(format!("atlas-operate-local-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let policy = common::root().join("examples/policies/atlas.toml");
    let config = dir.join("atlas-promote.toml");
    std::fs::write(&config, CONFIG.replace("POLICY", policy.to_str().unwrap())).unwrap();
    let run = |token: Option<&str>, args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_atlas-promote"));
        command.args(args).args(["--config", config.to_str().unwrap()]).env("T", "x").env("W", "y");
        command.env_remove("ATLAS_TOKEN").env_remove("ATLAS_SERVER");
        if let Some(token) = token {
            command.env("ATLAS_TOKEN", token);
        }
        let output = command.output().unwrap();
        common::Run {
            code: output.status.code().unwrap(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
        }
    };
    let refused = run(Some("wrong"), &["hold", "prod", "--reason", "incident 7"]);
    assert_eq!(refused.code, 4, "the config's operators still decide: {}", refused.stderr);
    let hold = run(Some("test"), &["hold", "prod", "--reason", "incident 7"]);
    assert_eq!((hold.code, hold.stdout.as_str()), (0, "prod is held by dan: incident 7\n"), "{}", hold.stderr);
    // A later command, another process: the hold is in the SQLite store.
    let status = run(None, &["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    assert!(status.stdout.contains("HELD by dan: incident 7"), "{}", status.stdout);
    assert!(dir.join("atlas.db").exists());
    let log = run(None, &["audit", "log"]);
    assert!(log.stdout.contains("dan hold prod: dan stopped the line into prod: incident 7"), "{}", log.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}
