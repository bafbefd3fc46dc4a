//! Where a command's policy comes from: a file, standard input, or `ATLAS_POLICY`.

use std::io::Read;
use std::path::{Path, PathBuf};

use atlas_promote_core::Policy;

use crate::exit::Failure;

/// The name standard input goes by in messages.
pub(crate) const STDIN: &str = "<stdin>";

/// The environment variable naming the default policy file.
pub(crate) const ATLAS_POLICY: &str = "ATLAS_POLICY";

/// Whether `path` is `-`, standard input.
pub(crate) fn is_stdin(path: &Path) -> bool {
    path == Path::new("-")
}

/// All of standard input.
pub(crate) fn read_stdin() -> Result<String, Failure> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| Failure::BadInput(format!("{STDIN}: cannot read: {e}")))?;
    Ok(text)
}

/// The policy file given, else the one `ATLAS_POLICY` names.
pub(crate) fn policy_path(given: Option<&Path>) -> Option<PathBuf> {
    given.map(Path::to_owned).or_else(|| std::env::var_os(ATLAS_POLICY).filter(|v| !v.is_empty()).map(PathBuf::from))
}

/// Read the policy at `path` (`-`: standard input) and the name to show for it.
///
/// Standard input has no extension to tell the format by: it is TOML unless
/// its first line that is not blank or a comment looks like YAML (`key:` or `- item`).
pub(crate) fn read_policy(path: &Path) -> Result<(Policy, String), Failure> {
    if !is_stdin(path) {
        return Ok((Policy::from_path(path)?, path.display().to_string()));
    }
    let text = read_stdin()?;
    let policy = if looks_like_yaml(&text) {
        Policy::from_yaml_str(&text, STDIN)?
    } else {
        Policy::from_toml_str(&text, STDIN)?
    };
    Ok((policy, STDIN.to_owned()))
}

fn looks_like_yaml(text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|line| !line.is_empty() && !line.starts_with('#'));
    first.is_some_and(|line| {
        line == "---" || line.starts_with("- ") || (!line.starts_with('[') && !line.contains('=') && line.contains(':'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_input_is_toml_unless_its_first_line_reads_as_yaml() {
        assert!(!looks_like_yaml("# a policy\nname = \"atlas\"\n"));
        assert!(!looks_like_yaml("[[stage]]\nname = \"trunk\"\n"));
        assert!(looks_like_yaml("\n# a policy\nname: atlas\n"));
        assert!(looks_like_yaml("---\nname: atlas\n"));
    }
}
