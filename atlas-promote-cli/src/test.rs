//! `atlas-promote test`: run policy test files.

use std::io::Write;
use std::path::PathBuf;

use atlas_promote_core::PolicyError;
use atlas_promote_core::policy_test::{Outcome, PolicyTests, run_scenario};

use crate::args::{TestArgs, TestFormat};
use crate::exit::{Failure, Status};

/// Whether a result is of a case or a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Case,
    Scenario,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Case => "case",
            Self::Scenario => "scenario",
        }
    }
}

/// One case's or scenario's result, with the file it is in.
struct TestResult {
    file: String,
    kind: Kind,
    outcome: Outcome,
}

/// Read every test file, run every case and scenario, print the results:
/// exit 0 when all pass, 4 when any fails.
pub(crate) fn run(args: &TestArgs, out: &mut dyn Write) -> Result<Status, Failure> {
    let files = test_files(&args.paths)?;
    let mut mistakes: Vec<PolicyError> = Vec::new();
    let mut suites = Vec::new();
    for file in &files {
        match PolicyTests::from_path(file) {
            Ok(tests) => suites.push(tests),
            Err(e) => mistakes.extend(e.mistakes().cloned()),
        }
    }
    let mut mistakes = mistakes.into_iter();
    if let Some(first) = mistakes.next() {
        return Err(Failure::File(PolicyError { also: mistakes.collect(), ..first }));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the scenario runtime: {e}")))?;
    let mut results = Vec::new();
    for tests in &suites {
        for case in &tests.cases {
            results.push(TestResult { file: tests.file.clone(), kind: Kind::Case, outcome: case.run(&tests.policy) });
        }
        for scenario in &tests.scenarios {
            let outcome = runtime.block_on(run_scenario(&tests.policy, scenario));
            results.push(TestResult { file: tests.file.clone(), kind: Kind::Scenario, outcome });
        }
    }
    match args.format {
        TestFormat::Text => write_text(&results, out),
        TestFormat::Json => write_json(&results, out),
        TestFormat::Junit => write_junit(&results, out),
    }
    .map_err(Failure::output)?;
    Ok(if results.iter().all(|r| r.outcome.passed()) { Status::Success } else { Status::Block })
}

/// The files to run: each file given, and each test file in each directory given (sorted by name).
fn test_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Failure> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let entries = std::fs::read_dir(path)
            .map_err(|e| Failure::BadInput(format!("{}: cannot read the directory: {e}", path.display())))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|file| file.is_file() && PolicyTests::is_test_file(file))
            .collect();
        if found.is_empty() {
            return Err(Failure::BadInput(format!(
                "{}: no test files (*.toml, *.yaml, *.yml with [[case]] or [[scenario]])",
                path.display()
            )));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn counts(results: &[TestResult]) -> (usize, usize) {
    let failed = results.iter().filter(|r| !r.outcome.passed()).count();
    (results.len() - failed, failed)
}

fn write_text(results: &[TestResult], out: &mut dyn Write) -> std::io::Result<()> {
    for r in results {
        let mark = if r.outcome.passed() { "ok  " } else { "FAIL" };
        writeln!(out, "{mark}  {}: {} {}", r.file, r.kind.name(), r.outcome.name)?;
        if let Some(failure) = &r.outcome.failure {
            for line in failure.to_string().lines() {
                writeln!(out, "      {line}")?;
            }
        }
    }
    let (passed, failed) = counts(results);
    writeln!(out, "{passed} passed, {failed} failed")
}

fn write_json(results: &[TestResult], out: &mut dyn Write) -> std::io::Result<()> {
    let (passed, failed) = counts(results);
    let results: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            let mut json = serde_json::json!({
                "file": r.file,
                "kind": r.kind.name(),
                "passed": r.outcome.passed(),
            });
            if let serde_json::Value::Object(outcome) = serde_json::to_value(&r.outcome).unwrap_or_default() {
                json.as_object_mut().into_iter().for_each(|object| object.extend(outcome.clone()));
            }
            if let Some(decision) = &r.outcome.decision {
                json["decision"] = crate::evaluate::decision_json(decision);
            }
            json
        })
        .collect();
    let json = serde_json::json!({ "passed": passed, "failed": failed, "results": results });
    let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}

/// JUnit XML as CI systems read it: a `testsuite` per file, a `testcase` per case or scenario.
fn write_junit(results: &[TestResult], out: &mut dyn Write) -> std::io::Result<()> {
    let (_, failed) = counts(results);
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(out, r#"<testsuites name="atlas-promote test" tests="{}" failures="{failed}">"#, results.len())?;
    let mut files: Vec<&str> = results.iter().map(|r| r.file.as_str()).collect();
    files.dedup();
    for file in files {
        let suite: Vec<&TestResult> = results.iter().filter(|r| r.file == file).collect();
        let failures = suite.iter().filter(|r| !r.outcome.passed()).count();
        writeln!(out, r#"  <testsuite name="{}" tests="{}" failures="{failures}">"#, xml(file), suite.len())?;
        for r in suite {
            let name = xml(&format!("{} {}", r.kind.name(), r.outcome.name));
            match &r.outcome.failure {
                None => writeln!(out, r#"    <testcase classname="{}" name="{name}"/>"#, xml(file))?,
                Some(failure) => {
                    writeln!(out, r#"    <testcase classname="{}" name="{name}">"#, xml(file))?;
                    let message = xml(&format!("expected: {}", failure.expected));
                    writeln!(out, r#"      <failure message="{message}">{}</failure>"#, xml(&failure.to_string()))?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    writeln!(out, "</testsuites>")
}

/// Text escaped for an XML attribute or element.
fn xml(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\n' => escaped.push_str("&#10;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_quotes() {
        assert_eq!(xml(r#"a < b & "c" > d"#), "a &lt; b &amp; &quot;c&quot; &gt; d");
        assert_eq!(xml("two\nlines"), "two&#10;lines");
    }
}
