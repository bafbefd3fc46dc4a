//! A stateful local CircleCI: a wiremock server whose one responder keeps a
//! project's pipelines, workflows and jobs, answers the API v2 endpoints this
//! backend uses with payloads derived from the published fixtures of
//! `tests/data/`, records every trigger, and injects faults on request.
//!
//! Time comes from the engine's [`ManualClock`]: every `created_at` and
//! `stopped_at` is the simulated instant the event happened.
#![allow(dead_code, unreachable_pub)]

pub mod harness;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use atlas_promote_core::{Clock, ManualClock};
pub use atlas_promote_fakes::relay::Front;
use atlas_promote_fakes::relay::{FaultPlan, RelayFault};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::common::{SLUG, first_item, fixture, page, with};

/// Users CircleCI knows: (user id, login). The first is the API token's user.
pub const USERS: [(&str, &str); 3] = [
    ("0b1d2c3e-0000-4000-8000-00000000a7b0", "atlas-bot"),
    ("5e1d0c4b-2a3f-4e6d-8c7b-9a0f1e2d3c4b", "dan"),
    ("c0b3a1d2-7e4f-4b8a-9d6c-5e2f1a3b4c5d", "pat"),
];

/// The approval jobs of the `promote` workflow every trunk push runs (the README's config).
pub const APPROVAL_JOBS: [&str; 3] = ["approve-staging", "approve-prod--product-owner", "approve-prod--dev-team"];

/// The user id of a login.
pub fn user_id(login: &str) -> &'static str {
    USERS.iter().find(|(_, l)| *l == login).map(|(id, _)| *id).unwrap_or_else(|| panic!("no user {login}"))
}

/// What a fault does to the answers it hits.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer this status with this body and these headers, doing nothing.
    Status { status: u16, body: String, headers: Vec<(String, String)> },
    /// Do the work, then answer this much later (beyond the client timeout: a timeout).
    Delay(Duration),
    /// Do the work, then send only the first half of the JSON body.
    Truncate,
    /// Do the work, then answer this status anyway (a gateway that lost the answer).
    AfterWork(u16),
    /// Accept the connection and close it without answering (needs the [`Front`]).
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

impl FaultPlan for FakeCircleCi {
    fn relay_fault(&self, method: &str, path: &str, body: &[u8]) -> Option<RelayFault> {
        self.take_fault(method, path, body, true).as_ref().and_then(FaultKind::relay)
    }
}

/// A fault on the requests whose method and path match (and whose body
/// contains `body_contains`, when set), for the next `times` of them.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    /// The path, exactly; or, ending in `*`, a prefix of it.
    pub path: String,
    pub body_contains: Option<String>,
    pub times: usize,
    pub kind: FaultKind,
    /// How many requests it hit so far.
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

    /// An HTTP error with CircleCI's `{"message": …}` body.
    pub fn status(method: &'static str, path: &str, times: usize, status: u16, message: &str) -> Self {
        let body = json!({ "message": message }).to_string();
        Self::new(method, path, times, FaultKind::Status { status, body, headers: Vec::new() })
    }
}

#[derive(Debug, Clone)]
pub struct FakeJob {
    pub id: String,
    pub name: String,
    pub approval: bool,
    pub status: String,
    pub number: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FakeWorkflow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub stopped_at: Option<DateTime<Utc>>,
    pub jobs: Vec<FakeJob>,
}

#[derive(Debug, Clone)]
pub struct FakePipeline {
    pub id: String,
    pub number: i64,
    pub created_at: DateTime<Utc>,
    pub revision: String,
    pub trigger: &'static str,
    pub parameters: BTreeMap<String, Value>,
    pub workflows: Vec<FakeWorkflow>,
    /// `created`, or `pending` while its config compiles (see `pending_reads`).
    pub state: &'static str,
    /// Reads of this pipeline (listed, got, its values or config) still to
    /// answer `pending` before it is `created`.
    pub pending_reads: usize,
}

impl FakePipeline {
    fn key(&self) -> Option<&str> {
        self.parameters.get("atlas_key").and_then(Value::as_str)
    }

    /// One more read: the state it shows.
    fn look(&mut self) -> &'static str {
        if self.pending_reads > 0 {
            self.pending_reads -= 1;
            return "pending";
        }
        self.state = "created";
        self.state
    }
}

/// The project's state.
#[derive(Debug, Default)]
pub struct State {
    pub pipelines: Vec<FakePipeline>,
    /// Every trigger POST's body that reached the server, in order, including those a fault answered.
    pub trigger_posts: Vec<Value>,
    /// Approve POSTs: (workflow id, approval request id).
    pub approve_posts: Vec<(String, String)>,
    pub faults: Vec<Fault>,
    /// The trunk branch's head commit: what a triggered pipeline checks out.
    pub head: Option<String>,
    /// Triggered pipelines stay `pending` (no config, no workflows) for this many reads.
    pub compile_reads: usize,
    pub page_size: usize,
    next: u64,
}

impl State {
    fn id(&mut self, kind: u32) -> String {
        self.next += 1;
        format!("{kind:08x}-0000-4000-8000-{:012x}", self.next)
    }

    fn number(&self) -> i64 {
        self.pipelines.len() as i64 + 100
    }
}

/// A local CircleCI project (`gh/foo/bar`, trunk `main`).
#[derive(Debug, Clone)]
pub struct FakeCircleCi {
    pub state: Arc<Mutex<State>>,
    pub clock: ManualClock,
}

impl FakeCircleCi {
    /// Start a server speaking for a project whose trunk is `main`.
    pub async fn start(clock: ManualClock) -> (Self, MockServer) {
        let fake = Self { state: Arc::new(Mutex::new(State { page_size: 20, ..State::default() })), clock };
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

    /// A commit lands on trunk: CircleCI runs its push pipeline (a `build`
    /// workflow that passes, and the `promote` workflow on hold at its approval jobs).
    pub fn push(&self, sha: &str) -> String {
        let now = self.now();
        let mut s = self.lock();
        s.head = Some(sha.to_owned());
        let (pipeline, build, promote) = (s.id(1), s.id(2), s.id(2));
        let job = |s: &mut State, name: &str, approval: bool, status: &str| FakeJob {
            id: s.id(3),
            name: name.into(),
            approval,
            status: status.into(),
            number: (!approval).then_some(s.next as i64),
            started_at: (!approval).then_some(now),
            stopped_at: (status == "success").then_some(now + TimeDelta::minutes(3)),
            approved_by: None,
        };
        let mut jobs = vec![job(&mut s, "announce", false, "success")];
        for name in APPROVAL_JOBS {
            jobs.push(job(&mut s, name, true, "on_hold"));
        }
        let build_jobs = vec![job(&mut s, "build", false, "success")];
        let number = s.number();
        s.pipelines.push(FakePipeline {
            id: pipeline.clone(),
            number,
            created_at: now,
            revision: sha.into(),
            trigger: "webhook",
            parameters: BTreeMap::new(),
            state: "created",
            pending_reads: 0,
            workflows: vec![
                FakeWorkflow {
                    id: build,
                    name: "build".into(),
                    status: "success".into(),
                    created_at: now,
                    stopped_at: Some(now + TimeDelta::minutes(3)),
                    jobs: build_jobs,
                },
                FakeWorkflow {
                    id: promote,
                    name: "promote".into(),
                    status: "on_hold".into(),
                    created_at: now,
                    stopped_at: None,
                    jobs,
                },
            ],
        });
        pipeline
    }

    /// Last night's scheduled pipeline on trunk at `sha`: the check workflows
    /// start now and end 40 minutes later with `status` (the clock moves on).
    pub fn nightly(&self, sha: &str, status: &str) {
        let started = self.now();
        self.clock.advance(TimeDelta::minutes(40));
        let stopped = self.now();
        let mut s = self.lock();
        let id = s.id(1);
        let mut workflows = Vec::new();
        for name in ["integration", "system", "data-quality"] {
            let (wf, job) = (s.id(2), s.id(3));
            let number = s.next as i64;
            workflows.push(FakeWorkflow {
                id: wf,
                name: name.into(),
                status: status.into(),
                created_at: started,
                stopped_at: Some(stopped),
                jobs: vec![FakeJob {
                    id: job,
                    name: "test".into(),
                    approval: false,
                    status: status.into(),
                    number: Some(number),
                    started_at: Some(started),
                    stopped_at: Some(stopped),
                    approved_by: None,
                }],
            });
        }
        let number = s.number();
        s.pipelines.push(FakePipeline {
            id,
            number,
            created_at: started,
            revision: sha.into(),
            trigger: "scheduled_pipeline",
            parameters: BTreeMap::new(),
            state: "created",
            pending_reads: 0,
            workflows,
        });
    }

    /// `login` approves the approval job `job` of `sha`'s push pipeline in the CircleCI app.
    pub fn approve(&self, sha: &str, job: &str, login: &str) {
        let now = self.now();
        let mut s = self.lock();
        let pipeline = s
            .pipelines
            .iter_mut()
            .find(|p| p.revision == sha && p.trigger == "webhook")
            .unwrap_or_else(|| panic!("no push pipeline of {sha}"));
        let promote = pipeline.workflows.iter_mut().find(|w| w.name == "promote").expect("a promote workflow");
        let j = promote.jobs.iter_mut().find(|j| j.name == job).unwrap_or_else(|| panic!("no job {job}"));
        assert_eq!(j.status, "on_hold", "{job} was decided already");
        j.status = "success".into();
        j.approved_by = Some(user_id(login).into());
        j.started_at = Some(now);
        j.stopped_at = Some(now);
        if promote.jobs.iter().all(|j| j.status == "success") {
            promote.status = "success".into();
            promote.stopped_at = Some(now);
        }
    }

    /// Every triggered workflow still running ends now with `status`; returns the keys of their pipelines.
    pub fn finish_runs(&self, status: &str) -> Vec<String> {
        let now = self.now();
        let mut s = self.lock();
        let mut keys = Vec::new();
        for p in s.pipelines.iter_mut().filter(|p| p.key().is_some()) {
            let key = p.key().unwrap_or_default().to_owned();
            for w in p.workflows.iter_mut().filter(|w| w.status == "running") {
                w.status = status.into();
                w.stopped_at = Some(now);
                for j in &mut w.jobs {
                    j.status = status.into();
                    j.stopped_at = Some(now);
                }
                keys.push(key.clone());
            }
        }
        keys
    }

    /// The trigger POST bodies so far.
    pub fn trigger_posts(&self) -> Vec<Value> {
        self.lock().trigger_posts.clone()
    }

    /// How many trigger POSTs carried each idempotency key.
    pub fn posts_per_key(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for body in self.trigger_posts() {
            let key = body["parameters"]["atlas_key"].as_str().unwrap_or("(none)").to_owned();
            *out.entry(key).or_default() += 1;
        }
        out
    }

    /// How many pipelines were created for each idempotency key.
    pub fn pipelines_per_key(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for p in &self.lock().pipelines {
            if let Some(key) = p.key() {
                *out.entry(key.to_owned()).or_default() += 1;
            }
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

    /// The id of the pipeline triggered with `key`.
    pub fn pipeline_of(&self, key: &str) -> Option<String> {
        self.lock().pipelines.iter().find(|p| p.key() == Some(key)).map(|p| p.id.clone())
    }

    /// The id of the `promote` workflow of `sha`'s push pipeline.
    pub fn promote_workflow(&self, sha: &str) -> String {
        let s = self.lock();
        let p = s.pipelines.iter().find(|p| p.revision == sha && p.trigger == "webhook").expect("a push pipeline");
        p.workflows.iter().find(|w| w.name == "promote").expect("a promote workflow").id.clone()
    }

    // ---- answers ----

    fn answer(&self, request: &Request) -> Reply {
        let path = request.url.path().to_owned();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let project = format!("project/{SLUG}/pipeline");
        let method = request.method.as_str();
        match (method, segments.as_slice()) {
            ("POST", _) if path.trim_start_matches('/') == project => self.trigger(request),
            ("GET", _) if path.trim_start_matches('/') == project => self.list_pipelines(request),
            ("GET", ["pipeline", id]) => self.get_pipeline(id),
            ("GET", ["pipeline", id, "workflow"]) => self.pipeline_workflows(id),
            ("GET", ["pipeline", id, "values"]) => self.values(id),
            ("GET", ["pipeline", id, "config"]) => self.config(id),
            ("GET", ["workflow", id]) => self.workflow(id),
            ("GET", ["workflow", id, "job"]) => self.jobs(id),
            ("POST", ["workflow", id, "approve", request_id]) => self.approve_post(id, request_id),
            ("GET", ["user", id]) => self.user(id),
            ("GET", ["me"]) => self.user(USERS[0].0),
            _ => not_found("Not found."),
        }
    }

    fn trigger(&self, request: &Request) -> Reply {
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(b) => b,
            Err(_) => return status(400, "Invalid request body."),
        };
        let now = self.now();
        let mut s = self.lock();
        let parameters: BTreeMap<String, Value> =
            body["parameters"].as_object().map(|m| m.clone().into_iter().collect()).unwrap_or_default();
        let workflow_name = parameters.get("atlas_workflow").and_then(Value::as_str).unwrap_or("deploy").to_owned();
        let (id, wf, job) = (s.id(1), s.id(2), s.id(3));
        let number = s.number();
        let revision = s.head.clone().unwrap_or_default();
        let pending_reads = s.compile_reads;
        s.pipelines.push(FakePipeline {
            id: id.clone(),
            number,
            created_at: now,
            revision,
            trigger: "api",
            parameters,
            state: if pending_reads > 0 { "pending" } else { "created" },
            pending_reads,
            workflows: vec![FakeWorkflow {
                id: wf,
                name: workflow_name.clone(),
                status: "running".into(),
                created_at: now,
                stopped_at: None,
                jobs: vec![FakeJob {
                    id: job,
                    name: workflow_name,
                    approval: false,
                    status: "running".into(),
                    number: Some(number),
                    started_at: Some(now),
                    stopped_at: None,
                    approved_by: None,
                }],
            }],
        });
        let created = with(
            &fixture("trigger_pipeline.devguide.circleci-docs.json"),
            json!({ "id": id, "number": number, "state": "pending", "created_at": rfc3339(now) }),
        );
        Reply { status: 201, body: created }
    }

    fn list_pipelines(&self, request: &Request) -> Reply {
        let query: BTreeMap<String, String> = request.url.query_pairs().into_owned().collect();
        if query.get("branch").map(String::as_str) != Some("main") {
            return Reply::ok(page(json!([]), None));
        }
        let offset: usize = query.get("page-token").and_then(|t| t.parse().ok()).unwrap_or(0);
        let s = self.lock();
        let newest_first: Vec<&FakePipeline> = s.pipelines.iter().rev().collect();
        let items: Vec<Value> = newest_first.iter().skip(offset).take(s.page_size).map(|p| pipeline_json(p)).collect();
        let next = (offset + s.page_size < newest_first.len()).then(|| (offset + s.page_size).to_string());
        Reply::ok(page(json!(items), next.as_deref()))
    }

    fn get_pipeline(&self, id: &str) -> Reply {
        let mut s = self.lock();
        let Some(p) = s.pipelines.iter_mut().find(|p| p.id == id) else { return not_found("Pipeline not found.") };
        p.look();
        Reply::ok(pipeline_json(p))
    }

    fn pipeline_workflows(&self, id: &str) -> Reply {
        let s = self.lock();
        let Some(p) = s.pipelines.iter().find(|p| p.id == id) else { return not_found("Pipeline not found.") };
        if p.state == "pending" {
            return Reply::ok(page(json!([]), None));
        }
        let items: Vec<Value> = p.workflows.iter().map(|w| workflow_json(p, w)).collect();
        Reply::ok(page(json!(items), None))
    }

    fn values(&self, id: &str) -> Reply {
        let mut s = self.lock();
        let Some(p) = s.pipelines.iter_mut().find(|p| p.id == id) else { return not_found("Pipeline not found.") };
        p.look();
        // Pipeline values as CircleCI lists them: no parameters among them.
        Reply::ok(json!({
            "pipeline.id": p.id,
            "pipeline.number": p.number,
            "pipeline.project.git_url": "https://github.com/foo/bar",
            "pipeline.project.type": "github",
            "pipeline.git.branch": "main",
            "pipeline.git.revision": p.revision,
            "pipeline.trigger_source": p.trigger,
        }))
    }

    fn config(&self, id: &str) -> Reply {
        let mut s = self.lock();
        let Some(p) = s.pipelines.iter_mut().find(|p| p.id == id) else { return not_found("Pipeline not found.") };
        if p.look() == "pending" {
            return not_found("Pipeline config not found.");
        }
        // The README's config with the parameters substituted.
        let key = p.key().unwrap_or("");
        let compiled = format!(
            "version: 2\njobs:\n  deploy:\n    docker:\n    - image: cimg/base:current\n    environment:\n      ATLAS_KEY: {key}\n    steps:\n    - checkout\n    - run: ./deploy.sh\nworkflows:\n  version: 2\n"
        );
        Reply::ok(json!({
            "source": "version: 2.1\n# .circleci/config.yml\n",
            "compiled": compiled,
            "setup-config": "",
            "compiled-setup-config": "",
        }))
    }

    fn find_workflow(&self, id: &str) -> Option<(FakePipeline, FakeWorkflow)> {
        let s = self.lock();
        s.pipelines.iter().find_map(|p| p.workflows.iter().find(|w| w.id == id).map(|w| (p.clone(), w.clone())))
    }

    fn workflow(&self, id: &str) -> Reply {
        match self.find_workflow(id) {
            Some((p, w)) => Reply::ok(workflow_json(&p, &w)),
            None => not_found("Workflow not found."),
        }
    }

    fn jobs(&self, id: &str) -> Reply {
        match self.find_workflow(id) {
            Some((_, w)) => {
                let items: Vec<Value> = w.jobs.iter().map(job_json).collect();
                Reply::ok(page(json!(items), None))
            }
            None => not_found("Workflow not found."),
        }
    }

    fn approve_post(&self, workflow: &str, request_id: &str) -> Reply {
        let now = self.now();
        let mut s = self.lock();
        s.approve_posts.push((workflow.to_owned(), request_id.to_owned()));
        let job = s
            .pipelines
            .iter_mut()
            .flat_map(|p| p.workflows.iter_mut())
            .filter(|w| w.id == workflow)
            .flat_map(|w| w.jobs.iter_mut())
            .find(|j| j.id == request_id && j.approval && j.status == "on_hold");
        match job {
            Some(j) => {
                j.status = "success".into();
                j.approved_by = Some(USERS[0].0.into());
                j.stopped_at = Some(now);
                Reply { status: 202, body: fixture("pycircleci-mock.message_accepted_response.json") }
            }
            None => not_found("Approval request not found."),
        }
    }

    fn user(&self, id: &str) -> Reply {
        match USERS.iter().find(|(uid, _)| *uid == id) {
            Some((uid, login)) => Reply::ok(with(
                &fixture("get_me.devguide-placeholders.circleci-docs.json"),
                json!({ "id": uid, "login": login, "name": login }),
            )),
            None => not_found("User not found."),
        }
    }

    /// The fault hitting this request, if any (counted): one the [`Front`]
    /// plays when `relay` (asked by the front), any other kind else.
    fn take_fault(&self, method: &str, path: &str, body: &[u8], relay: bool) -> Option<FaultKind> {
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

    /// How many requests each fault hit so far.
    pub fn fault_hits(&self) -> Vec<usize> {
        self.lock().faults.iter().map(|f| f.hits).collect()
    }
}

impl Respond for FakeCircleCi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if request.method.as_str() == "POST" && request.url.path() == format!("/project/{SLUG}/pipeline") {
            // Every trigger that reached the server, whatever its fate.
            let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            self.lock().trigger_posts.push(body);
        }
        match self.take_fault(request.method.as_str(), request.url.path(), &request.body, false) {
            None => self.answer(request).template(),
            Some(FaultKind::Status { status, body, headers }) => {
                let mut t = ResponseTemplate::new(status).set_body_raw(body, "application/json");
                for (name, value) in headers {
                    t = t.insert_header(name.as_str(), value.as_str());
                }
                t
            }
            Some(FaultKind::Delay(delay)) => self.answer(request).template().set_delay(delay),
            Some(FaultKind::AfterWork(status)) => {
                let _ = self.answer(request);
                ResponseTemplate::new(status).set_body_raw("<html><body>502 Bad Gateway</body></html>", "text/html")
            }
            Some(FaultKind::Drop | FaultKind::CutShort) => unreachable!("faults of the Front"),
            Some(FaultKind::Truncate) => {
                // Answer normally, then cut the JSON in the middle.
                let full = self.answer(request);
                let body = full.body.to_string();
                let cut: String = body.chars().take(body.len() / 2).collect();
                ResponseTemplate::new(full.status).set_body_raw(cut, "application/json")
            }
        }
    }
}

/// An answer before it becomes a response (so a fault can still cut it).
struct Reply {
    status: u16,
    body: Value,
}

impl Reply {
    fn ok(body: Value) -> Self {
        Self { status: 200, body }
    }

    fn template(self) -> ResponseTemplate {
        ResponseTemplate::new(self.status).set_body_json(self.body)
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn not_found(message: &str) -> Reply {
    status(404, message)
}

fn status(code: u16, message: &str) -> Reply {
    Reply { status: code, body: json!({ "message": message }) }
}

/// A pipeline as `GET /pipeline/{id}` and the project listing show it.
fn pipeline_json(p: &FakePipeline) -> Value {
    let published = &fixture("pycircleci-mock.get_project_pipelines_response.json")[0];
    let actor = if p.trigger == "scheduled_pipeline" { "scheduler" } else { "alice" };
    with(
        published,
        json!({
            "id": p.id,
            "number": p.number,
            "state": p.state,
            "created_at": rfc3339(p.created_at),
            "updated_at": rfc3339(p.created_at),
            "trigger": { "type": p.trigger, "received_at": rfc3339(p.created_at),
                         "actor": { "login": actor, "avatar_url": null } },
            "vcs": { "revision": p.revision, "branch": "main",
                     "commit": { "subject": format!("commit {}", &p.revision[..p.revision.len().min(7)]), "body": "" } },
        }),
    )
}

fn workflow_json(p: &FakePipeline, w: &FakeWorkflow) -> Value {
    with(
        &first_item("pycircleci-mock.get_pipeline_workflow_response.json"),
        json!({
            "pipeline_id": p.id,
            "id": w.id,
            "name": w.name,
            "status": w.status,
            "pipeline_number": p.number,
            "created_at": rfc3339(w.created_at),
            "stopped_at": w.stopped_at.map(rfc3339),
        }),
    )
}

fn job_json(j: &FakeJob) -> Value {
    if j.approval {
        with(
            &fixture("approval_job.kesin11-capture.json"),
            json!({
                "id": j.id,
                "approval_request_id": j.id,
                "name": j.name,
                "project_slug": SLUG,
                "status": j.status,
                "job_number": null,
                "started_at": j.started_at.map(rfc3339),
                "stopped_at": j.stopped_at.map(rfc3339),
                "approved_by": j.approved_by,
            }),
        )
    } else {
        with(
            &first_item("pycircleci-mock.get_workflow_jobs_response.json"),
            json!({
                "id": j.id,
                "name": j.name,
                "status": j.status,
                "job_number": j.number,
                "started_at": j.started_at.map(rfc3339),
                "stopped_at": j.stopped_at.map(rfc3339),
            }),
        )
    }
}
