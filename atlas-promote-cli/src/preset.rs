//! `atlas-promote preset`: the built-in policies.

use std::io::Write;

use atlas_promote_core::Policy;

use crate::args::PresetArgs;
use crate::exit::{Failure, Status};

/// A built-in policy: its name, a one-line summary, and how to build it.
struct Preset {
    name: &'static str,
    summary: &'static str,
    build: fn() -> Policy,
}

const PRESETS: &[Preset] = &[Preset {
    name: "atlas",
    summary: "review → trunk → dev → staging → prod, the ATLAS release strategy",
    build: Policy::atlas,
}];

/// The built-in policy of this name; unknown names are bad input that lists the known ones.
pub(crate) fn policy(name: &str) -> Result<Policy, Failure> {
    PRESETS.iter().find(|p| p.name == name).map(|p| (p.build)()).ok_or_else(|| {
        let known: Vec<_> = PRESETS.iter().map(|p| p.name).collect();
        Failure::BadInput(format!("unknown preset {name:?}; known presets: {}", known.join(", ")))
    })
}

/// Print the preset as TOML, or list the presets when no name is given.
pub(crate) fn run(args: &PresetArgs, out: &mut dyn Write) -> Result<Status, Failure> {
    let Some(name) = &args.name else {
        for p in PRESETS {
            writeln!(out, "{:<8} {}", p.name, p.summary).map_err(Failure::output)?;
        }
        return Ok(Status::Success);
    };
    let text = policy(name)?.to_toml_string();
    if text.is_empty() {
        return Err(Failure::Other(format!("preset {name:?} could not be written as TOML")));
    }
    out.write_all(text.as_bytes()).map_err(Failure::output)?;
    Ok(Status::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atlas_is_the_atlas_policy() {
        assert_eq!(policy("atlas"), Ok(Policy::atlas()));
    }

    #[test]
    fn an_unknown_preset_lists_the_known_ones() {
        assert_eq!(policy("atlass"), Err(Failure::BadInput("unknown preset \"atlass\"; known presets: atlas".into())));
    }

    #[test]
    fn without_a_name_the_presets_are_listed() {
        let mut out = Vec::new();
        assert_eq!(run(&PresetArgs { name: None }, &mut out), Ok(Status::Success));
        assert!(String::from_utf8(out).unwrap().starts_with("atlas "));
    }
}
