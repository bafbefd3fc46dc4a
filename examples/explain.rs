//! Evaluate every sample in `examples/evidence/` against the ATLAS policy and
//! explain each decision.
//!
//! ```text
//! cargo run --example explain
//! ```
//!
//! `examples/evidence/index.json` says, for each sample, which gate to
//! evaluate, at which instant, and the verdict DESIGN §4 gives. The same
//! decision is one command away:
//! `atlas-promote evaluate --preset atlas --from … --to … --evidence … --at …`.

use std::error::Error;
use std::path::Path;

use atlas_promote::{Evidence, Policy, Verdict};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;

/// One entry of `examples/evidence/index.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    /// The evidence file, relative to `examples/evidence/`.
    evidence: String,
    from: String,
    to: String,
    at: DateTime<Utc>,
    /// The verdict DESIGN §4 gives: `allow`, `wait` or `block`.
    verdict: String,
    /// The kinds of the blockers DESIGN §4 gives, in rule order.
    blockers: Vec<String>,
    /// What the evidence shows, in a sentence.
    story: String,
}

fn main() -> Result<(), Box<dyn Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/evidence");
    let samples = read_index(&dir.join("index.json"))?;
    let policy = Policy::atlas();
    let mut differ = 0;

    for sample in &samples {
        let evidence = Evidence::from_path(dir.join(&sample.evidence))?;
        let decision = policy.gate(&sample.from, &sample.to)?.evaluate(&evidence, sample.at);

        println!("── {} at {}", sample.evidence, sample.at.to_rfc3339_opts(SecondsFormat::Secs, true));
        println!("   {}", sample.story);
        print!("{decision}");
        let verdict = match decision.verdict {
            Verdict::Allow => "allow",
            Verdict::Wait { .. } => "wait",
            Verdict::Block => "block",
        };
        let kinds: Vec<_> = decision.blockers.iter().map(|b| b.kind()).collect();
        if verdict != sample.verdict || kinds != sample.blockers {
            differ += 1;
            println!("  note: DESIGN §4 gives {} {:?}", sample.verdict, sample.blockers);
        }
        println!();
    }

    if let Some(first) = samples.first() {
        println!("Each decision is one command away, e.g.:");
        println!(
            "  cargo run -p atlas-promote-cli -- evaluate --preset atlas --from {} --to {} --evidence examples/evidence/{} --at {}",
            first.from,
            first.to,
            first.evidence,
            first.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
    }
    if differ > 0 {
        println!("{differ} of {} decisions differ from DESIGN §4 (is the gate engine complete?)", samples.len());
    }
    Ok(())
}

fn read_index(path: &Path) -> Result<Vec<Sample>, Box<dyn Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let samples = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(samples)
}
