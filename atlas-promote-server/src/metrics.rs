//! The service's counters and gauges, written in the Prometheus text
//! exposition format for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters by name and label set, and a few gauges.
#[derive(Debug, Default)]
pub struct Metrics {
    ticks: AtomicU64,
    tick_failures: AtomicU64,
    counters: Mutex<BTreeMap<(&'static str, Labels), u64>>,
    outbox_pending: AtomicU64,
}

/// Label pairs, in the order written.
type Labels = Vec<(&'static str, String)>;

/// What each counter counts, for the `# HELP` lines.
const HELP: [(&str, &str); 4] = [
    ("atlas_decisions_total", "Gate decisions made, by verdict."),
    ("atlas_webhook_deliveries_total", "Webhook deliveries received, by source and outcome."),
    ("atlas_notifications_total", "Notification delivery attempts, by sink and outcome."),
    ("atlas_forge_jobs_total", "Forge work (review statuses, gate answers, deployments), by outcome."),
];

impl Metrics {
    /// One tick done; `failed`: it returned an error.
    pub fn tick(&self, failed: bool) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.tick_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One gate decision with this verdict (`allow`, `wait`, `block`).
    pub fn decision(&self, verdict: &str) {
        self.add("atlas_decisions_total", vec![("verdict", verdict.to_owned())]);
    }

    /// One webhook delivery from `source` with `outcome` (`accepted`, `duplicate`, `ignored`, `unauthorized`, …).
    pub fn delivery(&self, source: &str, outcome: &str) {
        self.add(
            "atlas_webhook_deliveries_total",
            vec![("source", source.to_owned()), ("outcome", outcome.to_owned())],
        );
    }

    /// One attempt to deliver a notification through `sink`.
    pub fn notification(&self, sink: &str, outcome: &str) {
        self.add("atlas_notifications_total", vec![("sink", sink.to_owned()), ("outcome", outcome.to_owned())]);
    }

    /// A round of forge work: `done` jobs done, `failed` failed.
    pub fn forge(&self, done: u64, failed: u64) {
        for (outcome, n) in [("done", done), ("failed", failed)] {
            if n > 0 {
                let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
                *counters.entry(("atlas_forge_jobs_total", vec![("outcome", outcome.to_owned())])).or_default() += n;
            }
        }
    }

    /// How many notifications the last outbox claim found waiting.
    pub fn outbox_pending(&self, count: u64) {
        self.outbox_pending.store(count, Ordering::Relaxed);
    }

    /// The value of a counter, for tests.
    pub fn count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        counters
            .iter()
            .filter(|((n, l), _)| *n == name && labels.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, v)| v)
            .sum()
    }

    fn add(&self, name: &'static str, labels: Labels) {
        let mut counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        *counters.entry((name, labels)).or_default() += 1;
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut gauge = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        };
        gauge("atlas_ticks_total", "counter", "Engine ticks run.", self.ticks.load(Ordering::Relaxed));
        gauge(
            "atlas_tick_failures_total",
            "counter",
            "Engine ticks that returned an error.",
            self.tick_failures.load(Ordering::Relaxed),
        );
        gauge(
            "atlas_outbox_pending",
            "gauge",
            "Notifications the last outbox claim found due.",
            self.outbox_pending.load(Ordering::Relaxed),
        );
        let counters = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        for (name, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for ((_, labels), value) in counters.iter().filter(|((n, _), _)| *n == name) {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect();
                let _ = writeln!(out, "{name}{{{}}} {value}", labels.join(","));
            }
        }
        out
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
