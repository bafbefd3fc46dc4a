//! CheckSource: check runs and commit statuses, newest per name.

use atlas_promote_core::{CheckQuery, CheckSource, CheckStatus};
use wiremock::{MockServer, ResponseTemplate};

use super::*;

const SHA: &str = "6dcb09b5b57875f334f61aebed695e2e4193db5e";

async fn serve(server: &MockServer, check_runs: serde_json::Value, statuses: serde_json::Value) {
    api("GET", &repo(&format!("commits/{SHA}/check-runs")))
        .respond_with(ResponseTemplate::new(200).set_body_json(check_runs))
        .mount(server)
        .await;
    api("GET", &repo(&format!("commits/{SHA}/statuses")))
        .respond_with(ResponseTemplate::new(200).set_body_json(statuses))
        .mount(server)
        .await;
}

#[tokio::test]
async fn check_runs_and_commit_statuses_both_become_results_with_times() {
    let server = MockServer::start().await;
    serve(&server, fixture("list_check_runs_for_ref.json"), fixture("list_commit_statuses_for_ref.json")).await;
    let results = github(&server).checks(&CheckQuery::new("review", SHA, vec![])).await.unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    let jenkins = results.iter().find(|r| r.name == "continuous-integration/jenkins").unwrap();
    assert_eq!(jenkins.status, CheckStatus::Passed);
    assert_eq!(jenkins.sha, SHA);
    assert_eq!(jenkins.started_at, "2012-07-20T01:19:13Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert!(jenkins.finished_at.is_some());
    let run = results.iter().find(|r| r.name == "mighty_readme").unwrap();
    // The fixture's check run is completed/neutral: neutral passes, as branch protection treats it.
    assert_eq!(run.status, CheckStatus::Passed);
    assert_eq!(run.started_at, "2018-05-04T01:14:52Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
    assert_eq!(run.finished_at, Some("2018-05-04T01:14:52Z".parse().unwrap()));
}

#[tokio::test]
async fn every_run_comes_back_not_only_the_newest_and_names_filter() {
    let server = MockServer::start().await;
    let mut runs = fixture("list_check_runs_for_ref.json");
    let template = runs["check_runs"][0].clone();
    let mut old = template.clone();
    old["name"] = "integration".into();
    old["conclusion"] = "success".into();
    old["started_at"] = "2026-05-04T20:00:00Z".into();
    old["completed_at"] = "2026-05-04T20:30:00Z".into();
    let mut new = template.clone();
    new["id"] = 5.into();
    new["name"] = "integration".into();
    new["status"] = "in_progress".into();
    new["conclusion"] = serde_json::Value::Null;
    new["started_at"] = "2026-05-04T22:00:00Z".into();
    new["completed_at"] = serde_json::Value::Null;
    runs["check_runs"] = serde_json::json!([old, new, template]);
    serve(&server, runs, serde_json::json!([])).await;
    let results = github(&server).checks(&CheckQuery::new("staging", SHA, vec!["integration".into()])).await.unwrap();
    // The pass and the re-run still going: the gate decides (a warning, not a blocker).
    let statuses: Vec<CheckStatus> = results.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![CheckStatus::Passed, CheckStatus::Running]);
    assert_eq!(results[1].finished_at, None);
}

#[tokio::test]
async fn unknown_conclusions_and_states_fail_rather_than_pass() {
    let server = MockServer::start().await;
    let mut runs = fixture("list_check_runs_for_ref.json");
    runs["check_runs"][0]["conclusion"] = "some_new_conclusion".into();
    let mut statuses = fixture("list_commit_statuses_for_ref.json");
    statuses[0]["state"] = "some_new_state".into();
    serve(&server, runs, statuses).await;
    let results = github(&server).checks(&CheckQuery::new("review", SHA, vec![])).await.unwrap();
    assert!(results.iter().all(|r| r.status == CheckStatus::Failed), "{results:?}");
}

fn status(id: u64, state: &str, at: &str) -> serde_json::Value {
    let mut s = fixture("list_commit_statuses_for_ref.json")[0].clone();
    s["id"] = id.into();
    s["context"] = "data-quality".into();
    s["state"] = state.into();
    s["created_at"] = at.into();
    s["updated_at"] = at.into();
    s
}

#[tokio::test]
async fn statuses_pair_into_runs_that_started_when_pending_was_posted() {
    let server = MockServer::start().await;
    // Newest first, as GitHub lists them: a run that errored, then a re-run still pending.
    let history = serde_json::json!([
        status(3, "pending", "2026-05-05T22:00:00Z"),
        status(2, "error", "2026-05-04T23:00:00Z"),
        status(1, "pending", "2026-05-04T22:00:00Z"),
    ]);
    serve(&server, serde_json::json!({"total_count": 0, "check_runs": []}), history).await;
    let results = github(&server).checks(&CheckQuery::new("prod", SHA, vec![])).await.unwrap();
    let t = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(results[0].status, CheckStatus::Errored);
    assert_eq!(results[0].started_at, t("2026-05-04T22:00:00Z"));
    assert_eq!(results[0].finished_at, Some(t("2026-05-04T23:00:00Z")));
    assert_eq!(results[1].status, CheckStatus::Running);
    assert_eq!(results[1].started_at, t("2026-05-05T22:00:00Z"));
}

#[tokio::test]
async fn check_runs_of_untrusted_apps_are_ignored_when_apps_are_configured() {
    let server = MockServer::start().await;
    serve(&server, fixture("list_check_runs_for_ref.json"), serde_json::json!([])).await;
    let gh = builder(&server).with_check_app("github-actions").build().unwrap();
    assert!(gh.checks(&CheckQuery::new("review", SHA, vec![])).await.unwrap().is_empty());
    let gh = builder(&server).with_check_app("octoapp").build().unwrap();
    assert_eq!(gh.checks(&CheckQuery::new("review", SHA, vec![])).await.unwrap().len(), 1);
}

#[tokio::test]
async fn no_results_is_an_empty_list() {
    let server = MockServer::start().await;
    serve(&server, serde_json::json!({"total_count": 0, "check_runs": []}), serde_json::json!([])).await;
    assert!(github(&server).checks(&CheckQuery::new("review", SHA, vec![])).await.unwrap().is_empty());
}
