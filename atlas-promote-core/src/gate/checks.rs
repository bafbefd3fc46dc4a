//! G3: the recurring checks of the source stage.
//!
//! Only results for the candidate's commit that started at or after
//! `ready_at` count: a run that began before the candidate was ready in the
//! stage tested something else (an older deploy, unflushed data).

use chrono::{DateTime, Utc};

use super::minus;
use crate::Duration;
use crate::decision::{Blocker, Warning};
use crate::evidence::{CheckResult, CheckStatus, Evidence};
use crate::policy::{CheckSpec, Stage};

/// Apply G3 to every check of `stage`, blocking on blocking checks and
/// warning on advisory ones.
pub(super) fn evaluate(
    stage: &Stage,
    evidence: &Evidence,
    ready_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    blockers: &mut Vec<Blocker>,
    warnings: &mut Vec<Warning>,
) {
    for spec in &stage.checks {
        let runs = Runs::of(spec, evidence, ready_at);
        match runs.outcome(spec, now) {
            Some(outcome) if spec.blocking => blockers.push(outcome.blocker(spec, ready_at)),
            Some(outcome) => warnings.push(outcome.warning(spec)),
            None => {}
        }
        if let Some(started_at) = runs.rerunning() {
            warnings.push(Warning::CheckRerunning { check: spec.name.clone(), started_at });
        }
    }
}

/// What the counted results of one check add up to.
#[derive(Debug, Default)]
struct Runs<'e> {
    /// Whether any result counted.
    any: bool,
    /// L: the finished result with the latest finish time, and that time.
    deciding: Option<(&'e CheckResult, DateTime<Utc>)>,
    /// When the newest run that is still going started.
    newest_running: Option<DateTime<Utc>>,
}

impl<'e> Runs<'e> {
    fn of(spec: &CheckSpec, evidence: &'e Evidence, ready_at: Option<DateTime<Utc>>) -> Self {
        let sha = evidence.candidate.sha.as_str();
        let mut runs = Runs::default();
        for result in &evidence.checks {
            if result.name != spec.name || result.sha != sha || ready_at.is_some_and(|t| result.started_at < t) {
                continue;
            }
            runs.any = true;
            if result.status == CheckStatus::Running {
                runs.newest_running = runs.newest_running.max(Some(result.started_at));
                continue;
            }
            // A finished result without a finish time cannot have finished
            // before it started: dating it at its start is the earliest,
            // least favourable reading (it may turn out stale, never fresher).
            let finished_at = result.finished_at.unwrap_or(result.started_at);
            let replaces = match runs.deciding {
                None => true,
                Some((current, at)) => {
                    finished_at > at
                        || (finished_at == at
                            && current.status == CheckStatus::Passed
                            && result.status != CheckStatus::Passed)
                }
            };
            if replaces {
                runs.deciding = Some((result, finished_at));
            }
        }
        runs
    }

    /// When a run that is still going started after L finished, if one did.
    fn rerunning(&self) -> Option<DateTime<Utc>> {
        let (_, finished_at) = self.deciding?;
        self.newest_running.filter(|started| *started > finished_at)
    }

    /// Why the check does not hold, or `None` when it does.
    fn outcome(&self, spec: &CheckSpec, now: DateTime<Utc>) -> Option<Outcome> {
        if !self.any {
            return Some(Outcome::Missing);
        }
        let Some((result, finished_at)) = self.deciding else {
            // `any` without a deciding result: every counted run is still going.
            return self.newest_running.map(|started_at| Outcome::Running { started_at });
        };
        if result.status != CheckStatus::Passed {
            return Some(Outcome::Failed { status: result.status, finished_at });
        }
        let max_age = spec.max_age?;
        let oldest_fresh = minus(now, max_age)?;
        (finished_at < oldest_fresh).then_some(Outcome::Stale { finished_at, max_age })
    }
}

/// How a check fails G3.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Missing,
    Running { started_at: DateTime<Utc> },
    Failed { status: CheckStatus, finished_at: DateTime<Utc> },
    Stale { finished_at: DateTime<Utc>, max_age: Duration },
}

impl Outcome {
    fn blocker(self, spec: &CheckSpec, ready_at: Option<DateTime<Utc>>) -> Blocker {
        let check = spec.name.clone();
        match self {
            Self::Missing => Blocker::CheckMissing { check, since: ready_at },
            Self::Running { started_at } => Blocker::CheckRunning { check, started_at },
            Self::Failed { status, finished_at } => Blocker::CheckFailed { check, status, finished_at },
            Self::Stale { finished_at, max_age } => Blocker::CheckStale { check, finished_at, max_age },
        }
    }

    fn warning(self, spec: &CheckSpec) -> Warning {
        let check = spec.name.clone();
        match self {
            Self::Missing => Warning::AdvisoryCheckMissing { check },
            Self::Running { .. } => Warning::AdvisoryCheckRunning { check },
            Self::Failed { status, finished_at } => Warning::AdvisoryCheckFailed { check, status, finished_at },
            Self::Stale { finished_at, .. } => Warning::AdvisoryCheckStale { check, finished_at },
        }
    }
}
