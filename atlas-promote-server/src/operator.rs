//! The operator API (DESIGN §9): reads of the environments, promotions and
//! audit log, and the actions people take (approve, hold, release,
//! override, roll back, retry), each attributed to the operator whose
//! bearer token came with it and audited with them.
//!
//! Nobody acts as someone else: a body names no person (a field such as
//! `approver` is refused as unknown), the person is the token's. Roles come
//! from the directory, not from the request. Writes are `POST` and
//! `DELETE` only, identified by the `Authorization` header only (never a
//! cookie), so no link, image or form on another site can make a browser
//! change anything.

use std::sync::Arc;

use atlas_promote_core::{ApprovalDecision, AuditEntry, Error, Tick};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Shared;
use crate::auth::ReadAccess;
use crate::views;

/// A refused or failed request: `{"error": {"kind", "message"}}` with its status.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self { status, kind, message: message.into() }
    }

    /// What went wrong, as a sentence.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }

    fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    fn refused(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "refused", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = crate::http::error(self.status, self.kind, self.message);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::NotFound { .. } => Self::not_found(message),
            Error::Conflict { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", format!("someone changed it first; try again ({message})"))
            }
            Error::Refused { reason } => Self::refused(reason),
            Error::Transition(t) => Self::refused(t.to_string()),
            Error::Invalid { .. } | Error::Gate(_) => Self::unprocessable(message),
            Error::Backend { .. } | Error::Unsupported { .. } => {
                Self::new(StatusCode::BAD_GATEWAY, "backend_failed", message)
            }
            Error::Locked { .. } | Error::Corrupt { .. } | Error::Io { .. } => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", message)
            }
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message),
        }
    }
}

type Answer = Result<Response, ApiError>;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/v1/environments", get(environments))
        .route("/api/v1/environments/{stage}/rollback", post(rollback))
        .route("/api/v1/promotions", get(promotions))
        .route("/api/v1/promotions/{sha}", get(promotion))
        .route("/api/v1/promotions/{sha}/approvals", post(approve))
        .route("/api/v1/promotions/{sha}/overrides", post(override_gate))
        .route("/api/v1/promotions/{sha}/retry", post(retry))
        .route("/api/v1/holds", get(holds).post(hold))
        .route("/api/v1/holds/{stage}", delete(release))
        .route("/api/v1/status", get(status))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/audit/verify", get(verify_audit))
        .route("/api/v1/whoami", get(whoami))
}

/// The operator a write comes from; a failure is logged without the token.
pub(crate) fn operator(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    shared.operators.authenticate(headers).map_err(|why| {
        tracing::warn!(reason = %why, "operator request refused: no known token");
        ApiError::unauthorized(why.to_string())
    })
}

/// Reads pass when they are open, or with an operator's token.
pub(crate) fn reader(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    match shared.operators.reads() {
        ReadAccess::Open => Ok(()),
        ReadAccess::Token => operator(shared, headers).map(drop),
    }
}

/// The body as `T`; a body that is not that JSON is a 400 saying where.
async fn body<T: DeserializeOwned>(shared: &Shared, body: Body) -> Result<T, ApiError> {
    let limit = shared.limits.max_body_bytes;
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the body is over {limit} bytes"),
            ));
        }
        Err(e) => return Err(ApiError::bad_request(format!("the body could not be read: {e}"))),
    };
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { &bytes[..] };
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("the body: {e}")))
}

fn ok(value: impl Serialize) -> Response {
    Json(value).into_response()
}

fn known_stage(shared: &Shared, stage: &str) -> Result<(), ApiError> {
    if shared.promoter.policy().stage(stage).is_none() {
        return Err(ApiError::not_found(format!("policy {} has no stage {stage}", shared.promoter.policy().name)));
    }
    Ok(())
}

fn reason_given(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() {
        return Err(ApiError::unprocessable("a reason is required: say why, for the audit log"));
    }
    Ok(())
}

/// Append `entry` to the audit log (for refusals the API makes itself).
async fn audit_entry(
    shared: &Shared,
    person: &str,
    action: &str,
    subject: &str,
    message: String,
) -> Result<(), ApiError> {
    let entry = AuditEntry {
        at: shared.promoter.now(),
        actor: person.into(),
        action: action.into(),
        subject: subject.into(),
        message,
    };
    shared.store.commit(Vec::new(), vec![entry]).await?;
    Ok(())
}

/// What an action set off, for the response.
#[derive(Debug, Serialize)]
struct TickView {
    /// The audit messages of what happened, in order.
    events: Vec<String>,
    decisions: Vec<atlas_promote_core::Decision>,
    failures: Vec<serde_json::Value>,
    next_wake: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<&Tick> for TickView {
    fn from(tick: &Tick) -> Self {
        Self {
            events: tick
                .actions
                .iter()
                .filter_map(|a| match a {
                    atlas_promote_core::Action::Audit(e) => Some(e.message.clone()),
                    _ => None,
                })
                .collect(),
            decisions: tick.decisions.clone(),
            failures: tick
                .failures
                .iter()
                .map(|(subject, e)| json!({ "subject": subject, "error": e.to_string() }))
                .collect(),
            next_wake: tick.next_wake,
        }
    }
}

async fn whoami(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Answer {
    let person = operator(&shared, &headers)?;
    let roles = shared.directory.roles(&person).await?;
    Ok(ok(json!({ "person": person, "roles": roles })))
}

async fn environments(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Answer {
    reader(&shared, &headers)?;
    Ok(ok(json!({ "environments": views::environments(&shared).await? })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromotionsQuery {
    #[serde(default)]
    state: Option<String>,
}

async fn promotions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<PromotionsQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    reader(&shared, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let all = match query.state.as_deref() {
        None | Some("active") => false,
        Some("all") => true,
        Some(other) => return Err(ApiError::bad_request(format!("state={other}: expected active or all"))),
    };
    Ok(ok(json!({ "promotions": views::promotions(&shared, all).await? })))
}

async fn promotion(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(sha): Path<String>) -> Answer {
    reader(&shared, &headers)?;
    Ok(ok(views::promotion(&shared, &sha).await?))
}

/// The board in one answer: the environments, the active candidates with
/// their live decisions and plans, the holds.
async fn status(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Answer {
    reader(&shared, &headers)?;
    let holds = holds_json(&shared).await?;
    Ok(ok(json!({
        "policy": shared.promoter.policy().name,
        "at": shared.promoter.now(),
        "environments": views::environments(&shared).await?,
        "candidates": views::candidates(&shared).await?,
        "holds": holds,
    })))
}

/// The holds as `[{stage, by, reason, at}]`.
async fn holds_json(shared: &Shared) -> Result<Vec<serde_json::Value>, ApiError> {
    Ok(views::holds(shared)
        .await?
        .into_iter()
        .map(|(stage, hold)| json!({ "stage": stage, "by": hold.by, "reason": hold.reason, "at": hold.at }))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyQuery {
    #[serde(default)]
    expect_head: Option<String>,
}

/// Walk the whole audit log's hash chain; with `expect_head`, the log must
/// also reach the record with that hash (a head written down elsewhere
/// earlier: records appended since are fine, a log cut or rewritten before
/// it is not).
async fn verify_audit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<VerifyQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    reader(&shared, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let records = shared.store.audit(0).await?;
    let head = atlas_promote_core::AuditHead::of(records.last());
    let empty = atlas_promote_core::AuditHead::empty();
    let key = shared.chain_key.as_ref();
    let mut problem = atlas_promote_core::audit::verify_from_keyed(&empty, &records, &empty, key)
        .err()
        .map(|b| (Some(b.seq), b.to_string()));
    if problem.is_none()
        && let Some(expected) = query.expect_head.as_deref().map(str::trim)
        && !records.iter().any(|r| r.hash.eq_ignore_ascii_case(expected))
    {
        let why = format!(
            "the log does not reach the expected head {expected}: it ends at record {} ({}); \
             records were removed from the end, or the log was rewritten",
            head.seq, head.hash
        );
        problem = Some((None, why));
    }
    let body = match problem {
        None => json!({ "ok": true, "records": records.len(), "head": head }),
        Some((seq, message)) => {
            json!({ "ok": false, "records": records.len(), "head": head, "break": { "seq": seq, "message": message } })
        }
    };
    Ok(ok(body))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    limit: Option<usize>,
}

async fn audit(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    reader(&shared, &headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut records = shared.store.audit(query.after).await?;
    if let Some(limit) = query.limit {
        records.truncate(limit);
    }
    Ok(ok(json!({ "records": records })))
}

async fn holds(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Answer {
    reader(&shared, &headers)?;
    let holds = holds_json(&shared).await?;
    Ok(ok(json!({ "holds": holds })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    stage: String,
    decision: ApprovalDecision,
    #[serde(default)]
    comment: Option<String>,
}

async fn approve(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(sha): Path<String>, raw: Body) -> Answer {
    let person = operator(&shared, &headers)?;
    let request: ApprovalBody = body(&shared, raw).await?;
    let promoter = &shared.promoter;
    if promoter.policy().stage(&request.stage).is_none() {
        return Err(ApiError::unprocessable(format!(
            "policy {} has no stage {}",
            promoter.policy().name,
            request.stage
        )));
    }
    let authored = promoter.promotion(&sha).await?.value.promotion.candidate.is_author(&person);
    let outcome = match promoter.approve(&person, &request.stage, &sha, request.decision).await {
        Ok(outcome) => outcome,
        // The engine refuses (and audits) a self-approval the policy forbids.
        Err(Error::Refused { reason }) if authored && request.decision == ApprovalDecision::Approve => {
            tracing::info!(%person, %sha, stage = %request.stage, "self-approval refused");
            return Err(ApiError::forbidden(reason));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(comment) = request.comment.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        let message = format!("{person} on their {} of {sha} into {}: {comment}", request.decision, request.stage);
        audit_entry(&shared, &person, "approval.comment", &sha, message).await?;
    }
    tracing::info!(%person, %sha, stage = %request.stage, decision = %request.decision, "approval recorded");
    shared.nudge.notify_one();
    let body = json!({
        "approval": outcome.record(),
        "counts": outcome.counts(),
        "not_counting_because": outcome.not_counting_because(),
        "comment": request.comment,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    stage: String,
    reason: String,
}

async fn hold(State(shared): State<Arc<Shared>>, headers: HeaderMap, raw: Body) -> Answer {
    let person = operator(&shared, &headers)?;
    let request: HoldBody = body(&shared, raw).await?;
    known_stage(&shared, &request.stage)?;
    reason_given(&request.reason)?;
    shared.promoter.hold(&request.stage, &person, request.reason.trim()).await?;
    tracing::info!(%person, stage = %request.stage, "line stopped");
    let hold = shared.promoter.held(&request.stage).await?;
    Ok((StatusCode::CREATED, Json(json!({ "stage": request.stage, "hold": hold }))).into_response())
}

async fn release(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(stage): Path<String>) -> Answer {
    let person = operator(&shared, &headers)?;
    known_stage(&shared, &stage)?;
    if shared.promoter.held(&stage).await?.is_none() {
        return Err(ApiError::not_found(format!("{stage} is not held")));
    }
    let tick = shared.promoter.release(&stage, &person).await?;
    tracing::info!(%person, %stage, "hold released");
    shared.nudge.notify_one();
    Ok(ok(json!({ "stage": stage, "released": true, "tick": TickView::from(&tick) })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    stage: String,
    bypass: Vec<String>,
    reason: String,
}

async fn override_gate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(sha): Path<String>,
    raw: Body,
) -> Answer {
    let person = operator(&shared, &headers)?;
    let request: OverrideBody = body(&shared, raw).await?;
    let promoter = &shared.promoter;
    reason_given(&request.reason)?;
    if request.bypass.is_empty() {
        return Err(ApiError::unprocessable("name the blocker kinds to bypass (e.g. window_closed)"));
    }
    let roles = shared.directory.roles(&person).await?;
    let permitted = promoter.policy().overrides.as_ref().map(|o| o.roles.clone()).unwrap_or_default();
    if !permitted.iter().any(|r| roles.contains(r)) {
        let why = match permitted.is_empty() {
            true => format!("{person} may not override: policy {} permits no overrides", promoter.policy().name),
            false => format!(
                "{person} may not override: the policy permits holders of {} and {person} holds {}",
                permitted.join(", "),
                if roles.is_empty() { "no role".to_owned() } else { roles.join(", ") }
            ),
        };
        audit_entry(&shared, &person, "override.refused", &sha, why.clone()).await?;
        tracing::info!(%person, %sha, "override refused: no permitted role");
        return Err(ApiError::forbidden(why));
    }
    let plan = promoter.plan(&sha).await?;
    let next = plan.steps.first().filter(|s| s.decision.is_some());
    match next {
        Some(step) if step.to == request.stage => {}
        Some(step) => {
            return Err(ApiError::refused(format!(
                "{sha} waits on the gate {} → {}, not on one into {}",
                step.from, step.to, request.stage
            )));
        }
        None => return Err(ApiError::refused(format!("{sha} is {}: it waits on no gate", plan.state))),
    }
    let bypass: Vec<&str> = request.bypass.iter().map(String::as_str).collect();
    let tick = promoter.override_gate(&sha, &person, &bypass, request.reason.trim()).await?;
    tracing::info!(%person, %sha, stage = %request.stage, "override granted");
    shared.nudge.notify_one();
    Ok(ok(json!({ "sha": sha, "stage": request.stage, "tick": TickView::from(&tick) })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    reason: String,
}

async fn rollback(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(stage): Path<String>,
    raw: Body,
) -> Answer {
    let person = operator(&shared, &headers)?;
    let request: RollbackBody = body(&shared, raw).await?;
    known_stage(&shared, &stage)?;
    if !shared.promoter.policy().stage(&stage).is_some_and(|s| s.is_environment()) {
        return Err(ApiError::unprocessable(format!("{stage} is not an environment: nothing is deployed there")));
    }
    reason_given(&request.reason)?;
    let tick = shared.promoter.rollback(&stage, &person, request.reason.trim()).await?;
    tracing::info!(%person, %stage, "rollback started");
    shared.nudge.notify_one();
    Ok(ok(json!({ "stage": stage, "tick": TickView::from(&tick) })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetryBody {
    #[serde(default)]
    stage: Option<String>,
}

async fn retry(State(shared): State<Arc<Shared>>, headers: HeaderMap, Path(sha): Path<String>, raw: Body) -> Answer {
    let person = operator(&shared, &headers)?;
    let request: RetryBody = body(&shared, raw).await?;
    let record = shared.promoter.promotion(&sha).await?;
    let failed = match &record.value.promotion.state {
        atlas_promote_core::State::Failed { stage, .. } => stage.clone(),
        other => return Err(ApiError::refused(format!("{sha} is {other}: only a failed deploy is retried"))),
    };
    if let Some(stage) = request.stage.filter(|s| *s != failed) {
        return Err(ApiError::refused(format!("{sha} failed in {failed}, not in {stage}")));
    }
    let tick = shared.promoter.retry(&sha, &failed, &person).await?;
    tracing::info!(%person, %sha, stage = %failed, "retry started");
    shared.nudge.notify_one();
    Ok(ok(json!({ "sha": sha, "stage": failed, "tick": TickView::from(&tick) })))
}
