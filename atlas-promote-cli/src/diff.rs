//! `atlas-promote diff`: what changing a policy changes.

use std::io::Write;

use atlas_promote_core::impact::{Impact, compare};

use crate::args::{DiffArgs, Format};
use crate::evaluate::decision_json;
use crate::exit::{Failure, Status};
use crate::input;

/// Compare the two policies; exit 0 when they decide alike, 4 when not.
pub(crate) fn run(args: &DiffArgs, out: &mut dyn Write) -> Result<Status, Failure> {
    if input::is_stdin(&args.old) && input::is_stdin(&args.new) {
        return Err(Failure::BadInput("OLD and NEW cannot both be standard input".into()));
    }
    if args.cases == 0 {
        return Err(Failure::BadInput("--cases must be at least 1".into()));
    }
    let (old, old_name) = input::read_policy(&args.old)?;
    let (new, new_name) = input::read_policy(&args.new)?;
    let impact = compare(&old, &new, args.cases, args.seed);
    match args.format {
        Format::Text => write_text(&impact, &old_name, &new_name, out),
        Format::Json => write_json(&impact, &old_name, &new_name, args, out),
    }
    .map_err(Failure::output)?;
    Ok(if impact.is_empty() { Status::Success } else { Status::Block })
}

fn write_text(impact: &Impact, old: &str, new: &str, out: &mut dyn Write) -> std::io::Result<()> {
    for (file, gates) in [(old, &impact.only_old), (new, &impact.only_new)] {
        for (from, to) in gates {
            writeln!(out, "only in {file}: the gate {from} → {to}")?;
        }
    }
    for gate in &impact.gates {
        writeln!(
            out,
            "{} → {}: {} of {} cases decided differently{}",
            gate.from,
            gate.to,
            gate.differing,
            gate.probes,
            match gate.differences.len() {
                0 => String::new(),
                1 => ", 1 distinct change".to_owned(),
                n => format!(", {n} distinct changes"),
            }
        )?;
    }
    for gate in &impact.gates {
        for difference in &gate.differences {
            writeln!(out)?;
            write!(out, "{}", difference.to_case_toml())?;
        }
    }
    Ok(())
}

fn write_json(impact: &Impact, old: &str, new: &str, args: &DiffArgs, out: &mut dyn Write) -> std::io::Result<()> {
    let pair = |(from, to): &(String, String)| serde_json::json!({ "from": from, "to": to });
    let gates: Vec<serde_json::Value> = impact
        .gates
        .iter()
        .map(|gate| {
            let differences: Vec<serde_json::Value> = gate
                .differences
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "summary": d.summary(),
                        "size": d.size,
                        "at": d.probe.at,
                        "evidence": d.probe.evidence,
                        "old": decision_json(&d.old),
                        "new": decision_json(&d.new),
                        "case": d.to_case_toml(),
                    })
                })
                .collect();
            serde_json::json!({
                "from": gate.from, "to": gate.to, "cases": gate.probes, "differing": gate.differing,
                "differences": differences,
            })
        })
        .collect();
    let json = serde_json::json!({
        "old": old,
        "new": new,
        "seed": args.seed,
        "cases": args.cases,
        "only_old": impact.only_old.iter().map(pair).collect::<Vec<_>>(),
        "only_new": impact.only_new.iter().map(pair).collect::<Vec<_>>(),
        "gates": gates,
    });
    let text = serde_json::to_string_pretty(&json).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")
}
