//! The operator's commands against a running service: `status`, `plan`,
//! `approve`, `hold`, `release`, `override`, `rollback`, `retry`,
//! `audit verify` and `audit log`.
//!
//! Each asks the operator API of `--server` (or `ATLAS_SERVER`) with the
//! token in `ATLAS_TOKEN`, or, when no service runs, of the service built
//! from `--config` (and `--store`) inside the command, and prints sentences, or with `--format json`
//! the API's answer. Exit statuses as `evaluate`'s: 0 done (or allowed),
//! 3 the candidate waits, 4 refused or blocked, 2 bad input, 1 anything else.

use std::io::Write;

use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};

use crate::args::Format;
use crate::exit::{Failure, Status};
use crate::remote::{Remote, TOKEN_ENV, segment};

/// Where the service is, and how to print.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The running service's address; the operator token comes from ATLAS_TOKEN.
    #[arg(long, value_name = "URL", env = "ATLAS_SERVER", default_value = "http://127.0.0.1:8080")]
    pub(crate) server: String,
    /// When no service runs: act on the store of this config file directly
    /// (the service is built from it inside this command, for this one
    /// request; the token must still be one of its operators'). Wins over --server.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<std::path::PathBuf>,
    /// With --config: this store instead of the config's (`sqlite://PATH`, `postgres://…`).
    #[arg(long, value_name = "URL", requires = "config")]
    pub(crate) store: Option<String>,
    /// How to print the answer.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The candidate's commit.
    #[arg(value_name = "SHA")]
    pub(crate) sha: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `approve`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("decision").args(["reject", "withdraw"])))]
pub(crate) struct ApproveArgs {
    /// The candidate's commit.
    #[arg(value_name = "SHA")]
    pub(crate) sha: String,
    /// The stage the approval lets it enter.
    #[arg(long, value_name = "STAGE")]
    pub(crate) into: String,
    /// Reject instead: a veto while it stands.
    #[arg(long)]
    pub(crate) reject: bool,
    /// Take back your earlier approval or rejection.
    #[arg(long)]
    pub(crate) withdraw: bool,
    /// A comment, kept in the audit log.
    #[arg(long, value_name = "TEXT")]
    pub(crate) comment: Option<String>,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `hold`.
#[derive(Debug, Args)]
pub(crate) struct HoldArgs {
    /// The environment to stop the line into.
    #[arg(value_name = "STAGE")]
    pub(crate) stage: String,
    /// Why, for the audit log and the status page.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `release`.
#[derive(Debug, Args)]
pub(crate) struct ReleaseArgs {
    /// The held environment.
    #[arg(value_name = "STAGE")]
    pub(crate) stage: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `override`.
#[derive(Debug, Args)]
pub(crate) struct OverrideArgs {
    /// The candidate's commit.
    #[arg(value_name = "SHA")]
    pub(crate) sha: String,
    /// The stage it waits to enter.
    #[arg(long, value_name = "STAGE")]
    pub(crate) into: String,
    /// The blocker kinds to bypass (window_closed, approvals_missing, …).
    #[arg(long, value_name = "KIND", required = true, num_args = 1..)]
    pub(crate) bypass: Vec<String>,
    /// Why, for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The environment to take back to its previous live commit.
    #[arg(value_name = "STAGE")]
    pub(crate) stage: String,
    /// Why, for the audit log.
    #[arg(long, value_name = "TEXT")]
    pub(crate) reason: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `retry`.
#[derive(Debug, Args)]
pub(crate) struct RetryArgs {
    /// The candidate whose deploy failed.
    #[arg(value_name = "SHA")]
    pub(crate) sha: String,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk the audit log's hash chain; exit 4 if it is broken.
    #[command(
        after_help = "Examples:\n  atlas-promote audit verify\n  atlas-promote audit verify --expect-head 3f2a…   # a head written down earlier\n\nExit status: see the table in `atlas-promote --help`."
    )]
    Verify(AuditVerifyArgs),
    /// Print the audit log, oldest first.
    #[command(
        after_help = "Examples:\n  atlas-promote audit log\n  atlas-promote audit log --after 120 --format json\n\nExit status: see the table in `atlas-promote --help`."
    )]
    Log(AuditLogArgs),
}

/// Arguments of `audit verify`.
#[derive(Debug, Args)]
pub(crate) struct AuditVerifyArgs {
    /// A head hash written down earlier: the log must still reach it.
    #[arg(long, value_name = "HASH")]
    pub(crate) expect_head: Option<String>,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// Arguments of `audit log`.
#[derive(Debug, Args)]
pub(crate) struct AuditLogArgs {
    /// Only the records after this one.
    #[arg(long, value_name = "SEQ", default_value_t = 0)]
    pub(crate) after: u64,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
}

/// One operator command, ready to run.
#[derive(Debug)]
pub(crate) enum Operation {
    /// `status`.
    Status(StatusArgs),
    /// `plan`.
    Plan(PlanArgs),
    /// `approve`.
    Approve(ApproveArgs),
    /// `hold`.
    Hold(HoldArgs),
    /// `release`.
    Release(ReleaseArgs),
    /// `override`.
    Override(OverrideArgs),
    /// `rollback`.
    Rollback(RollbackArgs),
    /// `retry`.
    Retry(RetryArgs),
    /// `audit verify` / `audit log`.
    Audit(AuditCommand),
}

impl Operation {
    fn server(&self) -> &ServerArgs {
        match self {
            Self::Status(a) => &a.server,
            Self::Plan(a) => &a.server,
            Self::Approve(a) => &a.server,
            Self::Hold(a) => &a.server,
            Self::Release(a) => &a.server,
            Self::Override(a) => &a.server,
            Self::Rollback(a) => &a.server,
            Self::Retry(a) => &a.server,
            Self::Audit(AuditCommand::Verify(a)) => &a.server,
            Self::Audit(AuditCommand::Log(a)) => &a.server,
        }
    }
}

/// Run `operation` against its server, printing to `out`.
pub(crate) fn run(operation: Operation, out: &mut dyn Write) -> Result<Status, Failure> {
    let server = operation.server();
    let token = std::env::var(TOKEN_ENV).ok();
    let format = server.format;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(format!("cannot start the async runtime: {e}")))?;
    let (answer, status) = runtime.block_on(async {
        match &server.config {
            Some(config) => {
                let local = Local::start(config, server.store.as_deref()).await?;
                let answer = ask(&Remote::new(&local.url, token)?, &operation).await;
                local.stop().await;
                answer
            }
            None => ask(&Remote::new(&server.server, token)?, &operation).await,
        }
    })?;
    match format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&answer).map_err(|e| Failure::Other(e.to_string()))?;
            writeln!(out, "{text}").map_err(Failure::output)?;
        }
        Format::Text => out.write_all(text(&operation, &answer).as_bytes()).map_err(Failure::output)?,
    }
    Ok(status)
}

/// The service built from a config file, serving its API on a loopback
/// port of this process only while one command runs: the same API, the
/// same checks of the token, on the store the config names.
struct Local {
    url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<()>,
}

impl Local {
    async fn start(config: &std::path::Path, store: Option<&str>) -> Result<Self, Failure> {
        let mut config = atlas_promote_server::Config::from_path(config).map_err(crate::serve::config_failure)?;
        if let Some(store) = store {
            config.store = store.to_owned();
        }
        let server = atlas_promote_server::Server::from_config(&config, |name| std::env::var(name).ok())
            .await
            .map_err(crate::serve::start_failure)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Failure::Other(format!("cannot listen on a loopback port: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Failure::Other(e.to_string()))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self { url: format!("http://{addr}"), stop, serving })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.serving.await;
    }
}

/// The API call of `operation`, and the exit status its answer means.
async fn ask(remote: &Remote, operation: &Operation) -> Result<(Value, Status), Failure> {
    let done = |answer: Value| (answer, Status::Success);
    let answer = match operation {
        Operation::Status(_) => remote.get("/api/v1/status").await.map(done),
        Operation::Plan(a) => remote.get(&format!("/api/v1/promotions/{}", segment(&a.sha))).await.map(|answer| {
            let status = match answer["decision"]["verdict"].as_str() {
                Some("wait") => Status::Wait,
                Some("block") => Status::Block,
                _ => Status::Success,
            };
            (answer, status)
        }),
        Operation::Approve(a) => {
            let decision = if a.reject {
                "reject"
            } else if a.withdraw {
                "withdraw"
            } else {
                "approve"
            };
            let body = json!({ "stage": a.into, "decision": decision, "comment": a.comment });
            remote.post(&format!("/api/v1/promotions/{}/approvals", segment(&a.sha)), body).await.map(done)
        }
        Operation::Hold(a) => {
            remote.post("/api/v1/holds", json!({ "stage": a.stage, "reason": a.reason })).await.map(done)
        }
        Operation::Release(a) => remote.delete(&format!("/api/v1/holds/{}", segment(&a.stage))).await.map(done),
        Operation::Override(a) => {
            let body = json!({ "stage": a.into, "bypass": a.bypass, "reason": a.reason });
            remote.post(&format!("/api/v1/promotions/{}/overrides", segment(&a.sha)), body).await.map(done)
        }
        Operation::Rollback(a) => remote
            .post(&format!("/api/v1/environments/{}/rollback", segment(&a.stage)), json!({ "reason": a.reason }))
            .await
            .map(done),
        Operation::Retry(a) => {
            remote.post(&format!("/api/v1/promotions/{}/retry", segment(&a.sha)), json!({})).await.map(done)
        }
        Operation::Audit(AuditCommand::Verify(a)) => {
            let query = a.expect_head.as_deref().map(|h| format!("?expect_head={}", segment(h))).unwrap_or_default();
            remote.get(&format!("/api/v1/audit/verify{query}")).await.map(|answer| {
                let status = if answer["ok"] == true { Status::Success } else { Status::Block };
                (answer, status)
            })
        }
        Operation::Audit(AuditCommand::Log(a)) => {
            remote.get(&format!("/api/v1/audit?after={}", a.after)).await.map(done)
        }
    };
    answer.map_err(crate::remote::Refusal::failure)
}

fn s(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// `2026-05-04T08:02:00Z` as `2026-05-04 08:02 UTC`.
fn when(value: &Value) -> String {
    match value.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string(),
        None => "-".into(),
    }
}

/// A plan step: its gate and verdict, then each thing in its way in the
/// decision's own sentences.
fn step_lines(step: &Value, indent: &str) -> String {
    let decision = &step["decision"];
    let verdict = match s(&decision["verdict"]) {
        "" => String::new(),
        "allow" => ": allowed".to_owned(),
        "wait" => format!(": waiting until {}", when(&decision["until"])),
        _ => ": blocked".to_owned(),
    };
    let mut text = format!("{indent}{} → {}{verdict}\n", s(&step["from"]), s(&step["to"]));
    for need in step["needs"].as_array().into_iter().flatten() {
        text.push_str(&format!("{indent}  - {}\n", s(need)));
    }
    text
}

/// The answer in sentences.
fn text(operation: &Operation, answer: &Value) -> String {
    let mut text = String::new();
    match operation {
        Operation::Status(_) => {
            text.push_str(&format!("policy {} at {}\n\nenvironments:\n", s(&answer["policy"]), when(&answer["at"])));
            for env in answer["environments"].as_array().into_iter().flatten() {
                let name = match env["branch"].as_str() {
                    Some(branch) => format!("{} ({branch})", s(&env["stage"])),
                    None => s(&env["stage"]).to_owned(),
                };
                let live = match env["live"].is_null() {
                    true => "nothing live".to_owned(),
                    false => format!("{} live since {}", s(&env["live"]["sha"]), when(&env["live"]["since"])),
                };
                text.push_str(&format!("  {name:<10} {live}"));
                if !env["in_flight"].is_null() {
                    text.push_str(&format!(
                        "; in flight: {} ({})",
                        s(&env["in_flight"]["sha"]),
                        s(&env["in_flight"]["state"])
                    ));
                }
                if !env["hold"].is_null() {
                    text.push_str(&format!("; HELD by {}: {}", s(&env["hold"]["by"]), s(&env["hold"]["reason"])));
                }
                text.push('\n');
            }
            let candidates = answer["candidates"].as_array().cloned().unwrap_or_default();
            text.push_str("\ncandidates:\n");
            if candidates.is_empty() {
                text.push_str("  none on its way\n");
            }
            for c in &candidates {
                text.push_str(&format!("  {} {} (by {})\n", s(&c["sha"]), s(&c["state"]), authors(c)));
                if let Some(step) = c["plan"]["steps"].get(0) {
                    text.push_str(&step_lines(step, "    "));
                }
                if !c["next_wake"].is_null() {
                    text.push_str(&format!("    next wake-up {}\n", when(&c["next_wake"])));
                }
            }
        }
        Operation::Plan(_) => {
            let steps = answer["plan"]["steps"].as_array().cloned().unwrap_or_default();
            text.push_str(&format!("{} is {}", s(&answer["sha"]), s(&answer["state"])));
            text.push_str(if steps.is_empty() { "; nothing is ahead\n" } else { "; ahead:\n" });
            for step in &steps {
                text.push_str(&step_lines(step, "  "));
            }
            if !answer["next_wake"].is_null() {
                text.push_str(&format!("next wake-up {}\n", when(&answer["next_wake"])));
            }
            if let Some(error) = answer["plan_error"].as_str() {
                text.push_str(&format!("the plan could not be made: {error}\n"));
            }
        }
        Operation::Approve(a) => {
            let record = &answer["approval"];
            text.push_str(&format!(
                "{} ({}) {}s {} into {}\n",
                s(&record["approver"]),
                record["roles"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", "),
                s(&record["decision"]),
                a.sha,
                a.into
            ));
        }
        Operation::Hold(a) => {
            text.push_str(&format!("{} is held by {}: {}\n", a.stage, s(&answer["hold"]["by"]), a.reason))
        }
        Operation::Release(a) => {
            text.push_str(&format!("{} released\n", a.stage));
            text.push_str(&tick_lines(&answer["tick"]));
        }
        Operation::Override(_) | Operation::Rollback(_) | Operation::Retry(_) => {
            text.push_str(&tick_lines(&answer["tick"]));
            if text.is_empty() {
                text.push_str("done\n");
            }
        }
        Operation::Audit(AuditCommand::Verify(_)) => {
            let head = &answer["head"];
            if answer["ok"] == true {
                text.push_str(&format!(
                    "audit log intact: {} records, head {} {}\n",
                    answer["records"],
                    head["seq"],
                    s(&head["hash"])
                ));
            } else {
                text.push_str(&format!("audit log BROKEN: {}\n", s(&answer["break"]["message"])));
            }
        }
        Operation::Audit(AuditCommand::Log(_)) => {
            for r in answer["records"].as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "{:>5} {} {} {} {}: {}\n",
                    r["seq"].as_u64().unwrap_or_default(),
                    when(&r["at"]),
                    s(&r["actor"]),
                    s(&r["action"]),
                    s(&r["subject"]),
                    s(&r["message"])
                ));
            }
        }
    }
    text
}

fn authors(c: &Value) -> String {
    c["authors"].as_array().into_iter().flatten().map(s).collect::<Vec<_>>().join(", ")
}

fn tick_lines(tick: &Value) -> String {
    let mut text = String::new();
    for event in tick["events"].as_array().into_iter().flatten() {
        text.push_str(&format!("{}\n", s(event)));
    }
    for failure in tick["failures"].as_array().into_iter().flatten() {
        text.push_str(&format!("FAILED {}: {}\n", s(&failure["subject"]), s(&failure["error"])));
    }
    text
}
