//! The ATLAS release strategy end to end: one change, c1, from pull request
//! to prod, on in-memory backends and a simulated clock.
//!
//! ```text
//! cargo run --example atlas_release
//! ```
//!
//! A [`Scenario`] runs the real engine ([`atlas_promote::Promoter`]) with an
//! in-memory CI system, check source, directory, git history and store, all
//! on one manual clock, and keeps a timeline of what happened: each gate
//! decision with its blockers, each deploy, flush, approval and alert. The
//! policy is the ATLAS preset plus a deployment window for prod. A
//! release-policy test drives a `Scenario` the same way and asserts instead
//! of printing (see `atlas-promote-core/tests/engine_flow.rs`).

use atlas_promote::chrono::{DateTime, TimeDelta, Utc};
use atlas_promote::testkit::Scenario;
use atlas_promote::{CheckStatus, Error, LocalTime, Policy, Weekday, Window};

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result {
    // ATLAS, and prod deploys only Monday to Thursday, 09:00–16:00 in Berlin.
    let mut policy = Policy::atlas();
    let prod = policy.stages.iter_mut().find(|s| s.name == "prod").ok_or("ATLAS has a prod stage")?;
    prod.windows = vec![Window {
        days: vec![Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu],
        start: LocalTime::hm(9, 0).ok_or("09:00")?,
        end: LocalTime::hm(16, 0).ok_or("16:00")?,
        tz: atlas_promote::chrono_tz::Europe::Berlin,
    }];

    // The clock starts on Monday 2026-05-04, 08:00 UTC.
    let mut s = Scenario::new(policy);
    s.person("alice", &["developer", "dev-team"]);
    s.person("dan", &["developer", "dev-team"]);
    s.person("pat", &["product-owner"]);

    // Last week's release, c0, runs in every environment.
    last_weeks_release(&mut s, "c0").await?;
    let mut out = Printer::after(&s);
    println!("c0, last week's release, is live in dev, staging and prod. Times are UTC.");

    out.section(&s, "Review: alice opens a pull request; another developer must approve it");
    s.at(at("2026-05-11T08:00:00Z"));
    s.open_review("c1", "alice", &["pipelines/etl.py", "src/model.rs"]).await?;
    s.run_until_idle().await?;
    for check in ["build", "lint", "unit"] {
        s.report("c1", check, CheckStatus::Passed, TimeDelta::minutes(3));
    }
    s.run_until_idle().await?;
    s.approve("dan", "trunk", "c1").await?;
    s.run_until_idle().await?;

    out.section(&s, "Dev: the merge deploys to dev; pipeline code changed, so a flush run follows");
    s.advance(TimeDelta::minutes(5));
    s.merge("c1", "alice", &["pipelines/etl.py", "src/model.rs"]).await?;
    s.run_until_idle().await?;
    // The embedding API: the engine plans without acting.
    out.plan(&s, s.engine.plan("c1").await?);

    out.section(&s, "Dev: nightly checks (advisory), then a developer's approval");
    s.at(at("2026-05-11T22:00:00Z"));
    s.nightly("dev", "c1", CheckStatus::Passed);
    s.run_until_idle().await?;
    s.at(at("2026-05-12T08:30:00Z"));
    s.approve("dan", "staging", "c1").await?;
    s.run_until_idle().await?;

    out.section(&s, "Staging: a failing data-quality night blocks the way to prod");
    s.at(at("2026-05-12T22:00:00Z"));
    s.report("c1", "integration", CheckStatus::Passed, TimeDelta::minutes(25));
    s.report("c1", "system", CheckStatus::Passed, TimeDelta::minutes(10));
    s.report("c1", "data-quality", CheckStatus::Failed, TimeDelta::minutes(5));
    s.run_until_idle().await?;
    out.plan(&s, s.plan("c1").await?);

    out.section(&s, "Staging: the next night passes");
    s.at(at("2026-05-13T22:00:00Z"));
    s.nightly("staging", "c1", CheckStatus::Passed);
    s.run_until_idle().await?;

    out.section(&s, "Prod: the product owner and the dev team approve; the author may not");
    s.at(at("2026-05-14T05:30:00Z"));
    s.approve("pat", "prod", "c1").await?;
    let refused = s.approve("alice", "prod", "c1").await;
    assert!(matches!(refused, Err(Error::Refused { .. })), "{refused:?}");
    s.approve("dan", "prod", "c1").await?;
    let ticks = s.run_until_idle().await?;
    // An embedding program sleeps until the engine's next wake-up, then ticks again.
    let wake = ticks.iter().filter_map(|t| t.next_wake).min().ok_or("the engine asks to be woken")?;
    out.flush(&s);
    let berlin = wake.with_timezone(&atlas_promote::chrono_tz::Europe::Berlin);
    println!(
        "  (the engine asks to be called again at {}, {})",
        wake.format("%a %m-%d %H:%M"),
        berlin.format("%H:%M %Z in Berlin")
    );

    out.section(&s, "Prod: the window opens and c1 is deployed");
    s.run_until_settled(10).await?;
    out.flush(&s);
    println!("  (c1 is {})", s.state("c1").await?);

    out.section(&s, "Prod: frequent data-quality checks watch for unsupported values");
    s.at(at("2026-05-14T10:00:00Z"));
    s.report("c1", "data-quality", CheckStatus::Passed, TimeDelta::minutes(5));
    s.run_until_idle().await?;
    s.at(at("2026-05-14T12:00:00Z"));
    s.report("c1", "data-quality", CheckStatus::Failed, TimeDelta::minutes(5));
    s.run_until_idle().await?;
    out.flush(&s);

    let audit = s.audit().await?;
    println!("\nThe audit log holds {} entries; its hash chain verifies.", audit.len());
    Ok(())
}

/// Drive `sha` to prod without printing: the state the story starts from.
async fn last_weeks_release(s: &mut Scenario, sha: &str) -> Result {
    s.merge(sha, "dan", &["pipelines/etl.py", "src/model.rs"]).await?;
    s.run_until_idle().await?;
    s.approve("alice", "staging", sha).await?;
    s.run_until_idle().await?;
    s.at(at("2026-05-04T22:00:00Z"));
    s.nightly("staging", sha, CheckStatus::Passed);
    s.at(at("2026-05-05T08:00:00Z"));
    s.approve("pat", "prod", sha).await?;
    s.approve("alice", "prod", sha).await?;
    s.run_until_idle().await?;
    let state = s.state(sha).await?.to_string();
    if state != "live in prod" {
        return Err(format!("{sha} should be live in prod, but is {state}:\n{}", s.timeline().join("\n")).into());
    }
    Ok(())
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("a valid instant")
}

/// Prints the scenario's timeline as it grows, under section titles.
struct Printer {
    shown: usize,
}

impl Printer {
    /// Start printing after what `s` already did.
    fn after(s: &Scenario) -> Self {
        Self { shown: s.timeline().len() }
    }

    fn section(&mut self, s: &Scenario, title: &str) {
        self.flush(s);
        println!("\n── {title}");
    }

    fn flush(&mut self, s: &Scenario) {
        for line in &s.timeline()[self.shown..] {
            println!("{line}");
        }
        self.shown = s.timeline().len();
    }

    fn plan(&mut self, s: &Scenario, plan: atlas_promote::Plan) {
        self.flush(s);
        let plan = plan.to_string().replace('\n', "\n  ");
        println!("  plan: {plan}");
    }
}
