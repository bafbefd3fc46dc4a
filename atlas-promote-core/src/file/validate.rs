//! Validation of a parsed policy: the rules a file's shape cannot express.
//!
//! What makes a policy *wrong* is an error here; what makes it merely
//! *suspicious* (a window with no weekday, a rule the directory cannot fill)
//! is left to [`Policy::lint`](crate::Policy::lint).

use std::collections::HashMap;

use chrono::SecondsFormat;
use globset::GlobBuilder;

use super::tree::FieldPath;
use crate::policy::{ApprovalRule, Flush, LocalTime, Policy, Stage, StageKind, Window};

/// One mistake: the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub(crate) path: FieldPath,
    pub(crate) message: String,
}

/// Every mistake in `policy`, in no particular order.
pub(crate) fn validate(policy: &Policy) -> Vec<Invalid> {
    let mut found = Mistakes(Vec::new());
    let root = FieldPath::root();
    if policy.name.trim().is_empty() {
        found.add(root.key("name"), "the policy needs a name");
    }
    for (person, roles) in &policy.directory {
        let at = root.key("directory").key(person.as_str());
        if person.trim().is_empty() {
            found.add(at.clone(), "a person in the directory needs a name");
        }
        for (j, role) in roles.iter().enumerate() {
            if role.trim().is_empty() {
                found.add(at.index(j), "a role name must not be empty");
            }
        }
    }
    if let Some(overrides) = &policy.overrides {
        let at = root.key("overrides").key("roles");
        if overrides.roles.is_empty() {
            found.add(at.clone(), "an override rule must name at least one role whose holders may override a gate");
        }
        for (j, role) in overrides.roles.iter().enumerate() {
            if role.trim().is_empty() {
                found.add(at.index(j), "a role name must not be empty");
            }
        }
    }
    if policy.stages.is_empty() {
        found.add(
            root.key("stage"),
            "the policy has no stages; add [[stage]] tables: review stages, then trunk, then environments",
        );
    }
    stage_names_and_order(policy, &mut found);
    for (i, stage) in policy.stages.iter().enumerate() {
        stage_rules(i, stage, &root.key("stage").index(i), &mut found);
    }
    found.0
}

struct Mistakes(Vec<Invalid>);

impl Mistakes {
    fn add(&mut self, path: FieldPath, message: impl Into<String>) {
        self.0.push(Invalid { path, message: message.into() });
    }
}

fn stage_names_and_order(policy: &Policy, found: &mut Mistakes) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut trunk: Option<(usize, &str)> = None;
    let mut environment: Option<(usize, &str)> = None;
    for (i, stage) in policy.stages.iter().enumerate() {
        let at = FieldPath::root().key("stage").index(i);
        let name = stage.name.as_str();
        if name.trim().is_empty() {
            found.add(at.key("name"), "a stage needs a name");
        } else if let Some(first) = names.get(name) {
            found.add(
                at.key("name"),
                format!("stage name {name:?} is already used by stage[{first}]; stage names must be unique"),
            );
        } else {
            names.insert(name, i);
        }
        let kind = at.key("kind");
        match stage.kind {
            StageKind::Review => {
                if let Some((j, before)) = trunk.or(environment) {
                    let what = policy.stages.get(j).map_or(StageKind::Trunk, |s| s.kind);
                    found.add(
                        kind,
                        format!(
                            "review stages come first, but review stage {name:?} follows the {what} stage {before:?} (stage[{j}])"
                        ),
                    );
                }
            }
            StageKind::Trunk => {
                if let Some((j, other)) = trunk {
                    found.add(
                        kind,
                        format!("a policy has at most one trunk stage, and stage[{j}] {other:?} is one already"),
                    );
                } else if let Some((j, env)) = environment {
                    found.add(
                        kind,
                        format!(
                            "the trunk stage comes before every environment, but {name:?} follows the environment {env:?} (stage[{j}])"
                        ),
                    );
                } else {
                    trunk = Some((i, name));
                }
            }
            StageKind::Environment => {
                environment = environment.or(Some((i, name)));
            }
        }
    }
}

fn stage_rules(i: usize, stage: &Stage, at: &FieldPath, found: &mut Mistakes) {
    let kind = stage.kind;
    if !stage.is_environment() {
        // Review and trunk stages are never deployed to (DESIGN §3).
        if stage.deploy.is_some() {
            found.add(
                at.key("deploy"),
                format!(
                    "a {kind} stage is not deployed to, so it cannot have a deploy workflow; only environments can"
                ),
            );
        }
        if stage.flush.is_some() {
            found.add(
                at.key("flush"),
                format!(
                    "a {kind} stage is not deployed to, so it has nothing to flush; only environments can have a flush"
                ),
            );
        }
        if stage.monitor.is_some() {
            found.add(at.key("monitor"), format!("nothing runs live in a {kind} stage, so there is nothing to monitor; only environments can have a monitor"));
        }
        if stage.ephemeral {
            found.add(
                at.key("ephemeral"),
                format!("only an environment can be ephemeral; a {kind} stage is not deployed to"),
            );
        }
    }
    if i == 0 {
        // Approvals, windows and freezes guard the way *into* a stage.
        let never = "nothing enters the first stage through a gate, so";
        if stage.approvals.is_some() {
            found.add(
                at.key("approvals"),
                format!("{never} its approvals would never apply; put them on the stage they guard"),
            );
        }
        if !stage.windows.is_empty() {
            found.add(
                at.key("windows"),
                format!("{never} its windows would never apply; put them on the stage they guard"),
            );
        }
        if !stage.blackouts.is_empty() {
            found.add(
                at.key("blackouts"),
                format!("{never} its blackouts would never apply; put them on the stage they guard"),
            );
        }
        if !stage.freezes.is_empty() {
            found.add(
                at.key("freezes"),
                format!("{never} its freezes would never apply; put them on the stage they guard"),
            );
        }
    }
    if let Some(deploy) = &stage.deploy
        && deploy.workflow.trim().is_empty()
    {
        found.add(at.key("deploy").key("workflow"), "the deploy workflow needs a name");
    }
    if let Some(flush) = &stage.flush {
        flush_rules(flush, &at.key("flush"), found);
    }
    for (j, check) in stage.checks.iter().enumerate() {
        let at = at.key("checks").index(j);
        if check.name.trim().is_empty() {
            found.add(at.key("name"), "a check needs a name");
        }
        if check.max_age.is_some_and(|age| age.as_minutes() == 0) {
            found.add(
                at.key("max_age"),
                "a max_age of 0m makes every result stale; use at least 1m, or leave max_age out for no limit",
            );
        }
    }
    if let Some(rule) = &stage.approvals {
        approval_rules(rule, &at.key("approvals"), found);
    }
    for (j, window) in stage.windows.iter().enumerate() {
        window_rules(window, &at.key("windows").index(j), found);
    }
    for (j, blackout) in stage.blackouts.iter().enumerate() {
        weekly_rules("blackout", blackout.start, blackout.end, &at.key("blackouts").index(j), found);
    }
    for (j, freeze) in stage.freezes.iter().enumerate() {
        if let Some(until) = freeze.until.filter(|until| *until <= freeze.from) {
            found.add(
                at.key("freezes").index(j).key("until"),
                format!(
                    "this freeze ends ({}) before it begins ({}); until must be later than from",
                    until.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                    freeze.from.to_rfc3339_opts(SecondsFormat::AutoSi, true)
                ),
            );
        }
    }
    if let Some(monitor) = &stage.monitor
        && monitor.check.trim().is_empty()
    {
        found.add(at.key("monitor").key("check"), "a monitor needs the name of the check it watches");
    }
}

fn flush_rules(flush: &Flush, at: &FieldPath, found: &mut Mistakes) {
    if flush.workflow.trim().is_empty() {
        found.add(at.key("workflow"), "the flush workflow needs a name");
    }
    for (j, pattern) in flush.paths.iter().enumerate() {
        if pattern.is_empty() {
            found.add(at.key("paths").index(j), "a path pattern must not be empty");
        } else if let Err(e) = GlobBuilder::new(pattern).literal_separator(true).build() {
            found.add(at.key("paths").index(j), format!("invalid glob {pattern:?}: {}", e.kind()));
        }
    }
}

fn approval_rules(rule: &ApprovalRule, at: &FieldPath, found: &mut Mistakes) {
    let require = at.key("require");
    if rule.require.is_empty() {
        found.add(
            require.clone(),
            "an approval rule must name at least one role, e.g. require = { developer = 1 }; leave approvals out to need none",
        );
    }
    for (role, count) in &rule.require {
        if role.trim().is_empty() {
            found.add(require.key(role.as_str()), "a role name must not be empty");
        } else if *count == 0 {
            found.add(
                require.key(role.as_str()),
                format!("needs at least 1 approver holding {role}; remove {role} from the rule to require none"),
            );
        }
    }
    if rule.ttl.is_some_and(|ttl| ttl.as_minutes() == 0) {
        found.add(
            at.key("ttl"),
            "a ttl of 0m expires every approval at once; use at least 1m, or leave ttl out for no limit",
        );
    }
}

fn window_rules(window: &Window, at: &FieldPath, found: &mut Mistakes) {
    weekly_rules("window", window.start, window.end, at, found);
}

/// The times of a window or a blackout (`what`).
fn weekly_rules(what: &str, start: LocalTime, end: LocalTime, at: &FieldPath, found: &mut Mistakes) {
    if start.is_end_of_day() {
        found.add(
            at.key("start"),
            format!("a {what} starts at a time of day from 00:00 to 23:59; 24:00 is only an end (the end of the day)"),
        );
    } else if start == end {
        found.add(
            at.key("end"),
            format!(
                "a {what} that starts and ends at {start} is either empty or a whole day; to run past midnight, end before the start (e.g. 22:00 to 06:00), and for a whole day write 00:00 to 24:00"
            ),
        );
    }
}
