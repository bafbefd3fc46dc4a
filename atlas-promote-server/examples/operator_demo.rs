//! The service on in-memory backends, with the seed's flow under way, for
//! trying the status page and the operator commands by hand:
//!
//! ```text
//! cargo run -p atlas-promote-server --example operator_demo -- 127.0.0.1:8080
//! open http://127.0.0.1:8080/
//! ATLAS_TOKEN=demo-dan atlas-promote approve c2 --into staging --server http://127.0.0.1:8080
//! ```
//!
//! alice wrote c1 and c2; dan (developer, dev-team), pat (product-owner)
//! and rita (release-manager, who may override) operate, with the tokens
//! `demo-dan`, `demo-pat` and `demo-rita`. c1 is live in staging, waiting
//! for its nightly checks and the prod approvals; c2 is live in dev,
//! waiting for a developer. Deploys succeed a moment after they start.
//! Nothing is kept: stop it with Ctrl-C.

use std::sync::Arc;

use atlas_promote_core::{
    ApprovalDecision, Candidate, MemoryApprovals, MemoryChecks, MemoryCi, MemorySourceControl, MemoryStore,
    OverrideRule, Policy, Promoter, StaticDirectory, SystemClock,
};
use atlas_promote_server::auth::token_sha256;
use atlas_promote_server::{Operators, Server};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let directory = StaticDirectory::new(Default::default());
    for (person, role) in
        [("dan", "developer"), ("dan", "dev-team"), ("pat", "product-owner"), ("rita", "release-manager")]
    {
        directory.grant(person, role);
    }
    let directory = Arc::new(directory);
    let mut policy = Policy::atlas();
    policy.overrides = Some(OverrideRule { roles: vec!["release-manager".into()] });
    let source_control = MemorySourceControl::new();
    let promoter = Promoter::builder(policy)
        .with_store(Arc::new(MemoryStore::new()))
        .with_ci(Arc::new(MemoryCi::new().with_clock(SystemClock).with_auto_complete(true)))
        .with_checks(Arc::new(MemoryChecks::new()))
        .with_approvals(Arc::new(MemoryApprovals::new()))
        .with_directory(directory.clone())
        .with_source_control(Arc::new(source_control.clone()))
        .build()?;
    let operators = [("dan", "demo-dan"), ("pat", "demo-pat"), ("rita", "demo-rita")]
        .into_iter()
        .try_fold(Operators::new(), |o, (person, token)| o.with_operator(person, &token_sha256(token)))?;

    let settle = async |promoter: &Promoter| -> atlas_promote_core::Result<()> {
        for _ in 0..20 {
            if promoter.tick().await?.is_idle() {
                break;
            }
        }
        Ok(())
    };
    source_control.commit("c1", None, "alice", &["pipelines/etl.py"]);
    promoter.merged(Candidate::trunk("c1", ["alice"]), promoter.now()).await?;
    settle(&promoter).await?;
    promoter.approve("dan", "staging", "c1", ApprovalDecision::Approve).await?;
    settle(&promoter).await?;
    source_control.commit("c2", Some("c1"), "alice", &["src/report.py"]);
    promoter.merged(Candidate::trunk("c2", ["alice"]), promoter.now()).await?;
    settle(&promoter).await?;

    let server = Server::builder(promoter)
        .with_operators(operators)
        .with_directory(directory)
        .with_time_zone("Europe/Berlin".parse()?)
        .with_idle_interval(std::time::Duration::from_secs(2))
        .build();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("serving http://{} (tokens demo-dan, demo-pat, demo-rita)", listener.local_addr()?);
    server.run(listener, atlas_promote_server::shutdown_signal()).await?;
    Ok(())
}
