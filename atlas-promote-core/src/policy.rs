//! The release policy: stages in order, and the rules of each.
//!
//! The shape follows the policy file format (DESIGN §7): a [`Policy`] is what
//! a TOML or YAML policy file deserializes into.

use std::collections::BTreeMap;
use std::fmt;

use chrono::NaiveTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Duration;

/// A person's login, as approval sources and the directory name them.
pub type Person = String;

/// A role such as `developer`, `product-owner` or `dev-team`.
pub type Role = String;

/// A release policy: the ordered stages a candidate moves through and the
/// rules at each step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The policy's name, e.g. `atlas`.
    pub name: String,
    /// An optional static directory: person → the roles they hold.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub directory: BTreeMap<Person, Vec<Role>>,
    /// Who may grant an audited override of a gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<OverrideRule>,
    /// The stages, in order: review stages, then trunk, then environments.
    #[serde(rename = "stage", default)]
    pub stages: Vec<Stage>,
}

/// Who may override a gate, bypassing named rules with a recorded reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideRule {
    /// Roles whose holders may grant an override.
    pub roles: Vec<Role>,
}

/// What a stage is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// The pull request under review. Nothing is deployed.
    Review,
    /// The commit merged to trunk. Nothing is deployed.
    Trunk,
    /// A deployment environment such as dev, staging or prod.
    Environment,
}

impl fmt::Display for StageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Review => "review",
            Self::Trunk => "trunk",
            Self::Environment => "environment",
        })
    }
}

/// One step of a policy and its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// The stage's unique name, e.g. `staging`.
    pub name: String,
    /// Review, trunk or environment.
    pub kind: StageKind,
    /// The CI workflow that deploys a candidate into this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// Pipeline code whose change requires a flush run after the deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush: Option<Flush>,
    /// Recurring checks of candidates in this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    /// How long a candidate must be ready here before it may leave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak: Option<Duration>,
    /// Approvals needed to enter this stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalRule>,
    /// When entering this stage is allowed; empty means always.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
    /// Weekly times when entering this stage is forbidden, whatever its windows say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blackouts: Vec<Blackout>,
    /// When entering this stage is forbidden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub freezes: Vec<Freeze>,
    /// An ephemeral environment takes branch builds, and nothing else.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ephemeral: bool,
    /// What to do when a check fails while a candidate is live here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitor>,
}

impl Stage {
    /// A stage of the given name and kind with no rules.
    pub fn new(name: impl Into<String>, kind: StageKind) -> Self {
        Self {
            name: name.into(),
            kind,
            deploy: None,
            flush: None,
            checks: Vec::new(),
            soak: None,
            approvals: None,
            windows: Vec::new(),
            blackouts: Vec::new(),
            freezes: Vec::new(),
            ephemeral: false,
            monitor: None,
        }
    }

    /// Whether this stage is a deployment environment.
    pub fn is_environment(&self) -> bool {
        self.kind == StageKind::Environment
    }

    /// The check of this name, if the stage declares one.
    pub fn check(&self, name: &str) -> Option<&CheckSpec> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// A CI workflow and the parameters to run it with (provider-neutral).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// The workflow's name as the CI system knows it.
    pub workflow: String,
    /// Parameters passed to the workflow.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// Flush settings: pipeline code paths and the workflow that refreshes data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flush {
    /// Glob patterns of pipeline code (`pipelines/**`); `/` is never matched by `*`.
    pub paths: Vec<String>,
    /// The workflow that runs the flush.
    pub workflow: String,
    /// Parameters passed to the flush workflow.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub parameters: BTreeMap<String, String>,
}

/// A recurring check a stage watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// The check's name, e.g. `integration`.
    pub name: String,
    /// A blocking check must pass before a candidate leaves the stage;
    /// an advisory one only warns.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub blocking: bool,
    /// How recent the deciding result must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
}

impl CheckSpec {
    /// A blocking check with no freshness limit.
    pub fn blocking(name: impl Into<String>) -> Self {
        Self { name: name.into(), blocking: true, max_age: None }
    }

    /// An advisory check: reported, never blocking.
    pub fn advisory(name: impl Into<String>) -> Self {
        Self { name: name.into(), blocking: false, max_age: None }
    }

    /// The same check, requiring its deciding result to be at most `max_age` old.
    pub fn with_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// Approvals needed to enter a stage: `count` distinct people per role.
///
/// Self-approval is forbidden unless the rule says otherwise:
/// [`forbid_self_approval`](Self::forbid_self_approval) defaults to `true`
/// in policy files (a rule that leaves it out forbids it) and in
/// [`ApprovalRule::require`], so an author of a candidate never approves it
/// in; write `forbid_self_approval = false` to let them.
///
/// ```
/// use atlas_promote_core::Policy;
///
/// let text = "name = \"p\"\n[[stage]]\nname = \"trunk\"\nkind = \"trunk\"\n\
///             [[stage]]\nname = \"prod\"\nkind = \"environment\"\n\
///             approvals = { require = { developer = 1 } }\n";
/// let policy = Policy::from_toml_str(text, "p.toml").unwrap();
/// let rule = policy.stages[1].approvals.as_ref().unwrap();
/// assert!(rule.forbid_self_approval);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// Role → how many distinct approvers holding it are needed.
    pub require: BTreeMap<Role, u32>,
    /// Whether the candidate's own authors are ignored as approvers
    /// (their approval refused, with the reason). Defaults to `true`: a
    /// rule that does not say forbids self-approval.
    #[serde(default = "yes")]
    pub forbid_self_approval: bool,
    /// How long an approval stays valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
}

impl ApprovalRule {
    /// A rule requiring the given roles and counts, self-approval forbidden, no ttl.
    pub fn require<R: Into<Role>>(roles: impl IntoIterator<Item = (R, u32)>) -> Self {
        Self { require: roles.into_iter().map(|(r, n)| (r.into(), n)).collect(), forbid_self_approval: true, ttl: None }
    }

    /// The total number of distinct approvers the rule needs.
    pub fn slots(&self) -> u32 {
        self.require.values().sum()
    }
}

/// A day of the week, written `mon` … `sun` in policy files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<chrono::Weekday> for Weekday {
    fn from(d: chrono::Weekday) -> Self {
        match d {
            chrono::Weekday::Mon => Self::Mon,
            chrono::Weekday::Tue => Self::Tue,
            chrono::Weekday::Wed => Self::Wed,
            chrono::Weekday::Thu => Self::Thu,
            chrono::Weekday::Fri => Self::Fri,
            chrono::Weekday::Sat => Self::Sat,
            chrono::Weekday::Sun => Self::Sun,
        }
    }
}

impl From<Weekday> for chrono::Weekday {
    fn from(d: Weekday) -> Self {
        match d {
            Weekday::Mon => Self::Mon,
            Weekday::Tue => Self::Tue,
            Weekday::Wed => Self::Wed,
            Weekday::Thu => Self::Thu,
            Weekday::Fri => Self::Fri,
            Weekday::Sat => Self::Sat,
            Weekday::Sun => Self::Sun,
        }
    }
}

impl Weekday {
    /// The day as policy files write it: `mon` … `sun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mon => "mon",
            Self::Tue => "tue",
            Self::Wed => "wed",
            Self::Thu => "thu",
            Self::Fri => "fri",
            Self::Sat => "sat",
            Self::Sun => "sun",
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A wall-clock time of day, written `HH:MM`, from `00:00` to `24:00`.
///
/// `24:00` is the end of a day: a window or blackout that ends at `24:00`
/// lasts to midnight, to the last instant of the day it opens (the same as
/// `00:00` of the next day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime {
    /// Minutes since midnight, `0..=1440`.
    minutes: u16,
}

impl LocalTime {
    /// Midnight at the start of a day, `00:00`.
    pub const MIDNIGHT: Self = Self { minutes: 0 };

    /// Midnight at the end of a day, `24:00`.
    pub const END_OF_DAY: Self = Self { minutes: 24 * 60 };

    /// The time `hour:minute`, from `0:00` to `23:59`, or `24:00`; `None` if out of range.
    pub fn hm(hour: u32, minute: u32) -> Option<Self> {
        match (hour, minute) {
            (0..=23, 0..=59) => u16::try_from(hour * 60 + minute).ok().map(|minutes| Self { minutes }),
            (24, 0) => Some(Self::END_OF_DAY),
            _ => None,
        }
    }

    /// Minutes since midnight: `0` for `00:00`, `1440` for `24:00`.
    pub fn minutes_from_midnight(self) -> u32 {
        u32::from(self.minutes)
    }

    /// Whether this is `24:00`, the end of a day.
    pub fn is_end_of_day(self) -> bool {
        self == Self::END_OF_DAY
    }

    /// The time as a [`NaiveTime`]; `None` for `24:00`, which a clock never reads.
    pub fn to_naive(self) -> Option<NaiveTime> {
        NaiveTime::from_hms_opt(u32::from(self.minutes / 60), u32::from(self.minutes % 60), 0)
    }

    /// Read `HH:MM` (`00:00` … `23:59`, or `24:00`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text == "24:00" {
            return Some(Self::END_OF_DAY);
        }
        NaiveTime::parse_from_str(text, "%H:%M").ok().map(Self::from)
    }
}

impl From<NaiveTime> for LocalTime {
    /// The time to the minute (seconds are dropped).
    fn from(time: NaiveTime) -> Self {
        use chrono::Timelike;
        let minutes = u16::try_from(time.hour() * 60 + time.minute()).unwrap_or(0);
        Self { minutes }
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(crate::file::invalid_time_message(&text)))
    }
}

/// A weekly deployment window: the wall-clock times `[start, end)` in `tz` on
/// each of `days`. An `end` before `start` runs past midnight; the weekday is
/// the day the window opens; `end = "24:00"` lasts to midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The days the window opens.
    pub days: Vec<Weekday>,
    /// When it opens, wall-clock time in `tz`.
    #[serde(deserialize_with = "crate::file::time_of_day")]
    pub start: LocalTime,
    /// When it closes, wall-clock time in `tz`.
    #[serde(deserialize_with = "crate::file::time_of_day")]
    pub end: LocalTime,
    /// The IANA time zone, e.g. `Europe/Berlin`.
    pub tz: chrono_tz::Tz,
}

/// A weekly blackout: the wall-clock times `[start, end)` in `tz` on each of
/// `days`, when entering the stage is forbidden, e.g. no deploys on Friday
/// afternoons. Read like a [`Window`]: an `end` before `start` runs past
/// midnight, the weekday is the day the blackout begins, and `end = "24:00"`
/// lasts to midnight. A blackout wins over every window it overlaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blackout {
    /// The days the blackout begins.
    pub days: Vec<Weekday>,
    /// When it begins, wall-clock time in `tz`.
    #[serde(deserialize_with = "crate::file::time_of_day")]
    pub start: LocalTime,
    /// When it ends, wall-clock time in `tz`.
    #[serde(deserialize_with = "crate::file::time_of_day")]
    pub end: LocalTime,
    /// The IANA time zone, e.g. `Europe/Berlin`.
    pub tz: chrono_tz::Tz,
    /// Why, shown to people who are blocked by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `mon,fri 15:00–24:00 Europe/Berlin`: the days, times and zone of a window or blackout.
fn write_weekly(
    f: &mut fmt::Formatter<'_>,
    days: &[Weekday],
    start: LocalTime,
    end: LocalTime,
    tz: chrono_tz::Tz,
) -> fmt::Result {
    for (i, day) in days.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        f.write_str(day.as_str())?;
    }
    write!(f, " {start}–{end} {tz}")
}

impl fmt::Display for Window {
    /// `mon,tue 09:00–16:00 Europe/Berlin`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_weekly(f, &self.days, self.start, self.end, self.tz)
    }
}

impl fmt::Display for Blackout {
    /// `fri 15:00–24:00 Europe/Berlin`, without the reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_weekly(f, &self.days, self.start, self.end, self.tz)
    }
}

/// A period when entering a stage is forbidden: the instants `[from, until)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    /// When the freeze begins.
    #[serde(deserialize_with = "crate::file::instant")]
    pub from: chrono::DateTime<chrono::Utc>,
    /// When it ends; `None` lasts until the freeze is removed.
    #[serde(default, deserialize_with = "crate::file::optional_instant", skip_serializing_if = "Option::is_none")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Why, shown to people who are blocked by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Watching a live environment: which check to watch and what its failure does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// The check whose failure is acted on, e.g. `data-quality`.
    pub check: String,
    /// Alert only, or alert and roll back.
    pub on_failure: OnFailure,
}

/// What a failing monitored check does in a live environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Raise an alert.
    Alert,
    /// Raise an alert and roll the environment back to its previous live commit.
    Rollback,
}

impl Policy {
    /// The stage of this name.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The position of the stage of this name.
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.name == name)
    }

    /// The stage after the one of this name, if any.
    pub fn next_stage(&self, name: &str) -> Option<&Stage> {
        self.stage_index(name).and_then(|i| self.stages.get(i + 1))
    }

    /// The ATLAS preset (DESIGN §4): `review → trunk → dev → staging → prod`.
    ///
    /// - entering `trunk` needs 1 `developer` approval (not the author) and the
    ///   blocking quality checks `build`, `lint` and `unit` on the PR head;
    /// - `trunk → dev` is automatic;
    /// - `dev → staging` needs 1 `developer` approval; dev's nightly checks are advisory;
    /// - `staging → prod` needs staging's nightly `integration`, `system` and
    ///   `data-quality` checks passed within 26 h, and approvals from 1
    ///   `product-owner` and 1 `dev-team` member, two different people (valid 72 h);
    /// - in `prod`, frequent advisory `data-quality` checks run, and a failing
    ///   result raises an alert.
    ///
    /// Each environment flushes when `pipelines/**` changed.
    pub fn atlas() -> Self {
        let environment = |name: &str| {
            let mut stage = Stage::new(name, StageKind::Environment);
            stage.deploy = Some(Deploy {
                workflow: "deploy".into(),
                parameters: BTreeMap::from([("environment".into(), name.into())]),
            });
            stage.flush = Some(Flush {
                paths: vec!["pipelines/**".into()],
                workflow: "flush".into(),
                // The flush run must know which environment to flush, as the deploy does.
                parameters: BTreeMap::from([("environment".into(), name.into())]),
            });
            stage
        };
        let nightly = ["integration", "system", "data-quality"];

        let mut review = Stage::new("review", StageKind::Review);
        review.checks = ["build", "lint", "unit"].map(CheckSpec::blocking).to_vec();

        let mut trunk = Stage::new("trunk", StageKind::Trunk);
        trunk.approvals = Some(ApprovalRule::require([("developer", 1)]));

        let mut dev = environment("dev");
        dev.checks = nightly.map(CheckSpec::advisory).to_vec();

        let mut staging = environment("staging");
        staging.checks = nightly.map(|n| CheckSpec::blocking(n).with_max_age(Duration::hours(26))).to_vec();
        staging.approvals = Some(ApprovalRule::require([("developer", 1)]));

        let mut prod = environment("prod");
        prod.checks = vec![CheckSpec::advisory("data-quality")];
        prod.approvals = Some(ApprovalRule {
            ttl: Some(Duration::hours(72)),
            ..ApprovalRule::require([("product-owner", 1), ("dev-team", 1)])
        });
        prod.monitor = Some(Monitor { check: "data-quality".into(), on_failure: OnFailure::Alert });

        Self {
            name: "atlas".into(),
            directory: BTreeMap::new(),
            overrides: None,
            stages: vec![review, trunk, dev, staging, prod],
        }
    }
}
