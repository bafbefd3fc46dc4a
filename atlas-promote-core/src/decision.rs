//! What a gate decides: a verdict, every blocker and every warning.

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::Duration;
use crate::evidence::{CheckStatus, Origin};
use crate::policy::{Person, Role};

/// The outcome of evaluating one gate for one candidate at one instant.
///
/// Serializes to the JSON shape of DESIGN §4:
/// `{"verdict": "wait", "until": "…", "blockers": [{"kind": "soaking", …}], "warnings": []}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// The stage the candidate leaves.
    pub from: String,
    /// The stage it would enter.
    pub to: String,
    /// The candidate's commit.
    pub sha: String,
    /// The instant decided for.
    pub at: DateTime<Utc>,
    /// Allow, wait until an instant, or block.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Every rule that fails, in rule order (G1 … G6).
    pub blockers: Vec<Blocker>,
    /// What does not block but a person should know.
    pub warnings: Vec<Warning>,
}

impl Decision {
    /// Whether the promotion may go ahead now.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// When to ask again: `Some(until)` for a [`Verdict::Wait`], else `None`.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        self.verdict.until()
    }

    /// This decision when the target stage is held (the line is stopped
    /// there): a [`Blocker::Held`] is added and the verdict is
    /// [`Verdict::Block`], since only a person releasing the hold clears it.
    ///
    /// Pure, like the gate: the engine reads the hold and applies it here,
    /// so the decision, its explanation and the next wake-up all say so.
    pub fn held(mut self, by: impl Into<Person>, reason: impl Into<String>, since: DateTime<Utc>) -> Self {
        let stage = self.to.clone();
        self.blockers.push(Blocker::Held { stage, by: by.into(), reason: reason.into(), since });
        self.verdict = Verdict::Block;
        self
    }
}

/// Whether a promotion may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every rule holds.
    Allow,
    /// Only time stands in the way; nothing else changing, the gate opens at `until`.
    Wait {
        /// The earliest instant at which no time-based blocker holds.
        until: DateTime<Utc>,
    },
    /// Something other than time must change.
    Block,
}

impl Verdict {
    /// The instant a [`Verdict::Wait`] waits for; `None` for the others.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Wait { until } => Some(*until),
            Self::Allow | Self::Block => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Allow => f.write_str("allowed"),
            Self::Wait { until } => write!(f, "waiting until {}", ts(until)),
            Self::Block => f.write_str("blocked"),
        }
    }
}

/// How many approvers of one role a rule still lacks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shortfall {
    /// The role.
    pub role: Role,
    /// How many distinct approvers holding it the rule needs.
    pub need: u32,
    /// How many slots of this role the best assignment of approvers fills.
    pub have: u32,
}

/// A rule that fails (DESIGN §4). The serde tag `kind` uses the names of §4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Blocker {
    /// G1: the target stage does not take candidates of this origin.
    OriginNotAccepted {
        /// The target stage.
        stage: String,
        /// The candidate's origin.
        origin: Origin,
    },
    /// G2: the candidate's deploy into the source stage has not succeeded.
    NotDeployed {
        /// The source stage.
        stage: String,
    },
    /// G2: pipeline code changed and no flush run has succeeded since the deploy.
    FlushPending {
        /// The source stage.
        stage: String,
        /// When the deploy succeeded.
        deployed_at: DateTime<Utc>,
    },
    /// G3: a blocking check has no result since the candidate became ready.
    CheckMissing {
        /// The check.
        check: String,
        /// The candidate's `ready_at`; results that started earlier do not count.
        since: Option<DateTime<Utc>>,
    },
    /// G3: a blocking check has only running results.
    CheckRunning {
        /// The check.
        check: String,
        /// When the newest running result started.
        started_at: DateTime<Utc>,
    },
    /// G3: a blocking check's deciding result did not pass.
    CheckFailed {
        /// The check.
        check: String,
        /// How it ended.
        status: CheckStatus,
        /// When it finished.
        finished_at: DateTime<Utc>,
    },
    /// G3: a blocking check's deciding result is older than its `max_age`.
    CheckStale {
        /// The check.
        check: String,
        /// When the deciding result finished.
        finished_at: DateTime<Utc>,
        /// The freshness limit.
        max_age: Duration,
    },
    /// G4: the candidate has not been ready in the source stage long enough.
    Soaking {
        /// The source stage.
        stage: String,
        /// When the soak ends.
        until: DateTime<Utc>,
    },
    /// G4: the source stage has a soak, but the evidence does not say when
    /// the candidate entered it (a review or trunk source without
    /// `entered_at`), so the soak cannot be counted, nor waited out.
    SoakStartUnknown {
        /// The source stage.
        stage: String,
        /// Its soak.
        soak: Duration,
    },
    /// G5: the approvers so far cannot fill every required slot.
    ApprovalsMissing {
        /// The target stage.
        stage: String,
        /// The roles that are short, and by how many.
        short: Vec<Shortfall>,
    },
    /// G5: someone holding a role of the rule rejected the promotion.
    Rejected {
        /// Who.
        approver: Person,
        /// Their roles that the rule names.
        roles: Vec<Role>,
        /// When.
        at: DateTime<Utc>,
    },
    /// G6: the target stage's deployment windows are closed.
    WindowClosed {
        /// The target stage.
        stage: String,
        /// When a window next opens, if one ever does.
        opens_at: Option<DateTime<Utc>>,
    },
    /// G6: a blackout of the target stage (a weekly time when entering it
    /// is forbidden) covers now.
    Blackout {
        /// The target stage.
        stage: String,
        /// The blackout, as its days, times and zone: `fri 15:00–24:00 Europe/Berlin`.
        blackout: String,
        /// The blackout's reason.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When the stage is next outside every blackout; `None` if its
        /// blackouts cover the whole week.
        until: Option<DateTime<Utc>>,
    },
    /// G6: a freeze of the target stage covers now.
    Frozen {
        /// The target stage.
        stage: String,
        /// The freeze's reason.
        reason: Option<String>,
        /// When the freeze ends; `None` lasts until it is removed.
        until: Option<DateTime<Utc>>,
    },
    /// Someone stopped the line into the target stage (a hold); it lasts
    /// until they, or someone else, release it.
    Held {
        /// The target stage.
        stage: String,
        /// Who holds it.
        by: Person,
        /// Why.
        reason: String,
        /// Since when.
        since: DateTime<Utc>,
    },
}

impl Blocker {
    /// Whether only time clears this blocker: a soak, a closed window that
    /// opens again, a blackout or a freeze with an end.
    pub fn is_time_based(&self) -> bool {
        match self {
            Self::Soaking { .. } => true,
            Self::WindowClosed { opens_at, .. } => opens_at.is_some(),
            Self::Frozen { until, .. } | Self::Blackout { until, .. } => until.is_some(),
            Self::OriginNotAccepted { .. }
            | Self::NotDeployed { .. }
            | Self::FlushPending { .. }
            | Self::CheckMissing { .. }
            | Self::CheckRunning { .. }
            | Self::CheckFailed { .. }
            | Self::CheckStale { .. }
            | Self::SoakStartUnknown { .. }
            | Self::ApprovalsMissing { .. }
            | Self::Rejected { .. }
            | Self::Held { .. } => false,
        }
    }

    /// When time alone clears this blocker: the end of a soak, a blackout
    /// or a freeze, the opening of a window; `None` for the others.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::Soaking { until, .. } => Some(*until),
            Self::WindowClosed { opens_at, .. } => *opens_at,
            Self::Frozen { until, .. } | Self::Blackout { until, .. } => *until,
            _ => None,
        }
    }

    /// The blocker's kind as it appears in JSON (`"soaking"`, `"check_failed"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OriginNotAccepted { .. } => "origin_not_accepted",
            Self::NotDeployed { .. } => "not_deployed",
            Self::FlushPending { .. } => "flush_pending",
            Self::CheckMissing { .. } => "check_missing",
            Self::CheckRunning { .. } => "check_running",
            Self::CheckFailed { .. } => "check_failed",
            Self::CheckStale { .. } => "check_stale",
            Self::Soaking { .. } => "soaking",
            Self::SoakStartUnknown { .. } => "soak_start_unknown",
            Self::ApprovalsMissing { .. } => "approvals_missing",
            Self::Rejected { .. } => "rejected",
            Self::WindowClosed { .. } => "window_closed",
            Self::Blackout { .. } => "blackout",
            Self::Frozen { .. } => "frozen",
            Self::Held { .. } => "held",
        }
    }
}

/// An instant as the text shows it: to the minute, with the seconds (and
/// their fraction) when it does not fall on one, so that a wait never
/// names a time before it ends.
fn ts(t: &DateTime<Utc>) -> String {
    let format = match (t.second(), t.nanosecond()) {
        (0, 0) => "%Y-%m-%d %H:%M UTC",
        (_, 0) => "%Y-%m-%d %H:%M:%S UTC",
        _ => "%Y-%m-%d %H:%M:%S%.f UTC",
    };
    t.format(format).to_string()
}

/// Whether `c` is written escaped in text: a control character (a newline,
/// the start of a terminal escape sequence), a line or paragraph separator,
/// or a bidirectional override, any of which would let a name from the
/// evidence (an approver, a check, a branch) start a line of its own or
/// make the text read other than it is.
fn is_escaped(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A writer that escapes what [`is_escaped`] names (as `\n`, `\u{1b}`).
struct Escaping<'a, W: fmt::Write + ?Sized>(&'a mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if is_escaped(c) {
                write!(self.0, "{}", c.escape_default())?;
            } else {
                self.0.write_char(c)?;
            }
        }
        Ok(())
    }
}

/// Text from outside (a stage name, a commit), written escaped.
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Write::write_str(&mut Escaping(f), self.0)
    }
}

impl fmt::Display for Blocker {
    /// One line; every name in it written with control characters escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(&mut Escaping(f))
    }
}

impl Blocker {
    fn write_to(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Self::OriginNotAccepted { stage, origin: Origin::Branch } => {
                write!(f, "{stage} takes trunk candidates only; a branch build can go to an ephemeral environment")
            }
            Self::OriginNotAccepted { stage, origin: Origin::Trunk } => {
                write!(f, "{stage} is an ephemeral environment and takes branch builds only")
            }
            Self::NotDeployed { stage } => write!(f, "not deployed to {stage} yet: its deploy has to succeed first"),
            Self::FlushPending { stage, deployed_at } => write!(
                f,
                "flush pending in {stage}: pipeline code changed, so a flush run must succeed after the deploy of {}",
                ts(deployed_at)
            ),
            Self::CheckMissing { check, since: Some(since) } => {
                write!(f, "check {check} has not run since the candidate was ready at {}", ts(since))
            }
            Self::CheckMissing { check, since: None } => write!(f, "check {check} has not run on this commit"),
            Self::CheckRunning { check, started_at } => {
                write!(f, "check {check} is still running (started {}); wait for its result", ts(started_at))
            }
            Self::CheckFailed { check, status, finished_at } => {
                write!(f, "check {check} {status} at {}; it must pass on a new run", ts(finished_at))
            }
            Self::CheckStale { check, finished_at, max_age } => write!(
                f,
                "check {check} last passed at {}, more than {max_age} ago; it must run again",
                ts(finished_at)
            ),
            Self::Soaking { stage, until } => {
                write!(f, "soaking in {stage} until {}; it may leave {stage} then", ts(until))
            }
            Self::SoakStartUnknown { stage, soak } => write!(
                f,
                "{stage} has a soak of {soak}, but the evidence does not say when the candidate entered {stage}, \
                 so the soak cannot be counted; give its entry time (entered_at)"
            ),
            Self::ApprovalsMissing { stage, short } => {
                write!(f, "needs ")?;
                for (i, s) in short.iter().enumerate() {
                    if i > 0 {
                        write!(f, " and ")?;
                    }
                    let more = s.need.saturating_sub(s.have);
                    let noun = if more == 1 { "approval" } else { "approvals" };
                    write!(f, "{more} more {noun} from {} (have {} of {})", s.role, s.have, s.need)?;
                }
                write!(f, " to enter {stage}")
            }
            Self::Rejected { approver, roles, at } => {
                write!(f, "rejected by {approver} ({}) at {}; they must withdraw or approve", roles.join(", "), ts(at))
            }
            Self::WindowClosed { stage, opens_at: Some(at) } => {
                write!(f, "the deployment window of {stage} is closed; it next opens at {}", ts(at))
            }
            Self::WindowClosed { stage, opens_at: None } => {
                write!(f, "the deployment window of {stage} is closed and never opens again")
            }
            Self::Blackout { stage, blackout, reason, until } => {
                write!(f, "{stage} is in a blackout")?;
                match reason {
                    Some(reason) => write!(f, " ({reason}: {blackout})")?,
                    None => write!(f, " ({blackout})")?,
                }
                match until {
                    Some(until) => write!(f, " until {}", ts(until)),
                    None => write!(f, " that covers the whole week, so it never ends"),
                }
            }
            Self::Frozen { stage, reason, until } => {
                write!(f, "{stage} is frozen")?;
                if let Some(reason) = reason {
                    write!(f, " ({reason})")?;
                }
                match until {
                    Some(until) => write!(f, " until {}", ts(until)),
                    None => write!(f, " until the freeze is removed"),
                }
            }
            Self::Held { stage, by, reason, since } => {
                write!(f, "{stage} is held by {by} since {}: {reason}; it must be released first", ts(since))
            }
        }
    }
}

/// Something a person should know that does not block the promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// An advisory check has no result since the candidate was ready.
    AdvisoryCheckMissing {
        /// The check.
        check: String,
    },
    /// An advisory check has only running results.
    AdvisoryCheckRunning {
        /// The check.
        check: String,
    },
    /// An advisory check's deciding result did not pass.
    AdvisoryCheckFailed {
        /// The check.
        check: String,
        /// How it ended.
        status: CheckStatus,
        /// When it finished.
        finished_at: DateTime<Utc>,
    },
    /// An advisory check's deciding result is older than its `max_age`.
    AdvisoryCheckStale {
        /// The check.
        check: String,
        /// When the deciding result finished.
        finished_at: DateTime<Utc>,
    },
    /// A newer run of a check started after its deciding result and is still going.
    CheckRerunning {
        /// The check.
        check: String,
        /// When the newer run started.
        started_at: DateTime<Utc>,
    },
    /// An approver holds none of the roles the rule names; their record is ignored.
    ApproverWithoutRole {
        /// Who.
        approver: Person,
        /// What they decided.
        decision: crate::evidence::ApprovalDecision,
    },
    /// An author of the candidate approved it; self-approval does not count.
    SelfApprovalIgnored {
        /// Who.
        approver: Person,
    },
    /// An approval is older than the rule's ttl.
    ApprovalExpired {
        /// Who.
        approver: Person,
        /// When they approved.
        at: DateTime<Utc>,
        /// The rule's ttl.
        ttl: Duration,
    },
    /// A rejection is older than the rule's ttl, so it no longer blocks.
    RejectionExpired {
        /// Who.
        approver: Person,
        /// When they rejected.
        at: DateTime<Utc>,
        /// The rule's ttl.
        ttl: Duration,
    },
    /// The evidence does not say when the candidate entered its (review or
    /// trunk) source stage, which has checks: every check result for its
    /// commit counts. (A soak of such a stage blocks:
    /// [`Blocker::SoakStartUnknown`].)
    EnteredAtUnknown {
        /// The source stage.
        stage: String,
    },
    /// A [`Verdict::Wait`] whose `until` will not be enough: decided again
    /// at `until` on the same evidence, the gate has this blocker, which
    /// time does not clear (a passing check has gone stale by then, or an
    /// approval has expired). One warning per such blocker.
    BlockedWhenWaitEnds {
        /// The end of the wait.
        until: DateTime<Utc>,
        /// What will block then, as it will be reported then.
        blocker: Box<Blocker>,
        /// For `approvals_missing`: whose approvals, counted now, will have
        /// expired by `until`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        expiring: Vec<Person>,
    },
}

impl Warning {
    /// The warning's kind as it appears in JSON (`"check_rerunning"`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::AdvisoryCheckMissing { .. } => "advisory_check_missing",
            Self::AdvisoryCheckRunning { .. } => "advisory_check_running",
            Self::AdvisoryCheckFailed { .. } => "advisory_check_failed",
            Self::AdvisoryCheckStale { .. } => "advisory_check_stale",
            Self::CheckRerunning { .. } => "check_rerunning",
            Self::ApproverWithoutRole { .. } => "approver_without_role",
            Self::SelfApprovalIgnored { .. } => "self_approval_ignored",
            Self::ApprovalExpired { .. } => "approval_expired",
            Self::RejectionExpired { .. } => "rejection_expired",
            Self::EnteredAtUnknown { .. } => "entered_at_unknown",
            Self::BlockedWhenWaitEnds { .. } => "blocked_when_wait_ends",
        }
    }
}

impl fmt::Display for Warning {
    /// One line; every name in it written with control characters escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(&mut Escaping(f))
    }
}

impl Warning {
    fn write_to(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match self {
            Self::AdvisoryCheckMissing { check } => {
                write!(f, "advisory check {check} has not run since the candidate was ready (not blocking)")
            }
            Self::AdvisoryCheckRunning { check } => {
                write!(f, "advisory check {check} is still running (not blocking)")
            }
            Self::AdvisoryCheckFailed { check, status, finished_at } => {
                write!(f, "advisory check {check} {status} at {} (not blocking)", ts(finished_at))
            }
            Self::AdvisoryCheckStale { check, finished_at } => {
                write!(f, "advisory check {check} last ran at {} and is stale (not blocking)", ts(finished_at))
            }
            Self::CheckRerunning { check, started_at } => {
                write!(
                    f,
                    "check {check} is running again since {}; its result may change this decision",
                    ts(started_at)
                )
            }
            Self::ApproverWithoutRole { approver, decision } => {
                write!(f, "{approver} holds none of the roles this approval rule names; their {decision} is ignored")
            }
            Self::SelfApprovalIgnored { approver } => {
                write!(f, "{approver} is an author of this candidate; their approval does not count")
            }
            Self::ApprovalExpired { approver, at, ttl } => {
                write!(
                    f,
                    "the approval by {approver} at {} is older than {ttl} and has expired; they must approve again",
                    ts(at)
                )
            }
            Self::RejectionExpired { approver, at, ttl } => {
                write!(f, "the rejection by {approver} at {} is older than {ttl} and no longer blocks", ts(at))
            }
            Self::EnteredAtUnknown { stage } => write!(
                f,
                "the evidence does not say when the candidate entered {stage}; every check result for the commit counts"
            ),
            Self::BlockedWhenWaitEnds { until, blocker, expiring } => {
                write!(f, "the wait ends at {}, but by then: {blocker}", ts(until))?;
                match expiring.as_slice() {
                    [] => {}
                    [one] => write!(f, " (the approval by {one} expires first; they must approve again)")?,
                    [first @ .., last] => {
                        let first = first.iter().map(Person::as_str).collect::<Vec<_>>().join(", ");
                        write!(f, " (the approvals by {first} and {last} expire first; they must approve again)")?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Decision {
    /// The verdict on the first line, then one line per blocker and
    /// warning. Names from the policy and the evidence are written with
    /// their control characters escaped, so none can add a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} → {} for {}: {}", Escaped(&self.from), Escaped(&self.to), Escaped(&self.sha), self.verdict)?;
        // A wait is only time: its reasons are labelled as what they are.
        let label = if self.until().is_some() { "waiting" } else { "blocked" };
        for b in &self.blockers {
            writeln!(f, "  {label}: {b}")?;
        }
        if let Some(until) = self.until() {
            // The wait can outlast every blocker of now: when they end, a
            // window of the target stage may be closed, or a blackout or a
            // freeze begun. Say so, rather than leave `until` unexplained.
            let ends = self.blockers.iter().filter_map(Blocker::ends_at).max();
            if let Some(ends) = ends.filter(|ends| *ends < until) {
                let that = if self.blockers.len() > 1 { "they end" } else { "that ends" };
                writeln!(
                    f,
                    "  waiting: when {that} at {}, the windows, blackouts or freezes of {} keep it closed until {}",
                    ts(&ends),
                    Escaped(&self.to),
                    ts(&until)
                )?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        Ok(())
    }
}
