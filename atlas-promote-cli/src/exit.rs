//! Exit statuses and the failures that end a command early.

use std::fmt;

/// The exit status table, shown by `--help`.
pub(crate) const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  evaluate: allowed; lint: no errors (warnings are fine); otherwise: success
  1  any other failure, e.g. the output could not be written
  2  bad input: a usage error, an unreadable or invalid policy or evidence file
     (the message names the file and, when known, line and column), an unknown
     preset, or no gate between the two stages
  3  evaluate: wait; only time stands in the way (soak, window, freeze)
  4  evaluate: blocked; lint: the policy has errors";

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

/// Why a command could not finish; each line printed to stderr after `error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Unusable input; the message names the file and the place.
    BadInput(String),
    /// Anything else.
    Other(String),
}

impl Failure {
    /// Writing the output failed (a closed pipe, a full disk).
    pub(crate) fn output(e: std::io::Error) -> Self {
        Self::Other(format!("cannot write output: {e}"))
    }

    /// The exit status this failure ends the command with.
    pub(crate) fn status(&self) -> Status {
        match self {
            Self::BadInput(_) => Status::BadInput,
            Self::Other(_) => Status::Failure,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadInput(message) | Self::Other(message) => f.write_str(message),
        }
    }
}
