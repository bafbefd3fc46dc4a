//! Writing a custom CI adapter: a `CiProvider` for a CI system atlas-promote
//! does not ship — here, one that runs a local command per deploy or flush.
//!
//! Run it with `cargo run --example custom_adapter`; its test
//! (`cargo test --example custom_adapter`) passes the core's conformance
//! suite, which is how any adapter proves it keeps the trait's contract.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use atlas_promote::chrono::{DateTime, Utc};
use atlas_promote::{CiProvider, Error, IdempotencyKey, Result, Run, RunId, RunRequest, RunStatus, async_trait};

/// Runs `sh -c <command>` for every run, with the request in environment
/// variables: `ATLAS_KEY`, `ATLAS_KIND`, `ATLAS_STAGE`, `ATLAS_SHA`,
/// `ATLAS_WORKFLOW` and `ATLAS_PARAM_<NAME>` for each workflow parameter.
///
/// Runs are kept in memory; an adapter for a real system asks that system
/// for the run carrying the key (a pipeline parameter, a tag, a run name),
/// so that `find` still works after the engine restarts.
#[derive(Debug, Clone)]
struct CommandCi {
    command: String,
    runs: Arc<Mutex<BTreeMap<RunId, LocalRun>>>,
}

#[derive(Debug)]
struct LocalRun {
    key: IdempotencyKey,
    child: Option<Child>,
    status: RunStatus,
    finished_at: Option<DateTime<Utc>>,
}

impl CommandCi {
    fn new(command: impl Into<String>) -> Self {
        Self { command: command.into(), runs: Arc::default() }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, BTreeMap<RunId, LocalRun>> {
        self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn failure(operation: &str, source: std::io::Error) -> Error {
        Error::backend("command-ci", operation, false, source)
    }
}

impl LocalRun {
    /// Look at the child process and record how it ended.
    fn refresh(&mut self) -> std::io::Result<()> {
        if let Some(child) = &mut self.child
            && let Some(exit) = child.try_wait()?
        {
            self.status = if exit.success() { RunStatus::Succeeded } else { RunStatus::Failed };
            self.finished_at = Some(Utc::now());
            self.child = None;
        }
        Ok(())
    }

    fn report(&self, id: &RunId) -> Run {
        Run {
            id: id.clone(),
            key: self.key.clone(),
            status: self.status.clone(),
            url: None,
            finished_at: self.finished_at,
        }
    }
}

#[async_trait]
impl CiProvider for CommandCi {
    async fn trigger(&self, request: &RunRequest) -> Result<Run> {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(&self.command)
            .env("ATLAS_KEY", request.key.as_str())
            .env("ATLAS_KIND", request.kind.to_string())
            .env("ATLAS_STAGE", &request.stage)
            .env("ATLAS_SHA", &request.candidate.sha)
            .env("ATLAS_WORKFLOW", &request.workflow)
            .stdin(Stdio::null());
        for (name, value) in &request.parameters {
            command.env(format!("ATLAS_PARAM_{}", name.to_uppercase().replace('-', "_")), value);
        }
        let child = command.spawn().map_err(|e| Self::failure("trigger", e))?;
        let mut runs = self.runs();
        let id = RunId(format!("local-{}", runs.len() + 1));
        let run =
            LocalRun { key: request.key.clone(), child: Some(child), status: RunStatus::Running, finished_at: None };
        let report = run.report(&id);
        runs.insert(id, run);
        Ok(report)
    }

    async fn find(&self, key: &IdempotencyKey) -> Result<Option<Run>> {
        let mut runs = self.runs();
        for (id, run) in runs.iter_mut() {
            if run.key == *key {
                run.refresh().map_err(|e| Self::failure("find", e))?;
                return Ok(Some(run.report(id)));
            }
        }
        Ok(None)
    }

    async fn status(&self, id: &RunId) -> Result<Run> {
        let mut runs = self.runs();
        let run = runs
            .get_mut(id)
            .ok_or_else(|| Error::NotFound { backend: "command-ci".into(), what: format!("run {id}") })?;
        run.refresh().map_err(|e| Self::failure("status", e))?;
        Ok(run.report(id))
    }

    async fn cancel(&self, id: &RunId) -> Result<()> {
        let mut runs = self.runs();
        let run = runs
            .get_mut(id)
            .ok_or_else(|| Error::NotFound { backend: "command-ci".into(), what: format!("run {id}") })?;
        if let Some(mut child) = run.child.take() {
            // Killing a process that already exited is fine: the run is finished either way.
            let _ = child.kill();
            let _ = child.wait();
            run.status = RunStatus::Cancelled;
            run.finished_at = Some(Utc::now());
        }
        Ok(())
    }
}

fn sample_request() -> RunRequest {
    use atlas_promote::{Candidate, RunKind};
    RunRequest {
        key: IdempotencyKey::new("9fceb02", "dev", RunKind::Deploy, 1),
        kind: RunKind::Deploy,
        stage: "dev".into(),
        candidate: Candidate::trunk("9fceb02", ["alice"]),
        workflow: "deploy".into(),
        parameters: BTreeMap::from([("environment".into(), "dev".into())]),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let ci = CommandCi::new("echo \"deploying $ATLAS_SHA to $ATLAS_PARAM_ENVIRONMENT ($ATLAS_KEY)\"");
    let run = ci.trigger(&sample_request()).await?;
    println!("triggered {} for key {}", run.id, run.key);
    let mut run = ci.status(&run.id).await?;
    while !run.status.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        run = ci.status(&run.id).await?;
    }
    println!("run {} {}", run.id, run.status);
    let found = ci.find(&run.key).await?.map(|r| r.id);
    println!("found by its key after the fact: {found:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn command_ci_keeps_the_ci_provider_contract() {
        let ci = CommandCi::new("sleep 0.2");
        atlas_promote::testkit::ci_provider_suite(&ci, sample_request()).await;
    }

    #[tokio::test]
    async fn a_failing_command_is_a_failed_run() {
        let ci = CommandCi::new("exit 3");
        let run = ci.trigger(&sample_request()).await.unwrap();
        let mut status = ci.status(&run.id).await.unwrap();
        for _ in 0..100 {
            if status.status.is_finished() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            status = ci.status(&run.id).await.unwrap();
        }
        assert_eq!(status.status, RunStatus::Failed);
    }
}
