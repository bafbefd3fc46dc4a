//! `forbid_self_approval` defaults to true, and the example policies say so
//! for every approval rule.

use atlas_promote_core::Policy;

const EXAMPLE_TOML: &str = include_str!("../../examples/policies/atlas.toml");

#[test]
fn self_approval_is_forbidden_when_a_rule_does_not_say() {
    let text = "name = \"p\"\n[[stage]]\nname = \"trunk\"\nkind = \"trunk\"\n[[stage]]\nname = \"prod\"\nkind = \"environment\"\napprovals = { require = { developer = 1 } }\n";
    let policy = Policy::from_toml_str(text, "p.toml").unwrap();
    assert!(policy.stages[1].approvals.as_ref().unwrap().forbid_self_approval);
    let allowed = text.replace("developer = 1 }", "developer = 1 }, forbid_self_approval = false");
    let policy = Policy::from_toml_str(&allowed, "p.toml").unwrap();
    assert!(!policy.stages[1].approvals.as_ref().unwrap().forbid_self_approval);
}

#[test]
fn every_approval_rule_of_the_example_toml_policy_writes_forbid_self_approval() {
    let document: toml::Table = toml::from_str(EXAMPLE_TOML).unwrap();
    let stages = document["stage"].as_array().unwrap();
    let rules: Vec<_> = stages.iter().filter_map(|stage| stage.get("approvals")).collect();
    assert!(rules.len() >= 3, "{rules:?}");
    for rule in rules {
        assert_eq!(rule.get("forbid_self_approval").and_then(toml::Value::as_bool), Some(true), "{rule}");
    }
}

#[cfg(feature = "yaml")]
#[test]
fn every_approval_rule_of_the_example_yaml_policy_writes_forbid_self_approval() {
    let text = include_str!("../../examples/policies/atlas.yaml");
    let document: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    let stages = document["stage"].as_array().unwrap();
    let rules: Vec<_> = stages.iter().filter_map(|stage| stage.get("approvals")).collect();
    assert!(rules.len() >= 3, "{rules:?}");
    for rule in rules {
        assert_eq!(rule["forbid_self_approval"], serde_json::Value::Bool(true), "{rule}");
    }
    assert_eq!(
        Policy::from_yaml_str(text, "atlas.yaml").unwrap(),
        Policy::from_toml_str(EXAMPLE_TOML, "atlas.toml").unwrap()
    );
}
