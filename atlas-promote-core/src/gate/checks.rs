//! G3: the recurring checks of the source stage.
//!
//! Only results for the candidate's commit that started at or after
//! `ready_at` count: a run that began before the candidate was ready in the
//! stage tested something else (an older deploy, unflushed data).

use chrono::{DateTime, Utc};

use super::scratch::Scratch;
use super::{longer_than, same};
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
    if stage.checks.is_empty() {
        return;
    }
    let mut each = Scratch::<Runs<'_>, 8>::filled(stage.checks.len(), Runs::NONE);
    Runs::count_each(&stage.checks, evidence, ready_at, &mut each);
    for (spec, runs) in stage.checks.iter().zip(each.iter()) {
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
#[derive(Debug, Clone, Copy)]
struct Runs<'e> {
    /// Whether any result counted.
    any: bool,
    /// L: the finished result with the latest finish time.
    deciding: Option<&'e CheckResult>,
    /// When L finished (meaningless without L).
    finished_at: DateTime<Utc>,
    /// When the newest run that is still going started (`MIN_UTC`: none).
    newest_running: DateTime<Utc>,
}

impl<'e> Runs<'e> {
    const NONE: Self = Self {
        any: false,
        deciding: None,
        finished_at: DateTime::<Utc>::MIN_UTC,
        newest_running: DateTime::<Utc>::MIN_UTC,
    };

    /// Count the runs of each of `specs` into `slots`, in one pass over the results.
    fn count_each(specs: &[CheckSpec], evidence: &'e Evidence, ready_at: Option<DateTime<Utc>>, slots: &mut [Self]) {
        let sha = evidence.candidate.sha.as_str();
        let ready_at = ready_at.unwrap_or(DateTime::<Utc>::MIN_UTC);
        for result in &evidence.checks {
            if result.started_at < ready_at {
                continue;
            }
            let Some(check) = specs.iter().position(|spec| same(&spec.name, &result.name)) else { continue };
            if same(&result.sha, sha)
                && let Some(runs) = slots.get_mut(check)
            {
                runs.count(result);
            }
        }
        // A check listed twice has the same runs as its first listing.
        for check in 1..specs.len().min(slots.len()) {
            if let Some(first) = specs[..check].iter().position(|spec| spec.name == specs[check].name) {
                slots[check] = slots[first];
            }
        }
    }

    fn count(&mut self, result: &'e CheckResult) {
        self.any = true;
        if result.status == CheckStatus::Running {
            self.newest_running = self.newest_running.max(result.started_at);
            return;
        }
        // A finished result without a finish time cannot have finished
        // before it started: dating it at its start is the earliest,
        // least favourable reading (it may turn out stale, never fresher).
        let finished_at = result.finished_at.unwrap_or(result.started_at);
        let replaces = match self.deciding {
            None => true,
            Some(current) => {
                finished_at > self.finished_at
                    || (finished_at == self.finished_at
                        && current.status == CheckStatus::Passed
                        && result.status != CheckStatus::Passed)
            }
        };
        if replaces {
            self.deciding = Some(result);
            self.finished_at = finished_at;
        }
    }

    /// When a run that is still going started after L finished, if one did.
    fn rerunning(&self) -> Option<DateTime<Utc>> {
        (self.deciding.is_some() && self.newest_running > self.finished_at).then_some(self.newest_running)
    }

    /// Why the check does not hold, or `None` when it does.
    fn outcome(&self, spec: &CheckSpec, now: DateTime<Utc>) -> Option<Outcome> {
        if !self.any {
            return Some(Outcome::Missing);
        }
        let Some(result) = self.deciding else {
            // `any` without a deciding result: every counted run is still going.
            return Some(Outcome::Running { started_at: self.newest_running });
        };
        let finished_at = self.finished_at;
        if result.status != CheckStatus::Passed {
            return Some(Outcome::Failed { status: result.status, finished_at });
        }
        let max_age = spec.max_age?;
        longer_than(finished_at, now, max_age).then_some(Outcome::Stale { finished_at, max_age })
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
