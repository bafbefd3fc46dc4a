//! Exit statuses and the failures that end a command early.

use std::fmt;

use atlas_promote_core::PolicyError;

/// The exit status table, shown by `atlas-promote --help`.
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  evaluate: allowed; plan: the next gate allows; lint: no errors
     (warnings are fine); test: every case and scenario passed;
     diff: no difference; audit verify: the chain is intact; otherwise: done
     (also when whoever reads the output stops reading, as `| head` does)
  1  any other failure, e.g. the output could not be written, the server
     could not be reached
  2  bad input: a usage error, an unreadable or invalid policy, evidence or
     test file (the message names the file and, when known, line, column and
     field), an unknown preset, stage or commit, or no gate between the two
     stages; the server's 400, 404 and 422
  3  evaluate: wait; plan: the next gate waits; only time stands in the way
     (soak, window, freeze)
  4  evaluate: blocked; plan: the next gate blocks; lint: the policy has
     errors; test: a case or scenario failed; diff: the two policies decide
     differently; audit verify: the chain is broken; an action the server
     refused (401 no or unknown token, 403 not permitted, 409 not possible now)

With --format json, errors are JSON on stdout too:
  {\"error\": {\"kind\", \"message\", \"file\", \"line\", \"column\", \"field\"}}

Environment:
  ATLAS_POLICY  the policy file of `evaluate` and `lint` when none is given
  ATLAS_SERVER  the service the operator commands talk to (--server)
  ATLAS_TOKEN   the operator's bearer token for the service (never an argument)";

/// How a command ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// 0: allowed, or the command did what was asked.
    Success,
    /// 1: anything not covered below.
    Failure,
    /// 2: the input (arguments, policy, evidence) is unusable.
    BadInput,
    /// 3: the gate opens later if nothing else changes.
    Wait,
    /// 4: the gate is blocked, or the policy has lint errors.
    Block,
}

impl Status {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::BadInput => 2,
            Self::Wait => 3,
            Self::Block => 4,
        }
    }
}

/// Why a command could not finish; each line printed to stderr after `error: `
/// (with `--format json`, one JSON object on stdout instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Unusable input; the message names the file and the place.
    BadInput(String),
    /// A file with mistakes, each located (file, line, column, field).
    File(PolicyError),
    /// Whoever reads the output stopped reading (`| head -1`): not a failure.
    ClosedPipe,
    /// The service refused the action (no or an unknown token, roles that
    /// do not permit it, a state that does not allow it).
    Refused(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    /// Writing the output failed: a closed pipe (the reader has all it
    /// wanted), a full disk.
    pub(crate) fn output(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Self::ClosedPipe;
        }
        Self::Other(format!("cannot write output: {e}"))
    }

    /// The exit status this failure ends the command with.
    pub(crate) fn status(&self) -> Status {
        match self {
            Self::BadInput(_) | Self::File(_) => Status::BadInput,
            Self::ClosedPipe => Status::Success,
            Self::Refused(_) => Status::Block,
            Self::Other(_) => Status::Failure,
        }
    }

    /// The failure as JSON: `{"error": {"kind", "message", "file", "line", "column", "field"}}`,
    /// a file's further mistakes in `also`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let kind = match self {
            Self::BadInput(_) | Self::File(_) => "bad_input",
            Self::Refused(_) => "refused",
            Self::Other(_) | Self::ClosedPipe => "failure",
        };
        let mut error = match self {
            Self::File(e) => mistake_json(e),
            Self::ClosedPipe => serde_json::json!({ "message": "the output was closed" }),
            Self::BadInput(message) | Self::Refused(message) | Self::Other(message) => serde_json::json!({
                "message": message, "file": null, "line": null, "column": null, "field": null,
            }),
        };
        error["kind"] = kind.into();
        if let Self::File(e) = self
            && !e.also.is_empty()
        {
            error["also"] = e.also.iter().map(mistake_json).collect();
        }
        serde_json::json!({ "error": error })
    }
}

fn mistake_json(e: &PolicyError) -> serde_json::Value {
    serde_json::json!({
        "message": e.message, "file": e.file, "line": e.line, "column": e.column, "field": e.field,
    })
}

impl From<PolicyError> for Failure {
    fn from(e: PolicyError) -> Self {
        Self::File(e)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadInput(message) | Self::Refused(message) | Self::Other(message) => f.write_str(message),
            Self::File(e) => write!(f, "{e}"),
            Self::ClosedPipe => f.write_str("the output was closed"),
        }
    }
}
