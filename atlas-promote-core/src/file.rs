//! Policy files: TOML, and YAML behind the `yaml` feature (DESIGN §7).

use std::fmt;
use std::path::Path;

use crate::policy::Policy;

/// A policy file that could not be read, parsed or validated.
///
/// Names the file, the place (line and column, 1-based, when known) and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or the name given for a text).
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field at fault, as a path such as `stage[3].approvals.require`.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

impl Policy {
    /// Read and validate a policy from TOML text; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, PolicyError> {
        toml::from_str(text).map_err(|e| PolicyError {
            file: file.to_owned(),
            line: None,
            column: None,
            field: None,
            message: e.message().to_owned(),
        })
    }

    /// Read and validate a policy file: `.toml`, or `.yaml` / `.yml` with the `yaml` feature.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            file: file.clone(),
            line: None,
            column: None,
            field: None,
            message: format!("cannot read: {e}"),
        })?;
        Self::from_toml_str(&text, &file)
    }

    /// The policy as a TOML policy file.
    pub fn to_toml_string(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }
}
