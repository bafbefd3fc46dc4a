//! The service's config file: the example reads, every mistake is located,
//! and every missing secret is named.

use atlas_promote_server::config::{Config, ConfigError};

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/serve/atlas-promote.toml")
}

#[test]
fn the_example_config_reads_and_names_its_policy_relative_to_itself() {
    let config = Config::from_path(example()).unwrap();
    assert_eq!(config.backends.ci, "circleci");
    assert_eq!(config.operators[0].person, "dan");
    let policy = config.resolve(&config.policy);
    assert!(policy.ends_with("examples/serve/../policies/atlas.toml"), "{}", policy.display());
    assert!(policy.exists());
}

#[test]
fn every_missing_secret_is_named_with_the_field_that_names_it() {
    let config = Config::from_path(example()).unwrap();
    let only_github_token = |name: &str| (name == "ATLAS_GITHUB_TOKEN").then(|| "t".to_owned());
    let err = config.secrets(only_github_token).unwrap_err();
    let text = err.to_string();
    for (variable, field) in [
        ("ATLAS_GITHUB_WEBHOOK_SECRET", "github.webhook_secret_env"),
        ("ATLAS_CIRCLECI_TOKEN", "circleci.token_env"),
        ("ATLAS_CIRCLECI_WEBHOOK_SECRET", "circleci.webhook_secret_env"),
        ("ATLAS_NOTIFY_WEBHOOK_URL", "notify[1].url_env"),
        ("ATLAS_NOTIFY_WEBHOOK_SECRET", "notify[1].secret_env"),
    ] {
        assert!(text.contains(&format!("the environment variable {variable} is not set (named by {field})")), "{text}");
    }
    assert!(!text.contains("ATLAS_GITHUB_TOKEN "), "{text}");
    let ConfigError::MissingSecrets(missing) = err else { panic!("{err}") };
    assert_eq!(missing.len(), 5);
}

#[test]
fn secrets_read_are_never_shown() {
    let config = Config::from_path(example()).unwrap();
    let secrets = config.secrets(|name| Some(format!("value-of-{name}"))).unwrap();
    let shown = format!("{secrets:?} {config:?}");
    assert!(!shown.contains("value-of-"), "{shown}");
    assert!(!shown.contains("9f86d081"), "an operator's token hash is not shown either: {shown}");
}

const BROKEN: &str = r#"policy = "policy.toml"
store = "mysql://db"
listen = "everywhere"

[github]
repository = "acme"
webhook_secret_env = "S"
teams = { dev-team = "atlas-dev" }

[backends]
ci = "circleci"
checks = ["jenkins"]
directory = "github"
source_control = "github"

[[operator]]
person = "dan"
token_sha256 = "hunter2"

[[notify]]
kind = "webhook"
url_env = "U"
events = ["deployed"]
"#;

#[test]
fn every_mistake_of_a_config_is_reported_in_file_order_each_located() {
    let err = Config::from_toml_str(BROKEN, "atlas-promote.toml").unwrap_err();
    let ConfigError::File(err) = err else { panic!("{err}") };
    let found: Vec<(Option<usize>, Option<String>)> = err.mistakes().map(|m| (m.line, m.field.clone())).collect();
    let want: Vec<(Option<usize>, Option<String>)> = [
        (2, "store"),
        (3, "listen"),
        (5, "github"),
        (6, "github.repository"),
        (8, "github.teams.dev-team"),
        (11, "backends.ci"),
        (12, "backends.checks[0]"),
        (18, "operator[0].token_sha256"),
        (20, "notify[0]"),
        (23, "notify[0].events[0]"),
    ]
    .into_iter()
    .map(|(line, field)| (Some(line), Some(field.to_owned())))
    .collect();
    assert_eq!(found, want, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(
            "atlas-promote.toml:11:6: backends.ci: `circleci` is named but the config has no [circleci] section"
        ),
        "{text}"
    );
    assert!(text.contains("never the token"), "{text}");
    assert!(!text.contains("hunter2"), "a wrongly written token is not repeated: {text}");
}

#[test]
fn an_unknown_field_is_located_and_named() {
    let text = "policy = \"p.toml\"\nstore = \"memory://\"\nlisten_on = \"x\"\n[backends]\nci = \"github\"\ndirectory = \"policy\"\nsource_control = \"github\"\n";
    let err = Config::from_toml_str(text, "a.toml").unwrap_err().to_string();
    assert!(err.starts_with("a.toml:3:1: "), "{err}");
    assert!(err.contains("listen_on"), "{err}");
}
