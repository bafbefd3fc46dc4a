use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{lock, not_found};
use crate::backend::{CiProvider, Clock, SystemClock};
use crate::error::{Error, Result};
use crate::run::{IdempotencyKey, Run, RunId, RunKind, RunRequest, RunStatus};

const BACKEND: &str = "memory ci";

/// How a scripted run of [`MemoryCi`] ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    /// It succeeds.
    #[default]
    Succeed,
    /// It fails.
    Fail,
    /// It starts and never finishes (until completed or cancelled by hand).
    Hang,
}

/// A CI system in memory, scriptable for tests.
///
/// [`trigger`](CiProvider::trigger) records the request and creates a run
/// `Pending` with the id `mem-1`, `mem-2`, …. The run then stays where it is
/// until the test moves it with [`complete`](Self::complete) or
/// [`finish_all`](Self::finish_all), unless auto-completion is on
/// ([`with_auto_complete`](Self::with_auto_complete)): then the next
/// [`status`](CiProvider::status) call moves it to its scripted
/// [`Outcome`] (a hanging run to `Running`), finished at the clock's time.
///
/// A run's outcome is looked up when it finishes, so changing the script
/// affects runs already triggered: the per-(stage, kind) outcome set with
/// [`set_outcome`](Self::set_outcome), else the default
/// ([`Outcome::Succeed`] unless [`set_default_outcome`](Self::set_default_outcome) changed it).
///
/// It does not deduplicate triggers by key (the contract leaves that to the
/// caller): [`requests`](Self::requests) shows every trigger, so tests can
/// assert that no key was triggered twice.
#[derive(Clone)]
pub struct MemoryCi {
    state: Arc<Mutex<CiState>>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug, Default)]
struct CiState {
    auto_complete: bool,
    default_outcome: Outcome,
    outcomes: HashMap<(String, RunKind), Outcome>,
    requests: Vec<RunRequest>,
    runs: BTreeMap<u64, MemoryRun>,
    /// The latest run started with each key, so `find` does not scan every run.
    by_key: HashMap<IdempotencyKey, u64>,
    next_id: u64,
}

#[derive(Debug, Clone)]
struct MemoryRun {
    run: Run,
    stage: String,
    kind: RunKind,
}

impl fmt::Debug for MemoryCi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("MemoryCi")
            .field("runs", &state.runs.len())
            .field("auto_complete", &state.auto_complete)
            .field("default_outcome", &state.default_outcome)
            .finish_non_exhaustive()
    }
}

impl Default for MemoryCi {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCi {
    /// A CI with no runs, auto-completion off, every run succeeding, timed by the system clock.
    pub fn new() -> Self {
        Self { state: Arc::default(), clock: Arc::new(SystemClock) }
    }

    /// Use `clock` for the finish times of auto-completed and cancelled runs
    /// (e.g. a [`ManualClock`](crate::ManualClock) shared with the engine).
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Whether a run moves to its outcome on the next `status` call.
    pub fn with_auto_complete(self, on: bool) -> Self {
        self.set_auto_complete(on);
        self
    }

    /// Turn auto-completion on or off (see the type's docs).
    pub fn set_auto_complete(&self, on: bool) {
        lock(&self.state).auto_complete = on;
    }

    /// The outcome of runs with no per-(stage, kind) outcome.
    pub fn set_default_outcome(&self, outcome: Outcome) {
        lock(&self.state).default_outcome = outcome;
    }

    /// The outcome of `kind` runs in `stage`.
    pub fn set_outcome(&self, stage: &str, kind: RunKind, outcome: Outcome) {
        lock(&self.state).outcomes.insert((stage.to_owned(), kind), outcome);
    }

    /// Finish `run` with `status` at `at`, as if the CI system reported it.
    ///
    /// A run that already finished keeps its status (runs never go back from
    /// a finished status): asking for another one is [`Error::Invalid`].
    /// An unknown run is [`Error::NotFound`].
    pub fn complete(&self, run: &RunId, status: RunStatus, at: DateTime<Utc>) -> Result<Run> {
        let mut state = lock(&self.state);
        let entry = find_run(&mut state, run)?;
        if entry.run.status.is_finished() {
            if entry.run.status == status {
                return Ok(entry.run.clone());
            }
            return Err(Error::Invalid {
                what: format!("completion of run {run}"),
                message: format!("it already finished as {}", entry.run.status),
            });
        }
        entry.run.finished_at = status.is_finished().then_some(at);
        entry.run.status = status;
        Ok(entry.run.clone())
    }

    /// Move every unfinished run to its scripted outcome, finished at `at`
    /// (a hanging run to `Running`). Returns the runs that changed.
    pub fn finish_all(&self, at: DateTime<Utc>) -> Vec<Run> {
        let mut state = lock(&self.state);
        let script = Script::of(&state);
        let mut changed = Vec::new();
        for entry in state.runs.values_mut() {
            if script.settle(entry, at) {
                changed.push(entry.run.clone());
            }
        }
        changed
    }

    /// Every request triggered so far, in order (duplicates included).
    pub fn requests(&self) -> Vec<RunRequest> {
        lock(&self.state).requests.clone()
    }

    /// How many times `trigger` was called.
    pub fn trigger_count(&self) -> usize {
        lock(&self.state).requests.len()
    }

    /// Every run, in the order triggered.
    pub fn runs(&self) -> Vec<Run> {
        lock(&self.state).runs.values().map(|r| r.run.clone()).collect()
    }
}

/// The outcomes in force, copied out so runs can be changed while reading them.
struct Script {
    default_outcome: Outcome,
    outcomes: HashMap<(String, RunKind), Outcome>,
}

impl Script {
    fn of(state: &CiState) -> Self {
        Self { default_outcome: state.default_outcome, outcomes: state.outcomes.clone() }
    }

    /// Move an unfinished run to its outcome; whether it changed.
    fn settle(&self, entry: &mut MemoryRun, at: DateTime<Utc>) -> bool {
        if entry.run.status.is_finished() {
            return false;
        }
        let outcome = self.outcomes.get(&(entry.stage.clone(), entry.kind)).copied().unwrap_or(self.default_outcome);
        let status = match outcome {
            Outcome::Succeed => RunStatus::Succeeded,
            Outcome::Fail => RunStatus::Failed,
            Outcome::Hang => RunStatus::Running,
        };
        if entry.run.status == status {
            return false;
        }
        entry.run.finished_at = status.is_finished().then_some(at);
        entry.run.status = status;
        true
    }
}

fn parse_id(run: &RunId) -> Option<u64> {
    let n: u64 = run.0.strip_prefix("mem-")?.parse().ok()?;
    // `mem-01` is not `mem-1`.
    (format!("mem-{n}") == run.0).then_some(n)
}

fn find_run<'a>(state: &'a mut CiState, run: &RunId) -> Result<&'a mut MemoryRun> {
    parse_id(run).and_then(|n| state.runs.get_mut(&n)).ok_or_else(|| not_found(BACKEND, format!("run {run}")))
}

#[async_trait]
impl CiProvider for MemoryCi {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        let mut state = lock(&self.state);
        state.next_id += 1;
        let n = state.next_id;
        let run = Run {
            id: RunId(format!("mem-{n}")),
            key: request.key.clone(),
            status: RunStatus::Pending,
            url: None,
            finished_at: None,
        };
        state.requests.push(request.clone());
        state.runs.insert(n, MemoryRun { run: run.clone(), stage: request.stage.clone(), kind: request.kind });
        state.by_key.insert(request.key.clone(), n);
        Ok(run)
    }

    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        let state = lock(&self.state);
        Ok(state.by_key.get(key).and_then(|n| state.runs.get(n)).map(|r| r.run.clone()))
    }

    async fn status(&self, run: &RunId) -> Result<Run> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let script = state.auto_complete.then(|| Script::of(&state));
        let entry = find_run(&mut state, run)?;
        if let Some(script) = script {
            script.settle(entry, now);
        }
        Ok(entry.run.clone())
    }

    async fn cancel(&self, run: &RunId) -> Result<()> {
        let now = self.clock.now();
        let mut state = lock(&self.state);
        let entry = find_run(&mut state, run)?;
        if !entry.run.status.is_finished() {
            entry.run.status = RunStatus::Cancelled;
            entry.run.finished_at = Some(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Candidate, ManualClock};

    fn request(stage: &str, kind: RunKind) -> RunRequest {
        RunRequest {
            key: IdempotencyKey::new("9fceb02", stage, kind, 1),
            kind,
            stage: stage.into(),
            candidate: Candidate::trunk("9fceb02", ["alice"]),
            workflow: "deploy".into(),
            parameters: BTreeMap::new(),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn runs_stay_pending_until_completed_by_hand() {
        let ci = MemoryCi::new();
        let run = ci.trigger(&request("dev", RunKind::Deploy)).await.unwrap();
        assert_eq!((run.id.0.as_str(), &run.status), ("mem-1", &RunStatus::Pending));
        assert_eq!(ci.status(&run.id).await.unwrap().status, RunStatus::Pending);
        let done = ci.complete(&run.id, RunStatus::Succeeded, at("2026-05-04T08:00:00Z")).unwrap();
        assert_eq!(done.finished_at, Some(at("2026-05-04T08:00:00Z")));
        assert_eq!(ci.status(&run.id).await.unwrap(), done);
        let err = ci.complete(&run.id, RunStatus::Failed, at("2026-05-04T09:00:00Z")).unwrap_err();
        assert!(matches!(err, Error::Invalid { .. }), "{err}");
    }

    #[tokio::test]
    async fn auto_complete_follows_the_script_per_stage_and_kind() {
        let clock = ManualClock::new(at("2026-05-04T08:00:00Z"));
        let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
        ci.set_outcome("prod", RunKind::Flush, Outcome::Fail);
        ci.set_outcome("staging", RunKind::Deploy, Outcome::Hang);
        let ok = ci.trigger(&request("prod", RunKind::Deploy)).await.unwrap();
        let bad = ci.trigger(&request("prod", RunKind::Flush)).await.unwrap();
        let hung = ci.trigger(&request("staging", RunKind::Deploy)).await.unwrap();
        clock.advance(chrono::TimeDelta::minutes(5));
        let ok = ci.status(&ok.id).await.unwrap();
        assert_eq!((ok.status, ok.finished_at), (RunStatus::Succeeded, Some(at("2026-05-04T08:05:00Z"))));
        assert_eq!(ci.status(&bad.id).await.unwrap().status, RunStatus::Failed);
        assert_eq!(ci.status(&hung.id).await.unwrap().status, RunStatus::Running);
        ci.cancel(&hung.id).await.unwrap();
        let hung = ci.status(&hung.id).await.unwrap();
        assert_eq!((hung.status, hung.finished_at), (RunStatus::Cancelled, Some(at("2026-05-04T08:05:00Z"))));
    }

    #[tokio::test]
    async fn finish_all_settles_every_unfinished_run() {
        let ci = MemoryCi::new();
        ci.set_default_outcome(Outcome::Fail);
        let a = ci.trigger(&request("dev", RunKind::Deploy)).await.unwrap();
        let b = ci.trigger(&request("dev", RunKind::Flush)).await.unwrap();
        ci.cancel(&b.id).await.unwrap();
        let changed = ci.finish_all(at("2026-05-04T08:00:00Z"));
        assert_eq!(changed.len(), 1);
        assert_eq!((changed[0].id.clone(), changed[0].status.clone()), (a.id, RunStatus::Failed));
        assert_eq!(ci.runs()[1].status, RunStatus::Cancelled);
    }

    #[tokio::test]
    async fn every_trigger_is_recorded_and_find_returns_the_latest() {
        let ci = MemoryCi::new();
        let req = request("dev", RunKind::Deploy);
        ci.trigger(&req).await.unwrap();
        let second = ci.trigger(&req).await.unwrap();
        assert_eq!(ci.trigger_count(), 2);
        assert_eq!(ci.requests(), [req.clone(), req.clone()]);
        assert_eq!(ci.find(&req.key).await.unwrap().unwrap().id, second.id);
        assert_eq!(ci.find(&request("prod", RunKind::Deploy).key).await.unwrap(), None);
    }

    #[tokio::test]
    async fn unknown_runs_are_not_found() {
        let ci = MemoryCi::new();
        ci.trigger(&request("dev", RunKind::Deploy)).await.unwrap();
        for id in ["mem-7", "nonsense", "mem-", "mem-01"] {
            let id = RunId(id.into());
            assert!(matches!(ci.status(&id).await, Err(Error::NotFound { .. })));
            assert!(matches!(ci.cancel(&id).await, Err(Error::NotFound { .. })));
        }
    }
}
