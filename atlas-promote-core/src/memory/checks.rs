use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::lock;
use crate::backend::{CheckQuery, CheckSource};
use crate::error::Result;
use crate::evidence::CheckResult;

/// Check results in memory: tests [`report`](Self::report) them, the engine reads them.
///
/// Results are not tied to a stage (a check runs against a commit), so
/// `query.stage` is ignored. Results come back in the order reported.
#[derive(Debug, Clone, Default)]
pub struct MemoryChecks {
    results: Arc<Mutex<Results>>,
}

/// Every result in the order reported, and where each commit's are, so a
/// query reads one commit's results and not every one ever reported.
#[derive(Debug, Default)]
struct Results {
    all: Vec<CheckResult>,
    by_sha: HashMap<String, Vec<usize>>,
}

impl MemoryChecks {
    /// No results yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a result. A result with the same name, sha and start time
    /// replaces the earlier one: that is the same run, e.g. finishing after
    /// it was reported `running`.
    pub fn report(&self, result: CheckResult) {
        let mut results = lock(&self.results);
        let Results { all, by_sha } = &mut *results;
        let same = |r: &CheckResult| r.name == result.name && r.started_at == result.started_at;
        let indexes = by_sha.entry(result.sha.clone()).or_default();
        match indexes.iter().find(|&&i| same(&all[i])) {
            Some(&i) => all[i] = result,
            None => {
                indexes.push(all.len());
                all.push(result);
            }
        }
    }

    /// Every result reported so far.
    pub fn results(&self) -> Vec<CheckResult> {
        lock(&self.results).all.clone()
    }
}

#[async_trait]
impl CheckSource for MemoryChecks {
    async fn checks(&self, query: &CheckQuery) -> Result<Vec<CheckResult>> {
        let results = lock(&self.results);
        let indexes = results.by_sha.get(&query.sha).map_or(&[][..], Vec::as_slice);
        Ok(indexes
            .iter()
            .map(|&i| &results.all[i])
            .filter(|r| query.names.is_empty() || query.names.contains(&r.name))
            .filter(|r| query.since.is_none_or(|since| r.started_at >= since))
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus;

    fn result(name: &str, sha: &str, status: CheckStatus, started: &str) -> CheckResult {
        let started_at = started.parse().unwrap();
        let finished_at = status.is_finished().then(|| started_at + chrono::TimeDelta::minutes(40));
        CheckResult { name: name.into(), sha: sha.into(), status, started_at, finished_at }
    }

    #[tokio::test]
    async fn filters_by_sha_names_and_start() {
        let checks = MemoryChecks::new();
        checks.report(result("integration", "a1", CheckStatus::Passed, "2026-05-04T22:00:00Z"));
        checks.report(result("system", "a1", CheckStatus::Failed, "2026-05-04T23:00:00Z"));
        checks.report(result("integration", "b2", CheckStatus::Passed, "2026-05-04T22:00:00Z"));
        let all = checks.checks(&CheckQuery::new("staging", "a1", vec![])).await.unwrap();
        assert_eq!(all.len(), 2);
        let named = checks.checks(&CheckQuery::new("staging", "a1", vec!["system".into()])).await.unwrap();
        assert_eq!(named.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["system"]);
        let since = CheckQuery::new("staging", "a1", vec![]).since(Some("2026-05-04T22:30:00Z".parse().unwrap()));
        assert_eq!(checks.checks(&since).await.unwrap().len(), 1);
        assert!(checks.checks(&CheckQuery::new("staging", "zz", vec![])).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_finished_run_replaces_its_running_report() {
        let checks = MemoryChecks::new();
        checks.report(result("integration", "a1", CheckStatus::Running, "2026-05-04T22:00:00Z"));
        checks.report(result("integration", "a1", CheckStatus::Passed, "2026-05-04T22:00:00Z"));
        let got = checks.checks(&CheckQuery::new("staging", "a1", vec![])).await.unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].status, CheckStatus::Passed);
    }
}
