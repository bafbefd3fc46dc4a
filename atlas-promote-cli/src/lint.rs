//! `atlas-promote lint`: findings about a policy file.

use std::io::Write;

use atlas_promote_core::{Finding, Severity};

use crate::args::{Format, LintArgs};
use crate::exit::{Failure, Status};
use crate::input;

/// Lint the policy file: exit 4 when there are errors, 0 otherwise (warnings are fine).
pub(crate) fn run(args: &LintArgs, out: &mut dyn Write) -> Result<Status, Failure> {
    let Some(path) = input::policy_path(args.file.as_deref()) else {
        return Err(Failure::BadInput(format!(
            "give the policy FILE to lint (`-` for standard input), or name it in {}",
            input::ATLAS_POLICY
        )));
    };
    let (policy, file) = input::read_policy(&path)?;
    let findings = policy.lint();
    match args.format {
        Format::Text => write_text(&file, &findings, out).map_err(Failure::output)?,
        Format::Json => {
            let json = serde_json::to_string_pretty(&report(&file, &findings))
                .map_err(|e| Failure::Other(format!("cannot render findings as JSON: {e}")))?;
            writeln!(out, "{json}").map_err(Failure::output)?;
        }
    }
    Ok(status(&findings))
}

/// The JSON report: the file, the counts, and the findings.
fn report(file: &str, findings: &[Finding]) -> serde_json::Value {
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    serde_json::json!({
        "file": file,
        "errors": errors,
        "warnings": findings.len() - errors,
        "findings": findings,
    })
}

fn status(findings: &[Finding]) -> Status {
    if findings.iter().any(|f| f.severity == Severity::Error) { Status::Block } else { Status::Success }
}

fn write_text(file: &str, findings: &[Finding], out: &mut dyn Write) -> std::io::Result<()> {
    for finding in findings {
        writeln!(out, "{finding}")?;
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    let warnings = findings.len() - errors;
    writeln!(out, "{file}: {} and {}", plural(errors, "error"), plural(warnings, "warning"))
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding { severity, stage: Some("prod".into()), field: None, message: "something".into() }
    }

    #[test]
    fn warnings_alone_pass() {
        assert_eq!(status(&[]), Status::Success);
        assert_eq!(status(&[finding(Severity::Warning)]), Status::Success);
    }

    #[test]
    fn any_error_fails_with_status_4() {
        assert_eq!(status(&[finding(Severity::Warning), finding(Severity::Error)]), Status::Block);
    }

    #[test]
    fn text_lists_each_finding_then_a_summary() {
        let mut out = Vec::new();
        write_text("p.toml", &[finding(Severity::Error), finding(Severity::Warning)], &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "error: stage prod: something\nwarning: stage prod: something\np.toml: 1 error and 1 warning\n"
        );
    }
}
