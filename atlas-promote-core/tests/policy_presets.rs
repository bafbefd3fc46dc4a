//! The ATLAS preset as a policy file, and policies written out and read back.

use std::collections::BTreeMap;
use std::path::PathBuf;

use atlas_promote_core::{
    ApprovalRule, CheckSpec, Duration, Freeze, LocalTime, OverrideRule, Policy, StageKind, Weekday, Window,
};

fn example(name: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "..", "examples", "policies", name].iter().collect()
}

#[test]
fn atlas_toml_is_the_atlas_preset() {
    // Given the documented example file
    // When it is read
    let policy = Policy::from_path(example("atlas.toml")).unwrap();
    // Then it is exactly the preset
    assert_eq!(policy, Policy::atlas());
}

#[cfg(feature = "yaml")]
#[test]
fn atlas_yaml_is_the_atlas_preset() {
    let policy = Policy::from_path(example("atlas.yaml")).unwrap();
    assert_eq!(policy, Policy::atlas());
}

#[cfg(not(feature = "yaml"))]
#[test]
fn a_yaml_file_without_the_yaml_feature_says_what_is_needed() {
    let err = Policy::from_path(example("atlas.yaml")).unwrap_err();
    assert!(err.message.contains("`yaml` feature"), "{err}");
    assert_eq!((err.line, err.field.as_deref()), (None, None));
}

#[test]
fn an_unknown_file_type_is_refused_by_name() {
    let err = Policy::from_path("policy.json").unwrap_err();
    assert_eq!(err.file, "policy.json");
    assert!(err.message.contains("expected a .toml, .yaml or .yml file"), "{err}");
}

#[test]
fn a_missing_file_is_reported_with_its_name() {
    let err = Policy::from_path("does/not/exist.toml").unwrap_err();
    assert!(err.to_string().starts_with("does/not/exist.toml: cannot read the policy file"), "{err}");
}

#[test]
fn errors_in_a_file_carry_its_path() {
    let dir = std::env::temp_dir().join(format!("atlas-promote-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.TOML");
    std::fs::write(&path, "name = \"broken\"\nstage = [{ name = \"trunk\", kind = \"trunk\", soak = \"1w\" }]\n")
        .unwrap();
    let err = Policy::from_path(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(err.file, path.display().to_string());
    assert_eq!((err.line, err.field.as_deref()), (Some(2), Some("stage[0].soak")));
}

#[test]
fn atlas_flush_runs_are_told_their_environment_like_deploys() {
    // The backends' sample workflows flush `inputs.environment` /
    // `pipeline.parameters.atlas_environment`; GitHub refuses a dispatch
    // without a required input.
    for stage in Policy::atlas().stages.iter().filter(|s| s.is_environment()) {
        let (deploy, flush) = (stage.deploy.as_ref().unwrap(), stage.flush.as_ref().unwrap());
        assert_eq!(flush.parameters, deploy.parameters, "stage {}", stage.name);
        assert_eq!(flush.parameters.get("environment"), Some(&stage.name));
    }
}

#[test]
fn the_atlas_preset_round_trips_through_toml() {
    let atlas = Policy::atlas();
    assert_eq!(Policy::from_toml_str(&atlas.to_toml_string(), "atlas.toml").unwrap(), atlas);
}

#[test]
fn a_policy_using_every_field_round_trips_through_toml() {
    // Given a policy that sets every optional field
    let mut policy = Policy::atlas();
    policy.directory = BTreeMap::from([
        ("pat".to_owned(), vec!["product-owner".to_owned()]),
        ("dan".to_owned(), vec!["developer".to_owned(), "dev-team".to_owned()]),
        ("with space".to_owned(), vec!["a.b".to_owned()]),
    ]);
    policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    let prod = policy.stages.last_mut().unwrap();
    prod.soak = Some(Duration::minutes(90));
    prod.checks = vec![CheckSpec::advisory("data-quality").with_max_age(Duration::days(2))];
    prod.windows = vec![Window {
        days: vec![Weekday::Mon, Weekday::Fri],
        start: LocalTime::hm(22, 0).unwrap(),
        end: LocalTime::hm(6, 30).unwrap(),
        tz: chrono_tz::Europe::Berlin,
    }];
    prod.freezes = vec![
        Freeze {
            from: "2026-12-20T00:00:00Z".parse().unwrap(),
            until: Some("2027-01-04T00:00:00.5Z".parse().unwrap()),
            reason: Some("holidays \"quoted\"\nand a new line".into()),
        },
        Freeze { from: "2027-06-01T12:00:00Z".parse().unwrap(), until: None, reason: None },
    ];
    prod.approvals =
        Some(ApprovalRule { forbid_self_approval: false, ..ApprovalRule::require([("product-owner", 2)]) });
    let mut ephemeral = atlas_promote_core::Stage::new("preview", StageKind::Environment);
    ephemeral.ephemeral = true;
    policy.stages.insert(2, ephemeral);
    // When it is written and read back
    let text = policy.to_toml_string();
    // Then nothing is lost
    assert_eq!(Policy::from_toml_str(&text, "every.toml").unwrap(), policy, "{text}");
}
