//! The status page over real HTTP: the board and a candidate's page, as
//! HTML that reads without JavaScript.

mod operator_world;

use atlas_promote_server::ReadAccess;
use operator_world::{DAN, client, start, world};

async fn page(url: &str, token: Option<&str>) -> (u16, String, String) {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
    (status, kind, response.text().await.unwrap())
}

#[tokio::test]
async fn the_board_shows_each_environments_live_commit_and_the_blockers_in_the_decisions_words() {
    let w = world(ReadAccess::Open);
    w.c1_blocked_in_staging_c2_in_dev().await;
    let running = start(&w.server).await;
    let (status, kind, html) = page(&format!("{}/", running.url), None).await;
    assert_eq!(status, 200);
    assert_eq!(kind, "text/html; charset=utf-8");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(!html.contains("<script"), "no JavaScript");
    // Each environment with what is live there.
    let dev = html.find(r#"id="env-dev""#).unwrap();
    let staging = html.find(r#"id="env-staging""#).unwrap();
    let prod = html.find(r#"id="env-prod""#).unwrap();
    assert!(html[dev..staging].contains(r#"href="/promotions/c2""#), "c2 is live in dev");
    assert!(html[staging..prod].contains(r#"href="/promotions/c1""#), "c1 is live in staging");
    assert!(html[prod..].contains("nothing yet"), "nothing is live in prod");
    // The blockers, as the decision says them.
    let decision = w.promoter.plan("c1").await.unwrap().steps[0].decision.clone().unwrap();
    assert!(!decision.blockers.is_empty());
    for blocker in &decision.blockers {
        let sentence = blocker.to_string().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(html.contains(&sentence), "{sentence} not on the board");
    }
    assert!(html.contains("needs 1 more approval from developer (have 0 of 1) to enter staging"), "c2's blocker");
    // Times carry the year, with UTC.
    assert!(html.contains("2026"), "{html}");
    assert!(html.contains(r#"<time datetime="2026-05-04T"#), "{html}");
    // The recent audit trail.
    assert!(html.contains("dan (developer, dev-team) approves c1 into staging"), "{html}");
}

#[tokio::test]
async fn a_candidates_page_shows_its_whole_timeline() {
    let w = world(ReadAccess::Open);
    w.c1_blocked_in_staging_c2_in_dev().await;
    let running = start(&w.server).await;
    let (status, _, html) = page(&format!("{}/promotions/c1", running.url), None).await;
    assert_eq!(status, 200);
    let timeline: Vec<_> = w.store.audit(0).await.unwrap().into_iter().filter(|r| r.entry.subject == "c1").collect();
    assert!(timeline.len() > 5);
    let mut at = 0;
    for record in &timeline {
        let message = record.entry.message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let found = html[at..].find(&message).unwrap_or_else(|| panic!("{message} missing or out of order"));
        at += found;
    }
    assert!(html.contains("staging → prod"), "{html}");
    let (status, _, html) = page(&format!("{}/promotions/nope", running.url), None).await;
    assert_eq!(status, 404);
    assert!(html.contains("knows no candidate nope"));
}

#[tokio::test]
async fn times_show_in_the_policys_zone_with_utc_beside() {
    let w = world(ReadAccess::Open);
    w.merged_and_live_in_dev("c1").await;
    let server = atlas_promote_server::Server::builder(w.promoter.clone())
        .with_time_zone("Europe/Berlin".parse().unwrap())
        .build();
    let running = start(&server).await;
    let (_, _, html) = page(&format!("{}/promotions/c1", running.url), None).await;
    // 08:00 UTC on 4 May 2026 is 10:00 in Berlin (CEST).
    assert!(html.contains("Mon 4 May 2026, 10:00 CEST <span class=\"utc\">(08:00 UTC)</span>"), "{html}");
}

#[tokio::test]
async fn a_gated_page_needs_a_token() {
    let w = world(ReadAccess::Token);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let (status, _, html) = page(&format!("{}/", running.url), None).await;
    assert_eq!(status, 401);
    assert!(!html.contains("c1"), "{html}");
    let (status, _, _) = page(&format!("{}/", running.url), Some(DAN)).await;
    assert_eq!(status, 200);
}
