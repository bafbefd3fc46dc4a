//! The operator API over real HTTP (DESIGN §9): every action attributed to
//! the operator whose token came with it, audited with them, and refused
//! with the right status when it may not happen.

mod operator_world;

use atlas_promote_core::StateStore;
use atlas_promote_server::ReadAccess;
use operator_world::{ALICE, DAN, PAT, RITA, call, get, kind, post, start, world};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_developer_approval_moves_the_commit_into_staging_and_is_audited_as_theirs() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    assert_eq!(w.state("c1").await, "live in dev");
    let running = start(&w.server).await;

    let (status, body) = post(
        &running.url,
        "/api/v1/promotions/c1/approvals",
        Some(DAN),
        json!({ "stage": "staging", "decision": "approve", "comment": "looks good" }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["approval"]["approver"], "dan");
    assert_eq!(body["approval"]["roles"], json!(["developer", "dev-team"]));
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in staging");
    let audit = w.audit_lines().await;
    assert!(audit.contains(&"dan approval.approve c1".to_owned()), "{audit:#?}");
    assert!(audit.contains(&"dan approval.comment c1".to_owned()), "{audit:#?}");
}

#[tokio::test]
async fn a_write_without_a_token_or_with_an_unknown_one_is_401() {
    let w = world(ReadAccess::Open);
    let running = start(&w.server).await;
    let hold = json!({ "stage": "prod", "reason": "incident" });
    for token in [None, Some("not-anyones-token"), Some("")] {
        let (status, body) = post(&running.url, "/api/v1/holds", token, hold.clone()).await;
        assert_eq!(status, 401, "{token:?}: {body}");
        assert_eq!(kind(&body), "unauthorized");
    }
    let response = operator_world::client()
        .post(format!("{}/api/v1/holds", running.url))
        .header("authorization", "Basic ZGFuOmRhbg==")
        .json(&hold)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(w.promoter.held("prod").await.unwrap(), None);
    assert!(w.audit_lines().await.is_empty());
}

#[tokio::test]
async fn tokens_are_compared_through_their_hashes_never_as_given() {
    let w = world(ReadAccess::Open);
    let running = start(&w.server).await;
    let hold = json!({ "stage": "prod", "reason": "incident" });
    let hash = atlas_promote_server::auth::token_sha256(DAN);
    let mut near = DAN.to_owned();
    near.pop();
    near.push('X');
    for token in [hash.as_str(), near.as_str(), &DAN[..DAN.len() - 1], &format!("{DAN} ")[..]] {
        let (status, _) = post(&running.url, "/api/v1/holds", Some(token), hold.clone()).await;
        // A trailing space is trimmed as header whitespace: the same token.
        let expected = if token.trim() == DAN { 201 } else { 401 };
        assert_eq!(status, expected, "{token}");
    }
}

#[tokio::test]
async fn nobody_approves_as_another_person() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    for field in ["approver", "person", "by", "actor"] {
        let mut body = json!({ "stage": "staging", "decision": "approve" });
        body[field] = json!("pat");
        let (status, answer) = post(&running.url, "/api/v1/promotions/c1/approvals", Some(DAN), body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        assert_eq!(kind(&answer), "bad_request");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field), "{answer}");
    }
    assert!(w.audit_lines().await.iter().all(|l| !l.contains("approval")), "{:#?}", w.audit_lines().await);
    // With pat's token, the approval is pat's: the token decides.
    let (status, answer) = post(
        &running.url,
        "/api/v1/promotions/c1/approvals",
        Some(PAT),
        json!({"stage": "prod", "decision": "approve"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["approval"]["approver"], "pat");
}

#[tokio::test]
async fn a_commits_author_cannot_approve_it_through_the_api() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let (status, body) = post(
        &running.url,
        "/api/v1/promotions/c1/approvals",
        Some(ALICE),
        json!({ "stage": "staging", "decision": "approve" }),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(kind(&body), "forbidden");
    assert!(body["error"]["message"].as_str().unwrap().contains("self-approval"), "{body}");
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in dev");
    assert!(w.audit_lines().await.contains(&"alice approval.refused c1".to_owned()));
}

#[tokio::test]
async fn an_override_the_operators_roles_do_not_allow_is_403_and_the_refusal_audited() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let body = json!({ "stage": "staging", "bypass": ["approvals_missing"], "reason": "hotfix for the outage" });
    let (status, answer) = post(&running.url, "/api/v1/promotions/c1/overrides", Some(DAN), body.clone()).await;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(kind(&answer), "forbidden");
    assert!(answer["error"]["message"].as_str().unwrap().contains("release-manager"), "{answer}");
    assert!(w.audit_lines().await.contains(&"dan override.refused c1".to_owned()));
    assert_eq!(w.state("c1").await, "live in dev");

    // The release manager may.
    let (status, answer) = post(&running.url, "/api/v1/promotions/c1/overrides", Some(RITA), body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(w.audit_lines().await.contains(&"rita override.granted c1".to_owned()));
    assert!(w.state("c1").await.contains("staging"), "{}", w.state("c1").await);
}

#[tokio::test]
async fn an_override_of_a_gate_the_commit_does_not_wait_on_is_409() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let body = json!({ "stage": "prod", "bypass": ["approvals_missing"], "reason": "skip ahead" });
    let (status, answer) = post(&running.url, "/api/v1/promotions/c1/overrides", Some(RITA), body).await;
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("dev → staging"), "{answer}");
}

#[tokio::test]
async fn holds_releases_rollbacks_and_retries_are_audited_with_the_person() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;

    let (status, body) =
        post(&running.url, "/api/v1/holds", Some(PAT), json!({ "stage": "staging", "reason": "incident 42" })).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["hold"]["by"], "pat");
    let (_, holds) = get(&running.url, "/api/v1/holds", None).await;
    assert_eq!(holds["holds"][0]["reason"], "incident 42");
    post(
        &running.url,
        "/api/v1/promotions/c1/approvals",
        Some(DAN),
        json!({"stage": "staging", "decision": "approve"}),
    )
    .await;
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in dev", "the hold stops the line");
    let (status, body) = call(&running.url, Method::DELETE, "/api/v1/holds/staging", Some(DAN), None).await;
    assert_eq!(status, 200, "{body}");
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in staging");
    let (status, _) = call(&running.url, Method::DELETE, "/api/v1/holds/staging", Some(DAN), None).await;
    assert_eq!(status, 404, "nothing is held any more");

    // A second commit follows c1 into staging; then staging rolls back to c1.
    w.source_control.commit("c2", Some("c1"), "alice", &["README.md"]);
    w.promoter.merged(atlas_promote_core::Candidate::trunk("c2", ["alice"]), w.promoter.now()).await.unwrap();
    w.settle().await;
    post(
        &running.url,
        "/api/v1/promotions/c2/approvals",
        Some(DAN),
        json!({"stage": "staging", "decision": "approve"}),
    )
    .await;
    w.settle().await;
    assert_eq!(w.state("c2").await, "live in staging");
    let (status, body) =
        post(&running.url, "/api/v1/environments/staging/rollback", Some(PAT), json!({ "reason": "bad data" })).await;
    assert_eq!(status, 200, "{body}");
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in staging");

    // c3's deploy to dev fails, then is retried.
    w.source_control.commit("c3", Some("c2"), "alice", &["README.md"]);
    w.ci.set_default_outcome(atlas_promote_core::Outcome::Fail);
    w.promoter.merged(atlas_promote_core::Candidate::trunk("c3", ["alice"]), w.promoter.now()).await.unwrap();
    w.settle().await;
    assert!(w.state("c3").await.starts_with("failed"), "{}", w.state("c3").await);
    w.ci.set_default_outcome(atlas_promote_core::Outcome::Succeed);
    let (status, body) = post(&running.url, "/api/v1/promotions/c3/retry", Some(DAN), json!({})).await;
    assert_eq!(status, 200, "{body}");
    w.settle().await;
    assert_eq!(w.state("c3").await, "live in dev");

    let audit = w.audit_lines().await;
    for line in ["pat hold staging", "dan release staging", "pat rollback c2", "dan retry c3"] {
        assert!(audit.contains(&line.to_owned()), "{line} missing from {audit:#?}");
    }
}

#[tokio::test]
async fn bad_requests_get_json_errors_with_the_fitting_status() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let url = &running.url;
    let approvals = "/api/v1/promotions/c1/approvals";
    let cases = [
        (post(url, approvals, Some(DAN), json!({ "stage": "staging" })).await, 400, "bad_request"),
        (post(url, approvals, Some(DAN), json!({ "stage": "staging", "decision": "maybe" })).await, 400, "bad_request"),
        (post(url, approvals, Some(DAN), json!({ "stage": "moon", "decision": "approve" })).await, 422, "invalid"),
        // dev has no approval rule: an approval into it could never count (issue 10, item 5).
        (post(url, approvals, Some(DAN), json!({ "stage": "dev", "decision": "approve" })).await, 409, "refused"),
        (
            post(
                url,
                "/api/v1/promotions/nope/approvals",
                Some(DAN),
                json!({ "stage": "staging", "decision": "approve" }),
            )
            .await,
            404,
            "not_found",
        ),
        (post(url, "/api/v1/holds", Some(DAN), json!({ "stage": "prod", "reason": "  " })).await, 422, "invalid"),
        (post(url, "/api/v1/holds", Some(DAN), json!({ "stage": "moon", "reason": "x" })).await, 404, "not_found"),
        (post(url, "/api/v1/environments/prod/rollback", Some(DAN), json!({ "reason": "x" })).await, 409, "refused"),
        (post(url, "/api/v1/promotions/c1/retry", Some(DAN), json!({})).await, 409, "refused"),
        (get(url, "/api/v1/promotions/nope", None).await, 404, "not_found"),
        (get(url, "/api/v1/promotions?state=weird", None).await, 400, "bad_request"),
    ];
    for (i, ((status, body), expected, expected_kind)) in cases.into_iter().enumerate() {
        assert_eq!((status, kind(&body)), (expected, expected_kind), "case {i}: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "case {i}: {body}");
    }
    let response = operator_world::client()
        .post(format!("{url}{approvals}"))
        .bearer_auth(DAN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = operator_world::answer(response).await;
    assert_eq!((status, kind(&body)), (400, "bad_request"), "{body}");
}

#[tokio::test]
async fn no_state_changes_by_get_or_by_cookie_alone() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let url = &running.url;
    let before = w.audit_lines().await;
    for path in [
        "/api/v1/promotions/c1/approvals",
        "/api/v1/promotions/c1/overrides",
        "/api/v1/promotions/c1/retry",
        "/api/v1/environments/dev/rollback",
        "/api/v1/holds/staging",
    ] {
        let response = operator_world::client()
            .get(format!("{url}{path}?stage=staging&decision=approve"))
            .bearer_auth(DAN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "GET {path}");
    }
    let client = operator_world::client();
    for cookie in [format!("token={DAN}"), format!("session={DAN}"), format!("authorization=Bearer {DAN}")] {
        let response = client
            .post(format!("{url}/api/v1/promotions/c1/approvals"))
            .header("cookie", cookie)
            .json(&json!({ "stage": "staging", "decision": "approve" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in dev");
    let after = w.audit_lines().await;
    assert_eq!(before.len(), after.len(), "{after:#?}");
}

#[tokio::test]
async fn reads_are_open_or_need_a_token_as_configured() {
    let open = world(ReadAccess::Open);
    open.merged_and_live_in_dev("c1").await;
    let running = start(&open.server).await;
    for path in
        ["/api/v1/environments", "/api/v1/promotions", "/api/v1/promotions/c1", "/api/v1/audit", "/api/v1/holds"]
    {
        let (status, body) = get(&running.url, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let gated = world(ReadAccess::Token);
    gated.merged_and_live_in_dev("c1").await;
    let running = start(&gated.server).await;
    for path in
        ["/api/v1/environments", "/api/v1/promotions", "/api/v1/promotions/c1", "/api/v1/audit", "/api/v1/holds"]
    {
        let (status, body) = get(&running.url, path, None).await;
        assert_eq!((status, kind(&body)), (401, "unauthorized"), "{path}");
        let (status, _) = get(&running.url, path, Some("wrong")).await;
        assert_eq!(status, 401, "{path}");
        let (status, body) = get(&running.url, path, Some(DAN)).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
}

#[tokio::test]
async fn the_reads_show_environments_promotions_plans_and_the_audit_log() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let (_, envs) = get(&running.url, "/api/v1/environments", None).await;
    let envs = envs["environments"].as_array().unwrap().clone();
    let stages: Vec<&str> = envs.iter().map(|e| e["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["dev", "staging", "prod"]);
    assert_eq!(envs[0]["live"]["sha"], "c1");
    assert!(envs[0]["live"]["since"].is_string(), "{}", envs[0]);
    assert!(envs[1]["live"].is_null());

    let (_, list) = get(&running.url, "/api/v1/promotions?state=active", None).await;
    assert_eq!(list["promotions"][0]["sha"], "c1");
    assert_eq!(list["promotions"][0]["state"], "live in dev");

    let (_, detail) = get(&running.url, "/api/v1/promotions/c1", None).await;
    assert_eq!(detail["decision"]["verdict"], "block", "{detail}");
    assert_eq!(detail["decision"]["blockers"][0]["kind"], "approvals_missing");
    let needs = detail["plan"]["steps"][0]["needs"][0].as_str().unwrap();
    assert!(needs.contains("developer"), "{needs}");
    assert!(detail["timeline"].as_array().unwrap().iter().any(|r| r["action"] == "deploy.succeeded"), "{detail}");

    let (_, audit) = get(&running.url, "/api/v1/audit?after=2", None).await;
    assert_eq!(audit["records"][0]["seq"], 3, "{audit}");
    let (_, whoami) = get(&running.url, "/api/v1/whoami", Some(RITA)).await;
    assert_eq!(whoami, json!({ "person": "rita", "roles": ["release-manager"] }));
}

#[tokio::test]
async fn the_status_read_has_the_board_in_one_answer() {
    let w = world(ReadAccess::Open);
    w.c1_blocked_in_staging_c2_in_dev().await;
    let running = start(&w.server).await;
    let (status, body) = get(&running.url, "/api/v1/status", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["environments"][1]["live"]["sha"], "c1");
    let c1 = body["candidates"].as_array().unwrap().iter().find(|c| c["sha"] == "c1").unwrap();
    assert_eq!(c1["decision"]["to"], "prod");
    assert_eq!(c1["decision"]["verdict"], "block");
}

/// A store whose audit log was tampered with: record 2's message changed after the fact.
#[derive(Debug)]
struct Tampered(atlas_promote_core::MemoryStore);

#[async_trait::async_trait]
impl atlas_promote_core::StateStore for Tampered {
    async fn get(&self, key: &str) -> atlas_promote_core::Result<Option<atlas_promote_core::Document>> {
        self.0.get(key).await
    }
    async fn list(&self, prefix: &str) -> atlas_promote_core::Result<Vec<atlas_promote_core::Document>> {
        self.0.list(prefix).await
    }
    async fn commit(
        &self,
        writes: Vec<atlas_promote_core::Write>,
        audit: Vec<atlas_promote_core::AuditEntry>,
    ) -> atlas_promote_core::Result<Vec<u64>> {
        self.0.commit(writes, audit).await
    }
    async fn audit(&self, after: u64) -> atlas_promote_core::Result<Vec<atlas_promote_core::AuditRecord>> {
        let mut records = self.0.audit(after).await?;
        for r in records.iter_mut().filter(|r| r.seq == 2) {
            r.entry.message.push_str(" (edited)");
        }
        Ok(records)
    }
}

#[tokio::test]
async fn audit_verify_walks_the_chain_and_checks_an_expected_head() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let (status, body) = get(&running.url, "/api/v1/audit/verify", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true, "{body}");
    let third = w.store.audit(2).await.unwrap()[0].hash.clone();
    let (_, body) = get(&running.url, &format!("/api/v1/audit/verify?expect_head={third}"), None).await;
    assert_eq!(body["ok"], true, "records after the expected head are fine: {body}");
    let (_, body) = get(&running.url, &format!("/api/v1/audit/verify?expect_head={}", "ab".repeat(32)), None).await;
    assert_eq!(body["ok"], false, "{body}");
    assert!(body["break"]["message"].as_str().unwrap().contains("does not reach the expected head"), "{body}");

    let store = std::sync::Arc::new(Tampered(atlas_promote_core::MemoryStore::new()));
    store
        .0
        .commit(
            Vec::new(),
            (0..3)
                .map(|i| atlas_promote_core::AuditEntry {
                    at: w.promoter.now(),
                    actor: "dan".into(),
                    action: "hold".into(),
                    subject: "prod".into(),
                    message: format!("entry {i}"),
                })
                .collect(),
        )
        .await
        .unwrap();
    let promoter = atlas_promote_core::Promoter::builder(operator_world::policy())
        .with_store(store)
        .with_ci(std::sync::Arc::new(atlas_promote_core::MemoryCi::new()))
        .with_checks(std::sync::Arc::new(atlas_promote_core::MemoryChecks::new()))
        .with_directory(std::sync::Arc::new(operator_world::directory()))
        .with_source_control(std::sync::Arc::new(atlas_promote_core::MemorySourceControl::new()))
        .build()
        .unwrap();
    let tampered = start(&atlas_promote_server::Server::builder(promoter).build()).await;
    let (_, body) = get(&tampered.url, "/api/v1/audit/verify", None).await;
    assert_eq!(body["ok"], false, "{body}");
    assert_eq!(body["break"]["seq"], 2, "{body}");
}

#[tokio::test]
async fn an_environment_shows_since_when_a_commit_that_moved_on_is_live_there() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let deployed_in_dev =
        w.store.audit(0).await.unwrap().into_iter().find(|r| r.entry.action == "deploy.succeeded").unwrap().entry.at;
    w.promoter.approve("dan", "staging", "c1", atlas_promote_core::ApprovalDecision::Approve).await.unwrap();
    w.settle().await;
    assert_eq!(w.state("c1").await, "live in staging");
    let running = start(&w.server).await;
    let (_, envs) = get(&running.url, "/api/v1/environments", None).await;
    let dev = &envs["environments"][0];
    assert_eq!(dev["live"]["sha"], "c1", "{dev}");
    let since: chrono::DateTime<chrono::Utc> = dev["live"]["since"].as_str().unwrap().parse().unwrap();
    assert_eq!(since, deployed_in_dev, "from the audit log, as c1's state now speaks of staging");
}
