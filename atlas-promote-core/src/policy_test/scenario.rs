//! Running a test file's scenario through the real engine, on the testkit's
//! in-memory backends and a manual clock.

use chrono::DateTime;
use chrono::Utc;

use super::{Mismatch, Outcome, Scenario, ScenarioExpect, Step};
use crate::decision::Decision;
use crate::engine::Tick;
use crate::evidence::{ApprovalDecision, CheckStatus};
use crate::memory::{MemoryStore, Outcome as RunOutcome};
use crate::policy::Policy;
use crate::testkit;
use crate::{RunKind, policy_test::CheckOutcome, policy_test::DeployOutcome};

/// At most this many wake-ups of the engine within one `advance`.
const WAKE_LIMIT: usize = 1_000;

/// Run `scenario` against `policy`: each step in order, stopping at the first that fails.
pub async fn run_scenario(policy: &Policy, scenario: &Scenario) -> Outcome {
    let mut run = Run::new(policy, scenario);
    let failure = run.steps(&scenario.steps).await;
    Outcome { name: scenario.name.clone(), failure, decision: None }
}

struct Run {
    s: testkit::Scenario,
    decisions: Vec<Decision>,
    last_merged: Option<String>,
    /// How much of the timeline the previous `expect` step had seen.
    seen: usize,
}

impl Run {
    fn new(policy: &Policy, scenario: &Scenario) -> Self {
        let mut s =
            testkit::Scenario::with_store(policy.clone(), std::sync::Arc::new(MemoryStore::new()), scenario.start);
        for (person, roles) in &scenario.people {
            let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
            s.person(person, &roles);
        }
        Self { s, decisions: Vec::new(), last_merged: None, seen: 0 }
    }

    async fn steps(&mut self, steps: &[Step]) -> Option<Mismatch> {
        for (i, step) in steps.iter().enumerate() {
            let result = match step {
                Step::Expect(expect) => self.expect(expect).await,
                other => match self.act(other).await {
                    Ok(()) => self.settle().await,
                    Err(e) => Err(e),
                },
            };
            if let Err((expected, got)) = result {
                return Some(Mismatch { step: Some(i), expected, got });
            }
        }
        None
    }

    async fn act(&mut self, step: &Step) -> Result<(), (String, String)> {
        let failed = |what: String| move |e: crate::Error| (what, refusal(&e));
        match step {
            Step::Merge { sha, author, files } => {
                let files: Vec<&str> = files.iter().map(String::as_str).collect();
                self.s.merge(sha, author, &files).await.map_err(failed(format!("{author} merges {sha}")))?;
                self.last_merged = Some(sha.clone());
            }
            Step::Deploys { outcome, stage } => {
                let outcome = match outcome {
                    DeployOutcome::Succeed => RunOutcome::Succeed,
                    DeployOutcome::Fail => RunOutcome::Fail,
                    DeployOutcome::Hang => RunOutcome::Hang,
                };
                let stages: Vec<String> = match stage {
                    Some(stage) => vec![stage.clone()],
                    None => {
                        self.s.policy.stages.iter().filter(|s| s.is_environment()).map(|s| s.name.clone()).collect()
                    }
                };
                for stage in &stages {
                    self.s.ci.set_outcome(stage, RunKind::Deploy, outcome);
                }
            }
            Step::Checks { outcome, stage, name, sha } => {
                let status = match outcome {
                    CheckOutcome::Pass => CheckStatus::Passed,
                    CheckOutcome::Fail => CheckStatus::Failed,
                };
                let Some(sha) = sha.clone().or_else(|| self.last_merged.clone()) else {
                    return Err(("a commit to run the checks on".into(), "nothing merged yet, and no `sha`".into()));
                };
                match name {
                    Some(name) => self.s.report(&sha, name, status, chrono::TimeDelta::minutes(40)),
                    None => self.s.nightly(stage, &sha, status),
                };
            }
            Step::Approval { decision, sha, by, into } => {
                let what = format!("{by} to {decision} {sha} into {into}");
                let done = match decision {
                    ApprovalDecision::Approve => self.s.approve(by, into, sha).await,
                    ApprovalDecision::Reject => self.s.reject(by, into, sha).await,
                    ApprovalDecision::Withdraw => self.s.withdraw(by, into, sha).await,
                };
                done.map_err(failed(what))?;
            }
            Step::Hold { stage, by, reason } => {
                self.s.engine.hold(stage, by, reason).await.map_err(failed(format!("{by} to hold {stage}")))?;
            }
            Step::Release { stage, by } => {
                self.s.engine.release(stage, by).await.map_err(failed(format!("{by} to release {stage}")))?;
            }
            Step::Override { sha, by, bypass, reason } => {
                let bypass: Vec<&str> = bypass.iter().map(String::as_str).collect();
                let what = format!("{by} to override the gate of {sha}");
                let tick = self.s.engine.override_gate(sha, by, &bypass, reason).await.map_err(failed(what))?;
                self.saw(std::slice::from_ref(&tick));
            }
            Step::Advance(by) => return self.advance_to(self.s.now() + by.to_chrono()).await,
            Step::Expect(_) => {}
        }
        Ok(())
    }

    /// Run the engine until nothing more happens now.
    async fn settle(&mut self) -> Result<(), (String, String)> {
        self.tick().await.map(|_| ())
    }

    async fn tick(&mut self) -> Result<Option<DateTime<Utc>>, (String, String)> {
        let ticks = self.s.run_until_idle().await.map_err(|e| ("the engine to run".to_owned(), e.to_string()))?;
        self.saw(&ticks);
        // A wake-up that is not in the future was due during these ticks, which saw to it.
        let now = self.s.now();
        Ok(ticks.iter().filter_map(|t| t.next_wake).filter(|w| *w > now).min())
    }

    /// Move the clock to `target`, waking the engine whenever it asked to on the way.
    async fn advance_to(&mut self, target: DateTime<Utc>) -> Result<(), (String, String)> {
        for _ in 0..WAKE_LIMIT {
            match self.tick().await? {
                Some(wake) if wake > self.s.now() && wake < target => {
                    self.s.at(wake);
                }
                _ => break,
            }
        }
        self.s.at(target);
        self.settle().await
    }

    fn saw(&mut self, ticks: &[Tick]) {
        self.decisions.extend(ticks.iter().flat_map(|t| t.decisions.iter().cloned()));
    }

    async fn expect(&mut self, expect: &ScenarioExpect) -> Result<(), (String, String)> {
        let result = match expect {
            ScenarioExpect::State { sha, state } => {
                let got = match self.s.state(sha).await {
                    Ok(got) => got.to_string(),
                    Err(e) => e.to_string(),
                };
                if got == *state { Ok(()) } else { Err((format!("{sha} {state}"), format!("{sha} {got}"))) }
            }
            ScenarioExpect::Decision { sha, to, expect } => {
                let latest =
                    self.decisions.iter().rev().find(|d| d.sha == *sha && to.as_ref().is_none_or(|to| d.to == *to));
                let into = to.as_ref().map(|to| format!(" into {to}")).unwrap_or_default();
                match latest {
                    None => Err((
                        format!("a decision about {sha}{into}: {}", expect.sentence()),
                        format!("no decision about {sha}{into} yet"),
                    )),
                    Some(decision) => match expect.mismatch(decision) {
                        None => Ok(()),
                        Some(got) => Err((expect.sentence(), got)),
                    },
                }
            }
            ScenarioExpect::Notification(text) => {
                let since = self.s.timeline().get(self.seen..).unwrap_or_default();
                if since.iter().any(|line| line.contains(text.as_str())) {
                    Ok(())
                } else {
                    let got = if since.is_empty() { "nothing happened".to_owned() } else { since.join("\n") };
                    Err((format!("a notification saying {text:?}"), got))
                }
            }
        };
        self.seen = self.s.timeline().len();
        result
    }
}

/// An engine's refusal in its own words, anything else as it displays.
fn refusal(e: &crate::Error) -> String {
    match e {
        crate::Error::Refused { reason } => format!("refused: {reason}"),
        other => other.to_string(),
    }
}
