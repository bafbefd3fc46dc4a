//! What the service tells the forge: the review gate's decision as the
//! commit status `atlas-promote/review`, the answers to deployment
//! protection rules, and promotions mirrored as deployments, each once.

mod common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use atlas_promote_core::{Candidate, Clock as _, GateReply, Result, Verdict};
use atlas_promote_server::forge::{Forge, Mirrored, REVIEW_CONTEXT, ReviewState, ReviewStatus};

/// A gate answer as recorded: stage, callback, verdict, comment.
type Answer = (String, String, Verdict, String);

/// A forge that records what it is told (GitHub itself cannot run here; the
/// GitHub forge's requests are tested in the GitHub crate).
#[derive(Debug, Default, Clone)]
struct Recorder {
    reviews: Arc<Mutex<Vec<(String, ReviewStatus)>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
    mirrors: Arc<Mutex<Vec<(String, String, Mirrored)>>>,
}

#[async_trait]
impl Forge for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    async fn post_review(&self, sha: &str, status: &ReviewStatus) -> Result<()> {
        self.reviews.lock().unwrap().push((sha.to_owned(), status.clone()));
        Ok(())
    }
    async fn gate_candidate(&self, sha: &str, _reply_to: &str) -> Result<String> {
        Ok(sha.to_owned())
    }
    async fn answer_gate(&self, stage: &str, reply_to: &str, reply: &GateReply) -> Result<()> {
        self.answers.lock().unwrap().push((
            stage.to_owned(),
            reply_to.to_owned(),
            reply.verdict,
            reply.comment.clone(),
        ));
        Ok(())
    }
    async fn mirror(&self, stage: &str, sha: &str, state: Mirrored, _url: Option<&str>) -> Result<()> {
        self.mirrors.lock().unwrap().push((stage.to_owned(), sha.to_owned(), state));
        Ok(())
    }
}

fn protection_rule(environment: &str, sha: &str, reply_to: &str) -> Vec<u8> {
    // GitHub publishes no example of this event: built from its published
    // deployment payload plus the schema's fields.
    let deployment: serde_json::Value = serde_json::from_slice(&common::fixture("webhook_deployment.json")).unwrap();
    let mut payload = serde_json::json!({
        "action": "requested",
        "environment": environment,
        "event": "workflow_dispatch",
        "deployment_callback_url": reply_to,
        "deployment": deployment["deployment"],
        "repository": deployment["repository"],
        "sender": deployment["sender"],
    });
    payload["deployment"]["sha"] = sha.into();
    serde_json::to_vec(&payload).unwrap()
}

#[tokio::test]
async fn the_review_decision_is_posted_once_as_the_review_commit_status() {
    let forge = Recorder::default();
    let w = common::world();
    let server = common::builder(&w).with_forge(Arc::new(forge.clone())).build();
    server.promoter().open_review(Candidate::trunk("pr1", ["alice"])).await.unwrap();
    server.step().await.unwrap();
    server.step().await.unwrap();
    let reviews = forge.reviews.lock().unwrap().clone();
    assert_eq!(reviews.len(), 1, "posted once, not once per round: {reviews:?}");
    let (sha, status) = &reviews[0];
    assert_eq!(sha, "pr1");
    // The atlas policy needs the quality checks and another developer's
    // approval: blocked, and the status names the first blocker and counts the rest.
    assert_eq!(status.state, ReviewState::Failure);
    assert!(
        status.description.starts_with("check build") && status.description.ends_with("more)"),
        "{}",
        status.description
    );
    assert_eq!(REVIEW_CONTEXT, "atlas-promote/review");
}

#[tokio::test]
async fn a_pull_request_into_trunk_is_reviewed_as_a_trunk_candidate_and_its_decision_posted() {
    let forge = Recorder::default();
    let w = common::world();
    let server = common::builder(&w).with_forge(Arc::new(forge.clone())).build();
    let running = common::start(server.clone()).await;
    let sha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
    let body = common::pull_request("opened", "main", "pipeline-change", sha, "alice");
    let (status, reply) =
        common::deliver(&running.url, "pull_request", "pr-1", body.clone(), Some(common::signature(&body))).await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("accepted")), "{reply}");
    let into_other = common::pull_request("opened", "release-1.x", "backport", "b1", "alice");
    let (status, reply) =
        common::deliver(&running.url, "pull_request", "pr-2", into_other.clone(), Some(common::signature(&into_other)))
            .await;
    assert_eq!((status, reply["outcome"].as_str()), (202, Some("ignored")), "{reply}");
    assert!(reply["reason"].as_str().unwrap_or_default().contains("release-1.x"), "{reply}");

    let step = server.step().await.unwrap();
    assert!(step.failed_work.is_empty(), "{:?}", step.failed_work);
    let promotion = server.promoter().promotion(sha).await.unwrap().value.promotion;
    assert!(matches!(promotion.state, atlas_promote_core::State::UnderReview { .. }), "{}", promotion.state);
    assert_eq!(promotion.candidate.origin, atlas_promote_core::Origin::Trunk, "on its way to trunk");
    assert_eq!(promotion.candidate.branch.as_deref(), Some("pipeline-change"), "the branch name is kept");
    assert_eq!(promotion.candidate.authors, ["alice"]);
    server.step().await.unwrap();
    let reviews = forge.reviews.lock().unwrap().clone();
    assert_eq!(reviews.len(), 1, "{reviews:?}");
    assert_eq!(reviews[0].0, sha, "posted on the pull request's head");
    assert_eq!(reviews[0].1.state, ReviewState::Failure, "no approval yet: {:?}", reviews[0].1);
}

#[tokio::test]
async fn a_protection_rule_is_answered_by_the_gate_and_a_deploy_the_engine_did_not_start_is_rejected() {
    let forge = Recorder::default();
    let w = common::world();
    let server = common::builder(&w).with_forge(Arc::new(forge.clone())).build();
    let running = common::start(server.clone()).await;
    w.source_control.commit("c1", None, "alice", &["src/app.py"]);
    server.promoter().merged(Candidate::trunk("c1", ["alice"]), w.clock.now()).await.unwrap();
    for _ in 0..3 {
        server.step().await.unwrap();
    }
    // c1 is live in dev; someone deploys it straight to prod, and a commit nobody knows.
    let reply_prod = "https://api.github.com/repos/acme/atlas/actions/runs/7/deployment_protection_rule";
    let reply_unknown = "https://api.github.com/repos/acme/atlas/actions/runs/8/deployment_protection_rule";
    for (id, body) in
        [("d-1", protection_rule("prod", "c1", reply_prod)), ("d-2", protection_rule("prod", "c9", reply_unknown))]
    {
        let signature = Some(common::signature(&body));
        let (status, _) = common::deliver(&running.url, "deployment_protection_rule", id, body, signature).await;
        assert_eq!(status, 202);
    }
    server.step().await.unwrap();
    server.step().await.unwrap();
    let answers = forge.answers.lock().unwrap().clone();
    assert_eq!(answers.len(), 2, "each request answered once: {answers:?}");
    let prod = answers.iter().find(|a| a.1 == reply_prod).unwrap();
    assert_eq!((prod.0.as_str(), prod.2), ("prod", Verdict::Block));
    assert!(prod.3.contains("live in dev") && prod.3.contains("not promoting it into prod"), "{}", prod.3);
    let unknown = answers.iter().find(|a| a.1 == reply_unknown).unwrap();
    assert_eq!(unknown.2, Verdict::Block);
    assert!(unknown.3.contains("does not know commit c9"), "{}", unknown.3);
    // Each answer is in the audit log.
    let audit = w.store.audit(0).await.unwrap();
    assert_eq!(audit.iter().filter(|r| r.entry.action == "gate.answered").count(), 2);
    // The dev deploy was mirrored: running, then live, each once.
    let mirrors = forge.mirrors.lock().unwrap().clone();
    let dev: Vec<Mirrored> = mirrors.iter().filter(|m| m.0 == "dev" && m.1 == "c1").map(|m| m.2).collect();
    assert_eq!(dev.last(), Some(&Mirrored::Success), "{mirrors:?}");
    assert_eq!(dev.iter().filter(|s| **s == Mirrored::Success).count(), 1, "{mirrors:?}");
}
