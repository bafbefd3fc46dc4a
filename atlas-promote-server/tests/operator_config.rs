//! The operators and read access a config file gives the service.

mod operator_world;

use atlas_promote_server::{Config, Server};
use operator_world::{get, kind, start};

/// `token_sha256` is the SHA-256 of `test`.
const CONFIG: &str = r#"policy = "../examples/policies/atlas.toml"
store = "memory://"

[github]
repository = "acme/atlas"
api_url = "http://127.0.0.1:9"
token_env = "T"
webhook_secret_env = "W"

[circleci]
project_slug = "gh/acme/atlas"
api_url = "http://127.0.0.1:9"
token_env = "T"
webhook_secret_env = "W"

[backends]
ci = "circleci"
directory = "policy"
source_control = "github"

[api]
reads = "token"

[[operator]]
person = "dan"
token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
"#;

#[tokio::test]
async fn the_configs_operators_act_and_its_api_section_gates_reads() {
    let config = Config::from_toml_str(CONFIG, "atlas-promote.toml").unwrap();
    let server = Server::from_config(&config, |_| Some("x".to_owned())).await.unwrap();
    let running = start(&server).await;
    let (status, body) = get(&running.url, "/api/v1/environments", None).await;
    assert_eq!((status, kind(&body)), (401, "unauthorized"));
    let (status, body) = get(&running.url, "/api/v1/environments", Some("test")).await;
    assert_eq!(status, 200, "{body}");
    let (_, whoami) = get(&running.url, "/api/v1/whoami", Some("test")).await;
    assert_eq!(whoami["person"], "dan");
}

#[test]
fn reads_are_open_or_token_and_nothing_else() {
    let text = CONFIG.replace(r#"reads = "token""#, r#"reads = "closed""#);
    let err = Config::from_toml_str(&text, "atlas-promote.toml").unwrap_err().to_string();
    assert!(err.contains("atlas-promote.toml:") && err.contains("closed"), "{err}");
}
