//! Evaluate every sample in `examples/evidence/` against the ATLAS policy and
//! explain each decision.
//!
//! ```text
//! cargo run --example explain
//! ```
//!
//! The policy test file `examples/tests/atlas.toml` says, for each sample,
//! which gate to evaluate, at which instant, and the verdict and blockers it
//! must get; `atlas-promote test examples/tests` runs it. The same decision
//! is one command away:
//! `atlas-promote evaluate --preset atlas --from … --to … --evidence … --at …`.

use std::error::Error;
use std::path::Path;

use atlas_promote::Policy;
use atlas_promote::chrono::SecondsFormat;
use atlas_promote::policy_test::PolicyTests;

fn main() -> Result<(), Box<dyn Error>> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tests/atlas.toml");
    let tests = PolicyTests::from_path(&file)?;
    let policy = Policy::atlas();
    let mut differ = 0;

    for case in &tests.cases {
        let decision = policy.gate(&case.from, &case.to)?.evaluate(&case.evidence, case.at);
        let evidence = case.evidence_file.as_deref().and_then(Path::file_name).unwrap_or_default();
        println!("── {} at {}", evidence.display(), case.at.to_rfc3339_opts(SecondsFormat::Secs, true));
        println!("   {}", case.name);
        print!("{decision}");
        if case.expect.mismatch(&decision).is_some() {
            differ += 1;
            println!("  note: the test file expects {}", case.expect.sentence());
        }
        println!();
    }

    if let Some(first) = tests.cases.first() {
        let evidence = first.evidence_file.as_deref().and_then(Path::file_name).unwrap_or_default();
        println!("Each decision is one command away, e.g.:");
        println!(
            "  cargo run -p atlas-promote-cli -- evaluate --preset atlas --from {} --to {} --evidence examples/evidence/{} --at {}",
            first.from,
            first.to,
            evidence.display(),
            first.at.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
    }
    if differ > 0 {
        println!("{differ} of {} decisions differ from what the test file expects", tests.cases.len());
    }
    Ok(())
}
