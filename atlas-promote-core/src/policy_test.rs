//! Policy tests as files, for policy authors who do not write Rust.
//!
//! A test file (TOML, or YAML with the `yaml` feature) names a policy and
//! holds `[[case]]`s, each one gate decision with the verdict (and, if it
//! says so, the blockers and the `until`) it must have, and `[[scenario]]`s,
//! each a timeline of steps through the real engine on a simulated clock
//! (running scenarios needs the `testkit` feature).
//!
//! ```toml
//! policy = "../policies/atlas.toml"
//!
//! [[case]]
//! name = "the author cannot be the dev-team approver"
//! from = "staging"
//! to = "prod"
//! at = "2026-05-06T10:00:00Z"
//! evidence = "staging-to-prod-blocked.json"   # or the evidence inline as [case.evidence]
//! expect = { verdict = "block", blockers = ["check_failed", "approvals_missing"] }
//!
//! [[scenario]]
//! name = "a pipeline change goes to dev by itself"
//! start = "2026-05-04T08:00:00Z"
//! steps = [
//!   { merge = "c1", author = "alice", files = ["pipelines/etl.py"] },
//!   { expect = { sha = "c1", state = "live in dev" } },
//! ]
//! ```
//!
//! Reading a test file reads its policy and every evidence file it names,
//! and checks every stage a case or step names; a mistake in any of them is
//! a [`PolicyError`] naming the file, the line and column, and the field.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Verdict};
use crate::evidence::Evidence;
use crate::file::{FieldPath, Parsed, PolicyError, read_located};
use crate::gate::GateError;
use crate::policy::Policy;

#[cfg(feature = "testkit")]
mod scenario;
mod steps;

#[cfg(feature = "testkit")]
pub use scenario::run_scenario;
pub use steps::{CheckOutcome, DeployOutcome, ScenarioExpect, Step};

/// A test file as read: its policy, its cases and its scenarios.
#[derive(Debug, Clone)]
pub struct PolicyTests {
    /// The test file, as given.
    pub file: String,
    /// The policy file it names, relative to the test file's directory.
    pub policy_file: PathBuf,
    /// The policy the tests are about.
    pub policy: Policy,
    /// The `[[case]]`s, in the order of the file.
    pub cases: Vec<Case>,
    /// The `[[scenario]]`s, in the order of the file.
    pub scenarios: Vec<Scenario>,
}

/// One gate decision and what it must be.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is about.
    pub name: String,
    /// The stage the candidate leaves.
    pub from: String,
    /// The stage it would enter.
    pub to: String,
    /// The instant decided for.
    pub at: DateTime<Utc>,
    /// The evidence decided on (read from its file, if the case names one).
    pub evidence: Evidence,
    /// The evidence file, when the evidence is not inline.
    pub evidence_file: Option<PathBuf>,
    /// What the decision must be.
    pub expect: Expect,
}

/// What a decision must be: its verdict and, when given, its blockers and `until`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `allow`, `wait` or `block`.
    pub verdict: ExpectedVerdict,
    /// The blocker kinds the decision must have: order free, each kind as
    /// often as listed, no other kind. Not checked when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<String>>,
    /// For a wait, the instant it waits until. Not checked when absent.
    #[serde(default, deserialize_with = "crate::file::optional_instant", skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// A verdict as a test expects it (a wait without its instant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedVerdict {
    /// Every rule holds.
    Allow,
    /// Only time stands in the way.
    Wait,
    /// Something other than time must change.
    Block,
}

/// A timeline through the engine, on a simulated clock.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// What the scenario is about.
    pub name: String,
    /// Where the clock starts.
    pub start: DateTime<Utc>,
    /// People and their roles, besides the policy's directory.
    pub people: BTreeMap<String, Vec<String>>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// How one case or scenario went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The case's or scenario's name.
    pub name: String,
    /// Why it failed; `None` when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Mismatch>,
    /// A case's decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl Outcome {
    /// Whether the case or scenario passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// What a test expected and what it got instead, as sentences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// A scenario's failing step (0-based), if it was a step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// What was expected.
    pub expected: String,
    /// What happened: the decision as it renders, a state, an error.
    pub got: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(step) = self.step {
            writeln!(f, "at step {}:", step + 1)?;
        }
        writeln!(f, "expected: {}", self.expected)?;
        let mut lines = self.got.lines();
        writeln!(f, "got:      {}", lines.next().unwrap_or_default())?;
        for line in lines {
            writeln!(f, "          {line}")?;
        }
        Ok(())
    }
}

impl Expect {
    /// The expectation as a sentence: the verdict as a decision says it, then the blockers.
    pub fn sentence(&self) -> String {
        let verdict = match (self.verdict, self.until) {
            (ExpectedVerdict::Allow, _) => Verdict::Allow.to_string(),
            (ExpectedVerdict::Wait, Some(until)) => Verdict::Wait { until }.to_string(),
            (ExpectedVerdict::Wait, None) => "waiting".to_owned(),
            (ExpectedVerdict::Block, _) => Verdict::Block.to_string(),
        };
        match &self.blockers {
            None => verdict,
            Some(kinds) if kinds.is_empty() => format!("{verdict}, with no blocker"),
            Some(kinds) => format!("{verdict}, with blockers {}", kinds.join(", ")),
        }
    }

    /// Why `decision` does not meet this expectation; `None` when it does.
    pub fn mismatch(&self, decision: &Decision) -> Option<String> {
        let verdict_ok = match (self.verdict, decision.verdict) {
            (ExpectedVerdict::Allow, Verdict::Allow) | (ExpectedVerdict::Block, Verdict::Block) => true,
            (ExpectedVerdict::Wait, Verdict::Wait { until }) => self.until.is_none_or(|u| u == until),
            _ => false,
        };
        let blockers_ok = self.blockers.as_ref().is_none_or(|want| {
            let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
            let mut got: Vec<&str> = decision.blockers.iter().map(|b| b.kind()).collect();
            want.sort_unstable();
            got.sort_unstable();
            want == got
        });
        (!(verdict_ok && blockers_ok)).then(|| decision.to_string().trim_end().to_owned())
    }
}

impl Case {
    /// Decide the case's gate on its evidence at its instant, and compare.
    pub fn run(&self, policy: &Policy) -> Outcome {
        let decision = match policy.gate(&self.from, &self.to) {
            Ok(gate) => gate.evaluate(&self.evidence, self.at),
            // Reading the file checked the gate; a policy changed since cannot be decided on.
            Err(e) => {
                let failure = Mismatch { step: None, expected: self.expect.sentence(), got: e.to_string() };
                return Outcome { name: self.name.clone(), failure: Some(failure), decision: None };
            }
        };
        let failure =
            self.expect.mismatch(&decision).map(|got| Mismatch { step: None, expected: self.expect.sentence(), got });
        Outcome { name: self.name.clone(), failure, decision: Some(decision) }
    }
}

// --- reading a test file ---

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    policy: String,
    #[serde(default, rename = "case")]
    cases: Vec<RawCase>,
    #[serde(default, rename = "scenario")]
    scenarios: Vec<RawScenario>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    from: String,
    to: String,
    #[serde(deserialize_with = "crate::file::instant")]
    at: DateTime<Utc>,
    evidence: EvidenceSource,
    expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: String,
    #[serde(default, deserialize_with = "crate::file::optional_instant")]
    start: Option<DateTime<Utc>>,
    #[serde(default)]
    people: BTreeMap<String, Vec<String>>,
    steps: Vec<steps::RawStep>,
}

/// A case's evidence: a file (a string) or inline (a table).
#[derive(Debug)]
enum EvidenceSource {
    File(String),
    Inline(Box<Evidence>),
}

impl<'de> Deserialize<'de> for EvidenceSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Source;
        impl<'de> Visitor<'de> for Source {
            type Value = EvidenceSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an evidence file (a path relative to the test file) or the evidence as a table")
            }
            fn visit_str<E: de::Error>(self, path: &str) -> Result<Self::Value, E> {
                Ok(EvidenceSource::File(path.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Evidence::deserialize(MapAccessDeserializer::new(map)).map(|e| EvidenceSource::Inline(Box::new(e)))
            }
        }
        deserializer.deserialize_any(Source)
    }
}

impl PolicyTests {
    /// Read a test file, its policy and its evidence files.
    ///
    /// Every mistake is located: in the test file (file, line, column and
    /// field, such as `case[2].to`), or in the policy or evidence file it is in.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let parsed: Parsed<RawFile> = read_located(path, "test file")?;
        let dir = path.parent().unwrap_or(Path::new(""));
        let policy_file = dir.join(&parsed.value.policy);
        let policy = Policy::from_path(&policy_file)
            .map_err(|e| if e.line.is_none() { parsed.error_at(&root().key("policy"), e.to_string()) } else { e })?;
        if parsed.value.cases.is_empty() && parsed.value.scenarios.is_empty() {
            return Err(PolicyError::whole_file(&parsed.file, "no [[case]] and no [[scenario]]: nothing to test"));
        }
        let mut mistakes = Vec::new();
        let mut cases = Vec::new();
        for (i, raw) in parsed.value.cases.iter().enumerate() {
            match read_case(&parsed, &policy, dir, i, raw) {
                Ok(case) => cases.push(case),
                Err(e) => mistakes.push(e),
            }
        }
        let mut scenarios = Vec::new();
        for (i, raw) in parsed.value.scenarios.iter().enumerate() {
            let at = root().key("scenario").index(i);
            let mut steps = Vec::new();
            for (j, step) in raw.steps.iter().enumerate() {
                match step.read(&policy, &at.key("steps").index(j)) {
                    Ok(step) => steps.push(step),
                    Err((path, message)) => mistakes.push(parsed.error_at(&path, message)),
                }
            }
            scenarios.push(Scenario {
                name: raw.name.clone(),
                start: raw.start.unwrap_or_else(default_start),
                people: raw.people.clone(),
                steps,
            });
        }
        let mut mistakes = mistakes.into_iter();
        if let Some(first) = mistakes.next() {
            return Err(PolicyError { also: mistakes.collect(), ..first });
        }
        Ok(Self { file: parsed.file, policy_file, policy, cases, scenarios })
    }

    /// Whether the file at `path` is a test file: a `.toml`, `.yaml` or
    /// `.yml` file whose top level has `case` or `scenario`. A file that
    /// does not parse counts when a line starts with `[[case]]`,
    /// `[[scenario]]`, `case:` or `scenario:`, so that its mistakes are reported.
    pub fn is_test_file(path: impl AsRef<Path>) -> bool {
        let path = path.as_ref();
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(extension.as_deref(), Some("toml" | "yaml" | "yml")) {
            return false;
        }
        let Ok(text) = std::fs::read_to_string(path) else { return false };
        #[derive(Deserialize)]
        struct TopLevel {
            case: Option<de::IgnoredAny>,
            scenario: Option<de::IgnoredAny>,
        }
        let top: Option<TopLevel> = match extension.as_deref() {
            Some("toml") => toml::from_str(&text).ok(),
            #[cfg(feature = "yaml")]
            _ => serde_saphyr::from_str(&text).ok(),
            #[cfg(not(feature = "yaml"))]
            _ => None,
        };
        match top {
            Some(top) => top.case.is_some() || top.scenario.is_some(),
            None => text.lines().any(|line| {
                let line = line.trim_start();
                ["[[case]]", "[[scenario]]", "case:", "scenario:"].iter().any(|start| line.starts_with(start))
            }),
        }
    }
}

fn root() -> FieldPath {
    FieldPath::root()
}

fn read_case(
    parsed: &Parsed<RawFile>,
    policy: &Policy,
    dir: &Path,
    i: usize,
    raw: &RawCase,
) -> Result<Case, PolicyError> {
    let at = root().key("case").index(i);
    if let Err(e) = policy.gate(&raw.from, &raw.to) {
        let field = match &e {
            GateError::UnknownStage { stage, .. } if *stage == raw.from => "from",
            _ => "to",
        };
        return Err(parsed.error_at(&at.key(field), stage_error(policy, &e)));
    }
    if raw.expect.until.is_some() && raw.expect.verdict != ExpectedVerdict::Wait {
        return Err(parsed.error_at(&at.key("expect").key("until"), "`until` is only for verdict = \"wait\""));
    }
    let (evidence, evidence_file) = match &raw.evidence {
        EvidenceSource::Inline(evidence) => {
            evidence.check_consistency().map_err(|m| parsed.error_at(&at.key("evidence"), m))?;
            ((**evidence).clone(), None)
        }
        EvidenceSource::File(name) => {
            let file = dir.join(name);
            let evidence = Evidence::from_path(&file).map_err(|e| match e.line {
                // The file is there but wrong: the mistake is in it.
                Some(line) => PolicyError {
                    file: e.file,
                    line: Some(line),
                    column: e.column,
                    field: None,
                    message: e.message,
                    also: Box::default(),
                },
                None => parsed.error_at(&at.key("evidence"), e.to_string()),
            })?;
            (evidence, Some(file))
        }
    };
    Ok(Case {
        name: raw.name.clone(),
        from: raw.from.clone(),
        to: raw.to.clone(),
        at: raw.at,
        evidence,
        evidence_file,
        expect: raw.expect.clone(),
    })
}

/// A gate error as a sentence, with a did-you-mean for a stage name that is close to one the policy has.
pub fn stage_error(policy: &Policy, e: &GateError) -> String {
    match e {
        GateError::UnknownStage { stage, .. } => match did_you_mean(policy, stage) {
            Some(close) => format!("{e}; did you mean {close:?}?"),
            None => e.to_string(),
        },
        GateError::NotNext { .. } => e.to_string(),
    }
}

/// The policy's stage name closest to `name`, if one is close enough to be a typo of it.
pub fn did_you_mean<'p>(policy: &'p Policy, name: &str) -> Option<&'p str> {
    let name = name.to_lowercase();
    policy
        .stages
        .iter()
        .map(|s| (edit_distance(&name, &s.name.to_lowercase()), s.name.as_str()))
        .filter(|(d, known)| *d <= (known.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

/// Edit distance in characters, a swap of two neighbours counting as one
/// edit (the optimal string alignment distance): `prdo` is one edit from `prod`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: the distance between a[..i] and b[..j].
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// Monday 2026-05-04 08:00 UTC, where a scenario starts unless it says otherwise.
fn default_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_777_881_600, 0).unwrap_or(DateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_of_a_stage_gets_the_stage_it_is_close_to() {
        let policy = Policy::atlas();
        assert_eq!(did_you_mean(&policy, "prdo"), Some("prod"));
        assert_eq!(did_you_mean(&policy, "Staging"), Some("staging"));
        assert_eq!(did_you_mean(&policy, "qa"), None);
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("staging", "stagign"), 1);
        assert_eq!(edit_distance("prdo", "prod"), 1);
        assert_eq!(edit_distance("", "dev"), 3);
        assert_eq!(edit_distance("prod", "prod"), 0);
    }
}
