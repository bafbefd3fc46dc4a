//! The README's embedding example: a `Promoter` on in-memory backends takes
//! one merged commit from trunk through staging to prod (`cargo run --example embed`).

use std::sync::Arc;

use atlas_promote::chrono::{TimeDelta, TimeZone, Utc};
use atlas_promote::machine::State;
use atlas_promote::memory::{MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore, StaticDirectory};
use atlas_promote::{ApprovalDecision, Candidate, ManualClock, Policy, Promoter};

const POLICY: &str = r#"
name = "embedded"

[directory]                      # who holds which role (or your own Directory)
pat = ["product-owner"]

[[stage]]
name = "trunk"
kind = "trunk"

[[stage]]
name = "staging"
kind = "environment"
deploy = { workflow = "deploy", parameters = { environment = "staging" } }
soak = "2h"                      # a candidate stays in staging two hours

[[stage]]
name = "prod"
kind = "environment"
deploy = { workflow = "deploy", parameters = { environment = "prod" } }
approvals = { require = { product-owner = 1 }, forbid_self_approval = true }
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policy = Policy::from_toml_str(POLICY, "embedded.toml")?;
    // A simulated clock, so that the two hours of soak pass at once; a real
    // program leaves `with_clock` out (the system clock).
    let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 4, 9, 0, 0).unwrap());
    // In-memory stand-ins; in production the CircleCI or GitHub backend
    // (features `circleci`, `github`) or your own adapter plays these roles.
    // This CI finishes each run, successfully, when the engine next asks.
    let ci = MemoryCi::new().with_clock(clock.clone()).with_auto_complete(true);
    let engine = Promoter::builder(policy.clone())
        .with_ci(Arc::new(ci))
        .with_checks(Arc::new(MemoryChecks::new()))
        .with_directory(Arc::new(StaticDirectory::from_policy(&policy)))
        .with_source_control(Arc::new(MemorySourceControl::new()))
        .with_store(Arc::new(MemoryStore::new())) // or a SQL store (features `sqlite`, `postgres`)
        .with_clock(Arc::new(clock.clone()))
        .build()?;

    // A webhook of your forge says c1 was merged; pat approves it into prod.
    engine.merged(Candidate::trunk("c1", ["alice"]), engine.now()).await?;
    engine.approve("pat", "prod", "c1", ApprovalDecision::Approve).await?;

    for _ in 0..100 {
        let tick = engine.tick().await?;
        print!("{tick}"); // what happened: decisions, deploys, approvals requested, alerts, failures
        let state = engine.promotion("c1").await?.value.promotion.state;
        if matches!(&state, State::Live { stage, .. } if stage == "prod") {
            println!("c1 is {state}");
            return Ok(());
        }
        // Wait until a gate opens or a run needs polling; a webhook can wake
        // the engine earlier through `engine.handle(notice)`. A real program
        // sleeps: tokio::time::sleep((wake - engine.now()).to_std().unwrap_or_default()).await
        let wake = tick.next_wake.unwrap_or(engine.now() + TimeDelta::minutes(5));
        clock.set(wake);
    }
    Err("c1 did not reach prod in 100 ticks".into())
}
