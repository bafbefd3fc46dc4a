//! Request cost: a steady-state poll of a candidate waiting on approval costs
//! at most 3 requests and, when nothing changed, only 304s (no rate limit).

use atlas_promote_core::{ApprovalSource, CheckQuery, CheckSource, Directory, IdempotencyKey, RunKind};
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use super::*;

/// Answers like GitHub: 200 with an ETag, or 304 when `If-None-Match` matches it.
struct Conditional {
    etag: &'static str,
    body: serde_json::Value,
}

impl Respond for Conditional {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let matches = request.headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(self.etag);
        if matches {
            ResponseTemplate::new(304).insert_header("etag", self.etag)
        } else {
            ResponseTemplate::new(200).set_body_json(self.body.clone()).insert_header("etag", self.etag)
        }
    }
}

const HEAD: &str = "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091";

#[tokio::test]
async fn polling_a_pull_request_waiting_for_review_costs_one_request_then_only_304s() {
    let server = MockServer::start().await;
    let mut pr = fixture("webhook_pull_request_review_submitted.json")["pull_request"].clone();
    pr["number"] = 12.into();
    pr["head"]["sha"] = HEAD.into();
    api("GET", &repo(&format!("commits/{HEAD}/pulls")))
        .respond_with(Conditional { etag: r#"W/"pulls-1""#, body: serde_json::json!([pr]) })
        .mount(&server)
        .await;
    api("GET", &repo("pulls/12/reviews"))
        .respond_with(Conditional { etag: r#"W/"reviews-1""#, body: fixture("list_pull_request_reviews.json") })
        .mount(&server)
        .await;
    api("GET", "/orgs/octo-org/teams/engineers/memberships/octocat")
        .respond_with(Conditional { etag: r#""member-1""#, body: fixture("get_team_membership_for_user.json") })
        .mount(&server)
        .await;
    let gh = builder(&server).with_team_role("engineers", "developer").build().unwrap();

    // One poll = the approval records, then the roles of each approver (what an engine does).
    let poll = || async {
        let records = gh.approvals("trunk", HEAD).await.unwrap();
        for r in &records {
            gh.roles(&r.approver).await.unwrap();
        }
        records
    };
    let first = poll().await;
    assert_eq!(first.len(), 1);
    let cold = gh.stats();
    assert_eq!((cold.sent, cold.not_modified), (3, 0), "cold: pulls of the commit, reviews, one team membership");

    for _ in 0..5 {
        assert_eq!(poll().await, first);
    }
    let steady = gh.stats();
    let (sent, free) = (steady.sent - cold.sent, steady.not_modified - cold.not_modified);
    assert_eq!(sent, 5, "1 request per steady-state poll (the pull requests and roles are remembered)");
    assert_eq!(free, sent, "all of them 304s: no rate limit spent");
    println!(
        "review poll: cold {} requests; steady state {} requests per poll, {} rate-limited",
        cold.sent,
        sent / 5,
        (sent - free) / 5
    );
}

#[tokio::test]
async fn polling_environment_approvals_and_checks_is_304s_when_nothing_changed() {
    let server = MockServer::start().await;
    let sha = "9fceb02d0ae598e95dc970b74767f19372d61af8";
    let key = IdempotencyKey::new(sha, "staging", RunKind::Deploy, 1);
    let mut run = fixture("get_workflow_run.json");
    run["id"] = 7.into();
    run["status"] = "waiting".into();
    run["display_title"] = format!("deploy staging {sha} [{key}]").into();
    let mut runs = fixture("list_workflow_runs.json");
    runs["workflow_runs"] = serde_json::json!([run]);
    api("GET", &repo("actions/runs"))
        .respond_with(Conditional { etag: r#""runs-1""#, body: runs })
        .mount(&server)
        .await;
    api("GET", &repo("actions/runs/7/approvals"))
        .respond_with(Conditional {
            etag: r#""approvals-1""#,
            body: fixture("list_environment_approvals_for_run.json"),
        })
        .mount(&server)
        .await;
    api("GET", &repo(&format!("commits/{sha}/check-runs")))
        .respond_with(Conditional { etag: r#""checks-1""#, body: fixture("list_check_runs_for_ref.json") })
        .mount(&server)
        .await;
    api("GET", &repo(&format!("commits/{sha}/statuses")))
        .respond_with(Conditional { etag: r#""statuses-1""#, body: fixture("list_commit_statuses_for_ref.json") })
        .mount(&server)
        .await;
    let gh = github(&server);
    gh.approvals("staging", sha).await.unwrap();
    let cold = gh.stats();
    gh.approvals("staging", sha).await.unwrap();
    let approvals = gh.stats();
    assert_eq!((approvals.sent - cold.sent, approvals.not_modified - cold.not_modified), (2, 2));
    gh.checks(&CheckQuery::new("staging", sha, vec![])).await.unwrap();
    let before = gh.stats();
    gh.checks(&CheckQuery::new("staging", sha, vec![])).await.unwrap();
    let after = gh.stats();
    assert_eq!((after.sent - before.sent, after.not_modified - before.not_modified), (2, 2));
    println!("environment approvals poll: 2 requests, 2 free; checks poll: 2 requests, 2 free");
}
