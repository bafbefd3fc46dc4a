//! The status page: server-rendered HTML that works without JavaScript and
//! reads without CSS (DESIGN §9, issue 14 item 3).
//!
//! `GET /` is the board: each environment with what is live there, since
//! when, and what is on its way in; every active candidate with its state,
//! its blockers in the decision's own sentences, its next wake-up and its
//! plan; the holds; the recent audit trail. `GET /promotions/{sha}` is one
//! candidate with its whole timeline. Times carry the year, in the page's
//! zone (the policy's, see [`crate::ServerBuilder::with_time_zone`]) with
//! UTC beside.

use std::sync::Arc;

use atlas_promote_core::chrono_tz::Tz;
use atlas_promote_core::{AuditRecord, Decision, Plan, Verdict};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::Shared;
use crate::views::{self, CandidateView, CommitView, EnvironmentView, PromotionDetail};

/// How many audit records the board shows.
const BOARD_AUDIT: usize = 25;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/", get(board)).route("/promotions/{sha}", get(candidate))
}

/// The page's clock and zone.
#[derive(Clone, Copy)]
struct Clock {
    now: DateTime<Utc>,
    zone: Tz,
}

impl Clock {
    fn of(shared: &Shared) -> Self {
        Self { now: shared.promoter.now(), zone: shared.zone }
    }

    /// `Tue 5 May 2026, 10:02 CEST (08:02 UTC)` in a `<time>`, with how long ago or ahead.
    fn at(&self, t: DateTime<Utc>) -> Markup {
        let local = t.with_timezone(&self.zone);
        let shown = local.format("%a %-d %b %Y, %H:%M %Z").to_string();
        let utc = if self.zone == Tz::UTC {
            None
        } else if local.date_naive() == t.date_naive() {
            Some(t.format("%H:%M UTC").to_string())
        } else {
            Some(t.format("%-d %b %Y %H:%M UTC").to_string())
        };
        html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {
                (shown)
                @if let Some(utc) = utc { " " span.utc { "(" (utc) ")" } }
            }
            " " span.ago { (relative(t, self.now)) }
        }
    }
}

/// `3 h ago`, `in 20 min`, `just now`.
fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - t).num_seconds();
    let (ahead, secs) = (secs < 0, secs.unsigned_abs());
    let span = match secs {
        0..60 => return "just now".into(),
        60..3600 => format!("{} min", secs / 60),
        3600..172_800 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    };
    if ahead { format!("in {span}") } else { format!("{span} ago") }
}

const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5d6678; --line:#dde1e8; --bg:#f6f7f9; --card:#fff; --link:#1f5fbf;
  --ok:#1d7a46; --ok-bg:#e6f4ec; --wait:#8a5a00; --wait-bg:#fdf3dc; --block:#b3261e; --block-bg:#fbe9e7; }
@media (prefers-color-scheme: dark) {
  :root { --fg:#e6e8ee; --muted:#9aa3b5; --line:#2e3442; --bg:#14171e; --card:#1b1f28; --link:#7fb0ff;
    --ok:#6fd39b; --ok-bg:#163526; --wait:#f0c36a; --wait-bg:#3a2e12; --block:#ff8a80; --block-bg:#3d1a18; } }
* { box-sizing: border-box; }
body { margin:0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
  color:var(--fg); background:var(--bg); }
header.top { padding: 1.2rem 2rem 0.8rem; border-bottom:1px solid var(--line); background:var(--card); }
header.top h1 { margin:0; font-size:1.35rem; letter-spacing:-0.01em; }
header.top h1 a { color:inherit; text-decoration:none; }
header.top p { margin:0.25rem 0 0; color:var(--muted); }
main { padding: 1rem 2rem 3rem; max-width: 78rem; }
h2 { font-size:1.05rem; text-transform:uppercase; letter-spacing:0.06em; color:var(--muted); margin:2rem 0 0.75rem; }
h3 { margin:0 0 0.4rem; font-size:1.1rem; }
a { color:var(--link); }
code, .sha { font-family: ui-monospace, "SF Mono", Menlo, Consolas, monospace; font-size:0.93em; }
.board { display:grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap:0.9rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:0.9rem 1.1rem; }
.card.held { border-color: var(--block); }
dl { margin:0; display:grid; grid-template-columns: max-content 1fr; gap:0.2rem 0.8rem; }
dt { color:var(--muted); }
dd { margin:0; }
.utc, .ago, .muted, .meta { color:var(--muted); }
.ago { font-size:0.9em; }
.pill { display:inline-block; padding:0.05rem 0.55rem; border-radius:99px; font-size:0.85em; font-weight:600; }
.allow { color:var(--ok); background:var(--ok-bg); }
.wait { color:var(--wait); background:var(--wait-bg); }
.block { color:var(--block); background:var(--block-bg); }
.candidates { display:grid; gap:0.9rem; }
ul.blockers, ul.warnings { margin:0.4rem 0; padding-left:1.2rem; }
ul.blockers li { margin:0.15rem 0; }
ul.warnings li { color:var(--muted); }
ol.plan { margin:0.3rem 0 0; padding-left:1.3rem; }
ol.plan ul { padding-left:1.1rem; margin:0.1rem 0 0.3rem; }
table { border-collapse:collapse; width:100%; background:var(--card); border:1px solid var(--line); border-radius:10px; overflow:hidden; }
caption { text-align:left; color:var(--muted); padding:0 0 0.4rem; }
th, td { text-align:left; padding:0.45rem 0.7rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:0.9em; }
tr:last-child td { border-bottom:none; }
td.when { white-space:nowrap; }
ol.timeline { list-style:none; padding:0; margin:0; border-left:2px solid var(--line); }
ol.timeline li { position:relative; padding:0.15rem 0 0.7rem 1.1rem; }
ol.timeline li::before { content:""; position:absolute; left:-6px; top:0.55rem; width:10px; height:10px; border-radius:50%;
  background:var(--card); border:2px solid var(--link); }
h2.title { text-transform:none; letter-spacing:0; color:var(--fg); font-size:1.3rem; }
.card a.sha { font-weight:600; font-size:1.05em; }
.message { white-space: pre-line; }
footer { padding: 0 2rem 2rem; color:var(--muted); font-size:0.9em; }
"#;

fn layout(shared: &Shared, title: &str, refresh: bool, body: Markup) -> Markup {
    let clock = Clock::of(shared);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if refresh { meta http-equiv="refresh" content="60"; }
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header.top {
                    h1 { a href="/" { "atlas-promote" } " · " span.muted { "policy " (shared.promoter.policy().name) } }
                    p {
                        "As of " (clock.at(clock.now)) ". "
                        @if clock.zone == Tz::UTC { "Times in UTC." } @else { "Times in " (clock.zone.name()) ", UTC beside." }
                    }
                }
                main { (body) }
                footer {
                    "The same, as JSON: "
                    a href="/api/v1/environments" { "environments" } ", "
                    a href="/api/v1/promotions" { "promotions" } ", "
                    a href="/api/v1/audit" { "audit" } "."
                }
            }
        }
    }
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A page saying what went wrong; the message is the API's (never a token).
fn failure(shared: &Shared, status: StatusCode, message: &str) -> Response {
    let body = html! {
        section aria-labelledby="problem" {
            h2 #problem { (status.canonical_reason().unwrap_or("Error")) }
            p { (message) }
            p { a href="/" { "Back to the board" } }
        }
    };
    page(status, layout(shared, "atlas-promote", false, body))
}

fn commit_link(sha: &str) -> Markup {
    html! { a.sha href={ "/promotions/" (sha) } { (sha) } }
}

fn verdict_class(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allow",
        Verdict::Wait { .. } => "wait",
        Verdict::Block => "block",
    }
}

fn verdict_word(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Allow => "allowed",
        Verdict::Wait { .. } => "waiting",
        Verdict::Block => "blocked",
    }
}

fn environment(clock: Clock, env: &EnvironmentView) -> Markup {
    let commit = |c: &CommitView| {
        html! {
            (commit_link(&c.sha))
            @if let Some(since) = c.since { br; span.muted { "since " } (clock.at(since)) }
        }
    };
    html! {
        article.card.held[env.hold.is_some()] aria-labelledby={ "env-" (env.stage) (env.branch.as_deref().unwrap_or("")) } {
            h3 id={ "env-" (env.stage) (env.branch.as_deref().unwrap_or("")) } {
                (env.stage)
                @if let Some(branch) = &env.branch { " " span.muted { "(" (branch) ")" } }
                @if env.ephemeral { " " span.pill.wait { "ephemeral" } }
            }
            dl {
                dt { "Live" }
                dd { @match &env.live { Some(c) => (commit(c)), None => span.muted { "nothing yet" } } }
                dt { "In flight" }
                dd {
                    @match &env.in_flight {
                        Some(c) => { (commit_link(&c.sha)) " " span.muted { (c.state) } }
                        None => span.muted { "nothing" },
                    }
                }
                @if let Some(hold) = &env.hold {
                    dt { "Held" }
                    dd { span.pill.block { "held" } " by " (hold.by) ": " (hold.reason) br; span.muted { "since " } (clock.at(hold.at)) }
                }
            }
        }
    }
}

fn decision(clock: Clock, decision: &Decision) -> Markup {
    html! {
        p {
            strong { (decision.from) " → " (decision.to) } ": "
            span class={ "pill " (verdict_class(&decision.verdict)) } { (verdict_word(&decision.verdict)) }
            @if let Some(until) = decision.until() { " until " (clock.at(until)) }
        }
        @if !decision.blockers.is_empty() {
            ul.blockers aria-label="Blockers" { @for b in &decision.blockers { li { (b.to_string()) } } }
        }
        @if !decision.warnings.is_empty() {
            ul.warnings aria-label="Warnings" { @for w in &decision.warnings { li { (w.to_string()) } } }
        }
    }
}

/// The steps ahead; a step whose live decision is shown above says only its verdict.
fn plan(plan: &Plan, skip_first: bool) -> Markup {
    let steps = plan.steps.iter().skip(usize::from(skip_first));
    html! {
        @if plan.steps.len() > usize::from(skip_first) {
            ol.plan {
                @for step in steps {
                    li {
                        strong { (step.from) " → " (step.to) }
                        @if let Some(d) = &step.decision {
                            ": " span class={ "pill " (verdict_class(&d.verdict)) } { (verdict_word(&d.verdict)) }
                            span.muted { " (the live decision, above)" }
                        }
                        @else if step.needs.is_empty() { span.muted { ": nothing in the way" } }
                        @else { ul { @for need in &step.needs { li { (need) } } } }
                    }
                }
            }
        } @else {
            p.muted { "Nothing is ahead." }
        }
    }
}

fn candidate_card(clock: Clock, c: &CandidateView) -> Markup {
    let p = &c.promotion;
    html! {
        article.card aria-labelledby={ "cand-" (p.sha) } {
            h3 id={ "cand-" (p.sha) } { (commit_link(&p.sha)) " " span.muted { (p.state) } }
            p.meta {
                "by " (p.authors.join(", ")) " · "
                @match &p.branch { Some(b) => { "branch " (b) }, None => "trunk" }
            }
            @if let Some(d) = &c.decision { (decision(clock, d)) }
            @else if let Some(step) = c.plan.as_ref().and_then(|p| p.steps.first()) {
                p { strong { (step.from) " → " (step.to) } ": " @for need in &step.needs { (need) } }
            }
            @if let Some(wake) = c.next_wake { p { "Next wake-up: " (clock.at(wake)) } }
            @if let Some(error) = &c.plan_error { p.block { "The plan could not be made: " (error) } }
            @if let Some(pl) = &c.plan {
                @if pl.steps.len() > 1 {
                    details {
                        summary { "Plan: " (pl.steps.len() - 1) " more gate" @if pl.steps.len() != 2 { "s" } " to go" }
                        (plan(pl, true))
                    }
                }
            }
        }
    }
}

fn audit_table(clock: Clock, records: &[AuditRecord], caption: &str) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { "#" } th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Subject" } th scope="col" { "Details" } } }
            tbody {
                @for r in records.iter().rev() {
                    tr {
                        td { (r.seq) }
                        td.when { (clock.at(r.entry.at)) }
                        td { (r.entry.actor) }
                        td { code { (r.entry.action) } }
                        td { (r.entry.subject) }
                        td.message { (r.entry.message) }
                    }
                }
            }
        }
    }
}

async fn board(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Err(e) = crate::operator::reader(&shared, &headers) {
        return failure(&shared, StatusCode::UNAUTHORIZED, e.message());
    }
    let read = async {
        Ok::<_, atlas_promote_core::Error>((
            views::environments(&shared).await?,
            views::candidates(&shared).await?,
            views::holds(&shared).await?,
            views::recent_audit(&shared, BOARD_AUDIT).await?,
        ))
    };
    let (environments, candidates, holds, audit) = match read.await {
        Ok(all) => all,
        Err(e) => return failure(&shared, StatusCode::SERVICE_UNAVAILABLE, &format!("the store did not answer: {e}")),
    };
    let clock = Clock::of(&shared);
    let body = html! {
        section aria-labelledby="environments" {
            h2 #environments { "Environments" }
            div.board { @for env in &environments { (environment(clock, env)) } }
        }
        section aria-labelledby="candidates" {
            h2 #candidates { "Candidates" }
            @if candidates.is_empty() { p.muted { "No candidate is on its way." } }
            div.candidates { @for c in &candidates { (candidate_card(clock, c)) } }
        }
        section aria-labelledby="holds" {
            h2 #holds { "Holds" }
            @if holds.is_empty() { p.muted { "No environment is held." } }
            @else {
                ul { @for (stage, hold) in &holds { li { strong { (stage) } " held by " (hold.by) " since " (clock.at(hold.at)) ": " (hold.reason) } } }
            }
        }
        section aria-labelledby="audit" {
            h2 #audit { "Recent audit trail" }
            (audit_table(clock, &audit, "Newest first."))
        }
    };
    page(StatusCode::OK, layout(&shared, "atlas-promote · release status", true, body))
}

async fn candidate(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(sha): Path<String>) -> Response {
    if let Err(e) = crate::operator::reader(&shared, &headers) {
        return failure(&shared, StatusCode::UNAUTHORIZED, e.message());
    }
    let detail: PromotionDetail = match views::promotion(&shared, &sha).await {
        Ok(detail) => detail,
        Err(atlas_promote_core::Error::NotFound { .. }) => {
            return failure(&shared, StatusCode::NOT_FOUND, &format!("atlas-promote knows no candidate {sha}."));
        }
        Err(e) => return failure(&shared, StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let clock = Clock::of(&shared);
    let p = &detail.promotion;
    let body = html! {
        section aria-labelledby="candidate" {
            h2 #candidate .title { "Candidate " span.sha { (p.sha) } }
            div.card {
                dl {
                    dt { "State" } dd { (p.state) }
                    dt { "Origin" } dd { @match &p.branch { Some(b) => { "branch " (b) }, None => "trunk" } }
                    dt { "Authors" } dd { (p.authors.join(", ")) }
                    @if let Some(wake) = detail.next_wake { dt { "Next wake-up" } dd { (clock.at(wake)) } }
                }
                @if let Some(d) = &detail.decision { (decision(clock, d)) }
                @if let Some(error) = &detail.plan_error { p.block { "The plan could not be made: " (error) } }
            }
        }
        @if let Some(pl) = &detail.plan {
            section aria-labelledby="plan" {
                h2 #plan { "Plan" }
                div.card { (plan(pl, false)) }
            }
        }
        section aria-labelledby="timeline" {
            h2 #timeline { "Timeline" }
            @if detail.timeline.is_empty() { p.muted { "Nothing recorded yet." } }
            ol.timeline {
                @for r in &detail.timeline {
                    li {
                        (clock.at(r.entry.at)) br;
                        strong { (r.entry.actor) } " " code { (r.entry.action) } " — " span.message { (r.entry.message) }
                    }
                }
            }
        }
        p { a href="/" { "← Back to the board" } }
    };
    page(StatusCode::OK, layout(&shared, &format!("{} · atlas-promote", p.sha), false, body))
}
