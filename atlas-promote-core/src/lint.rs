//! Policy lint: mistakes validation cannot see.
//!
//! Validation (when a file is read) refuses policies that are malformed or
//! contradict themselves. Lint looks at a valid policy as a whole and says
//! where it will not work as its author probably meant: an approval rule the
//! directory cannot fill, a window that never opens, a promotion nobody checks.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::SecondsFormat;

use crate::file::FieldPath;
use crate::policy::{ApprovalRule, Policy, Stage};

mod assignment;
mod reach;

/// How serious a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look; the policy works as written.
    Warning,
    /// The policy cannot work as intended.
    Error,
}

/// One lint finding: a sentence about one place in the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The stage concerned, if any.
    pub stage: Option<String>,
    /// The field concerned, as a path such as `stage[4].approvals.require`
    /// (keys as in a policy file, indexes from 0), if any.
    pub field: Option<String>,
    /// What is wrong and what to do, as a sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match &self.stage {
            Some(stage) => write!(f, "{severity}: stage {stage}: {}", self.message),
            None => write!(f, "{severity}: {}", self.message),
        }
    }
}

impl Policy {
    /// Find what validation cannot: rules no one can satisfy, windows that never open, and so on.
    ///
    /// Findings come in the order of the policy: directory and overrides,
    /// then stage by stage.
    ///
    /// ```
    /// use atlas_promote_core::Policy;
    ///
    /// let findings = Policy::atlas().lint();
    /// assert!(findings.iter().all(|f| f.severity != atlas_promote_core::Severity::Error));
    /// ```
    pub fn lint(&self) -> Vec<Finding> {
        let mut lint = Lint { policy: self, findings: Vec::new(), holders: holders(self) };
        lint.overrides();
        lint.unused_roles();
        let reached = reach::from_trunk(self);
        for (i, stage) in self.stages.iter().enumerate() {
            lint.unreached(i, stage, &reached);
            lint.checks(i, stage);
            lint.soak_and_max_age(i, stage);
            if let Some(rule) = &stage.approvals {
                lint.approvals(i, stage, rule);
                lint.ttl(i, stage, rule);
            }
            lint.windows_and_freezes(i, stage);
            lint.unguarded(i, stage);
            lint.monitor(i, stage);
            lint.flush(i, stage);
        }
        lint.findings
    }
}

/// Role → the people of the directory who hold it.
fn holders(policy: &Policy) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut holders: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (person, roles) in &policy.directory {
        for role in roles {
            holders.entry(role.as_str()).or_default().insert(person.as_str());
        }
    }
    holders
}

struct Lint<'p> {
    policy: &'p Policy,
    findings: Vec<Finding>,
    holders: BTreeMap<&'p str, BTreeSet<&'p str>>,
}

impl<'p> Lint<'p> {
    fn add(&mut self, severity: Severity, stage: Option<&Stage>, field: FieldPath, message: String) {
        self.findings.push(Finding {
            severity,
            stage: stage.map(|s| s.name.clone()),
            field: field.to_field(),
            message,
        });
    }

    fn has_directory(&self) -> bool {
        !self.policy.directory.is_empty()
    }

    fn overrides(&mut self) {
        let Some(overrides) = &self.policy.overrides else { return };
        if !self.has_directory() {
            return;
        }
        for (j, role) in overrides.roles.iter().enumerate() {
            if !self.holders.contains_key(role.as_str()) {
                self.add(
                    Severity::Warning,
                    None,
                    FieldPath::root().key("overrides").key("roles").index(j),
                    format!("no one in the directory holds {role}, so no one can grant an override through it"),
                );
            }
        }
    }

    /// A role of the directory that no approval rule and no override names.
    fn unused_roles(&mut self) {
        let used: BTreeSet<&str> = self
            .policy
            .stages
            .iter()
            .flat_map(|s| s.approvals.iter().flat_map(|a| a.require.keys().map(String::as_str)))
            .chain(self.policy.overrides.iter().flat_map(|o| o.roles.iter().map(String::as_str)))
            .collect();
        for (person, roles) in &self.policy.directory {
            for (j, role) in roles.iter().enumerate() {
                // Said once per role: at the first person holding it.
                let first = self.holders.get(role.as_str()).and_then(|h| h.first()) == Some(&person.as_str());
                if !used.contains(role.as_str()) && first {
                    self.add(
                        Severity::Warning,
                        None,
                        FieldPath::root().key("directory").key(person.as_str()).index(j),
                        format!(
                            "no approval rule and no override names the role {role}, so holding it lets no one do anything; remove it or name it in a rule (a typo of a role that is used?)"
                        ),
                    );
                }
            }
        }
    }

    /// An environment no chain of gates from trunk leads into.
    fn unreached(&mut self, i: usize, stage: &Stage, reached: &BTreeSet<&str>) {
        if !stage.is_environment() || reached.contains(stage.name.as_str()) {
            return;
        }
        let how = if stage.ephemeral {
            "no review or trunk stage sends branch builds"
        } else {
            "no path of gates from trunk leads"
        };
        self.add(
            Severity::Error,
            Some(stage),
            stage_path(i),
            format!("nothing can ever be deployed to {}: {how} into it", stage.name),
        );
    }

    /// A soak longer than a blocking check's `max_age`: a result from when the
    /// candidate became ready is stale before the soak ends.
    fn soak_and_max_age(&mut self, i: usize, stage: &Stage) {
        let Some(soak) = stage.soak else { return };
        for (j, check) in stage.checks.iter().enumerate() {
            let Some(max_age) = check.max_age.filter(|m| check.blocking && *m < soak) else { continue };
            self.add(
                Severity::Warning,
                Some(stage),
                stage_path(i).key("checks").index(j).key("max_age"),
                format!(
                    "{} soaks for {soak} but its check {} counts for {max_age} only: a result from the start of the soak is stale before the soak ends, so the check must run again during the soak or nothing leaves {}",
                    stage.name, check.name, stage.name
                ),
            );
        }
    }

    /// An approval `ttl` shorter than the soak before the gate, or than the
    /// longest wait for one of the stage's windows: an approval given early
    /// expires before the gate can open.
    fn ttl(&mut self, i: usize, stage: &Stage, rule: &ApprovalRule) {
        let Some(ttl) = rule.ttl else { return };
        let at = stage_path(i).key("approvals").key("ttl");
        let source = i.checked_sub(1).and_then(|k| self.policy.stages.get(k));
        if let Some((source, soak)) = source.and_then(|s| s.soak.map(|soak| (s, soak))).filter(|(_, soak)| ttl < *soak)
        {
            self.add(
                Severity::Warning,
                Some(stage),
                at.clone(),
                format!(
                    "approvals to enter {} last {ttl}, less than the {soak} soak in {}: an approval given when a candidate arrives in {} expires before it may leave, and must be given again",
                    stage.name, source.name, source.name
                ),
            );
        }
        if let Some(gap) =
            reach::longest_closed_gap(&stage.windows, &stage.blackouts).filter(|gap| ttl.to_chrono() < *gap)
        {
            self.add(
                Severity::Warning,
                Some(stage),
                at,
                format!(
                    "approvals to enter {} last {ttl}, but its windows stay closed for up to {}: an approval given just after a window closes expires before the next one opens",
                    stage.name,
                    crate::Duration::minutes(gap.num_minutes())
                ),
            );
        }
    }

    fn checks(&mut self, i: usize, stage: &Stage) {
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (j, check) in stage.checks.iter().enumerate() {
            match first.get(check.name.as_str()) {
                Some(k) => self.add(
                    Severity::Error,
                    Some(stage),
                    stage_path(i).key("checks").index(j).key("name"),
                    format!(
                        "the check {} is declared twice (checks[{k}] and checks[{j}]); its results cannot tell the two apart, so keep one",
                        check.name
                    ),
                ),
                None => {
                    first.insert(&check.name, j);
                }
            }
        }
    }

    fn approvals(&mut self, i: usize, stage: &Stage, rule: &ApprovalRule) {
        if !self.has_directory() {
            return;
        }
        let at = stage_path(i).key("approvals").key("require");
        let mut unheld = false;
        for (role, count) in &rule.require {
            if !self.holders.contains_key(role.as_str()) {
                unheld = true;
                self.add(
                    Severity::Error,
                    Some(stage),
                    at.key(role.as_str()),
                    format!(
                        "entering {} needs {} from {role}, but no one in the directory holds {role}",
                        stage.name,
                        approvals(u64::from(*count))
                    ),
                );
            }
        }
        if unheld {
            // The shortfall is already explained role by role.
            return;
        }
        // Only people holding a role of the rule can fill its slots.
        let candidates: BTreeMap<&str, BTreeSet<&str>> = self
            .policy
            .directory
            .iter()
            .map(|(person, roles)| {
                let held = roles.iter().map(String::as_str).filter(|r| rule.require.contains_key(*r)).collect();
                (person.as_str(), held)
            })
            .filter(|(_, held): &(&str, BTreeSet<&str>)| !held.is_empty())
            .collect();
        let needed: u64 = rule.require.values().map(|n| u64::from(*n)).sum();
        let filled = assignment::max_filled(&rule.require, candidates.values());
        if filled < needed {
            let wanted = rule.require.iter().map(|(role, n)| format!("{n} {role}")).collect::<Vec<_>>().join(", ");
            self.add(
                Severity::Error,
                Some(stage),
                at,
                format!(
                    "entering {} needs {needed} distinct approvers ({wanted}), but the directory's people can fill at most {filled} of those slots at once (one person fills one slot)",
                    stage.name
                ),
            );
            return;
        }
        if rule.forbid_self_approval {
            // An author may not approve their own candidate: a person without
            // whom the rule cannot be met can never get their own work through.
            let critical: Vec<&str> = candidates
                .keys()
                .copied()
                .filter(|left_out| {
                    let others = candidates.iter().filter(|(p, _)| *p != left_out).map(|(_, held)| held);
                    assignment::max_filled(&rule.require, others) < needed
                })
                .collect();
            if !critical.is_empty() {
                self.add(
                    Severity::Warning,
                    Some(stage),
                    at,
                    format!(
                        "the approvals to enter {} cannot be met without {}, so a candidate {} authored can never enter {}: authors may not approve their own work; add people to the directory or set forbid_self_approval = false",
                        stage.name,
                        critical.join(" and "),
                        if critical.len() == 1 { "they" } else { "any of them" },
                        stage.name
                    ),
                );
            }
        }
    }

    fn windows_and_freezes(&mut self, i: usize, stage: &Stage) {
        let none_opens = !stage.windows.is_empty() && stage.windows.iter().all(|w| w.days.is_empty());
        for (j, _) in stage.windows.iter().enumerate().filter(|(_, w)| w.days.is_empty()) {
            let (severity, message) = if none_opens {
                (
                    Severity::Error,
                    format!(
                        "nothing can ever enter {}: this window names no weekday, and neither does any other window of the stage",
                        stage.name
                    ),
                )
            } else {
                (Severity::Warning, format!("this window of {} never opens: it names no weekday", stage.name))
            };
            self.add(severity, Some(stage), stage_path(i).key("windows").index(j).key("days"), message);
        }
        self.blackouts(i, stage, none_opens);
        for (j, freeze) in stage.freezes.iter().enumerate().filter(|(_, f)| f.until.is_none()) {
            let reason = freeze.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
            self.add(
                Severity::Warning,
                Some(stage),
                stage_path(i).key("freezes").index(j),
                format!(
                    "the freeze from {}{reason} has no end: from then on nothing enters {}, whatever its windows say, until the freeze is removed",
                    freeze.from.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    stage.name
                ),
            );
        }
    }

    /// A stage whose windows all lie inside its blackouts (or whose
    /// blackouts cover the whole week) never opens. Asked of the gate itself
    /// from a Monday in winter and one in summer, so daylight saving and
    /// zones that differ between windows and blackouts count as they will.
    fn blackouts(&mut self, i: usize, stage: &Stage, no_window_opens: bool) {
        if stage.blackouts.is_empty() || no_window_opens {
            return;
        }
        let mondays = ["2026-01-05T00:00:00Z", "2026-07-06T00:00:00Z"];
        let opens = mondays
            .iter()
            .filter_map(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
            .any(|t| crate::gate::opens_within_horizon(stage, t));
        if opens {
            return;
        }
        let message = if stage.windows.is_empty() {
            format!(
                "nothing can ever enter {}: its blackouts cover the whole week; shorten one, or remove the stage",
                stage.name
            )
        } else {
            format!(
                "nothing can ever enter {}: every one of its windows lies inside its blackouts; move a window out of them or shorten a blackout",
                stage.name
            )
        };
        self.add(Severity::Error, Some(stage), stage_path(i).key("blackouts"), message);
    }

    fn unguarded(&mut self, i: usize, stage: &Stage) {
        if !stage.is_environment() || stage.ephemeral || stage.approvals.is_some() {
            return;
        }
        // A trunk candidate reaches this stage from the closest earlier stage
        // that is not ephemeral (ephemeral environments take branch builds only).
        let Some(source) = self.policy.stages.get(..i).and_then(|before| before.iter().rev().find(|s| !s.ephemeral))
        else {
            return;
        };
        if !source.is_environment() || source.checks.iter().any(|c| c.blocking) {
            // Into the first environment after trunk is meant to be automatic
            // (the ATLAS preset's trunk → dev).
            return;
        }
        self.add(
            Severity::Warning,
            Some(stage),
            stage_path(i),
            format!(
                "candidates move from {} into {} with no approval and no blocking check of {}; add an approval rule to {} or a blocking check to {}",
                source.name, stage.name, source.name, stage.name, source.name
            ),
        );
    }

    fn monitor(&mut self, i: usize, stage: &Stage) {
        let Some(monitor) = &stage.monitor else { return };
        if stage.check(&monitor.check).is_none() {
            self.add(
                Severity::Warning,
                Some(stage),
                stage_path(i).key("monitor").key("check"),
                format!(
                    "{} monitors the check {} but does not declare it among its checks; declare it there (blocking = false if it should only be watched) or fix the name",
                    stage.name, monitor.check
                ),
            );
        }
    }

    fn flush(&mut self, i: usize, stage: &Stage) {
        if stage.flush.as_ref().is_some_and(|f| f.paths.is_empty()) {
            self.add(
                Severity::Warning,
                Some(stage),
                stage_path(i).key("flush").key("paths"),
                format!("the flush of {} never runs: it names no paths", stage.name),
            );
        }
    }
}

fn stage_path(i: usize) -> FieldPath {
    FieldPath::root().key("stage").index(i)
}

/// `1 approval` / `2 approvals`.
fn approvals(n: u64) -> String {
    if n == 1 { "1 approval".to_owned() } else { format!("{n} approvals") }
}
