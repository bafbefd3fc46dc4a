//! Reading YAML policy files (feature `yaml`): the same mistakes as in TOML,
//! named by file, line, column and field.
#![cfg(feature = "yaml")]

use atlas_promote_core::{Policy, PolicyError};

/// A valid policy whose last stage, `prod`, ends on line 8: a test appends
/// lines to `prod` from line 9 on.
const BASE: &str = "name: p
stage:
  - name: review
    kind: review
  - name: trunk
    kind: trunk
  - name: prod
    kind: environment
";

fn with_prod(lines: &str) -> String {
    format!("{BASE}{lines}\n")
}

fn read(text: &str) -> PolicyError {
    match Policy::from_yaml_str(text, "policy.yaml") {
        Ok(policy) => panic!("expected an error, read {policy:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_at(err: &PolicyError, line: usize, column: usize, field: &str, says: &str) {
    assert_eq!(err.file, "policy.yaml", "{err}");
    assert_eq!((err.line, err.column), (Some(line), Some(column)), "{err}");
    assert_eq!(err.field.as_deref(), Some(field), "{err}");
    assert!(err.message.contains(says), "{err:?} should say {says:?}");
}

#[test]
fn the_base_policy_is_valid() {
    assert!(Policy::from_yaml_str(BASE, "policy.yaml").is_ok());
}

// --- what the parser finds ---------------------------------------------------

#[test]
fn a_syntax_error_names_its_place_and_the_field_it_breaks() {
    let err = read(&with_prod("    soak: \"1h"));
    assert_at(&err, 9, 11, "stage[2].soak", "unclosed quote");
}

#[test]
fn an_unknown_field_is_named() {
    let err = read(&with_prod("    sock: 24h"));
    assert_at(&err, 9, 5, "stage[2].sock", "unknown field `sock`");
}

#[test]
fn a_missing_field_names_the_field_that_is_missing() {
    let err = read(&with_prod("  - name: late"));
    assert_at(&err, 9, 5, "stage[3].kind", "missing field `kind`");
}

#[test]
fn a_missing_policy_name_is_reported_at_the_top() {
    let err = read("stage:\n  - name: trunk\n    kind: trunk\n");
    assert_at(&err, 1, 1, "name", "missing field `name`");
}

#[test]
fn a_value_of_the_wrong_type_is_named() {
    let err = read(&with_prod("    approvals:\n      require: { developer: one }"));
    assert_at(&err, 10, 29, "stage[2].approvals.require.developer", "invalid");
}

#[test]
fn an_unknown_stage_kind_is_named() {
    let err = read(&BASE.replace("kind: environment", "kind: env"));
    assert_at(&err, 8, 11, "stage[2].kind", "unknown variant `env`");
}

#[test]
fn a_bad_duration_says_which_forms_work() {
    let err = read(&with_prod("    soak: 26x"));
    assert_at(&err, 9, 11, "stage[2].soak", "expected a whole number followed by m, h or d");
}

#[test]
fn an_unknown_time_zone_is_named() {
    let err =
        read(&with_prod("    windows:\n      - { days: [mon], start: \"09:00\", end: \"16:00\", tz: Mars/Olympus }"));
    assert_at(&err, 10, 58, "stage[2].windows[0].tz", "Mars/Olympus");
}

#[test]
fn a_time_that_is_not_hh_mm_is_named() {
    let err = read(&with_prod(
        "    windows:\n      - days: [mon]\n        start: 9am\n        end: \"16:00\"\n        tz: UTC",
    ));
    assert_at(&err, 11, 16, "stage[2].windows[0].start", "expected HH:MM");
}

#[test]
fn a_duplicate_key_is_refused_at_the_second_one() {
    let err = read(&with_prod("    kind: review"));
    assert_at(&err, 9, 5, "stage[2].kind", "duplicate mapping key");
}

// --- what validation finds --------------------------------------------------

#[test]
fn duplicate_stage_names_are_refused_at_the_second() {
    let err = read(&with_prod("  - name: trunk\n    kind: environment"));
    assert_at(&err, 9, 11, "stage[3].name", "already used by stage[1]");
}

#[test]
fn a_review_stage_after_trunk_is_out_of_order() {
    let err = read(&with_prod("  - name: late-review\n    kind: review"));
    assert_at(&err, 10, 11, "stage[3].kind", "review stages come first");
}

#[test]
fn a_second_trunk_is_refused() {
    let err = read(&with_prod("  - name: trunk-2\n    kind: trunk"));
    assert_at(&err, 10, 11, "stage[3].kind", "at most one trunk stage");
}

#[test]
fn a_review_stage_cannot_deploy() {
    let err = read(&BASE.replace("kind: review", "kind: review\n    deploy: { workflow: deploy }"));
    assert_at(&err, 5, 5, "stage[0].deploy", "only environments can");
}

#[test]
fn an_approval_count_of_zero_is_refused() {
    let err = read(&with_prod("    approvals:\n      require:\n        product-owner: 1\n        dev-team: 0"));
    assert_at(&err, 12, 19, "stage[2].approvals.require.dev-team", "at least 1 approver");
}

#[test]
fn an_approval_rule_must_name_a_role() {
    let err = read(&with_prod("    approvals: { require: {} }"));
    assert_at(&err, 9, 18, "stage[2].approvals.require", "must name at least one role");
}

#[test]
fn an_invalid_flush_glob_is_named() {
    let err = read(&with_prod(
        "    flush:\n      workflow: flush\n      paths:\n        - pipelines/**\n        - \"dags/[a-\"",
    ));
    assert_at(&err, 13, 11, "stage[2].flush.paths[1]", "invalid glob");
}

#[test]
fn every_mistake_is_reported_in_the_order_of_the_file() {
    let err = read(&with_prod(
        "    windows:\n      - { days: [mon], start: \"09:00\", end: \"09:00\", tz: UTC }\n    approvals:\n      require:\n        dev-team: 0",
    ));
    let places: Vec<_> = err.mistakes().map(|m| (m.line, m.field.as_deref())).collect();
    assert_eq!(
        places,
        [(Some(10), Some("stage[2].windows[0].end")), (Some(13), Some("stage[2].approvals.require.dev-team"))],
        "{err}"
    );
}

#[test]
fn a_window_that_starts_when_it_ends_is_refused() {
    let err = read(&with_prod("    windows:\n      - { days: [mon], start: \"09:00\", end: \"09:00\", tz: UTC }"));
    assert_at(&err, 10, 45, "stage[2].windows[0].end", "either empty or a whole day");
}

#[test]
fn a_freeze_that_ends_before_it_begins_is_refused() {
    let err = read(&with_prod(
        "    freezes:\n      - from: \"2026-12-20T00:00:00Z\"\n        until: \"2026-12-19T00:00:00Z\"",
    ));
    assert_at(&err, 11, 16, "stage[2].freezes[0].until", "until must be later than from");
}

#[test]
fn an_override_rule_must_name_a_role() {
    let err = read(&BASE.replace("name: p\n", "name: p\noverrides:\n  roles: []\n"));
    assert_at(&err, 3, 3, "overrides.roles", "must name at least one role");
}

// --- what is accepted --------------------------------------------------------

#[test]
fn yaml_and_toml_read_the_same_policy() {
    let yaml = with_prod(
        "    freezes: [{ from: 2026-12-20T00:00:00Z, until: null, reason: holidays }]\n    windows: [{ days: [mon], start: 09:00, end: \"16:00\", tz: UTC }]",
    );
    let toml = r#"name = "p"
[[stage]]
name = "review"
kind = "review"
[[stage]]
name = "trunk"
kind = "trunk"
[[stage]]
name = "prod"
kind = "environment"
freezes = [{ from = 2026-12-20T00:00:00Z, reason = "holidays" }]
windows = [{ days = ["mon"], start = "09:00", end = "16:00", tz = "UTC" }]
"#;
    assert_eq!(Policy::from_yaml_str(&yaml, "p.yaml").unwrap(), Policy::from_toml_str(toml, "p.toml").unwrap());
}

#[test]
fn garbage_never_panics() {
    for text in ["", "\0", "- a", "[", "name: [", "*alias", "a: &a [*a]", "name: x\nstage: 3"] {
        assert!(Policy::from_yaml_str(text, "garbage.yaml").is_err(), "{text:?}");
    }
}

#[test]
fn a_mistake_inside_a_flow_mapping_names_the_key_it_is_at() {
    // Given a role named twice in a flow mapping
    let yaml = "name: p\nstage:\n  - { name: trunk, kind: trunk }\n  - { name: prod, kind: environment, approvals: { require: { developer: 1, developer: 2 } } }\n";
    // When it is read
    let err = Policy::from_yaml_str(yaml, "policy.yaml").unwrap_err();
    // Then the mistake names that role, not the last field before the flow mapping
    assert_eq!(err.field.as_deref(), Some("stage[1].approvals.require.developer"), "{err}");
    assert_eq!((err.line, err.column), (Some(4), Some(76)), "{err}");
}
