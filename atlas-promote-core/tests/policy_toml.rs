//! Reading TOML policy files: every mistake names the file, the line, the
//! column and the field.

use atlas_promote_core::{Policy, PolicyError};

/// A valid policy whose last stage, `prod`, ends on line 13: a test appends
/// lines to `prod` from line 14 on.
const BASE: &str = r#"name = "p"

[[stage]]
name = "review"
kind = "review"

[[stage]]
name = "trunk"
kind = "trunk"

[[stage]]
name = "prod"
kind = "environment"
"#;

fn with_prod(lines: &str) -> String {
    format!("{BASE}{lines}\n")
}

fn read(text: &str) -> PolicyError {
    match Policy::from_toml_str(text, "policy.toml") {
        Ok(policy) => panic!("expected an error, read {policy:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn assert_at(err: &PolicyError, line: usize, column: usize, field: &str, says: &str) {
    assert_eq!(err.file, "policy.toml", "{err}");
    assert_eq!((err.line, err.column), (Some(line), Some(column)), "{err}");
    assert_eq!(err.field.as_deref(), Some(field), "{err}");
    assert!(err.message.contains(says), "{err:?} should say {says:?}");
}

#[test]
fn the_base_policy_is_valid() {
    assert!(Policy::from_toml_str(BASE, "policy.toml").is_ok());
}

#[test]
fn an_error_renders_as_file_line_column_field_and_message() {
    // Given a count of 0 on line 14
    let err = read(&with_prod("approvals = { require = { product-owner = 0 } }"));
    // Then the sentence starts with where it is
    assert_eq!(
        err.to_string(),
        "policy.toml:14:43: stage[2].approvals.require.product-owner: \
         needs at least 1 approver holding product-owner; remove product-owner from the rule to require none"
    );
}

// --- what the parser finds ---------------------------------------------------

#[test]
fn a_syntax_error_names_its_place_and_the_field_it_breaks() {
    let err = read(&with_prod("soak = = \"1h\""));
    assert_at(&err, 14, 8, "stage[2].soak", "extra `=`");
}

#[test]
fn an_unknown_field_is_named() {
    let err = read(&with_prod("sock = \"24h\""));
    assert_at(&err, 14, 1, "stage[2].sock", "unknown field `sock`");
}

#[test]
fn an_unknown_field_in_an_inline_table_is_named() {
    let err = read(&with_prod("approvals = { require = { developer = 1 }, forbid_self = true }"));
    assert_at(&err, 14, 44, "stage[2].approvals.forbid_self", "unknown field `forbid_self`");
}

#[test]
fn a_missing_field_names_the_field_that_is_missing() {
    // Given a stage with no kind, opened on line 15
    let err = read(&with_prod("\n[[stage]]\nname = \"late\""));
    assert_at(&err, 15, 1, "stage[3].kind", "missing field `kind`");
}

#[test]
fn a_missing_policy_name_is_reported_at_the_top() {
    let err = read("[[stage]]\nname = \"trunk\"\nkind = \"trunk\"\n");
    assert_at(&err, 1, 1, "name", "missing field `name`");
}

#[test]
fn a_value_of_the_wrong_type_is_named() {
    let err = read(&with_prod("approvals = { require = { developer = \"one\" } }"));
    assert_at(&err, 14, 39, "stage[2].approvals.require.developer", "invalid type");
}

#[test]
fn an_unknown_stage_kind_is_named() {
    let err = read(&BASE.replace("kind = \"environment\"", "kind = \"env\""));
    assert_at(&err, 13, 8, "stage[2].kind", "unknown variant `env`");
}

#[test]
fn a_bad_duration_says_which_forms_work() {
    for bad in ["26", "26x", "1.5h", "-1h", "h"] {
        let err = read(&with_prod(&format!("soak = \"{bad}\"")));
        assert_at(&err, 14, 8, "stage[2].soak", "expected a whole number followed by m, h or d");
    }
}

#[test]
fn a_bad_max_age_in_a_check_is_named() {
    let err = read(&with_prod("checks = [{ name = \"system\" }, { name = \"smoke\", max_age = \"2w\" }]"));
    assert_at(&err, 14, 60, "stage[2].checks[1].max_age", "invalid duration \"2w\"");
}

#[test]
fn an_unknown_time_zone_is_named() {
    let err = read(&with_prod(
        "windows = [{ days = [\"mon\"], start = \"09:00\", end = \"16:00\", tz = \"Europe/Berlinn\" }]",
    ));
    assert_at(&err, 14, 67, "stage[2].windows[0].tz", "Europe/Berlinn");
}

#[test]
fn a_time_that_is_not_hh_mm_is_named() {
    let err = read(&with_prod("windows = [{ days = [\"mon\"], start = \"9am\", end = \"16:00\", tz = \"UTC\" }]"));
    assert_at(&err, 14, 38, "stage[2].windows[0].start", "expected HH:MM");
}

#[test]
fn a_time_out_of_range_is_named() {
    let err = read(&with_prod("windows = [{ days = [\"mon\"], start = \"09:00\", end = \"25:00\", tz = \"UTC\" }]"));
    assert_at(&err, 14, 53, "stage[2].windows[0].end", "expected HH:MM");
}

#[test]
fn an_unknown_weekday_is_named() {
    let err = read(&with_prod("windows = [{ days = [\"monday\"], start = \"09:00\", end = \"16:00\", tz = \"UTC\" }]"));
    assert_at(&err, 14, 22, "stage[2].windows[0].days[0]", "unknown variant `monday`");
}

#[test]
fn a_freeze_without_an_offset_is_refused() {
    let err = read(&with_prod("freezes = [{ from = 2026-12-20T00:00:00 }]"));
    assert_at(&err, 14, 21, "stage[2].freezes[0].from", "expected a date, a time and an offset");
}

#[test]
fn a_freeze_that_is_not_rfc_3339_is_refused() {
    let err = read(&with_prod("freezes = [{ from = \"20 Dec 2026\" }]"));
    assert_at(&err, 14, 21, "stage[2].freezes[0].from", "expected RFC 3339");
}

#[test]
fn a_duplicate_key_is_a_syntax_error_at_the_second_one() {
    let err = read(&with_prod("kind = \"environment\""));
    assert_at(&err, 14, 1, "stage[2].kind", "duplicate key");
}

// --- what validation finds --------------------------------------------------

#[test]
fn duplicate_stage_names_are_refused_at_the_second() {
    let err = read(&with_prod("\n[[stage]]\nname = \"trunk\"\nkind = \"environment\""));
    assert_at(&err, 16, 8, "stage[3].name", "stage name \"trunk\" is already used by stage[1]");
}

#[test]
fn a_review_stage_after_trunk_is_out_of_order() {
    let err = read(&with_prod("\n[[stage]]\nname = \"late-review\"\nkind = \"review\""));
    assert_at(&err, 17, 8, "stage[3].kind", "review stages come first");
}

#[test]
fn a_second_trunk_is_refused() {
    let err = read(&with_prod("\n[[stage]]\nname = \"trunk-2\"\nkind = \"trunk\""));
    assert_at(&err, 17, 8, "stage[3].kind", "at most one trunk stage");
}

#[test]
fn trunk_after_an_environment_is_out_of_order() {
    let text = r#"name = "p"

[[stage]]
name = "dev"
kind = "environment"

[[stage]]
name = "trunk"
kind = "trunk"
"#;
    let err = read(text);
    assert_at(&err, 9, 8, "stage[1].kind", "the trunk stage comes before every environment");
}

#[test]
fn a_policy_needs_stages() {
    let err = read("name = \"empty\"\n");
    assert_at(&err, 1, 1, "stage", "no stages");
}

#[test]
fn a_policy_needs_a_name() {
    let err = read(&BASE.replace("name = \"p\"", "name = \" \""));
    assert_at(&err, 1, 8, "name", "needs a name");
}

#[test]
fn a_review_stage_cannot_deploy() {
    let text = BASE.replace("kind = \"review\"", "kind = \"review\"\ndeploy = { workflow = \"deploy\" }");
    let err = read(&text);
    assert_at(&err, 6, 1, "stage[0].deploy", "only environments can");
}

#[test]
fn a_trunk_stage_cannot_flush_be_monitored_or_be_ephemeral() {
    // A table is pointed at by its key, a scalar by its value.
    for (line, column, field) in [
        ("flush = { paths = [\"pipelines/**\"], workflow = \"flush\" }", 1, "flush"),
        ("monitor = { check = \"dq\", on_failure = \"alert\" }", 1, "monitor"),
        ("ephemeral = true", 13, "ephemeral"),
    ] {
        let text = BASE.replace("kind = \"trunk\"", &format!("kind = \"trunk\"\n{line}"));
        let err = read(&text);
        assert_at(&err, 10, column, &format!("stage[1].{field}"), "trunk stage");
    }
}

#[test]
fn entry_rules_on_the_first_stage_never_apply() {
    for (line, field) in [
        ("approvals = { require = { developer = 1 } }", "approvals"),
        ("windows = [{ days = [\"mon\"], start = \"09:00\", end = \"16:00\", tz = \"UTC\" }]", "windows"),
        ("freezes = [{ from = \"2026-12-20T00:00:00Z\" }]", "freezes"),
    ] {
        let text = BASE.replace("kind = \"review\"", &format!("kind = \"review\"\n{line}"));
        let err = read(&text);
        assert_at(&err, 6, 1, &format!("stage[0].{field}"), "nothing enters the first stage");
    }
}

#[test]
fn an_approval_count_of_zero_is_refused() {
    let err = read(&with_prod("approvals = { require = { product-owner = 1, dev-team = 0 } }"));
    assert_at(&err, 14, 57, "stage[2].approvals.require.dev-team", "at least 1 approver");
}

#[test]
fn an_approval_rule_must_name_a_role() {
    let err = read(&with_prod("approvals = { require = {}, ttl = \"72h\" }"));
    assert_at(&err, 14, 15, "stage[2].approvals.require", "must name at least one role");
}

#[test]
fn an_approval_rule_in_its_own_table_is_located_too() {
    let err = read(&with_prod("\n[stage.approvals.require]\nproduct-owner = 0"));
    assert_at(&err, 16, 17, "stage[2].approvals.require.product-owner", "at least 1 approver");
}

#[test]
fn a_zero_ttl_is_refused() {
    let err = read(&with_prod("approvals = { require = { developer = 1 }, ttl = \"0m\" }"));
    assert_at(&err, 14, 50, "stage[2].approvals.ttl", "expires every approval at once");
}

#[test]
fn a_zero_max_age_is_refused() {
    let err = read(&with_prod("checks = [{ name = \"system\", max_age = \"0h\" }]"));
    assert_at(&err, 14, 40, "stage[2].checks[0].max_age", "makes every result stale");
}

#[test]
fn an_invalid_flush_glob_is_named() {
    let err = read(&with_prod("flush = { paths = [\"pipelines/**\", \"dags/[a-\"], workflow = \"flush\" }"));
    assert_at(&err, 14, 36, "stage[2].flush.paths[1]", "invalid glob \"dags/[a-\"");
}

#[test]
fn a_window_that_starts_when_it_ends_is_refused() {
    let err = read(&with_prod("windows = [{ days = [\"mon\"], start = \"09:00\", end = \"09:00\", tz = \"UTC\" }]"));
    assert_at(&err, 14, 53, "stage[2].windows[0].end", "either empty or a whole day");
}

#[test]
fn a_freeze_that_ends_before_it_begins_is_refused() {
    let err = read(&with_prod("freezes = [{ from = 2026-12-20T00:00:00Z, until = 2026-12-20T00:00:00Z }]"));
    assert_at(&err, 14, 51, "stage[2].freezes[0].until", "until must be later than from");
}

#[test]
fn an_override_rule_must_name_a_role() {
    let text = BASE.replace("name = \"p\"\n", "name = \"p\"\noverrides = { roles = [] }\n");
    let err = read(&text);
    assert_at(&err, 2, 15, "overrides.roles", "must name at least one role");
}

#[test]
fn a_monitor_must_name_its_check() {
    let err = read(&with_prod("monitor = { check = \"\", on_failure = \"alert\" }"));
    assert_at(&err, 14, 21, "stage[2].monitor.check", "needs the name of the check");
}

#[test]
fn every_mistake_is_reported_in_the_order_of_the_file() {
    // Given three mistakes: approvals on the first stage (which nothing
    // enters) whose rule names no role, then a count of 0 in prod
    let text = BASE.replace("name = \"review\"", "name = \"review\"\nsoak = \"1h\"\napprovals = { require = {} }");
    let text = format!("{text}approvals = {{ require = {{ developer = 0 }} }}\n");
    // Then the first one in the file leads, and the others follow in order
    let err = read(&text);
    let places: Vec<_> = err.mistakes().map(|m| (m.line, m.column, m.field.as_deref())).collect();
    assert_eq!(
        places,
        [
            (Some(6), Some(1), Some("stage[0].approvals")),
            (Some(6), Some(15), Some("stage[0].approvals.require")),
            (Some(16), Some(39), Some("stage[2].approvals.require.developer")),
        ],
        "{err}"
    );
    // And each renders on its own line, naming the file
    let rendered = err.to_string();
    assert_eq!(rendered.lines().count(), 3, "{rendered}");
    assert!(rendered.lines().all(|line| line.starts_with("policy.toml:")), "{rendered}");
    assert!(err.also.iter().all(|m| m.also.is_empty()));
}

#[test]
fn a_syntax_error_is_reported_alone() {
    // Given a syntax error after a validation mistake
    let err = read(&with_prod("approvals = { require = { developer = 0 } }\nsoak = ="));
    // Then the parser's mistake is the only one: validation never ran
    assert!(err.also.is_empty(), "{err}");
    assert_eq!(err.line, Some(15), "{err}");
}

// --- what is accepted --------------------------------------------------------

#[test]
fn freezes_may_be_toml_date_times_or_quoted_rfc_3339() {
    let unquoted = with_prod("freezes = [{ from = 2026-12-20T00:00:00Z, until = 2027-01-04T01:00:00+01:00 }]");
    let quoted = with_prod("freezes = [{ from = \"2026-12-20T00:00:00Z\", until = \"2027-01-04T00:00:00Z\" }]");
    let a = Policy::from_toml_str(&unquoted, "a.toml").unwrap();
    let b = Policy::from_toml_str(&quoted, "b.toml").unwrap();
    assert_eq!(a, b);
}

#[test]
fn window_times_may_be_toml_times_or_quoted() {
    let unquoted = with_prod("windows = [{ days = [\"mon\"], start = 09:00, end = 16:00, tz = \"UTC\" }]");
    let quoted = with_prod("windows = [{ days = [\"mon\"], start = \"09:00\", end = \"16:00\", tz = \"UTC\" }]");
    assert_eq!(Policy::from_toml_str(&unquoted, "a.toml").unwrap(), Policy::from_toml_str(&quoted, "b.toml").unwrap());
}

#[test]
fn a_window_running_past_midnight_is_fine() {
    let text =
        with_prod("windows = [{ days = [\"fri\"], start = \"22:00\", end = \"06:00\", tz = \"Europe/Berlin\" }]");
    assert!(Policy::from_toml_str(&text, "policy.toml").is_ok());
}

#[test]
fn windows_and_freezes_on_trunk_are_merge_windows_and_code_freezes() {
    let text = BASE.replace(
        "kind = \"trunk\"",
        "kind = \"trunk\"\nfreezes = [{ from = \"2026-12-20T00:00:00Z\", until = \"2027-01-04T00:00:00Z\" }]",
    );
    assert!(Policy::from_toml_str(&text, "policy.toml").is_ok());
}

#[test]
fn garbage_never_panics() {
    for text in ["", "\0", "[[", "name = \"x\"\n[[stage]]\n[[stage]]", "stage = [[[[[[[[[[]]]]]]]]]]", "ä = ö"] {
        assert!(Policy::from_toml_str(text, "garbage.toml").is_err(), "{text:?}");
    }
}

#[test]
fn a_duration_over_the_cap_names_the_cap() {
    let err = read(&with_prod(r#"soak = "4000000d""#));
    assert_at(&err, 14, 8, "stage[2].soak", "longer than the longest a policy can hold, 3660000d");
    assert!(!err.message.contains("expected a whole number"), "{err}");
    let err = read(&with_prod(r#"soak = "99999999999999999999999m""#));
    assert!(err.message.contains("longer than the longest"), "{err}");
    assert!(Policy::from_toml_str(&with_prod(r#"soak = "3660000d""#), "policy.toml").is_ok());
}

#[test]
fn a_policy_file_that_is_not_utf8_is_refused_at_its_byte_offset() {
    let path = std::env::temp_dir().join(format!("atlas-policy-utf8-{}.toml", std::process::id()));
    std::fs::write(&path, b"name = \"p\"\n# caf\xe9\n").unwrap();
    let err = Policy::from_path(&path).unwrap_err();
    std::fs::remove_file(&path).unwrap();
    assert_eq!((err.line, err.column), (Some(2), Some(6)), "{err}");
    assert!(err.message.starts_with("not valid UTF-8 at byte 16"), "{err}");
}
