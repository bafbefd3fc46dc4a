//! Candidates and the evidence a gate decides on (DESIGN §3, §7).

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::policy::{Person, Role};

/// Where a candidate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A commit merged to trunk.
    Trunk,
    /// A build of a feature branch (an ephemeral test image).
    Branch,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Trunk => "trunk",
            Self::Branch => "branch",
        })
    }
}

/// A commit on its way through the stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Candidate {
    /// The commit SHA.
    pub sha: String,
    /// Trunk or a branch build.
    pub origin: Origin,
    /// The branch a branch build comes from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Everyone who authored a commit in this candidate.
    #[serde(default)]
    pub authors: Vec<Person>,
    /// When the candidate was created (merged, or built).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(serialize_with = "crate::instant::option::serialize", deserialize_with = "rfc3339::option")]
    pub created_at: Option<DateTime<Utc>>,
    /// The image built from it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl Candidate {
    /// A trunk candidate for `sha` authored by `authors`.
    pub fn trunk<P: Into<Person>>(sha: impl Into<String>, authors: impl IntoIterator<Item = P>) -> Self {
        Self {
            sha: sha.into(),
            origin: Origin::Trunk,
            branch: None,
            authors: authors.into_iter().map(Into::into).collect(),
            created_at: None,
            image: None,
        }
    }

    /// A build of `branch` at `sha` authored by `authors`.
    pub fn branch<P: Into<Person>>(
        sha: impl Into<String>,
        branch: impl Into<String>,
        authors: impl IntoIterator<Item = P>,
    ) -> Self {
        Self { origin: Origin::Branch, branch: Some(branch.into()), ..Self::trunk(sha, authors) }
    }

    /// Whether `person` authored a commit of this candidate.
    pub fn is_author(&self, person: &str) -> bool {
        self.authors.iter().any(|a| a == person)
    }
}

/// Everything one gate decision looks at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Evidence {
    /// The candidate moving.
    pub candidate: Candidate,
    /// Its deployment in the source stage, when that is an environment;
    /// `None`: not deployed.
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// When it entered the source stage, when that is a review or trunk stage.
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub entered_at: Option<DateTime<Utc>>,
    /// Results of recurring checks.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// Approval records.
    #[serde(default)]
    pub approvals: Vec<ApprovalRecord>,
}

impl Evidence {
    /// Evidence about `candidate` with nothing known yet.
    pub fn new(candidate: Candidate) -> Self {
        Self { candidate, deployment: None, entered_at: None, checks: Vec::new(), approvals: Vec::new() }
    }
}

/// A candidate's deployment into an environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Deployment {
    /// When the deploy succeeded.
    #[serde(deserialize_with = "rfc3339::one")]
    pub deployed_at: DateTime<Utc>,
    /// Whether pipeline code changed, so a flush run must follow.
    #[serde(default)]
    pub flush_required: bool,
    /// When the flush run succeeded.
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub flushed_at: Option<DateTime<Utc>>,
}

/// The status of one run of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Finished and passed.
    Passed,
    /// Finished and failed.
    Failed,
    /// Finished: cancelled before it could pass.
    Cancelled,
    /// Finished: the check itself broke.
    Errored,
    /// Still going.
    Running,
}

impl CheckStatus {
    /// Whether the run has finished.
    pub fn is_finished(self) -> bool {
        self != Self::Running
    }
}

impl std::fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Passed => "passed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Errored => "errored",
            Self::Running => "running",
        })
    }
}

/// One run of a recurring check against a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CheckResult {
    /// The check's name, e.g. `integration`.
    pub name: String,
    /// The commit it ran against.
    pub sha: String,
    /// How it ended, or `running`.
    pub status: CheckStatus,
    /// When it started.
    #[serde(deserialize_with = "rfc3339::one")]
    pub started_at: DateTime<Utc>,
    /// When it finished; `None` while running.
    #[serde(default, deserialize_with = "rfc3339::option")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// What an approval record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// Approves the promotion.
    Approve,
    /// Rejects it: a veto while it stands.
    Reject,
    /// Takes back the approver's earlier record.
    Withdraw,
}

impl std::fmt::Display for ApprovalDecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::Withdraw => "withdraw",
        })
    }
}

/// One approval, rejection or withdrawal by one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct ApprovalRecord {
    /// Who.
    pub approver: Person,
    /// The roles they hold now.
    #[serde(default)]
    pub roles: Vec<Role>,
    /// The stage the promotion enters.
    pub stage: String,
    /// The commit approved.
    pub sha: String,
    /// Approve, reject or withdraw.
    pub decision: ApprovalDecision,
    /// When.
    #[serde(serialize_with = "crate::instant::serialize", deserialize_with = "rfc3339::one")]
    pub at: DateTime<Utc>,
}

/// Evidence is read from objects only. serde's derived readers also take a
/// struct written as an array of its fields in order, which no field name
/// checks (`["9fceb02", "trunk"]` as a candidate); these accept a map alone.
macro_rules! objects_only {
    ($($ty:ident: $what:literal),* $(,)?) => {$(
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $ty::serialize(self, serializer)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Object;

                impl<'de> serde::de::Visitor<'de> for Object {
                    type Value = $ty;

                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!($what, " as an object with named fields"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<$ty, A::Error> {
                        $ty::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }

                deserializer.deserialize_map(Object)
            }
        }
    )*};
}

objects_only!(
    Candidate: "a candidate",
    Evidence: "evidence",
    Deployment: "a deployment",
    CheckResult: "a check result",
    ApprovalRecord: "an approval record",
);

/// The instants of evidence: RFC 3339, whose years have four digits, so a
/// year past 9999 (or before 0) is refused where it is written rather than
/// read and then written back as something that is not RFC 3339.
mod rfc3339 {
    use chrono::{DateTime, Datelike, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer};

    fn in_range<E: serde::de::Error>(at: DateTime<Utc>) -> Result<DateTime<Utc>, E> {
        if (0..=9999).contains(&at.year()) {
            return Ok(at);
        }
        Err(E::custom(format!(
            "invalid instant {}: the year must be from 0000 to 9999 (RFC 3339), e.g. 2026-05-04T08:00:00Z",
            at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
        )))
    }

    pub(super) fn one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        in_range(DateTime::<Utc>::deserialize(deserializer)?)
    }

    pub(super) fn option<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        Option::<DateTime<Utc>>::deserialize(deserializer)?.map(in_range::<D::Error>).transpose()
    }
}

/// An evidence file that could not be read, parsed or accepted.
///
/// Names the file and, when known, the place (line and column, 1-based);
/// displays as `file:line:column: message`, e.g.
/// ``evidence.json:7:23: unknown variant `pased`, expected one of …``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceError {
    /// The file (or the name given for a text).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for EvidenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for EvidenceError {}

/// What chrono says about a malformed instant: a bare phrase, which alone
/// does not tell a reader that an RFC 3339 instant was expected.
const CHRONO_PARSE_ERRORS: [&str; 7] = [
    "input is out of range",
    "no possible date and time matching input",
    "input is not enough for unique date and time",
    "input contains invalid characters",
    "premature end of input",
    "trailing input",
    "bad or unsupported format string",
];

impl EvidenceError {
    fn whole_file(file: &str, message: String) -> Self {
        Self { file: file.to_owned(), line: None, column: None, message }
    }

    fn from_json(file: &str, e: &serde_json::Error) -> Self {
        let text = e.to_string();
        if e.line() == 0 {
            return Self::whole_file(file, text);
        }
        // serde_json appends the place to its message; we show it as `file:line:col` instead.
        let place = format!(" at line {} column {}", e.line(), e.column());
        let mut message = text.strip_suffix(&place).unwrap_or(&text).to_owned();
        if CHRONO_PARSE_ERRORS.contains(&message.as_str()) {
            message = format!("invalid instant: {message}; expected RFC 3339 such as 2026-05-04T08:00:00Z");
        }
        // An error right after a final newline is reported in column 0.
        Self { file: file.to_owned(), line: Some(e.line()), column: Some(e.column().max(1)), message }
    }
}

impl Evidence {
    /// Read evidence from JSON text in the shape of DESIGN §7; `file` names it in errors.
    ///
    /// Besides the shape, a check result must be consistent: a finished
    /// status has a `finished_at` no earlier than its `started_at`, and a
    /// `running` one has none.
    ///
    /// ```
    /// use atlas_promote_core::Evidence;
    ///
    /// let text = r#"{ "candidate": { "sha": "9fceb02", "origin": "trunk", "authors": ["alice"] },
    ///                 "entered_at": "2026-05-04T11:20:00Z" }"#;
    /// let evidence = Evidence::from_json_str(text, "evidence.json").unwrap();
    /// assert_eq!(evidence.candidate.sha, "9fceb02");
    ///
    /// let err = Evidence::from_json_str("{\n  \"candidate\": 7\n}", "bad.json").unwrap_err();
    /// assert_eq!((err.line, err.column), (Some(2), Some(16)));
    /// assert!(err.to_string().starts_with("bad.json:2:16: invalid type"));
    /// ```
    pub fn from_json_str(text: &str, file: &str) -> Result<Self, EvidenceError> {
        let evidence: Self = serde_json::from_str(text).map_err(|e| EvidenceError::from_json(file, &e))?;
        evidence.check_consistency().map_err(|message| EvidenceError::whole_file(file, message))?;
        Ok(evidence)
    }

    /// Read an evidence file (JSON, DESIGN §7).
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, EvidenceError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| EvidenceError::whole_file(&file, format!("cannot read: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            // The place of the first byte that is not UTF-8.
            let valid = e.utf8_error().valid_up_to();
            let head = e.as_bytes().get(..valid).and_then(|head| std::str::from_utf8(head).ok()).unwrap_or_default();
            let line = head.matches('\n').count() + 1;
            let column = head.rsplit('\n').next().map_or(0, |last| last.chars().count()) + 1;
            EvidenceError {
                line: Some(line),
                column: Some(column),
                ..EvidenceError::whole_file(
                    &file,
                    format!("not valid UTF-8 at byte {valid}; evidence must be UTF-8 JSON"),
                )
            }
        })?;
        Self::from_json_str(&text, &file)
    }

    pub(crate) fn check_consistency(&self) -> Result<(), String> {
        for (i, check) in self.checks.iter().enumerate() {
            let at = || format!("checks[{i}] ({} {})", check.name, check.status);
            match (check.status.is_finished(), check.finished_at) {
                (true, None) => return Err(format!("{}: a finished result needs finished_at", at())),
                (false, Some(_)) => {
                    return Err(format!("{}: a running result has no finished_at (use null)", at()));
                }
                (true, Some(finished)) if finished < check.started_at => {
                    return Err(format!("{}: finished_at is before started_at", at()));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
  "candidate": { "sha": "9fceb02", "origin": "trunk", "authors": ["alice"] },
  "deployment": { "deployed_at": "2026-05-04T08:00:00Z", "flush_required": true,
                  "flushed_at": "2026-05-04T08:20:00Z" },
  "entered_at": null,
  "checks": [
    { "name": "integration", "sha": "9fceb02", "status": "passed",
      "started_at": "2026-05-04T22:00:00Z", "finished_at": "2026-05-04T22:40:00Z" }
  ],
  "approvals": [
    { "approver": "pat", "roles": ["product-owner"], "stage": "prod", "sha": "9fceb02",
      "decision": "approve", "at": "2026-05-05T09:12:00Z" }
  ]
}"#;

    #[test]
    fn an_instant_past_the_year_9999_is_refused_where_it_is_written() {
        let text = GOOD.replace("2026-05-05T09:12:00Z", "+10000-05-05T09:12:00Z");
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.line, Some(12), "{err}");
        assert!(err.message.contains("the year must be from 0000 to 9999"), "{err}");
        let text = GOOD.replace("2026-05-04T08:00:00Z", "+10000-05-04T08:00:00Z");
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        let text = GOOD.replace(r#""entered_at": null"#, r#""entered_at": "-0001-01-01T00:00:00Z""#);
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.line, Some(5), "{err}");
        let text = GOOD.replace("2026-05-04T08:00:00Z", "9999-12-31T23:59:59Z");
        assert!(Evidence::from_json_str(&text, "e.json").is_ok());
    }

    #[test]
    fn evidence_is_read_from_objects_only_never_arrays() {
        let err = Evidence::from_json_str(r#"[{ "sha": "9fceb02", "origin": "trunk" }]"#, "e.json").unwrap_err();
        assert!(err.message.contains("invalid type: sequence, expected evidence as an object"), "{err}");
        let text = r#"{ "candidate": ["9fceb02", "trunk", null, ["alice"]] }"#;
        let err = Evidence::from_json_str(text, "e.json").unwrap_err();
        assert_eq!((err.line, err.column), (Some(1), Some(15)), "{err}");
        assert!(err.message.contains("expected a candidate as an object"), "{err}");
        let text = GOOD.replace(
            r#"{ "approver": "pat", "roles": ["product-owner"], "stage": "prod", "sha": "9fceb02",
      "decision": "approve", "at": "2026-05-05T09:12:00Z" }"#,
            r#"["pat", ["product-owner"], "prod", "9fceb02", "approve", "2026-05-05T09:12:00Z"]"#,
        );
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert!(err.message.contains("expected an approval record as an object"), "{err}");
    }

    #[test]
    fn an_evidence_file_that_is_not_utf8_is_refused_at_its_byte_offset() {
        let path = std::env::temp_dir().join(format!("atlas-evidence-utf8-{}.json", std::process::id()));
        std::fs::write(&path, b"{\n  \"candidate\": \"\xff\" }").unwrap();
        let err = Evidence::from_path(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((err.line, err.column), (Some(2), Some(17)), "{err}");
        assert!(err.message.starts_with("not valid UTF-8 at byte 18"), "{err}");
    }

    #[test]
    fn reads_the_design_example() {
        let evidence = Evidence::from_json_str(GOOD, "e.json").unwrap();
        assert_eq!(evidence.candidate.authors, ["alice"]);
        assert!(evidence.deployment.as_ref().unwrap().flush_required);
        assert_eq!(evidence.checks[0].status, CheckStatus::Passed);
        assert_eq!(evidence.approvals[0].decision, ApprovalDecision::Approve);
    }

    #[test]
    fn a_syntax_error_names_file_line_and_column() {
        let text = GOOD.replace(r#""entered_at": null,"#, r#""entered_at": null"#);
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!((err.file.as_str(), err.line, err.column), ("e.json", Some(6), Some(3)));
        assert_eq!(err.to_string(), "e.json:6:3: expected `,` or `}`");
    }

    #[test]
    fn an_unknown_field_is_refused_with_its_place() {
        let text = GOOD.replace(r#""entered_at""#, r#""entred_at""#);
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.line, Some(5));
        assert!(err.message.starts_with("unknown field `entred_at`"), "{err}");
        assert!(!err.message.contains(" at line "), "the place is not repeated: {err}");
    }

    #[test]
    fn an_unknown_status_is_refused() {
        let text = GOOD.replace(r#""passed""#, r#""pased""#);
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.line, Some(7));
        assert!(err.message.contains("unknown variant `pased`"), "{err}");
    }

    #[test]
    fn a_malformed_instant_says_what_is_expected() {
        let text = GOOD.replace("2026-05-05T09:12:00Z", "2026-05-05 09:12");
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.line, Some(12));
        assert_eq!(
            err.message,
            "invalid instant: premature end of input; expected RFC 3339 such as 2026-05-04T08:00:00Z"
        );
    }

    #[test]
    fn a_truncated_file_is_refused_at_its_end() {
        let err = Evidence::from_json_str("{\n", "e.json").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(1)));
        assert!(err.message.starts_with("EOF while parsing"), "{err}");
    }

    #[test]
    fn a_finished_check_needs_a_finish_time() {
        let text = GOOD.replace(r#""finished_at": "2026-05-04T22:40:00Z""#, r#""finished_at": null"#);
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert_eq!(err.to_string(), "e.json: checks[0] (integration passed): a finished result needs finished_at");
    }

    #[test]
    fn a_running_check_has_no_finish_time() {
        let text = GOOD.replace(r#""passed""#, r#""running""#);
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert!(err.message.contains("a running result has no finished_at"), "{err}");
    }

    #[test]
    fn a_check_cannot_finish_before_it_starts() {
        let text = GOOD.replace("2026-05-04T22:40:00Z", "2026-05-04T21:40:00Z");
        let err = Evidence::from_json_str(&text, "e.json").unwrap_err();
        assert!(err.message.contains("finished_at is before started_at"), "{err}");
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = Evidence::from_path("/nonexistent/evidence.json").unwrap_err();
        assert_eq!(err.file, "/nonexistent/evidence.json");
        assert!(err.to_string().starts_with("/nonexistent/evidence.json: cannot read: "), "{err}");
    }

    #[test]
    fn round_trips_through_json() {
        let evidence = Evidence::from_json_str(GOOD, "e.json").unwrap();
        let text = serde_json::to_string(&evidence).unwrap();
        assert_eq!(Evidence::from_json_str(&text, "again.json").unwrap(), evidence);
    }
}
