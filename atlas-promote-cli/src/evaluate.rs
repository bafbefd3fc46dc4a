//! `atlas-promote evaluate`: one gate decision.

use std::io::{Read, Write};
use std::path::Path;

use atlas_promote_core::{Decision, Evidence, Policy, Verdict};
use chrono::{DateTime, Utc};

use crate::args::{EvaluateArgs, Format};
use crate::exit::{Failure, Status};
use crate::preset;

/// Evaluate the gate and print the decision; the status follows the verdict.
pub(crate) fn run(args: &EvaluateArgs, now: DateTime<Utc>, out: &mut dyn Write) -> Result<Status, Failure> {
    let (policy, source) = match (&args.policy, &args.preset) {
        (Some(path), _) => {
            (Policy::from_path(path).map_err(|e| Failure::BadInput(e.to_string()))?, path.display().to_string())
        }
        (None, Some(name)) => (preset::policy(name)?, format!("preset {name}")),
        // clap's argument group requires one of the two.
        (None, None) => return Err(Failure::BadInput("give --policy FILE or --preset NAME".into())),
    };
    let evidence = load_evidence(&args.evidence)?;
    let gate = policy.gate(&args.from, &args.to).map_err(|e| Failure::BadInput(format!("{source}: {e}")))?;
    let decision = gate.evaluate(&evidence, args.at.unwrap_or(now));
    write_decision(&decision, args.format, out)?;
    Ok(status(&decision))
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
    let evidence = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::BadInput(format!("<stdin>: cannot read: {e}")))?;
        Evidence::from_json_str(&text, "<stdin>")
    } else {
        Evidence::from_path(path)
    };
    evidence.map_err(|e| Failure::BadInput(e.to_string()))
}

fn write_decision(decision: &Decision, format: Format, out: &mut dyn Write) -> Result<(), Failure> {
    match format {
        // Display ends every line, the last one included.
        Format::Text => write!(out, "{decision}").map_err(Failure::output),
        Format::Json => {
            let json = serde_json::to_string_pretty(decision)
                .map_err(|e| Failure::Other(format!("cannot render the decision as JSON: {e}")))?;
            writeln!(out, "{json}").map_err(Failure::output)
        }
    }
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
        write_decision(&decision(Verdict::Allow), Format::Json, &mut out).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(json["verdict"], "allow");
        assert_eq!(json["blockers"], serde_json::json!([]));
    }

    #[test]
    fn text_is_the_decision_as_sentences() {
        let mut out = Vec::new();
        write_decision(&decision(Verdict::Block), Format::Text, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "staging → prod for 9fceb02: blocked\n");
    }
}
