//! Deterministic simulation of the engine under faults (issue 6, item 1).
//!
//! Each seed builds a world: a random policy of the ATLAS family, two
//! engine instances on one in-memory store, in-memory backends, a manual
//! clock, and a random stream of events (merges, duplicated and late merge
//! notices, branch builds, deploys and flushes that succeed, fail or hang,
//! nightly and monitor check results, approvals, rejections, withdrawals,
//! role changes, retries, holds, overrides, rollbacks, clock jumps across
//! DST changes, two engines ticking at once, and crashes at random points
//! followed by a reload from the store). Nothing but the seed decides
//! anything: one PRNG (SplitMix64) per seed, no real time, no threads.
//!
//! The invariants, and where they are checked:
//!
//! - **I1** (oracle, at every store commit that moves a promotion into a
//!   stage): a gate entry is allowed by `Gate::evaluate` on the evidence
//!   visible at that instant, gathered by the simulation itself (its own
//!   record of authors and roles, every check result, the stored and the
//!   external approvals), with windows and freezes also checked without the
//!   gate's code; or the same commit carries an `override.granted` entry of
//!   a person holding an override role whose bypass covers every blocker; a
//!   retry (`retry` entry) passes the target's own rules; a rollback
//!   (`redeploy` entry) brings back a commit that ran there and was not
//!   rolled back out of it. No entry into a held stage. The flush decision
//!   matches the simulation's own commit history. A promotion goes live or
//!   fails only on a CI run of its key with that outcome.
//! - **I2** (CI wrapper at every trigger, and after every step on the CI's
//!   record): no idempotency key is triggered twice; every trigger follows
//!   a stored decision (persist before act).
//! - **I3** (at every trigger, and after every step): no run starts in an
//!   environment (per branch for ephemeral ones) while another is unfinished
//!   there; at most one promotion deploys into an environment, and it is the
//!   one the environment marks in flight.
//! - **I4** (after every step): the audit log never shrinks nor changes its
//!   last record; every approval `approve` accepted is still stored.
//! - **I5** (after every step, each new record; the whole log at the end of
//!   the seed): the hash chain verifies (`audit::chain`, `audit::verify`).
//! - **I6** (after every step): an environment's live commit has a deploy
//!   there that succeeded, and, when nothing is in flight, the last one.
//! - **I7** (end of seed): once faults stop and the CI finishes every run,
//!   nothing stays in flight.
//! - **I8** (at every entry): a trunk commit never enters an environment
//!   over a newer commit built on it, except by a rollback.
//!
//! Self-approvals must be refused, and nothing else an approver does.
//!
//! Environment variables:
//!
//! - `ATLAS_SIM_SEEDS=n`: run n seeds (default 10,000).
//! - `ATLAS_SIM_FIRST=n`: start at seed n (default 0).
//! - `ATLAS_SIM_STEPS=n`: events per seed (default 40).
//! - `ATLAS_SIM_SEED=n`: replay seed n alone, and print its trace.
//! - `ATLAS_SIM_THREADS=n`: seeds run on n threads, each seed on one (default 2).
//!
//! A failing seed prints `ATLAS_SIM_SEED=<n>` and its trace.

#![allow(missing_docs, unreachable_pub)]

#[path = "simulation/oracle.rs"]
mod oracle;
#[path = "simulation/policy.rs"]
mod policy;
#[path = "simulation/rng.rs"]
mod rng;
#[path = "simulation/world.rs"]
mod world;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use oracle::Stats;
use world::World;

/// CPU time this process used so far (user + system, all threads), from
/// /proc/self/stat at 100 ticks per second; `None` where there is no /proc.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().replace('_', "").parse().ok())
}

struct SeedRun {
    violations: Vec<String>,
    stats: Stats,
    trace: Vec<String>,
}

fn run_seed(runtime: &tokio::runtime::Runtime, seed: u64, steps: usize, trace: bool) -> SeedRun {
    let result = catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(async {
            let mut world = World::new(seed, trace);
            for n in 0..steps {
                world.step(n).await;
                if !world.violations().is_empty() {
                    break;
                }
            }
            if world.violations().is_empty() {
                world.finish().await;
            }
            SeedRun { violations: world.violations(), stats: world.stats(), trace: world.take_trace() }
        })
    }));
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        SeedRun { violations: vec![format!("panic: {message}")], stats: Stats::default(), trace: Vec::new() }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a current-thread runtime")
}

fn replay(seed: u64, steps: usize) -> SeedRun {
    run_seed(&runtime(), seed, steps, true)
}

#[test]
fn simulation() {
    let steps = env("ATLAS_SIM_STEPS").unwrap_or(40) as usize;
    if let Some(seed) = env("ATLAS_SIM_SEED") {
        let run = replay(seed, steps);
        println!("{}", run.trace.join("\n"));
        assert!(run.violations.is_empty(), "ATLAS_SIM_SEED={seed} violates:\n{}", run.violations.join("\n"));
        println!("ATLAS_SIM_SEED={seed}: no violation in {steps} steps");
        return;
    }
    let seeds = env("ATLAS_SIM_SEEDS").unwrap_or(10_000);
    let first = env("ATLAS_SIM_FIRST").unwrap_or(0);
    let threads = env("ATLAS_SIM_THREADS").unwrap_or(2).max(1);
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let runtime = runtime();
                let mut stats = Stats::default();
                let mut failed = Vec::new();
                let mut seed = first + t;
                while seed < first + seeds {
                    let run = run_seed(&runtime, seed, steps, false);
                    stats.add(&run.stats);
                    if let Some(v) = run.violations.first() {
                        failed.push((seed, v.clone()));
                    }
                    seed += threads;
                }
                (stats, failed)
            })
        })
        .collect();
    let mut stats = Stats::default();
    let mut failed = Vec::new();
    for handle in handles {
        let (s, f) = handle.join().expect("a simulation thread");
        stats.add(&s);
        failed.extend(f);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_before).map(|(after, before)| after - before);
    failed.sort();
    println!(
        "simulation: {seeds} seeds (from {first}) × {steps} steps in {elapsed:.1} s on {threads} threads: {:.0} seeds/s",
        seeds as f64 / elapsed
    );
    if let Some(cpu) = cpu {
        println!("CPU time {cpu:.1} s: {:.0} seeds per CPU-second", seeds as f64 / cpu);
    }
    println!("{stats:#?}");
    if let Some((seed, first)) = failed.first() {
        let run = replay(*seed, steps);
        eprintln!("{}", run.trace.join("\n"));
        if run.violations.first() != Some(first) {
            eprintln!("THE REPLAY DID NOT REPRODUCE {first}: the simulation is not deterministic");
        }
        let list: Vec<String> = failed.iter().take(20).map(|(s, v)| format!("ATLAS_SIM_SEED={s}: {v}")).collect();
        panic!(
            "{} of {seeds} seeds violate an invariant; the first replayed above (ATLAS_SIM_SEED={seed}):\n{}\n\nfailing seeds:\n{}",
            failed.len(),
            run.violations.join("\n"),
            list.join("\n")
        );
    }
}

/// A seed gives the same run every time, step for step: what makes a
/// failing seed replay exactly.
#[test]
fn a_seed_replays_exactly() {
    let runtime = runtime();
    for seed in 0..20 {
        let first = run_seed(&runtime, seed, 40, true);
        let again = run_seed(&runtime, seed, 40, true);
        assert!(first.trace.len() > 40, "seed {seed} traced too little");
        assert_eq!(first.trace, again.trace, "seed {seed} ran differently the second time");
        assert_eq!(first.violations, again.violations);
    }
}
