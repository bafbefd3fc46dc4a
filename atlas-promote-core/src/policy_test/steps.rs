//! A scenario's steps: one action each, as a test file writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ExpectedVerdict, did_you_mean};
use crate::Duration;
use crate::evidence::ApprovalDecision;
use crate::file::FieldPath;
use crate::policy::Policy;

/// How the deploys of a `deploys` step end, from then on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployOutcome {
    /// They succeed (the default).
    Succeed,
    /// They fail.
    Fail,
    /// They start and never finish.
    Hang,
}

/// How the check runs of a `checks` step end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    /// They pass.
    Pass,
    /// They fail.
    Fail,
}

/// One step of a scenario. After each step but `expect` the engine runs
/// until nothing more happens at that instant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// `{ merge = SHA, author = PERSON, files = [...] }`: a commit lands on trunk.
    Merge {
        /// The commit.
        sha: String,
        /// Who wrote it.
        author: String,
        /// The files it changes.
        files: Vec<String>,
    },
    /// `{ deploys = "succeed" | "fail" | "hang", stage = STAGE }`: how deploys
    /// (into `stage`, or every environment) end from now on.
    Deploys {
        /// How they end.
        outcome: DeployOutcome,
        /// The stage; `None`: every environment.
        stage: Option<String>,
    },
    /// `{ checks = "pass" | "fail", stage = STAGE, name = CHECK, sha = SHA }`:
    /// a run of the stage's checks (or of one) on a commit (the last one
    /// merged, by default), taking 40 minutes of the clock.
    Checks {
        /// How they end.
        outcome: CheckOutcome,
        /// The stage whose checks run.
        stage: String,
        /// Only this check; `None`: every check of the stage.
        name: Option<String>,
        /// The commit; `None`: the last one merged.
        sha: Option<String>,
    },
    /// `{ approve | reject | withdraw = SHA, by = PERSON, into = STAGE }`.
    Approval {
        /// Approve, reject or withdraw.
        decision: ApprovalDecision,
        /// The commit.
        sha: String,
        /// Who decides.
        by: String,
        /// The stage it would enter.
        into: String,
    },
    /// `{ hold = STAGE, by = PERSON, reason = TEXT }`: stop the line into a stage.
    Hold {
        /// The stage.
        stage: String,
        /// Who stops it.
        by: String,
        /// Why.
        reason: String,
    },
    /// `{ release = STAGE, by = PERSON }`: lift a hold.
    Release {
        /// The stage.
        stage: String,
        /// Who lifts it.
        by: String,
    },
    /// `{ override = SHA, by = PERSON, bypass = [KIND, ...], reason = TEXT }`.
    Override {
        /// The commit.
        sha: String,
        /// Who overrides.
        by: String,
        /// The blocker kinds bypassed.
        bypass: Vec<String>,
        /// Why.
        reason: String,
    },
    /// `{ advance = "1h" }`: let time pass; the engine wakes whenever it asked to on the way.
    Advance(Duration),
    /// `{ expect = { ... } }`: what must hold now.
    Expect(ScenarioExpect),
}

/// What a scenario's `expect` step checks.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScenarioExpect {
    /// `{ sha = SHA, state = "live in staging" }`: where a candidate is, as its state reads.
    State {
        /// The commit.
        sha: String,
        /// The state as it displays.
        state: String,
    },
    /// `{ sha = SHA, to = STAGE, verdict = ..., blockers = [...], until = ... }`:
    /// the latest decision about the candidate (into `to`, when given).
    Decision {
        /// The commit.
        sha: String,
        /// The gate's target stage; `None`: any.
        to: Option<String>,
        /// What the decision must be.
        expect: super::Expect,
    },
    /// `{ notification = TEXT }`: something since the previous `expect` step
    /// (an alert, an approval request, a promotion, a blocked gate) says this.
    Notification(String),
}

/// A step as written: every key any step may have.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStep {
    merge: Option<String>,
    deploys: Option<DeployOutcome>,
    checks: Option<CheckOutcome>,
    approve: Option<String>,
    reject: Option<String>,
    withdraw: Option<String>,
    hold: Option<String>,
    release: Option<String>,
    #[serde(rename = "override")]
    override_: Option<String>,
    advance: Option<Duration>,
    expect: Option<RawExpect>,
    author: Option<String>,
    files: Option<Vec<String>>,
    stage: Option<String>,
    name: Option<String>,
    sha: Option<String>,
    by: Option<String>,
    into: Option<String>,
    reason: Option<String>,
    bypass: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    sha: Option<String>,
    state: Option<String>,
    to: Option<String>,
    verdict: Option<ExpectedVerdict>,
    blockers: Option<Vec<String>>,
    #[serde(default, deserialize_with = "crate::file::optional_instant")]
    until: Option<DateTime<Utc>>,
    notification: Option<String>,
}

/// A mistake in a step: where, and what.
type Mistake = (FieldPath, String);

const ACTIONS: [&str; 11] =
    ["merge", "deploys", "checks", "approve", "reject", "withdraw", "hold", "release", "override", "advance", "expect"];

impl RawStep {
    fn actions(&self) -> Vec<&'static str> {
        let set = [
            self.merge.is_some(),
            self.deploys.is_some(),
            self.checks.is_some(),
            self.approve.is_some(),
            self.reject.is_some(),
            self.withdraw.is_some(),
            self.hold.is_some(),
            self.release.is_some(),
            self.override_.is_some(),
            self.advance.is_some(),
            self.expect.is_some(),
        ];
        ACTIONS.iter().zip(set).filter(|(_, set)| *set).map(|(name, _)| *name).collect()
    }

    fn modifiers(&self) -> [(&'static str, bool); 9] {
        [
            ("author", self.author.is_some()),
            ("files", self.files.is_some()),
            ("stage", self.stage.is_some()),
            ("name", self.name.is_some()),
            ("sha", self.sha.is_some()),
            ("by", self.by.is_some()),
            ("into", self.into.is_some()),
            ("reason", self.reason.is_some()),
            ("bypass", self.bypass.is_some()),
        ]
    }

    /// The step it is, checked against `policy`; `at` is its place in the file.
    pub(super) fn read(&self, policy: &Policy, at: &FieldPath) -> Result<Step, Mistake> {
        let action = match self.actions()[..] {
            [one] => one,
            [] => return Err((at.clone(), format!("a step needs one of {}", ACTIONS.join(", ")))),
            ref several => {
                return Err((at.clone(), format!("a step does one thing, this one has {}", several.join(" and "))));
            }
        };
        let (required, optional): (&[&str], &[&str]) = match action {
            "merge" => (&["author"], &["files"]),
            "deploys" => (&[], &["stage"]),
            "checks" => (&["stage"], &["name", "sha"]),
            "approve" | "reject" | "withdraw" => (&["by", "into"], &[]),
            "hold" => (&["by", "reason"], &[]),
            "release" => (&["by"], &[]),
            "override" => (&["by", "reason"], &["bypass"]),
            _ => (&[], &[]),
        };
        for (key, set) in self.modifiers() {
            if set && !required.contains(&key) && !optional.contains(&key) {
                return Err((at.key(key), format!("{} step has no `{key}`", article(action))));
            }
            if !set && required.contains(&key) {
                return Err((at.clone(), format!("{} step needs `{key}`", article(action))));
            }
        }
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let stage = |key: &str, name: &Option<String>| known_stage(policy, at.key(key), name);
        Ok(match action {
            "merge" => Step::Merge {
                sha: text(&self.merge),
                author: text(&self.author),
                files: self.files.clone().unwrap_or_default(),
            },
            "deploys" => Step::Deploys {
                outcome: self.deploys.unwrap_or(DeployOutcome::Succeed),
                stage: stage("stage", &self.stage)?,
            },
            "checks" => Step::Checks {
                outcome: self.checks.unwrap_or(CheckOutcome::Pass),
                stage: stage("stage", &self.stage)?.unwrap_or_default(),
                name: self.name.clone(),
                sha: self.sha.clone(),
            },
            "approve" | "reject" | "withdraw" => {
                let (decision, sha) = match action {
                    "approve" => (ApprovalDecision::Approve, &self.approve),
                    "reject" => (ApprovalDecision::Reject, &self.reject),
                    _ => (ApprovalDecision::Withdraw, &self.withdraw),
                };
                Step::Approval {
                    decision,
                    sha: text(sha),
                    by: text(&self.by),
                    into: stage("into", &self.into)?.unwrap_or_default(),
                }
            }
            "hold" => Step::Hold {
                stage: stage("hold", &self.hold)?.unwrap_or_default(),
                by: text(&self.by),
                reason: text(&self.reason),
            },
            "release" => {
                Step::Release { stage: stage("release", &self.release)?.unwrap_or_default(), by: text(&self.by) }
            }
            "override" => Step::Override {
                sha: text(&self.override_),
                by: text(&self.by),
                bypass: self.bypass.clone().unwrap_or_default(),
                reason: text(&self.reason),
            },
            "advance" => Step::Advance(self.advance.unwrap_or_else(|| Duration::minutes(0))),
            _ => Step::Expect(self.expect.as_ref().map_or_else(
                || Err((at.clone(), "an expect step needs a table".to_owned())),
                |e| e.read(policy, &at.key("expect")),
            )?),
        })
    }
}

impl RawExpect {
    fn read(&self, policy: &Policy, at: &FieldPath) -> Result<ScenarioExpect, Mistake> {
        let decision = self.verdict.is_some() || self.blockers.is_some() || self.until.is_some() || self.to.is_some();
        let need_sha =
            || self.sha.clone().ok_or_else(|| (at.clone(), "this expect needs the `sha` it is about".into()));
        match (&self.notification, &self.state, decision) {
            (Some(text), None, false) if self.sha.is_none() => Ok(ScenarioExpect::Notification(text.clone())),
            (None, Some(state), false) => Ok(ScenarioExpect::State { sha: need_sha()?, state: state.clone() }),
            (None, None, true) => {
                let verdict = self.verdict.ok_or_else(|| (at.clone(), "a decision's expect needs `verdict`".into()))?;
                if self.until.is_some() && verdict != ExpectedVerdict::Wait {
                    return Err((at.key("until"), "`until` is only for verdict = \"wait\"".into()));
                }
                Ok(ScenarioExpect::Decision {
                    sha: need_sha()?,
                    to: known_stage(policy, at.key("to"), &self.to)?,
                    expect: super::Expect { verdict, blockers: self.blockers.clone(), until: self.until },
                })
            }
            _ => Err((
                at.clone(),
                "an expect checks one thing: `notification`, a `state` (with `sha`), or a decision (`sha`, `verdict`, and optionally `to`, `blockers`, `until`)".into(),
            )),
        }
    }
}

/// `name`, when given, must be a stage of `policy`.
fn known_stage(policy: &Policy, at: FieldPath, name: &Option<String>) -> Result<Option<String>, Mistake> {
    let Some(name) = name else { return Ok(None) };
    if policy.stage(name).is_some() {
        return Ok(Some(name.clone()));
    }
    let known: Vec<&str> = policy.stages.iter().map(|s| s.name.as_str()).collect();
    let hint = did_you_mean(policy, name).map(|close| format!("; did you mean {close:?}?")).unwrap_or_default();
    Err((at, format!("policy {:?} has no stage named {name:?} (stages: {}){hint}", policy.name, known.join(", "))))
}

/// `a merge`, `an approve`.
fn article(action: &str) -> String {
    let vowel = action.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {action}", if vowel { "an" } else { "a" })
}
