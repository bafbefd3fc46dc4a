//! A stateful local GitHub: a wiremock server whose one responder keeps a
//! repository's commits, pull requests and reviews, check runs and commit
//! statuses, Actions runs and team memberships, and answers the REST
//! endpoints this backend uses with payloads derived from the published
//! fixtures of `tests/data/`. Like GitHub it checks the headers, validates
//! the inputs of a `workflow_dispatch` against the workflow file of the
//! README (`deploy.yml`), and answers a conditional GET whose ETag still
//! matches with `304 Not Modified`.
//!
//! Time comes from the engine's [`ManualClock`]. Faults ([`Fault`]) make
//! it answer errors, late, or cut short; a [`Front`] before it drops
//! connections or cuts an answer short of its declared length.
#![allow(dead_code, unreachable_pub)]

pub mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use atlas_promote_core::{Clock, ManualClock};
pub use atlas_promote_fakes::relay::Front;
use atlas_promote_fakes::relay::{FaultPlan, RelayFault};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const TOKEN: &str = "ghp_EngineE2eTokenThatMustNeverLeak0123456";
pub const OWNER: &str = "octo-org";
pub const REPO: &str = "octo-repo";

/// People on GitHub: (login, user id).
pub const USERS: [(&str, u64); 4] = [("alice", 101), ("bob", 102), ("dan", 103), ("pat", 104)];

/// The inputs `deploy.yml` of the README declares: (name, required).
const DEPLOY_INPUTS: [(&str, bool); 4] = [("environment", true), ("sha", true), ("key", true), ("flush", false)];

fn user_id(login: &str) -> u64 {
    USERS.iter().find(|(l, _)| *l == login).map(|(_, id)| *id).unwrap_or_else(|| panic!("no user {login}"))
}

/// A published payload, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `base` with the members of `changes` replaced (objects merge one level deep).
pub fn with(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in changes.as_object().expect("an object of changes") {
        match (out.get_mut(k), v) {
            (Some(Value::Object(old)), Value::Object(new)) => {
                for (k2, v2) in new {
                    old.insert(k2.clone(), v2.clone());
                }
            }
            _ => out[k] = v.clone(),
        }
    }
    out
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What a fault does to the answers it hits.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer this status with this body and these headers, doing nothing.
    Status { status: u16, body: Value, headers: Vec<(String, String)> },
    /// Do the work, then answer this much later (beyond the client timeout: a timeout).
    Delay(std::time::Duration),
    /// Do the work, then send only the first half of the JSON body.
    Truncate,
    /// Accept the connection and close it without answering, before the
    /// request reaches the fake (needs the [`Front`]).
    Drop,
    /// Do the work, then send the answer's head and half its body, and close
    /// the connection: fewer bytes than declared (needs the [`Front`]).
    CutShort,
}

impl FaultKind {
    /// The fault as the [`Front`] plays it, when it is one of its own.
    fn relay(&self) -> Option<RelayFault> {
        match self {
            Self::Drop => Some(RelayFault::Drop),
            Self::CutShort => Some(RelayFault::CutShort),
            _ => None,
        }
    }
}

impl FaultPlan for FakeGitHub {
    fn relay_fault(&self, method: &str, path: &str, body: &[u8]) -> Option<RelayFault> {
        self.take_fault_of(method, path, body, true).as_ref().and_then(FaultKind::relay)
    }
}

/// A fault on the next `times` requests whose method and path match (the
/// path exactly, or a prefix when it ends in `*`), and whose body contains
/// `body_contains` when set.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path: String,
    pub body_contains: Option<String>,
    pub times: usize,
    pub kind: FaultKind,
    pub hits: usize,
}

impl Fault {
    pub fn new(method: &'static str, path: &str, times: usize, kind: FaultKind) -> Self {
        Self { method, path: path.to_owned(), body_contains: None, times, kind, hits: 0 }
    }

    pub fn when_body_contains(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_owned());
        self
    }

    /// An HTTP error with GitHub's `{message, documentation_url}` body.
    pub fn status(method: &'static str, path: &str, times: usize, status: u16, message: &str) -> Self {
        let body = json!({ "message": message, "documentation_url": "https://docs.github.com/rest" });
        Self::new(method, path, times, FaultKind::Status { status, body, headers: Vec::new() })
    }
}

/// `/repos/octo-org/octo-repo/{rest}`.
pub fn repo_path(rest: &str) -> String {
    format!("/repos/{OWNER}/{REPO}/{rest}")
}

#[derive(Debug, Clone)]
pub struct FakeCommit {
    pub sha: String,
    pub parent: Option<String>,
    pub author: String,
    pub files: Vec<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct FakeRun {
    pub id: u64,
    pub workflow: String,
    pub inputs: BTreeMap<String, String>,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Listings of runs still to leave it out (GitHub lists a new run after a few seconds).
    pub unlisted: usize,
}

impl FakeRun {
    fn display_title(&self) -> String {
        // deploy.yml's run-name: "${{ flush && 'flush' || 'deploy' }} ${{ environment }} ${{ sha }} [${{ key }}]".
        let input = |name: &str| self.inputs.get(name).cloned().unwrap_or_default();
        let kind = if input("flush") == "true" { "flush" } else { "deploy" };
        format!("{kind} {} {} [{}]", input("environment"), input("sha"), input("key"))
    }

    pub fn key(&self) -> String {
        self.inputs.get("key").cloned().unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct FakeCheck {
    pub id: u64,
    pub name: String,
    pub conclusion: Option<String>,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct FakeStatus {
    pub id: u64,
    pub context: String,
    pub state: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct FakePull {
    pub number: u64,
    pub head: String,
    pub branch: String,
    pub base: String,
    pub author: String,
    pub created_at: DateTime<Utc>,
    pub merged_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct FakeReview {
    pub id: u64,
    pub pull: u64,
    pub login: String,
    pub state: String,
    pub commit: String,
    pub at: DateTime<Utc>,
}

/// The repository's state.
#[derive(Debug, Default)]
pub struct State {
    pub commits: Vec<FakeCommit>,
    /// `main`'s head.
    pub head: Option<String>,
    pub pulls: Vec<FakePull>,
    pub reviews: Vec<FakeReview>,
    pub checks: BTreeMap<String, Vec<FakeCheck>>,
    pub statuses: BTreeMap<String, Vec<FakeStatus>>,
    pub runs: Vec<FakeRun>,
    /// (workflow file, body) of every dispatch that reached the server.
    pub dispatches: Vec<(String, Value)>,
    /// Team slug → member logins.
    pub teams: BTreeMap<String, BTreeSet<String>>,
    /// Every answer: (status, path).
    pub answers: Vec<(u16, String)>,
    pub faults: Vec<Fault>,
    /// New runs are left out of this many listings.
    pub list_lag: usize,
    next: u64,
}

impl State {
    fn id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    fn commit(&self, sha: &str) -> Option<&FakeCommit> {
        self.commits.iter().find(|c| c.sha == sha)
    }

    /// `sha` and its ancestors, newest first.
    fn history(&self, sha: &str) -> Vec<FakeCommit> {
        let mut out = Vec::new();
        let mut at = Some(sha.to_owned());
        while let Some(sha) = at {
            let Some(c) = self.commit(&sha) else { break };
            out.push(c.clone());
            at = c.parent.clone();
        }
        out
    }
}

/// A local GitHub repository `octo-org/octo-repo`, trunk `main`.
#[derive(Debug, Clone)]
pub struct FakeGitHub {
    pub state: Arc<Mutex<State>>,
    pub clock: ManualClock,
}

impl FakeGitHub {
    pub async fn start(clock: ManualClock) -> (Self, MockServer) {
        let fake = Self { state: Arc::new(Mutex::new(State::default())), clock };
        let server = MockServer::start().await;
        Mock::given(any()).respond_with(fake.clone()).mount(&server).await;
        (fake, server)
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Members of `team`.
    pub fn team(&self, team: &str, members: &[&str]) {
        self.lock().teams.insert(team.into(), members.iter().map(|m| (*m).to_owned()).collect());
    }

    /// `author` pushes `sha` (changing `files`) to `branch` and opens pull request `number` onto `main`.
    pub fn open_pull(&self, number: u64, sha: &str, branch: &str, author: &str, files: &[&str]) {
        let now = self.now();
        let mut s = self.lock();
        let base = s.head.clone().unwrap_or_default();
        let parent = s.head.clone();
        s.commits.push(FakeCommit {
            sha: sha.into(),
            parent,
            author: author.into(),
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            at: now,
        });
        s.pulls.push(FakePull {
            number,
            head: sha.into(),
            branch: branch.into(),
            base,
            author: author.into(),
            created_at: now,
            merged_at: None,
        });
    }

    /// The pull request is merged (fast-forward: its head becomes `main`'s).
    pub fn merge_pull(&self, number: u64) -> String {
        let now = self.now();
        let mut s = self.lock();
        let pull = s.pulls.iter_mut().find(|p| p.number == number).expect("a pull request");
        pull.merged_at = Some(now);
        let head = pull.head.clone();
        s.head = Some(head.clone());
        head
    }

    /// `author` pushes `sha` (changing `files`) straight to `main`.
    pub fn push(&self, sha: &str, author: &str, files: &[&str]) {
        let now = self.now();
        let mut s = self.lock();
        let parent = s.head.clone();
        s.commits.push(FakeCommit {
            sha: sha.into(),
            parent,
            author: author.into(),
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            at: now,
        });
        s.head = Some(sha.into());
    }

    /// `login` reviews pull request `number` at its head with `state` (`APPROVED`, …).
    pub fn review(&self, number: u64, login: &str, state: &str) {
        let now = self.now();
        let mut s = self.lock();
        let commit = s.pulls.iter().find(|p| p.number == number).expect("a pull request").head.clone();
        let id = s.id();
        s.reviews.push(FakeReview { id, pull: number, login: login.into(), state: state.into(), commit, at: now });
    }

    /// Check runs `names` on `sha` start now and end `took` later with `conclusion` (the clock moves on).
    pub fn check_runs(&self, sha: &str, names: &[&str], conclusion: &str, took: TimeDelta) {
        let started = self.now();
        self.clock.advance(took);
        let done = self.now();
        let mut s = self.lock();
        for name in names {
            let id = s.id();
            s.checks.entry(sha.into()).or_default().push(FakeCheck {
                id,
                name: (*name).into(),
                conclusion: Some(conclusion.into()),
                started_at: started,
                completed_at: Some(done),
            });
        }
    }

    /// The nightly: `integration` and `system` report as check runs, `data-quality` as a commit status.
    pub fn nightly(&self, sha: &str, passed: bool) {
        let started = self.now();
        {
            let mut s = self.lock();
            let id = s.id();
            s.statuses.entry(sha.into()).or_default().push(FakeStatus {
                id,
                context: "data-quality".into(),
                state: "pending".into(),
                at: started,
            });
        }
        self.check_runs(
            sha,
            &["integration", "system"],
            if passed { "success" } else { "failure" },
            TimeDelta::minutes(40),
        );
        let done = self.now();
        let mut s = self.lock();
        let id = s.id();
        s.statuses.entry(sha.into()).or_default().push(FakeStatus {
            id,
            context: "data-quality".into(),
            state: if passed { "success" } else { "failure" }.into(),
            at: done,
        });
    }

    /// Every run still going ends now with `conclusion`; returns their keys.
    pub fn finish_runs(&self, conclusion: &str) -> Vec<String> {
        let now = self.now();
        let mut s = self.lock();
        let mut keys = Vec::new();
        for run in s.runs.iter_mut().filter(|r| r.status != "completed") {
            run.status = "completed".into();
            run.conclusion = Some(conclusion.into());
            run.updated_at = now;
            keys.push(run.key());
        }
        keys
    }

    /// Runs still queued start.
    pub fn start_runs(&self) {
        let now = self.now();
        for run in self.lock().runs.iter_mut().filter(|r| r.status == "queued") {
            run.status = "in_progress".into();
            run.updated_at = now;
        }
    }

    /// Every dispatch body that reached the server.
    pub fn dispatches(&self) -> Vec<(String, Value)> {
        self.lock().dispatches.clone()
    }

    /// How many runs each key has.
    pub fn runs_per_key(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for run in &self.lock().runs {
            *out.entry(run.key()).or_default() += 1;
        }
        out
    }

    /// Add a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Remove every fault.
    pub fn heal(&self) {
        self.lock().faults.clear();
    }

    /// How many requests each fault hit so far.
    pub fn fault_hits(&self) -> Vec<usize> {
        self.lock().faults.iter().map(|f| f.hits).collect()
    }

    /// The id of the run dispatched with `key`.
    pub fn run_of(&self, key: &str) -> Option<u64> {
        self.lock().runs.iter().find(|r| r.key() == key).map(|r| r.id)
    }

    /// How many dispatches that reached the server carried each key.
    pub fn dispatches_per_key(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for (_, body) in self.dispatches() {
            *out.entry(body["inputs"]["key"].as_str().unwrap_or("(none)").to_owned()).or_default() += 1;
        }
        out
    }

    fn take_fault(&self, request: &Request) -> Option<FaultKind> {
        self.take_fault_of(request.method.as_str(), request.url.path(), &request.body, false)
    }

    /// The fault hitting this request, if any (counted): one the [`Front`]
    /// plays when `relay` (asked by the front), any other kind else.
    fn take_fault_of(&self, method: &str, path: &str, body: &[u8], relay: bool) -> Option<FaultKind> {
        let mut s = self.lock();
        let body = String::from_utf8_lossy(body);
        let fault = s.faults.iter_mut().find(|f| {
            f.hits < f.times
                && f.kind.relay().is_some() == relay
                && f.method == method
                && match f.path.strip_suffix('*') {
                    Some(prefix) => path.starts_with(prefix),
                    None => path == f.path,
                }
                && f.body_contains.as_deref().is_none_or(|t| body.contains(t))
        })?;
        fault.hits += 1;
        Some(fault.kind.clone())
    }

    // ---- answers ----

    fn answer(&self, request: &Request) -> (u16, Value) {
        let path = request.url.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
        let method = request.method.as_str();
        let repo = match segments.as_slice() {
            ["repos", o, r, rest @ ..] if *o == OWNER && *r == REPO => Some(rest.to_vec()),
            _ => None,
        };
        match (method, repo.as_deref(), segments.as_slice()) {
            ("POST", Some(["actions", "workflows", file, "dispatches"]), _) => self.dispatch(file, request),
            ("GET", Some(["actions", "runs"]), _) => self.list_runs(&query),
            ("GET", Some(["actions", "runs", id]), _) => self.get_run(id),
            ("GET", Some(["actions", "runs", _, "approvals"]), _) => (200, json!([])),
            ("GET", Some(["commits", sha, "check-runs"]), _) => self.check_runs_of(sha),
            ("GET", Some(["commits", sha, "statuses"]), _) => self.statuses_of(sha),
            ("GET", Some(["commits", sha, "pulls"]), _) => self.pulls_of(sha),
            ("GET", Some(["commits"]), _) => self.list_commits(&query),
            ("GET", Some(["pulls", n, "reviews"]), _) => self.reviews_of(n),
            ("GET", Some(["compare", basehead]), _) => self.compare(basehead),
            ("GET", None, ["orgs", org, "teams", team, "memberships", user]) if *org == OWNER => {
                self.membership(team, user)
            }
            _ => not_found(),
        }
    }

    fn dispatch(&self, file: &str, request: &Request) -> (u16, Value) {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return (400, json!({ "message": "Problems parsing JSON" }));
        };
        let now = self.now();
        let mut s = self.lock();
        s.dispatches.push((file.to_owned(), body.clone()));
        if file != "deploy.yml" {
            return not_found();
        }
        if body["ref"] != "main" {
            return unprocessable(&format!("No ref found for: {}", body["ref"]));
        }
        let inputs: BTreeMap<String, String> = body["inputs"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
            .unwrap_or_default();
        let unexpected: Vec<&String> =
            inputs.keys().filter(|k| !DEPLOY_INPUTS.iter().any(|(name, _)| name == k)).collect();
        if !unexpected.is_empty() {
            return unprocessable(&format!("Unexpected inputs provided: {unexpected:?}"));
        }
        if let Some((name, _)) = DEPLOY_INPUTS.iter().find(|(name, required)| *required && !inputs.contains_key(*name))
        {
            return unprocessable(&format!("Required input '{name}' not provided"));
        }
        if !["dev", "staging", "prod"].contains(&inputs["environment"].as_str()) {
            return unprocessable("Provided value for input 'environment' not in the list of allowed values");
        }
        let id = 30_433_000 + s.id();
        let head_sha = s.head.clone().unwrap_or_default();
        let unlisted = s.list_lag;
        s.runs.push(FakeRun {
            unlisted,
            id,
            workflow: file.into(),
            inputs,
            head_sha,
            status: "queued".into(),
            conclusion: None,
            created_at: now,
            updated_at: now,
        });
        if body["return_run_details"] == true {
            let url = format!("https://api.github.com/repos/{OWNER}/{REPO}/actions/runs/{id}");
            let html = format!("https://github.com/{OWNER}/{REPO}/actions/runs/{id}");
            (
                200,
                with(
                    &fixture("create_workflow_dispatch.json"),
                    json!({ "workflow_run_id": id, "run_url": url, "html_url": html }),
                ),
            )
        } else {
            (204, Value::Null)
        }
    }

    fn run_json(run: &FakeRun) -> Value {
        with(
            &fixture("get_workflow_run.json"),
            json!({
                "id": run.id,
                "name": "deploy",
                "head_branch": "main",
                "head_sha": run.head_sha,
                "path": ".github/workflows/deploy.yml@main",
                "run_number": run.id - 30_433_000,
                "event": "workflow_dispatch",
                "display_title": run.display_title(),
                "status": run.status,
                "conclusion": run.conclusion,
                "url": format!("https://api.github.com/repos/{OWNER}/{REPO}/actions/runs/{}", run.id),
                "html_url": format!("https://github.com/{OWNER}/{REPO}/actions/runs/{}", run.id),
                "created_at": ts(run.created_at),
                "updated_at": ts(run.updated_at),
                "run_started_at": ts(run.created_at),
                "run_attempt": 1,
            }),
        )
    }

    fn list_runs(&self, query: &BTreeMap<String, String>) -> (u16, Value) {
        let mut s = self.lock();
        let runs: Vec<Value> = s
            .runs
            .iter_mut()
            .rev()
            .filter(|_| query.get("event").is_none_or(|e| e == "workflow_dispatch"))
            .filter_map(|r| match r.unlisted {
                0 => Some(&*r),
                _ => {
                    r.unlisted -= 1;
                    None
                }
            })
            .take(query.get("per_page").and_then(|n| n.parse().ok()).unwrap_or(30))
            .map(Self::run_json)
            .collect();
        (200, with(&fixture("list_workflow_runs.json"), json!({ "total_count": runs.len(), "workflow_runs": runs })))
    }

    fn get_run(&self, id: &str) -> (u16, Value) {
        let s = self.lock();
        match s.runs.iter().find(|r| r.id.to_string() == id) {
            Some(run) => (200, Self::run_json(run)),
            None => not_found(),
        }
    }

    fn check_runs_of(&self, sha: &str) -> (u16, Value) {
        let s = self.lock();
        let template = &fixture("list_check_runs_for_ref.json")["check_runs"][0];
        let runs: Vec<Value> = s
            .checks
            .get(sha)
            .into_iter()
            .flatten()
            .rev()
            .map(|c| {
                with(
                    template,
                    json!({
                        "id": c.id,
                        "head_sha": sha,
                        "name": c.name,
                        "status": if c.completed_at.is_some() { "completed" } else { "in_progress" },
                        "conclusion": c.conclusion,
                        "started_at": ts(c.started_at),
                        "completed_at": c.completed_at.map(ts),
                        "app": { "slug": "github-actions" },
                    }),
                )
            })
            .collect();
        (200, json!({ "total_count": runs.len(), "check_runs": runs }))
    }

    fn statuses_of(&self, sha: &str) -> (u16, Value) {
        let s = self.lock();
        let template = &fixture("list_commit_statuses_for_ref.json")[0];
        let statuses: Vec<Value> = s
            .statuses
            .get(sha)
            .into_iter()
            .flatten()
            .rev()
            .map(|st| {
                with(
                    template,
                    json!({
                        "id": st.id,
                        "state": st.state,
                        "context": st.context,
                        "description": format!("{} {}", st.context, st.state),
                        "created_at": ts(st.at),
                        "updated_at": ts(st.at),
                    }),
                )
            })
            .collect();
        (200, json!(statuses))
    }

    fn pull_json(p: &FakePull) -> Value {
        let published = &fixture("webhook_pull_request_review_submitted.json")["pull_request"];
        let mut pull = with(
            published,
            json!({
                "number": p.number,
                "state": if p.merged_at.is_some() { "closed" } else { "open" },
                "user": { "login": p.author, "id": user_id(&p.author) },
                "created_at": ts(p.created_at),
                "merged_at": p.merged_at.map(ts),
            }),
        );
        pull["head"]["sha"] = p.head.clone().into();
        pull["head"]["ref"] = p.branch.clone().into();
        pull["base"]["sha"] = p.base.clone().into();
        pull["base"]["ref"] = "main".into();
        pull
    }

    fn pulls_of(&self, sha: &str) -> (u16, Value) {
        let s = self.lock();
        let pulls: Vec<Value> = s.pulls.iter().filter(|p| p.head == sha).map(Self::pull_json).collect();
        (200, json!(pulls))
    }

    fn reviews_of(&self, number: &str) -> (u16, Value) {
        let s = self.lock();
        let template = &fixture("list_pull_request_reviews.json")[0];
        let reviews: Vec<Value> = s
            .reviews
            .iter()
            .filter(|r| r.pull.to_string() == number)
            .map(|r| {
                with(
                    template,
                    json!({
                        "id": r.id,
                        "user": { "login": r.login, "id": user_id(&r.login) },
                        "state": r.state,
                        "commit_id": r.commit,
                        "submitted_at": ts(r.at),
                    }),
                )
            })
            .collect();
        (200, json!(reviews))
    }

    fn commit_json(c: &FakeCommit) -> Value {
        let published = &fixture("compare_commits.json")["commits"][0];
        let mut commit =
            with(published, json!({ "sha": c.sha, "author": { "login": c.author, "id": user_id(&c.author) } }));
        commit["commit"]["author"] =
            json!({ "name": c.author, "email": format!("{}@example.com", c.author), "date": ts(c.at) });
        commit
    }

    fn list_commits(&self, query: &BTreeMap<String, String>) -> (u16, Value) {
        let s = self.lock();
        let Some(sha) = query.get("sha").cloned().or_else(|| s.head.clone()) else { return (200, json!([])) };
        let commits: Vec<Value> = s.history(&sha).iter().map(Self::commit_json).collect();
        (200, json!(commits))
    }

    fn compare(&self, basehead: &str) -> (u16, Value) {
        let Some((base, head)) = basehead.split_once("...") else { return not_found() };
        let s = self.lock();
        if s.commit(base).is_none() || s.commit(head).is_none() {
            return not_found();
        }
        let history = s.history(head);
        let Some(cut) = history.iter().position(|c| c.sha == base) else {
            return (200, with(&fixture("compare_commits.json"), json!({ "status": "diverged" })));
        };
        let ahead: Vec<&FakeCommit> = history[..cut].iter().rev().collect();
        let mut files: BTreeSet<&str> = BTreeSet::new();
        for c in &ahead {
            files.extend(c.files.iter().map(String::as_str));
        }
        let template = &fixture("compare_commits.json")["files"][0];
        let files: Vec<Value> =
            files.iter().map(|f| with(template, json!({ "filename": f, "status": "modified" }))).collect();
        let commits: Vec<Value> = ahead.iter().map(|c| Self::commit_json(c)).collect();
        let status = if ahead.is_empty() { "identical" } else { "ahead" };
        (
            200,
            with(
                &fixture("compare_commits.json"),
                json!({ "status": status, "ahead_by": commits.len(), "behind_by": 0,
                        "total_commits": commits.len(), "commits": commits, "files": files }),
            ),
        )
    }

    fn membership(&self, team: &str, user: &str) -> (u16, Value) {
        let s = self.lock();
        if s.teams.get(team).is_some_and(|m| m.contains(user)) {
            let body = with(
                &fixture("get_team_membership_for_user.json"),
                json!({ "url": format!("https://api.github.com/teams/{team}/memberships/{user}"), "role": "member" }),
            );
            (200, body)
        } else {
            not_found()
        }
    }
}

fn not_found() -> (u16, Value) {
    (404, json!({ "message": "Not Found", "documentation_url": "https://docs.github.com/rest" }))
}

fn unprocessable(message: &str) -> (u16, Value) {
    (
        422,
        json!({ "message": message, "documentation_url": "https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event" }),
    )
}

/// A weak ETag of a body.
fn etag(body: &str) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    body.hash(&mut hasher);
    format!("W/\"{:016x}\"", hasher.finish())
}

impl Respond for FakeGitHub {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if header("authorization") != format!("Bearer {TOKEN}") {
            return ResponseTemplate::new(401).set_body_json(
                json!({ "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest" }),
            );
        }
        if header("x-github-api-version") != "2022-11-28" || header("accept") != "application/vnd.github+json" {
            return ResponseTemplate::new(400).set_body_json(json!({ "message": "missing API version or media type" }));
        }
        let fault = self.take_fault(request);
        if let Some(FaultKind::Status { status, body, headers }) = &fault {
            let mut t = ResponseTemplate::new(*status).set_body_json(body.clone());
            for (name, value) in headers {
                t = t.insert_header(name.as_str(), value.as_str());
            }
            return t;
        }
        let (status, body) = self.answer(request);
        let text = body.to_string();
        match fault {
            Some(FaultKind::Truncate) => {
                let cut: String = text.chars().take(text.len() / 2).collect();
                return ResponseTemplate::new(status).set_body_raw(cut, "application/json; charset=utf-8");
            }
            Some(FaultKind::Delay(delay)) => {
                return self.template(request, status, body, text).set_delay(delay);
            }
            Some(FaultKind::Drop | FaultKind::CutShort) => unreachable!("faults of the Front"),
            None | Some(FaultKind::Status { .. }) => {}
        }
        self.template(request, status, body, text)
    }
}

impl FakeGitHub {
    /// The answer as GitHub sends it: an ETag on a GET, a 304 when it still matches.
    fn template(&self, request: &Request, status: u16, body: Value, text: String) -> ResponseTemplate {
        let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let get = request.method.as_str() == "GET";
        if get && status == 200 {
            let tag = etag(&text);
            if header("if-none-match") == tag {
                self.lock().answers.push((304, request.url.path().to_owned()));
                return ResponseTemplate::new(304).insert_header("etag", tag.as_str());
            }
            self.lock().answers.push((200, request.url.path().to_owned()));
            return ResponseTemplate::new(200)
                .set_body_raw(text, "application/json; charset=utf-8")
                .insert_header("etag", tag.as_str());
        }
        self.lock().answers.push((status, request.url.path().to_owned()));
        match body {
            Value::Null => ResponseTemplate::new(status),
            body => ResponseTemplate::new(status).set_body_json(body),
        }
    }
}
