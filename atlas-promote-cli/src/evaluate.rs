//! `atlas-promote evaluate`: one gate decision.

use std::io::Write;
use std::path::Path;

use atlas_promote_core::policy_test::stage_error;
use atlas_promote_core::{Decision, Evidence, GateError, Policy, Verdict};
use chrono::{DateTime, Utc};

use crate::args::{EvaluateArgs, Format};
use crate::exit::{Failure, Status};
use crate::{input, preset};

/// Evaluate the gate and print the decision; the status follows the verdict.
///
/// Between stages that are not adjacent, it says which gates lie between
/// and decides the first of them.
pub(crate) fn run(args: &EvaluateArgs, now: DateTime<Utc>, out: &mut dyn Write) -> Result<Status, Failure> {
    let (policy, source) = match (input::policy_path(args.policy.as_deref()), &args.preset) {
        (_, Some(name)) => (preset::policy(name)?, format!("preset {name}")),
        (Some(path), None) => {
            if input::is_stdin(&path) && input::is_stdin(&args.evidence) {
                return Err(Failure::BadInput(
                    "--policy - and --evidence - both want standard input; give one of them as a file".into(),
                ));
            }
            input::read_policy(&path)?
        }
        (None, None) => {
            return Err(Failure::BadInput(format!(
                "give --policy FILE or --preset NAME, or name a policy file in {}",
                input::ATLAS_POLICY
            )));
        }
    };
    let evidence = load_evidence(&args.evidence)?;
    let gates = gates_between(&policy, &args.from, &args.to)
        .map_err(|e| Failure::BadInput(format!("{source}: {}", stage_error(&policy, &e))))?;
    let (from, to) = gates.first().map_or((args.from.as_str(), args.to.as_str()), |(f, t)| (f.as_str(), t.as_str()));
    let note = (gates.len() > 1).then(|| {
        let names: Vec<String> = gates.iter().map(|(f, t)| format!("{f} → {t}")).collect();
        format!(
            "{} → {} is not one gate but {}: {}; deciding the first, {from} → {to}",
            args.from,
            args.to,
            gates.len(),
            names.join(", ")
        )
    });
    let gate = policy.gate(from, to).map_err(|e| Failure::BadInput(format!("{source}: {e}")))?;
    let decision = gate.evaluate(&evidence, args.at.unwrap_or(now));
    write_decision(&decision, note.as_deref(), args.format, out)?;
    Ok(status(&decision))
}

/// The gates a trunk candidate passes from `from` to `to`, in order: one when
/// `to` follows `from`, more when stages lie between.
fn gates_between(policy: &Policy, from: &str, to: &str) -> Result<Vec<(String, String)>, GateError> {
    let direct = match policy.gate(from, to) {
        Ok(_) => return Ok(vec![(from.to_owned(), to.to_owned())]),
        Err(e) => e,
    };
    let (Some(start), Some(end)) = (policy.stage_index(from), policy.stage_index(to)) else { return Err(direct) };
    if end <= start {
        return Err(direct);
    }
    let mut gates = Vec::new();
    let mut at = from;
    while at != to {
        let here = policy.stage_index(at).unwrap_or(end);
        // The next stage a gate leads to (ephemeral environments are skipped by trunk candidates).
        let Some(next) = policy.stages[here + 1..=end].iter().find(|s| policy.gate(at, &s.name).is_ok()) else {
            return Err(direct);
        };
        gates.push((at.to_owned(), next.name.clone()));
        at = &next.name;
    }
    Ok(gates)
}

/// The exit status of a decision: 0 allow, 3 wait, 4 block.
pub(crate) fn status(decision: &Decision) -> Status {
    match decision.verdict {
        Verdict::Allow => Status::Success,
        Verdict::Wait { .. } => Status::Wait,
        Verdict::Block => Status::Block,
    }
}

fn load_evidence(path: &Path) -> Result<Evidence, Failure> {
    let evidence = if input::is_stdin(path) {
        Evidence::from_json_str(&input::read_stdin()?, input::STDIN)
    } else {
        Evidence::from_path(path)
    };
    evidence.map_err(|e| Failure::BadInput(e.to_string()))
}

fn write_decision(decision: &Decision, note: Option<&str>, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    match format {
        Format::Text => {
            if let Some(note) = note {
                writeln!(out, "note: {note}").map_err(Failure::output)?;
            }
            // Display ends every line, the last one included.
            write!(out, "{decision}").map_err(Failure::output)
        }
        Format::Json => {
            let mut json = decision_json(decision);
            if let Some(note) = note {
                json["note"] = note.into();
            }
            let json = serde_json::to_string_pretty(&json)
                .map_err(|e| Failure::Other(format!("cannot render the decision as JSON: {e}")))?;
            writeln!(out, "{json}").map_err(Failure::output)
        }
    }
}

/// The decision as JSON, each blocker and warning with its `message`: the sentence the text output shows.
pub(crate) fn decision_json(decision: &Decision) -> serde_json::Value {
    let mut json = serde_json::to_value(decision).unwrap_or_default();
    let sentences = [
        ("blockers", decision.blockers.iter().map(ToString::to_string).collect::<Vec<_>>()),
        ("warnings", decision.warnings.iter().map(ToString::to_string).collect()),
    ];
    for (list, messages) in sentences {
        if let Some(items) = json.get_mut(list).and_then(serde_json::Value::as_array_mut) {
            for (item, message) in items.iter_mut().zip(messages) {
                item["message"] = message.into();
            }
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(verdict: Verdict) -> Decision {
        Decision {
            from: "staging".into(),
            to: "prod".into(),
            sha: "9fceb02".into(),
            at: "2026-05-06T10:00:00Z".parse().unwrap(),
            verdict,
            blockers: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn the_verdict_sets_the_exit_status() {
        let until = "2026-05-07T10:00:00Z".parse().unwrap();
        assert_eq!(status(&decision(Verdict::Allow)).code(), 0);
        assert_eq!(status(&decision(Verdict::Wait { until })).code(), 3);
        assert_eq!(status(&decision(Verdict::Block)).code(), 4);
    }

    #[test]
    fn json_has_the_verdict_at_the_top_level() {
        let mut out = Vec::new();
        write_decision(&decision(Verdict::Allow), None, Format::Json, &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["verdict"], "allow");
        assert_eq!(json["blockers"], serde_json::json!([]));
    }

    #[test]
    fn text_is_the_decision_as_sentences() {
        let mut out = Vec::new();
        write_decision(&decision(Verdict::Block), None, Format::Text, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "staging → prod for 9fceb02: blocked\n");
    }
}
