//! The HTTP side: the router (health, metrics, webhooks) and a listener
//! that bounds how long a client may take to send its headers and body.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use atlas_promote_core::Delivery;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;

use crate::Shared;
use crate::intake::Rejection;

/// `{"error": {"kind", "message"}}` with `status`.
pub(crate) fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": { "kind": kind, "message": message.into() } }))).into_response()
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { axum::Json(json!({ "status": "alive" })) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/webhooks/{source}", post(webhook))
        .merge(crate::operator::routes())
        .merge(crate::page::routes())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such page") })
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.store.get("server/ready").await {
        Ok(_) => axum::Json(json!({ "status": "ready" })).into_response(),
        Err(e) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", format!("the store does not answer: {e}"))
        }
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], shared.metrics.render()).into_response()
}

async fn webhook(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(source) = shared.sources.iter().find(|s| s.name() == name).cloned() else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no webhook source `{name}` is configured"));
    };
    if !shared.accepting.load(Ordering::SeqCst) {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the service is stopping; deliver again later");
    }
    let limit = shared.limits.max_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        shared.metrics.delivery(&name, "too_large");
        return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is over {limit} bytes"));
    }
    let timeout = Duration::from_secs(shared.limits.body_timeout_secs);
    let bytes = match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Err(_) => {
            shared.metrics.delivery(&name, "timeout");
            return error(StatusCode::REQUEST_TIMEOUT, "timeout", "the body did not arrive in time");
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            shared.metrics.delivery(&name, "too_large");
            return error(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("the body is over {limit} bytes"));
        }
        Ok(Err(e)) => {
            shared.metrics.delivery(&name, "unreadable");
            return error(StatusCode::BAD_REQUEST, "unreadable", format!("the body could not be read: {e}"));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let received = match source.receive(&headers, &bytes).await {
        Ok(received) => received,
        Err(rejection) => {
            let (status, kind) = match &rejection {
                Rejection::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
                Rejection::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
                Rejection::Failed(_) => (StatusCode::SERVICE_UNAVAILABLE, "backend_unavailable"),
            };
            shared.metrics.delivery(&name, kind);
            tracing::warn!(source = %name, %kind, reason = %rejection, "webhook delivery refused");
            return error(status, kind, rejection.to_string());
        }
    };
    let now = shared.promoter.now();
    match shared.store.record_delivery(&name, &received.id, now).await {
        Ok(Delivery::Duplicate) => {
            shared.metrics.delivery(&name, "duplicate");
            tracing::info!(source = %name, id = %received.id, event = %received.event, "duplicate delivery dropped");
            (StatusCode::OK, axum::Json(json!({ "outcome": "duplicate", "id": received.id }))).into_response()
        }
        Ok(Delivery::First) => match received.ignored {
            Some(reason) => {
                shared.metrics.delivery(&name, "ignored");
                tracing::info!(source = %name, id = %received.id, event = %received.event, %reason, "delivery not acted on");
                let body = json!({ "outcome": "ignored", "id": received.id, "reason": reason });
                (StatusCode::ACCEPTED, axum::Json(body)).into_response()
            }
            None => {
                shared.metrics.delivery(&name, "accepted");
                tracing::info!(source = %name, id = %received.id, event = %received.event, "delivery accepted");
                shared.enqueue(received.work);
                (StatusCode::ACCEPTED, axum::Json(json!({ "outcome": "accepted", "id": received.id }))).into_response()
            }
        },
        Err(e) => {
            shared.metrics.delivery(&name, "store_unavailable");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                format!("the delivery could not be recorded: {e}"),
            )
        }
    }
}

/// Serve `router` on `listener` until `shutdown` resolves, then let the
/// requests in progress finish (at most `grace`).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors and the like: wait a little.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let service = TowerToHyperService::new(router.clone());
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
}
