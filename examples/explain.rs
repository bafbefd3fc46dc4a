//! Evaluate every sample in `examples/evidence/` against the ATLAS policy and
//! explain each decision.
//!
//! ```text
//! cargo run --example explain
//! ```
//!
//! `examples/evidence/index.json` says, for each sample, which gate to
//! evaluate, at which instant, and the verdict the gate rules give. The same
//! decision is one command away:
//! `atlas-promote evaluate --preset atlas --from … --to … --evidence … --at …`.

use std::error::Error;
use std::path::Path;

use atlas_promote::chrono::{DateTime, SecondsFormat, Utc};
use atlas_promote::serde_json::{Map, Value};
use atlas_promote::{Evidence, Policy, Verdict};

/// One entry of `examples/evidence/index.json`.
#[derive(Debug)]
struct Sample {
    /// The evidence file, relative to `examples/evidence/`.
    evidence: String,
    from: String,
    to: String,
    at: DateTime<Utc>,
    /// The verdict the gate rules give: `allow`, `wait` or `block`.
    verdict: String,
    /// The kinds of the blockers the gate rules give, in rule order.
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
            println!("  note: the index expects {} {:?}", sample.verdict, sample.blockers);
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
        println!("{differ} of {} decisions differ from the index (is the gate engine complete?)", samples.len());
    }
    Ok(())
}

fn read_index(path: &Path) -> Result<Vec<Sample>, Box<dyn Error>> {
    let place = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{place}: {e}"))?;
    let index: Value = atlas_promote::serde_json::from_str(&text).map_err(|e| format!("{place}: {e}"))?;
    let entries = index.as_array().ok_or_else(|| format!("{place}: expected an array of samples"))?;
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let entry = entry.as_object().ok_or_else(|| format!("{place}: sample {i} is not an object"))?;
            Sample::read(entry).map_err(|e| format!("{place}: sample {i}: {e}").into())
        })
        .collect()
}

impl Sample {
    fn read(entry: &Map<String, Value>) -> Result<Self, String> {
        const FIELDS: [&str; 7] = ["evidence", "from", "to", "at", "verdict", "blockers", "story"];
        if let Some(unknown) = entry.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(format!("unknown field `{unknown}`"));
        }
        let text = |field: &str| {
            entry.get(field).and_then(Value::as_str).map(str::to_owned).ok_or(format!("`{field}` must be a string"))
        };
        let blockers = entry
            .get("blockers")
            .and_then(Value::as_array)
            .and_then(|kinds| kinds.iter().map(|k| k.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            .ok_or("`blockers` must be an array of strings")?;
        Ok(Self {
            evidence: text("evidence")?,
            from: text("from")?,
            to: text("to")?,
            at: text("at")?.parse().map_err(|e| format!("`at`: {e}"))?,
            verdict: text("verdict")?,
            blockers,
            story: text("story")?,
        })
    }
}
