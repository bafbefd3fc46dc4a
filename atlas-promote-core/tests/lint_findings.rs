//! `Policy::lint`: what a valid policy gets wrong, one finding per mistake,
//! each a sentence.

use atlas_promote_core::{Finding, Policy, Severity};

/// `review → trunk → dev → staging → prod` guarded like ATLAS, with room for
/// a directory at the top (`{directory}`) and extra lines for prod (`{prod}`).
fn policy(directory: &str, prod: &str) -> Policy {
    let text = format!(
        r#"name = "lint"
{directory}

[[stage]]
name = "review"
kind = "review"
checks = [{{ name = "unit" }}]

[[stage]]
name = "trunk"
kind = "trunk"
approvals = {{ require = {{ developer = 1 }} }}

[[stage]]
name = "dev"
kind = "environment"

[[stage]]
name = "staging"
kind = "environment"
checks = [{{ name = "system" }}]
approvals = {{ require = {{ developer = 1 }} }}

[[stage]]
name = "prod"
kind = "environment"
{prod}
"#
    );
    match Policy::from_toml_str(&text, "lint.toml") {
        Ok(policy) => policy,
        Err(e) => panic!("the policy under test should be valid: {e}\n{text}"),
    }
}

/// Two people for every role, so that no one is indispensable.
const TEAM: &str = r#"[directory]
pat = ["product-owner"]
kim = ["product-owner"]
dan = ["developer", "dev-team"]
eve = ["developer", "dev-team"]"#;

const PROD_RULE: &str = r#"approvals = { require = { product-owner = 1, dev-team = 1 } }"#;

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.severity == Severity::Error).collect()
}

#[track_caller]
fn only(findings: &[Finding]) -> &Finding {
    match findings {
        [finding] => finding,
        _ => panic!("expected exactly one finding, got {findings:#?}"),
    }
}

#[test]
fn the_atlas_preset_lints_without_errors() {
    let findings = Policy::atlas().lint();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_guarded_policy_with_a_sufficient_directory_lints_clean() {
    let findings = policy(TEAM, PROD_RULE).lint();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_rule_needing_more_people_than_the_directory_holds_is_an_error() {
    // Given two developers in the directory and a rule asking for three
    let findings = policy(TEAM, "approvals = { require = { developer = 3 } }").lint();
    // Then lint says the slots cannot all be filled (dev-team and
    // product-owner, named by no rule now, are warnings of their own)
    let errors = errors(&findings);
    assert_eq!(errors.len(), 1, "{findings:#?}");
    let finding = errors[0];
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.stage.as_deref(), Some("prod"));
    assert_eq!(finding.field.as_deref(), Some("stage[4].approvals.require"));
    assert!(finding.message.contains("needs 3 distinct approvers"), "{finding}");
    assert!(finding.message.contains("at most 2"), "{finding}");
}

#[test]
fn one_person_holding_two_roles_never_fills_two_slots() {
    // Given dan alone holds both product-owner and dev-team
    let directory = "[directory]\ndan = [\"product-owner\", \"dev-team\", \"developer\"]";
    let findings = policy(directory, PROD_RULE).lint();
    // Then the prod rule (one of each, two people) cannot be met
    let prod = findings.iter().find(|f| f.field.as_deref() == Some("stage[4].approvals.require")).unwrap();
    assert_eq!(prod.severity, Severity::Error, "{findings:#?}");
}

#[test]
fn the_directory_is_matched_to_slots_not_filled_greedily() {
    // Given ann holds both roles and bob only product-owner: a greedy pass
    // seating ann as product-owner leaves no one for dev-team
    let directory = "[directory]\nann = [\"product-owner\", \"dev-team\"]\nbob = [\"product-owner\"]\ncid = [\"developer\"]\ndot = [\"developer\"]";
    let findings = policy(directory, PROD_RULE).lint();
    // Then a matching (bob as product-owner, ann as dev-team) fills both
    assert!(errors(&findings).is_empty(), "{findings:#?}");
}

#[test]
fn a_role_no_one_holds_is_an_error() {
    let findings = policy(TEAM, "approvals = { require = { release-manager = 1 } }").lint();
    let errors = errors(&findings);
    assert_eq!(errors.len(), 1, "{findings:#?}");
    let finding = errors[0];
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.field.as_deref(), Some("stage[4].approvals.require.release-manager"));
    assert!(finding.message.contains("no one in the directory holds release-manager"), "{finding}");
}

#[test]
fn a_person_the_rule_cannot_do_without_is_a_warning_when_authors_may_not_approve() {
    // Given pat is the only product owner and authors may not approve their own work
    let directory = "[directory]\npat = [\"product-owner\"]\ndan = [\"dev-team\", \"developer\"]\neve = [\"dev-team\", \"developer\"]";
    let findings = policy(directory, PROD_RULE).lint();
    // Then a candidate pat wrote could never reach prod
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Warning);
    assert!(finding.message.contains("cannot be met without pat"), "{finding}");
}

#[test]
fn without_a_directory_approval_rules_are_not_counted() {
    let findings = policy("", "approvals = { require = { release-manager = 9 } }").lint();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_window_with_no_weekday_never_opens() {
    let prod = format!(
        "{PROD_RULE}\nwindows = [\n  {{ days = [], start = \"09:00\", end = \"16:00\", tz = \"UTC\" }},\n  {{ days = [\"mon\"], start = \"09:00\", end = \"16:00\", tz = \"UTC\" }},\n]"
    );
    let findings = policy("", &prod).lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("stage[4].windows[0].days"));
    assert!(finding.message.contains("never opens"), "{finding}");
}

#[test]
fn a_stage_whose_windows_all_never_open_can_never_be_entered() {
    let prod = format!("{PROD_RULE}\nwindows = [{{ days = [], start = \"09:00\", end = \"16:00\", tz = \"UTC\" }}]");
    let findings = policy("", &prod).lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Error);
    assert!(finding.message.contains("nothing can ever enter prod"), "{finding}");
}

#[test]
fn a_freeze_with_no_end_is_a_warning() {
    let prod = format!("{PROD_RULE}\nfreezes = [{{ from = 2026-12-20T00:00:00Z, reason = \"migration\" }}]");
    let findings = policy("", &prod).lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("stage[4].freezes[0]"));
    assert!(finding.message.contains("2026-12-20T00:00:00Z (migration) has no end"), "{finding}");
}

#[test]
fn a_freeze_with_an_end_is_fine() {
    let prod = format!("{PROD_RULE}\nfreezes = [{{ from = 2026-12-20T00:00:00Z, until = 2027-01-04T00:00:00Z }}]");
    assert!(policy("", &prod).lint().is_empty());
}

#[test]
fn a_check_named_twice_in_one_stage_is_an_error() {
    let prod = format!(
        "{PROD_RULE}\nchecks = [{{ name = \"smoke\" }}, {{ name = \"slo\" }}, {{ name = \"smoke\", blocking = false }}]"
    );
    let findings = policy("", &prod).lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Error);
    assert_eq!(finding.field.as_deref(), Some("stage[4].checks[2].name"));
    assert!(finding.message.contains("declared twice (checks[0] and checks[2])"), "{finding}");
}

#[test]
fn a_promotion_no_one_checks_into_a_later_environment_is_a_warning() {
    // Given prod asks for no approval, and staging's only check is advisory
    let mut policy = policy("", "");
    policy.stages[3].checks[0].blocking = false;
    policy.stages[3].approvals = None;
    // Then both staging (from dev) and prod (from staging) are unguarded
    let findings = policy.lint();
    let fields: Vec<_> = findings.iter().map(|f| (f.severity, f.field.as_deref())).collect();
    assert_eq!(fields, [(Severity::Warning, Some("stage[3]")), (Severity::Warning, Some("stage[4]"))]);
    assert!(findings[1].message.contains("from staging into prod with no approval and no blocking check"));
}

#[test]
fn a_blocking_check_upstream_guards_a_promotion() {
    // Given prod needs no approval but staging has a blocking check
    let findings = policy("", "").lint();
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn the_first_environment_after_trunk_may_be_automatic() {
    // Given dev (after trunk) needs no approval and trunk has no checks
    let findings = policy("", PROD_RULE).lint();
    assert!(findings.iter().all(|f| f.stage.as_deref() != Some("dev")), "{findings:#?}");
}

#[test]
fn an_ephemeral_environment_is_not_a_promotion_target() {
    // Given an ephemeral preview environment between trunk and dev
    let mut policy = policy("", PROD_RULE);
    let mut preview = atlas_promote_core::Stage::new("preview", atlas_promote_core::StageKind::Environment);
    preview.ephemeral = true;
    policy.stages.insert(2, preview);
    // Then neither it nor dev (whose trunk candidates skip it) is flagged
    assert!(policy.lint().is_empty(), "{:#?}", policy.lint());
}

#[test]
fn a_monitored_check_the_stage_does_not_declare_is_a_warning() {
    let prod = format!("{PROD_RULE}\nmonitor = {{ check = \"data-qualty\", on_failure = \"rollback\" }}");
    let findings = policy("", &prod).lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("stage[4].monitor.check"));
    assert!(finding.message.contains("does not declare it"), "{finding}");
}

#[test]
fn a_monitored_check_the_stage_declares_is_fine() {
    let prod = format!(
        "{PROD_RULE}\nchecks = [{{ name = \"data-quality\", blocking = false }}]\nmonitor = {{ check = \"data-quality\", on_failure = \"alert\" }}"
    );
    assert!(policy("", &prod).lint().is_empty());
}

#[test]
fn a_flush_with_no_paths_never_runs() {
    let prod = format!("{PROD_RULE}\nflush = {{ paths = [], workflow = \"flush\" }}");
    let finding = only(&policy("", &prod).lint()).clone();
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("stage[4].flush.paths"));
}

#[test]
fn an_override_role_no_one_holds_is_a_warning() {
    let directory = format!("overrides = {{ roles = [\"release-manager\"] }}\n{TEAM}");
    let finding = only(&policy(&directory, PROD_RULE).lint()).clone();
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("overrides.roles[0]"));
}

#[test]
fn a_finding_reads_as_a_sentence_about_its_stage() {
    let mut atlas = Policy::atlas();
    atlas.stages[4].checks.clear();
    let finding = only(&atlas.lint()).clone();
    assert_eq!(finding.field.as_deref(), Some("stage[4].monitor.check"));
    assert_eq!(
        finding.to_string(),
        "warning: stage prod: prod monitors the check data-quality but does not declare it among its checks; \
         declare it there (blocking = false if it should only be watched) or fix the name"
    );
}

#[test]
fn a_soak_longer_than_a_checks_max_age_is_a_warning() {
    let mut policy = policy(TEAM, PROD_RULE);
    policy.stages[3].soak = Some(atlas_promote_core::Duration::hours(48));
    policy.stages[3].checks[0].max_age = Some(atlas_promote_core::Duration::hours(26));
    let findings = policy.lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("stage[3].checks[0].max_age"));
    assert!(finding.message.contains("staging soaks for 2d but its check system counts for 26h only"), "{finding}");
}

#[test]
fn an_approval_ttl_shorter_than_the_soak_before_it_is_a_warning() {
    let prod = r#"approvals = { require = { product-owner = 1, dev-team = 1 }, ttl = "12h" }"#;
    let mut policy = policy(TEAM, prod);
    policy.stages[3].soak = Some(atlas_promote_core::Duration::hours(24));
    let findings = policy.lint();
    let finding = only(&findings);
    assert_eq!(finding.field.as_deref(), Some("stage[4].approvals.ttl"));
    assert!(finding.message.contains("less than the 1d soak in staging"), "{finding}");
}

#[test]
fn an_approval_ttl_shorter_than_the_wait_for_the_next_window_is_a_warning() {
    let prod = r#"approvals = { require = { product-owner = 1, dev-team = 1 }, ttl = "24h" }
windows = [{ days = ["mon", "tue", "wed", "thu"], start = "09:00", end = "16:00", tz = "Europe/Berlin" }]"#;
    let findings = policy(TEAM, prod).lint();
    let finding = only(&findings);
    // Thursday 16:00 to Monday 09:00.
    assert!(finding.message.contains("its windows stay closed for up to 89h"), "{finding}");
    let long = prod.replace("\"24h\"", "\"4d\"");
    assert!(policy(TEAM, &long).lint().is_empty());
}

#[test]
fn a_role_no_rule_uses_is_a_warning() {
    let team = format!("{TEAM}\nsam = [\"securty\"]");
    let findings = policy(&team, PROD_RULE).lint();
    let finding = only(&findings);
    assert_eq!(finding.severity, Severity::Warning);
    assert_eq!(finding.field.as_deref(), Some("directory.sam[0]"));
    assert!(finding.message.contains("names the role securty"), "{finding}");
}

#[test]
fn an_environment_no_gate_from_trunk_reaches_is_an_error() {
    // No trunk stage: nothing merged ever reaches an environment.
    let text = r#"name = "no trunk"
[[stage]]
name = "review"
kind = "review"
[[stage]]
name = "prod"
kind = "environment"
"#;
    let policy = Policy::from_toml_str(text, "no-trunk.toml").unwrap_or_else(|e| panic!("{e}"));
    let findings = policy.lint();
    let unreached: Vec<_> =
        findings.iter().filter(|f| f.message.contains("nothing can ever be deployed to prod")).collect();
    assert_eq!(unreached.len(), 1, "{findings:?}");
    assert_eq!(unreached[0].severity, Severity::Error);
}

#[test]
fn every_environment_of_the_atlas_preset_is_reached() {
    assert!(Policy::atlas().lint().iter().all(|f| !f.message.contains("nothing can ever be deployed")));
}
