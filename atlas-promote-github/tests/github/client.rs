//! Transport: headers, pagination, conditional requests, rate limits,
//! retries, error bodies, secrecy of the token.

use std::time::{Duration, Instant};

use atlas_promote_core::{CheckQuery, CheckSource, CiProvider, Error, SourceControl};
use atlas_promote_github::{FieldError, GitHubError, GitHubErrorKind};
use chrono::Utc;
use wiremock::matchers::{header, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;

fn statuses_path() -> String {
    repo("commits/abc/statuses")
}

#[tokio::test]
async fn every_request_carries_accept_api_version_user_agent_and_bearer() {
    let server = MockServer::start().await;
    api("GET", &repo("commits/abc/check-runs"))
        .and(header("user-agent", concat!("atlas-promote/", env!("CARGO_PKG_VERSION"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_check_runs_for_ref.json")))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_commit_statuses_for_ref.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    gh.checks(&CheckQuery::new("review", "abc", vec![])).await.unwrap();
}

#[tokio::test]
async fn pagination_follows_link_next_over_several_pages() {
    let server = MockServer::start().await;
    let base = server.uri();
    let status = |id: u64, context: &str| {
        let mut s = fixture("list_commit_statuses_for_ref.json")[0].clone();
        s["id"] = id.into();
        s["context"] = context.into();
        s
    };
    // Page 1 (no page param), 2, 3: each links to the next, the last to none.
    api("GET", &statuses_path())
        .and(query_param("page", "2"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(vec![status(2, "b")]).insert_header(
                "link",
                format!(
                    r#"<{base}{}?per_page=100&page=3>; rel="next", <{base}{}?per_page=100&page=1>; rel="first""#,
                    statuses_path(),
                    statuses_path()
                )
                .as_str(),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .and(query_param("page", "3"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(vec![status(3, "c")]).insert_header(
                "link",
                format!(r#"<{base}{}?per_page=100&page=1>; rel="first""#, statuses_path()).as_str(),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .and(query_param("per_page", "100"))
        .and(wiremock::matchers::query_param_is_missing("page"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(vec![status(1, "a")]).insert_header(
                "link",
                format!(
                    r#"<{base}{}?per_page=100&page=2>; rel="next", <{base}{}?per_page=100&page=3>; rel="last""#,
                    statuses_path(),
                    statuses_path()
                )
                .as_str(),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let statuses = gh.commit_statuses("abc").await.unwrap();
    assert_eq!(statuses.iter().map(|s| s.id).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(gh.stats().sent, 3);
}

#[tokio::test]
async fn a_link_to_another_host_is_refused_so_the_token_stays_home() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("list_commit_statuses_for_ref.json"))
                .insert_header("link", r#"<https://evil.example/steal?page=2>; rel="next""#),
        )
        .mount(&server)
        .await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(err.to_string().contains("outside the API"), "{err}");
}

#[tokio::test]
async fn etag_round_trip_serves_the_304_from_cache() {
    let server = MockServer::start().await;
    let etag = r#"W/"a18c3bded88eb5dbb5c849a489412bf1""#;
    // Second call: the client must send If-None-Match with the ETag exactly as received.
    api("GET", &statuses_path())
        .and(header("if-none-match", etag))
        .respond_with(ResponseTemplate::new(304).insert_header("etag", etag))
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("list_commit_statuses_for_ref.json"))
                .insert_header("etag", etag),
        )
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let first = gh.commit_statuses("abc").await.unwrap();
    let second = gh.commit_statuses("abc").await.unwrap();
    assert_eq!(first, second);
    assert_eq!(first[0].context, "continuous-integration/jenkins");
    let stats = gh.stats();
    assert_eq!((stats.sent, stats.not_modified, stats.rate_limited_cost()), (2, 1, 1));
}

#[tokio::test]
async fn primary_rate_limit_waits_until_reset_then_succeeds() {
    let server = MockServer::start().await;
    let reset = Utc::now().timestamp() + 1;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_commit_statuses_for_ref.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let started = Instant::now();
    gh.commit_statuses("abc").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(2500));
    assert_eq!(gh.stats().rate_limit_waits, 1);
}

#[tokio::test]
async fn primary_rate_limit_beyond_max_wait_fails_fast_and_temporary() {
    let server = MockServer::start().await;
    let reset = Utc::now().timestamp() + 3600;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(serde_json::json!({"message": "API rate limit exceeded"}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(err.is_temporary(), "{err}");
    assert!(err.to_string().contains("rate limit exhausted"), "{err}");
}

#[tokio::test]
async fn secondary_rate_limit_honours_retry_after_and_backs_off_without_it() {
    let server = MockServer::start().await;
    let secondary = serde_json::json!({"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"});
    // First: retry-after 1 s; second: no header (min wait, 20 ms in tests); third: success.
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(403).set_body_json(secondary.clone()).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(403).set_body_json(secondary))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_commit_statuses_for_ref.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    let started = Instant::now();
    gh.commit_statuses("abc").await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1) && took < Duration::from_millis(2500), "{took:?}");
    assert_eq!(gh.stats().rate_limit_waits, 2);
}

#[tokio::test]
async fn secondary_rate_limit_with_a_long_retry_after_fails_temporary() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"message": "You have exceeded a secondary rate limit."}))
                .insert_header("retry-after", "600"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(err.is_temporary());
    assert!(err.to_string().contains("secondary rate limit"), "{err}");
}

#[tokio::test]
async fn a_5xx_on_a_read_is_retried_then_succeeds() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_commit_statuses_for_ref.json")))
        .expect(1)
        .mount(&server)
        .await;
    let gh = github(&server);
    assert_eq!(gh.commit_statuses("abc").await.unwrap().len(), 1);
    assert_eq!(gh.stats().retries, 2);
}

#[tokio::test]
async fn a_5xx_that_persists_is_a_temporary_error() {
    let server = MockServer::start().await;
    api("GET", &statuses_path()).respond_with(ResponseTemplate::new(503)).expect(4).mount(&server).await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(err.is_temporary());
}

#[tokio::test]
async fn a_403_without_rate_limit_signs_is_a_permanent_permission_error() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"message": "Resource not accessible by integration", "documentation_url": "https://docs.github.com/rest"}))
                .insert_header("x-accepted-github-permissions", "statuses=read"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(!err.is_temporary());
    assert!(err.to_string().contains("Resource not accessible by integration"), "{err}");
}

#[tokio::test]
async fn a_401_is_permanent_and_names_the_operation() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(401).set_body_json(
            serde_json::json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        ))
        .mount(&server)
        .await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(
        matches!(&err, Error::Backend { operation, temporary: false, .. } if operation == "list commit statuses"),
        "{err:?}"
    );
    assert!(err.to_string().contains("Bad credentials"));
}

#[tokio::test]
async fn a_404_is_not_found() {
    let server = MockServer::start().await;
    api("GET", &repo("compare/a...b"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            serde_json::json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ))
        .mount(&server)
        .await;
    let err = github(&server).changed_files("a", "b").await.unwrap_err();
    assert!(matches!(&err, Error::NotFound { what, .. } if what.contains("a...b")), "{err:?}");
}

#[tokio::test]
async fn a_422_carries_the_validation_errors() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(422).set_body_json(fixture("error_422_validation_failed.json")))
        .mount(&server)
        .await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("Validation Failed; Label color invalid"), "{text}");
    assert!(text.contains("docs.github.com/rest/reference/issues#create-a-label"), "{text}");
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error_not_a_panic() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"statuses": "#))
        .mount(&server)
        .await;
    let err = github(&server).commit_statuses("abc").await.unwrap_err();
    assert!(err.to_string().contains("unexpected body"), "{err}");
    assert!(!err.is_temporary());
}

#[tokio::test]
async fn the_token_is_never_in_debug_display_or_errors() {
    let server = MockServer::start().await;
    // An error body that echoes something: still no token in our messages.
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(401).set_body_json(serde_json::json!({"message": "Bad credentials"})))
        .mount(&server)
        .await;
    let builder = builder(&server).with_reviewer_token("ghp_ReviewerTokenAlsoSecret");
    let builder_debug = format!("{builder:?}");
    let gh = builder.build().unwrap();
    let errors = [gh.commit_statuses("abc").await.unwrap_err(), gh.changed_files("a", "b").await.unwrap_err()];
    let mut texts = vec![builder_debug, format!("{gh:?}")];
    for e in &errors {
        texts.push(e.to_string());
        texts.push(format!("{e:?}"));
    }
    for text in texts {
        assert!(!text.contains(TOKEN), "token leaked: {text}");
        assert!(!text.contains("ReviewerTokenAlsoSecret"), "reviewer token leaked: {text}");
    }
}

#[tokio::test]
async fn github_app_trades_a_jwt_for_an_installation_token_and_reuses_it() {
    let server = MockServer::start().await;
    let expires = (Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/app/installations/99/access_tokens"))
        .and(wiremock::matchers::header_regex(
            "authorization",
            r"^Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        ))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(serde_json::json!({"token": "ghs_installation", "expires_at": expires})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(statuses_path()))
        .and(header("authorization", "Bearer ghs_installation"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_commit_statuses_for_ref.json")))
        .expect(2)
        .mount(&server)
        .await;
    let gh = GitHubBuilder::new()
        .with_app(1, raw("test_app_key.pem"), 99)
        .with_repository(REPO)
        .with_base_url(server.uri())
        .build()
        .unwrap();
    gh.commit_statuses("abc").await.unwrap();
    gh.commit_statuses("abc").await.unwrap();
    assert!(!format!("{gh:?}").contains("PRIVATE KEY"));
}

#[tokio::test]
async fn an_installation_token_close_to_expiry_is_refreshed() {
    let server = MockServer::start().await;
    let soon = (Utc::now() + chrono::TimeDelta::minutes(2)).to_rfc3339();
    Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/app/installations/99/access_tokens"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"token": "ghs_short", "expires_at": soon})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path(statuses_path()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("list_commit_statuses_for_ref.json")))
        .expect(2)
        .mount(&server)
        .await;
    let gh = GitHubBuilder::new()
        .with_app(1, raw("test_app_key.pem"), 99)
        .with_repository(REPO)
        .with_base_url(server.uri())
        .build()
        .unwrap();
    gh.commit_statuses("abc").await.unwrap();
    gh.commit_statuses("abc").await.unwrap();
}

#[tokio::test]
async fn an_api_error_is_readable_by_a_program_through_the_core_errors_source() {
    // Given a GitHub that refuses a dispatch with its published 422 and the
    // permissions the endpoint accepts, and whose primary rate limit is spent for an hour
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            ResponseTemplate::new(422)
                .set_body_json(fixture("error_422_validation_failed.json"))
                .insert_header("x-accepted-github-permissions", "actions=write"),
        )
        .mount(&server)
        .await;
    let reset = Utc::now().timestamp() + 3600;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(403)
                .set_body_json(serde_json::json!({"message": "API rate limit exceeded for user ID 1.", "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}))
                .insert_header("x-ratelimit-remaining", "0")
                .insert_header("x-ratelimit-reset", reset.to_string().as_str()),
        )
        .mount(&server)
        .await;
    let gh = github(&server);

    // When the calls fail, the core error's source is a GitHubError that says what GitHub answered
    let refused = gh.trigger(&security::deploy_request()).await.unwrap_err();
    let e = GitHubError::of(&refused).unwrap_or_else(|| panic!("no GitHubError in {refused:?}"));
    assert_eq!((e.kind(), e.status(), e.message()), (GitHubErrorKind::Status, Some(422), Some("Validation Failed")));
    let mut label = FieldError::default();
    (label.resource, label.field, label.code) = (Some("Label".into()), Some("color".into()), Some("invalid".into()));
    assert_eq!(e.fields(), [label]);
    assert_eq!(e.documentation_url(), Some("https://docs.github.com/rest/reference/issues#create-a-label"));
    assert_eq!(e.accepted_permissions(), Some("actions=write"));
    assert!(!e.is_temporary() && !refused.is_temporary());
    assert_eq!(e.retry_after(), None);

    let limited = gh.commit_statuses("abc").await.unwrap_err();
    let e = GitHubError::of(&limited).unwrap_or_else(|| panic!("no GitHubError in {limited:?}"));
    assert_eq!((e.kind(), e.status()), (GitHubErrorKind::RateLimited, Some(403)));
    assert_eq!(e.rate_limit_reset().map(|at| at.timestamp()), Some(reset));
    assert!(e.retry_after().is_some_and(|wait| wait > Duration::from_secs(3000)), "{:?}", e.retry_after());
    assert!(e.is_temporary() && limited.is_temporary());
    assert!(e.url().is_some_and(|url| url.contains("/commits/abc/statuses")), "{:?}", e.url());

    // And one that is not about an API answer has none
    assert!(GitHubError::of(&Error::Refused { reason: "no".into() }).is_none());
}

#[tokio::test]
async fn a_call_ends_at_its_deadline_when_the_server_stalls() {
    // Given a GitHub that takes a minute to answer, a request timeout of
    // 10 s and 3 retries (40 s without a deadline), and a deadline of 300 ms
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&server)
        .await;
    let gh = builder(&server)
        .with_timeouts(Duration::from_secs(10), Duration::from_secs(10))
        .with_retry(fast_retry().with_deadline(Duration::from_millis(300)))
        .build()
        .unwrap();

    // When the statuses are read, the call ends at its deadline, temporary
    let err = gh.commit_statuses("abc").await.unwrap_err();
    let e = GitHubError::of(&err).unwrap_or_else(|| panic!("no GitHubError in {err:?}"));
    assert_eq!(e.kind(), GitHubErrorKind::Deadline, "{err}");
    assert!(err.is_temporary() && err.to_string().contains("deadline of 300ms"), "{err}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_longest_wait_ends_the_call_at_once_temporary() {
    let server = MockServer::start().await;
    api("GET", &statuses_path())
        .respond_with(
            ResponseTemplate::new(503)
                .insert_header("retry-after", "60")
                .set_body_json(serde_json::json!({"message": "Service Unavailable"})),
        )
        .mount(&server)
        .await;
    let gh = github(&server); // waits of up to 2 s honoured

    let err = gh.commit_statuses("abc").await.unwrap_err();

    assert_eq!(gh.stats().sent, 1, "not retried before the server's minute is up");
    assert!(err.is_temporary(), "{err}");
    assert_eq!(GitHubError::of(&err).and_then(GitHubError::retry_after), Some(Duration::from_secs(60)));
}
