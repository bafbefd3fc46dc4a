//! SourceControl (compare), Directory (teams) and pull-request reviews.

use std::time::Duration;

use atlas_promote_core::{ApprovalDecision, ApprovalSource, Directory, Origin, SourceControl};
use wiremock::matchers::query_param;
use wiremock::{MockServer, ResponseTemplate};

use super::*;

// ---- compare ----

#[tokio::test]
async fn compare_lists_changed_files_and_a_behind_status_is_incomplete() {
    let server = MockServer::start().await;
    api("GET", &repo("compare/base1...head1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("compare_commits.json")))
        .mount(&server)
        .await;
    let changed = github(&server).changed_files("base1", "head1").await.unwrap();
    assert_eq!(changed.files, vec!["file1.txt".to_string()]);
    // The published example is `behind`: head does not descend from base.
    assert!(!changed.complete);
}

#[tokio::test]
async fn compare_counts_both_names_of_a_rename_and_ahead_is_complete() {
    let server = MockServer::start().await;
    let mut body = fixture("compare_commits.json");
    body["status"] = "ahead".into();
    let mut renamed = body["files"][0].clone();
    renamed["filename"] = "pipelines/new.sql".into();
    renamed["status"] = "renamed".into();
    renamed["previous_filename"] = "pipelines/old.sql".into();
    body["files"].as_array_mut().unwrap().push(renamed);
    api("GET", &repo("compare/a...b"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let changed = github(&server).changed_files("a", "b").await.unwrap();
    assert_eq!(changed.files, vec!["file1.txt", "pipelines/new.sql", "pipelines/old.sql"]);
    assert!(changed.complete);
}

#[tokio::test]
async fn compare_with_300_files_or_diverged_or_unknown_status_is_incomplete() {
    let server = MockServer::start().await;
    let mut many = fixture("compare_commits.json");
    many["status"] = "ahead".into();
    let file = many["files"][0].clone();
    many["files"] = serde_json::Value::Array(
        (0..300)
            .map(|i| {
                let mut f = file.clone();
                f["filename"] = format!("f{i}").into();
                f
            })
            .collect(),
    );
    api("GET", &repo("compare/a...many"))
        .respond_with(ResponseTemplate::new(200).set_body_json(many))
        .mount(&server)
        .await;
    let mut diverged = fixture("compare_commits.json");
    diverged["status"] = "diverged".into();
    api("GET", &repo("compare/a...div"))
        .respond_with(ResponseTemplate::new(200).set_body_json(diverged))
        .mount(&server)
        .await;
    let mut odd = fixture("compare_commits.json");
    odd["status"] = "sideways".into();
    api("GET", &repo("compare/a...odd"))
        .respond_with(ResponseTemplate::new(200).set_body_json(odd))
        .mount(&server)
        .await;
    let gh = github(&server);
    let many = gh.changed_files("a", "many").await.unwrap();
    assert_eq!(many.files.len(), 300);
    assert!(!many.complete);
    assert!(!gh.changed_files("a", "div").await.unwrap().complete);
    assert!(!gh.changed_files("a", "odd").await.unwrap().complete);
}

#[tokio::test]
async fn authors_of_a_range_are_the_distinct_commit_authors() {
    let server = MockServer::start().await;
    let mut body = fixture("compare_commits.json");
    let mut anonymous = body["commits"][0].clone();
    anonymous["author"] = serde_json::Value::Null;
    anonymous["commit"]["author"]["email"] = "ghost@example.com".into();
    let again = body["commits"][0].clone();
    body["commits"].as_array_mut().unwrap().extend([anonymous, again]);
    api("GET", &repo("compare/a...b"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&server)
        .await;
    let authors = github(&server).authors(Some("a"), "b").await.unwrap();
    assert_eq!(authors, vec!["octocat".to_string(), "ghost@example.com".to_string()]);
}

#[tokio::test]
async fn authors_without_a_base_walk_the_history_of_head() {
    let server = MockServer::start().await;
    let commits = fixture("compare_commits.json")["commits"].clone();
    api("GET", &repo("commits"))
        .and(query_param("sha", "head1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(commits))
        .mount(&server)
        .await;
    assert_eq!(github(&server).authors(None, "head1").await.unwrap(), vec!["octocat".to_string()]);
}

// ---- teams ----

async fn membership(server: &MockServer, team: &str, user: &str, response: ResponseTemplate) {
    api("GET", &format!("/orgs/octo-org/teams/{team}/memberships/{user}")).respond_with(response).mount(server).await;
}

#[tokio::test]
async fn roles_come_from_active_team_memberships_only() {
    let server = MockServer::start().await;
    membership(
        &server,
        "product",
        "pat",
        ResponseTemplate::new(200).set_body_json(fixture("get_team_membership_for_user.json")),
    )
    .await;
    membership(
        &server,
        "platform",
        "pat",
        ResponseTemplate::new(200).set_body_json(fixture("get_team_membership_for_user_pending.json")),
    )
    .await;
    membership(
        &server,
        "engineers",
        "pat",
        ResponseTemplate::new(404).set_body_json(serde_json::json!({"message": "Not Found"})),
    )
    .await;
    let gh = builder(&server)
        .with_team_role("product", "product-owner")
        .with_team_role("platform", "dev-team")
        .with_team_role("engineers", "developer")
        .build()
        .unwrap();
    // Active maintainer → product-owner; pending → nothing; 404 → not a member.
    assert_eq!(gh.roles("pat").await.unwrap(), vec!["product-owner".to_string()]);
}

#[tokio::test]
async fn roles_are_cached_for_the_ttl_then_asked_again() {
    let server = MockServer::start().await;
    api("GET", "/orgs/octo-org/teams/engineers/memberships/dan")
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("get_team_membership_for_user.json")))
        .expect(2)
        .mount(&server)
        .await;
    let gh = builder(&server)
        .with_team_role("engineers", "developer")
        .with_team_role("engineers", "dev-team")
        .with_directory_ttl(Duration::from_millis(200))
        .build()
        .unwrap();
    assert_eq!(gh.roles("dan").await.unwrap(), vec!["dev-team".to_string(), "developer".to_string()]);
    assert_eq!(gh.roles("DAN").await.unwrap().len(), 2, "logins are case-insensitive; served from cache");
    assert_eq!(gh.stats().sent, 1, "one team, one request, however many roles it gives");
    tokio::time::sleep(Duration::from_millis(250)).await;
    gh.roles("dan").await.unwrap();
    assert_eq!(gh.stats().sent, 2);
}

#[tokio::test]
async fn without_a_team_mapping_nobody_holds_a_role_and_nothing_is_asked() {
    let server = MockServer::start().await;
    let gh = github(&server);
    assert!(gh.roles("anyone").await.unwrap().is_empty());
    assert_eq!(gh.stats().sent, 0);
}

#[tokio::test]
async fn a_team_lookup_failure_other_than_404_is_an_error() {
    let server = MockServer::start().await;
    membership(
        &server,
        "product",
        "pat",
        ResponseTemplate::new(403).set_body_json(serde_json::json!({"message": "Must have admin rights"})),
    )
    .await;
    let gh = builder(&server).with_team_role("product", "product-owner").build().unwrap();
    assert!(gh.roles("pat").await.is_err());
}

// ---- pull-request reviews ----

const HEAD: &str = "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091";

fn pull(number: u64, head: &str, author: &str) -> serde_json::Value {
    // The pull_request object of the published pull_request_review webhook.
    let mut pr = fixture("webhook_pull_request_review_submitted.json")["pull_request"].clone();
    pr["number"] = number.into();
    pr["head"]["sha"] = head.into();
    pr["user"]["login"] = author.into();
    pr
}

fn review(id: u64, user: (&str, u64), state: &str, commit: &str, at: &str) -> serde_json::Value {
    let mut r = fixture("pull_request_review_approved.json");
    r["id"] = id.into();
    r["user"]["login"] = user.0.into();
    r["user"]["id"] = user.1.into();
    r["state"] = state.into();
    r["commit_id"] = commit.into();
    r["submitted_at"] = at.into();
    r
}

async fn serve_reviews(server: &MockServer, reviews: serde_json::Value) {
    api("GET", &repo(&format!("commits/{HEAD}/pulls")))
        .respond_with(ResponseTemplate::new(200).set_body_json(vec![pull(12, HEAD, "alice")]))
        .mount(server)
        .await;
    api("GET", &repo("pulls/12/reviews"))
        .respond_with(ResponseTemplate::new(200).set_body_json(reviews))
        .mount(server)
        .await;
}

#[tokio::test]
async fn the_published_review_list_gives_one_approval_bound_to_its_commit() {
    let server = MockServer::start().await;
    serve_reviews(&server, fixture("list_pull_request_reviews.json")).await;
    let records = github(&server).approvals("trunk", HEAD).await.unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].approver, "octocat");
    assert_eq!(records[0].decision, ApprovalDecision::Approve);
    assert_eq!(records[0].stage, "trunk");
    assert_eq!(records[0].at, "2019-11-17T17:43:43Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap());
}

#[tokio::test]
async fn latest_review_per_reviewer_by_user_id_counts() {
    let server = MockServer::start().await;
    serve_reviews(
        &server,
        serde_json::json!([
            review(1, ("bob", 2), "CHANGES_REQUESTED", HEAD, "2026-05-01T10:00:00Z"),
            review(2, ("bob-renamed", 2), "APPROVED", HEAD, "2026-05-01T11:00:00Z"),
            review(3, ("carol", 3), "APPROVED", HEAD, "2026-05-01T10:00:00Z"),
            review(4, ("carol", 3), "COMMENTED", HEAD, "2026-05-01T12:00:00Z"),
            review(5, ("dave", 4), "APPROVED", HEAD, "2026-05-01T10:00:00Z"),
            review(6, ("dave", 4), "DISMISSED", HEAD, "2026-05-01T13:00:00Z"),
            review(7, ("erin", 5), "changes_requested", HEAD, "2026-05-01T14:00:00Z"),
            review(8, ("frank", 6), "SOMETHING_NEW", HEAD, "2026-05-01T14:00:00Z"),
        ]),
    )
    .await;
    let records = github(&server).approvals("trunk", HEAD).await.unwrap();
    let got: Vec<(&str, ApprovalDecision)> = records.iter().map(|r| (r.approver.as_str(), r.decision)).collect();
    assert_eq!(
        got,
        vec![
            ("bob-renamed", ApprovalDecision::Approve),
            ("carol", ApprovalDecision::Approve),
            ("dave", ApprovalDecision::Withdraw),
            ("erin", ApprovalDecision::Reject),
        ]
    );
}

#[tokio::test]
async fn an_approval_of_an_earlier_push_does_not_count_for_the_new_head() {
    let server = MockServer::start().await;
    serve_reviews(&server, serde_json::json!([review(1, ("bob", 2), "APPROVED", "0ld0000", "2026-05-01T10:00:00Z")]))
        .await;
    assert!(github(&server).approvals("trunk", HEAD).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_pull_request_author_and_commit_authors_are_the_candidate_authors() {
    let server = MockServer::start().await;
    let pr = pull(12, HEAD, "alice");
    let base = pr["base"]["sha"].as_str().unwrap().to_owned();
    api("GET", &repo("pulls/12")).respond_with(ResponseTemplate::new(200).set_body_json(pr)).mount(&server).await;
    api("GET", &repo(&format!("compare/{base}...{HEAD}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("compare_commits.json")))
        .mount(&server)
        .await;
    let (pr, candidate) = github(&server).pull_request_candidate(12).await.unwrap();
    assert_eq!(pr.number, 12);
    assert_eq!(candidate.sha, HEAD);
    assert_eq!(candidate.origin, Origin::Branch);
    assert_eq!(candidate.branch.as_deref(), Some("changes"));
    assert_eq!(candidate.authors, vec!["alice".to_string(), "octocat".to_string()]);
}

#[tokio::test]
async fn pull_request_reviews_cannot_be_submitted_through_the_backend() {
    let server = MockServer::start().await;
    let record = atlas_promote_core::ApprovalRecord {
        approver: "bob".into(),
        roles: vec![],
        stage: "trunk".into(),
        sha: HEAD.into(),
        decision: ApprovalDecision::Approve,
        at: chrono::Utc::now(),
    };
    let err = github(&server).submit(&record).await.unwrap_err();
    assert!(matches!(err, atlas_promote_core::Error::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn each_published_review_state_maps_to_its_decision() {
    for (name, decision) in [
        ("pull_request_review_approved.json", ApprovalDecision::Approve),
        ("pull_request_review_changes_requested.json", ApprovalDecision::Reject),
        ("pull_request_review_dismissed.json", ApprovalDecision::Withdraw),
    ] {
        let server = MockServer::start().await;
        serve_reviews(&server, serde_json::json!([fixture(name)])).await;
        let records = github(&server).approvals("trunk", HEAD).await.unwrap();
        assert_eq!(records.iter().map(|r| r.decision).collect::<Vec<_>>(), vec![decision], "{name}");
    }
}
