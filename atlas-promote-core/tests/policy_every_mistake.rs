//! Every mistake in a policy file is reported, in the order of the file,
//! each located: unknown fields, bad durations, bad enum values and broken
//! rules alike, not only the first.

use atlas_promote_core::{Policy, PolicyError};

/// Four mistakes serde would stop at, one by one, and a broken rule.
const FOUR_MISTAKES: &str = r#"name = "four"

[[stage]]
name = "trunk"
kind = "trunk"
colour = "blue"

[[stage]]
name = "staging"
kind = "environment"
soak = "5x"

[[stage]]
name = "prod"
kind = "enviroment"
windows = [{ days = ["fri", "frx"], start = "09:00", end = "16:00", tz = "UTC" }]
approvals = { require = { product-owner = 0 } }
"#;

fn places(err: &PolicyError) -> Vec<(Option<usize>, Option<&str>)> {
    err.mistakes().map(|m| (m.line, m.field.as_deref())).collect()
}

#[test]
fn every_parse_mistake_of_a_toml_file_is_reported_in_file_order() {
    let err = Policy::from_toml_str(FOUR_MISTAKES, "four.toml").unwrap_err();
    assert_eq!(
        places(&err),
        [
            (Some(6), Some("stage[0].colour")),
            (Some(11), Some("stage[1].soak")),
            (Some(15), Some("stage[2].kind")),
            (Some(16), Some("stage[2].windows[0].days[1]")),
            (Some(17), Some("stage[2].approvals.require.product-owner")),
        ],
        "{err}"
    );
    let messages: Vec<&str> = err.mistakes().map(|m| m.message.as_str()).collect();
    assert!(messages[0].contains("unknown field `colour`"), "{err}");
    assert!(messages[1].contains("5x"), "{err}");
    assert!(messages[2].contains("unknown variant `enviroment`"), "{err}");
    assert!(messages[3].contains("unknown variant `frx`"), "{err}");
    assert_eq!(err.to_string().lines().count(), 5, "{err}");
}

#[test]
fn the_columns_point_at_each_mistake() {
    let err = Policy::from_toml_str(FOUR_MISTAKES, "four.toml").unwrap_err();
    let columns: Vec<_> = err.mistakes().map(|m| m.column).collect();
    assert_eq!(columns[..4], [Some(1), Some(8), Some(8), Some(29)], "{err}");
}

#[test]
fn a_required_field_with_a_bad_value_is_one_mistake_not_two() {
    let text = "name = \"x\"\n\n[[stage]]\nname = \"trunk\"\nkind = 5\n\n[[stage]]\nname = \"prod\"\nkind = \"environment\"\nsoak = \"1y\"\n";
    let err = Policy::from_toml_str(text, "x.toml").unwrap_err();
    assert_eq!(places(&err), [(Some(5), Some("stage[0].kind")), (Some(10), Some("stage[1].soak"))], "{err}");
}

#[test]
fn a_syntax_error_comes_alone() {
    let text = "name = \"x\"\n[[stage]\nname = 5\n";
    let err = Policy::from_toml_str(text, "x.toml").unwrap_err();
    assert!(err.also.is_empty(), "{err}");
}

#[test]
fn unknown_fields_in_inline_tables_are_each_reported() {
    let text = r#"name = "x"

[[stage]]
name = "trunk"
kind = "trunk"

[[stage]]
name = "prod"
kind = "environment"
checks = [{ nme = "a", name = "b" }, { name = "c", blockng = false }]
"#;
    let err = Policy::from_toml_str(text, "x.toml").unwrap_err();
    assert_eq!(
        places(&err),
        [(Some(10), Some("stage[1].checks[0].nme")), (Some(10), Some("stage[1].checks[1].blockng"))],
        "{err}"
    );
}

#[cfg(feature = "yaml")]
#[test]
fn every_parse_mistake_of_a_yaml_file_is_reported_in_file_order() {
    let yaml = r#"name: four
stage:
  - name: trunk
    kind: trunk
    colour: blue
  - name: staging
    kind: environment
    soak: 5x
  - name: prod
    kind: enviroment
    windows:
      - { days: [fri, frx], start: "09:00", end: "16:00", tz: UTC }
    approvals:
      require: { product-owner: 0 }
"#;
    let err = Policy::from_yaml_str(yaml, "four.yaml").unwrap_err();
    let lines: Vec<_> = err.mistakes().map(|m| m.line).collect();
    assert_eq!(lines, [Some(5), Some(8), Some(10), Some(12), Some(14)], "{err}");
    let fields: Vec<_> = err.mistakes().map(|m| m.field.as_deref()).collect();
    assert_eq!(fields[0], Some("stage[0].colour"), "{err}");
    assert_eq!(fields[1], Some("stage[1].soak"), "{err}");
    assert_eq!(fields[2], Some("stage[2].kind"), "{err}");
    assert_eq!(fields[4], Some("stage[2].approvals.require.product-owner"), "{err}");
}

/// A missing required field, then three more mistakes: each stage table
/// lacks something or has something wrong.
const MISSING_THEN_THREE: &str = r#"name = "missing"

[[stage]]
name = "trunk"

[[stage]]
name = "staging"
kind = "environment"
soak = "5x"

[[stage]]
kind = "environment"
checks = [{ max_age = "1h" }]
approvals = { require = { developer = 1 }, tll = "1h" }
"#;

#[test]
fn a_missing_field_does_not_hide_the_mistakes_after_it() {
    let err = Policy::from_toml_str(MISSING_THEN_THREE, "missing.toml").unwrap_err();
    assert_eq!(
        places(&err),
        [
            (Some(3), Some("stage[0].kind")),
            (Some(9), Some("stage[1].soak")),
            (Some(11), Some("stage[2].name")),
            (Some(13), Some("stage[2].checks[0].name")),
            (Some(14), Some("stage[2].approvals.tll")),
        ],
        "{err}"
    );
    let messages: Vec<&str> = err.mistakes().map(|m| m.message.as_str()).collect();
    assert!(messages[0].contains("missing field `kind`"), "{err}");
    assert!(messages[2].contains("missing field `name`"), "{err}");
    assert!(messages[3].contains("missing field `name`"), "{err}");
    assert!(messages[4].contains("unknown field `tll`"), "{err}");
}

#[test]
fn a_missing_top_level_field_does_not_hide_the_mistakes_after_it() {
    let text = "[[stage]]\nname = \"trunk\"\nkind = \"trunk\"\ncolour = 1\n\n[[stage]]\nname = \"prod\"\nkind = \"environment\"\nsoak = \"1y\"\n";
    let err = Policy::from_toml_str(text, "x.toml").unwrap_err();
    let fields: Vec<_> = err.mistakes().map(|m| m.field.as_deref()).collect();
    assert_eq!(fields, [Some("name"), Some("stage[0].colour"), Some("stage[1].soak")], "{err}");
}

#[cfg(feature = "yaml")]
#[test]
fn a_missing_field_of_a_yaml_file_does_not_hide_the_mistakes_after_it() {
    let yaml = r#"name: missing
stage:
  - name: trunk
  - name: staging
    kind: environment
    soak: 5x
  - kind: environment
    checks: [{ max_age: 1h }]
    approvals:
      require: { developer: 1 }
      tll: 1h
"#;
    let err = Policy::from_yaml_str(yaml, "missing.yaml").unwrap_err();
    assert_eq!(
        places(&err),
        [
            (Some(3), Some("stage[0].kind")),
            (Some(6), Some("stage[1].soak")),
            (Some(7), Some("stage[2].name")),
            (Some(8), Some("stage[2].checks[0].name")),
            (Some(11), Some("stage[2].approvals.tll")),
        ],
        "{err}"
    );
}
