//! No token, nor its hash, in what the service logs, answers or shows.
//! (Its own test binary: `CapturedLogs` owns the process's subscriber.)

mod operator_world;

use atlas_promote_core::testkit::CapturedLogs;
use atlas_promote_server::ReadAccess;
use atlas_promote_server::auth::token_sha256;
use operator_world::{DAN, RITA, client, start, world};
use serde_json::json;

#[tokio::test]
async fn no_token_or_its_hash_appears_in_logs_errors_or_pages() {
    let (logs, _capturing) = CapturedLogs::start();
    let w = world(ReadAccess::Token);
    w.merged_and_live_in_dev("c1").await;
    let running = start(&w.server).await;
    let url = &running.url;
    let guess = "guessed-token-7d41b9e0";
    let http = client();
    let mut seen = format!("{:?}\n", w.server);

    let mut requests = vec![
        http.post(format!("{url}/api/v1/holds")).bearer_auth(guess).json(&json!({"stage": "prod", "reason": "x"})),
        http.post(format!("{url}/api/v1/holds")).header("authorization", format!("Token {DAN}")),
        http.post(format!("{url}/api/v1/holds")).header("cookie", format!("token={DAN}")),
        http.get(format!("{url}/api/v1/promotions")).bearer_auth(guess),
        http.get(format!("{url}/")).bearer_auth(guess),
        http.get(format!("{url}/promotions/c1")).bearer_auth(guess),
        http.post(format!("{url}/api/v1/promotions/c1/approvals"))
            .bearer_auth(DAN)
            .json(&json!({"stage": "staging", "decision": "approve"})),
        http.post(format!("{url}/api/v1/promotions/c1/approvals")).bearer_auth(DAN).body("{broken"),
        http.post(format!("{url}/api/v1/promotions/c1/overrides"))
            .bearer_auth(DAN)
            .json(&json!({"stage": "staging", "bypass": ["approvals_missing"], "reason": "x"})),
        http.post(format!("{url}/api/v1/promotions/c1/overrides"))
            .bearer_auth(RITA)
            .json(&json!({"stage": "prod", "bypass": ["approvals_missing"], "reason": "x"})),
        http.get(format!("{url}/api/v1/promotions/c1")).bearer_auth(DAN),
        http.get(format!("{url}/api/v1/audit")).bearer_auth(DAN),
        http.get(format!("{url}/api/v1/environments")).bearer_auth(DAN),
        http.get(format!("{url}/")).bearer_auth(DAN),
        http.get(format!("{url}/promotions/c1")).bearer_auth(DAN),
    ];
    let mut statuses = Vec::new();
    for request in requests.drain(..) {
        let response = request.send().await.unwrap();
        statuses.push(response.status().as_u16());
        seen.push_str(&format!("{:?}\n", response.headers()));
        seen.push_str(&response.text().await.unwrap());
        seen.push('\n');
    }
    w.settle().await;
    assert_eq!(statuses[..7], [401, 401, 401, 401, 401, 401, 201], "{seen}");
    for secret in [DAN.to_owned(), RITA.to_owned(), guess.to_owned(), token_sha256(DAN), token_sha256(RITA)] {
        assert!(!logs.text().contains(&secret), "a token shows in the logs:\n{}", logs.text());
        assert!(!seen.contains(&secret), "a token shows in an answer:\n{seen}");
    }
    // The capture saw the refusals and the actions: the test looked where they would be.
    assert!(logs.text().contains("no known token"), "{}", logs.text());
    assert!(logs.text().contains("approval recorded"), "{}", logs.text());
    assert_eq!(statuses[statuses.len() - 2..], [200, 200], "the pages were served:\n{seen}");
    assert!(seen.contains("<!DOCTYPE html>"), "{seen}");
}
