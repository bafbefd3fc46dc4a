//! The engine always says when to wake it while something waits on time
//! (issue 10, item 7).

#![cfg(feature = "testkit")]

use atlas_promote_core::testkit::Scenario;
use atlas_promote_core::{Duration, Policy, Result, Verdict};

/// ATLAS with a soak of two hours in dev.
fn soaking_in_dev() -> Scenario {
    let mut policy = Policy::atlas();
    let dev = policy.stages.iter_mut().find(|s| s.name == "dev").expect("ATLAS has dev");
    dev.soak = Some(Duration::hours(2));
    let mut s = Scenario::new(policy);
    s.person("dan", &["developer"]);
    s
}

#[tokio::test]
async fn the_tick_in_which_a_soak_begins_names_when_it_ends() -> Result<()> {
    // Given c1, approved into staging, on its way to dev, which soaks for 2 h
    let mut s = soaking_in_dev();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.approve("dan", "staging", "c1").await?;
    let deployed = s.now();
    // When the tick in which its deploy (and flush) finish, and its soak begins, comes
    let mut tick = s.engine.tick().await?;
    for _ in 0..10 {
        if s.state("c1").await?.to_string() == "live in dev" {
            break;
        }
        tick = s.engine.tick().await?;
    }
    assert_eq!(s.state("c1").await?.to_string(), "live in dev", "{tick}");
    // Then that tick names the instant the gate into staging opens
    let plan = s.plan("c1").await?;
    let decision = plan.steps[0].decision.as_ref().expect("the next gate's decision");
    assert_eq!(decision.verdict, Verdict::Wait { until: deployed + chrono::TimeDelta::hours(2) }, "{plan}");
    assert_eq!(tick.next_wake, Some(deployed + chrono::TimeDelta::hours(2)), "{tick}");
    Ok(())
}

#[tokio::test]
async fn a_program_that_sleeps_until_the_next_wake_does_not_oversleep_a_soak() -> Result<()> {
    // Given c1, approved into staging, merged; dev soaks for 2 h
    let mut s = soaking_in_dev();
    s.merge("c1", "alice", &["src/app.rs"]).await?;
    s.approve("dan", "staging", "c1").await?;
    // When a program ticks once, then sleeps until the wake-up the tick names
    for _ in 0..20 {
        let tick = s.engine.tick().await?;
        match tick.next_wake {
            Some(wake) if wake > s.now() => s.at(wake),
            _ => break,
        };
    }
    // Then it wakes when the soak ends and c1 moves on to staging
    assert_eq!(s.state("c1").await?.to_string(), "live in staging");
    Ok(())
}
