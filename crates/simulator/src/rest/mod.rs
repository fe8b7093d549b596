//! REST v10 under `/api/v10` (axum), with Discord's authentication, error bodies and rate
//! limits applied by one middleware, and every call recorded.
//!
//! Handlers are grouped by resource: `meta` (gateway, users, applications, commands),
//! `interactions` (callbacks and webhook-token routes), `channels`, `guilds`.

pub(crate) mod channels;
pub(crate) mod error;
pub(crate) mod guilds;
pub(crate) mod interactions;
pub(crate) mod log;
pub(crate) mod meta;
pub(crate) mod ratelimit;

use std::{sync::Arc, time::Instant};

use axum::{
    Json, Router,
    extract::{MatchedPath, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;

use self::{
    error::ApiError,
    log::RestCall,
    ratelimit::{BucketState, Verdict},
};
use crate::{
    faults::RestAction,
    snowflake::wall_ms,
    state::{Shared, Stats, lock},
};

/// The whole HTTP application: REST, control, and Discord's 404 for anything else.
pub(crate) fn app(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/api/v10/gateway", get(meta::gateway))
        .route("/api/v10/gateway/bot", get(meta::gateway_bot))
        .route("/api/v10/users/@me", get(meta::current_user))
        .route("/api/v10/applications/@me", get(meta::current_application))
        .route(
            "/api/v10/applications/{application_id}/commands",
            get(meta::global_commands).put(meta::set_global_commands),
        )
        .route(
            "/api/v10/applications/{application_id}/guilds/{guild_id}/commands",
            get(meta::guild_commands).put(meta::set_guild_commands),
        )
        .route(
            "/api/v10/interactions/{interaction_id}/{interaction_token}/callback",
            post(interactions::callback),
        )
        .route(
            "/api/v10/webhooks/{webhook_id}/{webhook_token}",
            post(interactions::followup),
        )
        .route(
            "/api/v10/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
            get(interactions::get_message).patch(interactions::edit_message),
        )
        .route("/api/v10/channels/{channel_id}", get(channels::get_channel))
        .route(
            "/api/v10/channels/{channel_id}/messages",
            get(channels::history).post(channels::create_message),
        )
        .route("/api/v10/guilds/{guild_id}", get(guilds::get_guild))
        .route("/api/v10/guilds/{guild_id}/roles", get(guilds::roles))
        .route("/api/v10/guilds/{guild_id}/channels", get(guilds::channels))
        .route(
            "/api/v10/guilds/{guild_id}/threads/active",
            get(guilds::active_threads),
        )
        .route("/api/v10/guilds/{guild_id}/members", get(guilds::members))
        .route(
            "/api/v10/guilds/{guild_id}/members/{user_id}",
            get(guilds::member),
        )
        .route(
            "/api/v10/guilds/{guild_id}/members/{user_id}/roles/{role_id}",
            put(guilds::add_role).delete(guilds::remove_role),
        )
        .fallback(|| async { ApiError::NOT_FOUND })
        .method_not_allowed_fallback(|| async { ApiError::METHOD_NOT_ALLOWED })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            rest_layer,
        ))
        .with_state(Arc::clone(&shared));
    Router::new()
        .nest("/control", crate::control::router(Arc::clone(&shared)))
        .merge(api)
}

/// The part of a path after `/api/v10/`.
fn api_tail(path: &str) -> &str {
    path.strip_prefix("/api/v10/").unwrap_or("")
}

/// Interaction and webhook-token routes need no bot token and skip the global limit.
fn is_token_route(path: &str) -> bool {
    let tail = api_tail(path);
    tail.starts_with("interactions/") || tail.starts_with("webhooks/")
}

/// The major parameter of a request: the channel, guild, webhook or
/// interaction (id and token). Every interaction has buckets of its own, so
/// a bot answering many at once is never limited on their callbacks.
fn major_parameter(path: &str) -> String {
    let mut segments = api_tail(path).split('/');
    match (segments.next(), segments.next()) {
        (Some("channels" | "guilds"), Some(id)) => id.to_owned(),
        (Some("webhooks" | "interactions"), Some(id)) => {
            format!("{id}/{}", segments.next().unwrap_or(""))
        }
        _ => String::new(),
    }
}

/// Authentication, faults, rate limits, headers and the log, around every API request.
async fn rest_layer(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let at = wall_ms();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unknown".to_owned(), |m| m.as_str().to_owned());
    let is_api = path.starts_with("/api/");
    let token_route = is_token_route(&path);
    let major = major_parameter(&path);

    let applied = lock(&shared.rest_faults).take(&method, &path);
    if let Some(delay) = applied.delay {
        tokio::time::sleep(delay).await;
    }
    let expected = format!("Bot {}", shared.config.token);
    let authorized = token_route
        || request
            .headers()
            .get(http::header::AUTHORIZATION)
            .is_some_and(|v| v.as_bytes() == expected.as_bytes());

    let mut response = if route == "unknown" {
        next.run(request).await
    } else if !authorized {
        ApiError::UNAUTHORIZED.into_response()
    } else if let Some(RestAction::ServerError { status }) = applied.error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        let message = format!(
            "{}: {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Server Error")
        );
        (status, Json(json!({"message": message, "code": 0}))).into_response()
    } else if let Some(RestAction::RateLimit {
        retry_after,
        global,
    }) = applied.error
    {
        let state = lock(&shared.ratelimits).peek(&route, &major);
        Stats::bump(&shared.stats.rest_rate_limited);
        too_many_requests(&state, retry_after, global)
    } else {
        let verdict = lock(&shared.ratelimits).check(&route, &major, token_route);
        match verdict {
            Verdict::Allowed(state) => {
                let mut response = next.run(request).await;
                ratelimit_headers(response.headers_mut(), &state);
                response
            }
            Verdict::Limited {
                state,
                retry_after,
                global,
            } => {
                Stats::bump(&shared.stats.rest_rate_limited);
                too_many_requests(&state, retry_after, global)
            }
        }
    };
    if !response.headers().contains_key("x-ratelimit-scope") {
        let state = lock(&shared.ratelimits).peek(&route, &major);
        ratelimit_headers(response.headers_mut(), &state);
    }
    if is_api {
        Stats::bump(&shared.stats.rest_requests);
        let status = response.status().as_u16();
        tracing::debug!(%method, %route, status, "rest request");
        lock(&shared.rest_log).push(RestCall {
            method,
            path,
            route,
            status,
            at,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        });
    }
    response
}

fn header(value: String) -> Option<HeaderValue> {
    HeaderValue::from_str(&value).ok()
}

fn ratelimit_headers(headers: &mut HeaderMap, state: &BucketState) {
    let values = [
        ("x-ratelimit-scope", Some(HeaderValue::from_static("user"))),
        ("x-ratelimit-bucket", header(state.bucket.clone())),
        ("x-ratelimit-limit", header(state.limit.to_string())),
        ("x-ratelimit-remaining", header(state.remaining.to_string())),
        (
            "x-ratelimit-reset",
            header(format!("{:.3}", state.reset_at())),
        ),
        (
            "x-ratelimit-reset-after",
            header(format!("{:.3}", state.reset_after)),
        ),
    ];
    for (name, value) in values {
        if let Some(value) = value {
            headers.insert(name, value);
        }
    }
}

/// A 429 as Discord sends it. Bucket limits report scope `user` with `remaining: 0` and
/// `reset-after` = `retry_after`, which makes twilight wait before retrying; global limits
/// report scope `global` and `x-ratelimit-global: true`.
fn too_many_requests(state: &BucketState, retry_after: f64, global: bool) -> Response {
    let body = json!({
        "message": "You are being rate limited.",
        "retry_after": (retry_after * 1000.0).round() / 1000.0,
        "global": global,
        "code": 0,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response();
    let limited = BucketState {
        remaining: 0,
        reset_after: retry_after,
        ..state.clone()
    };
    let headers = response.headers_mut();
    ratelimit_headers(headers, &limited);
    if let Some(value) = header(format!("{}", retry_after.ceil().max(0.0) as u64)) {
        headers.insert(http::header::RETRY_AFTER, value);
    }
    if global {
        headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
        headers.insert("x-ratelimit-scope", HeaderValue::from_static("global"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::major_parameter;

    #[test]
    fn interactions_and_webhooks_are_their_own_major_parameter() {
        assert_eq!(major_parameter("/api/v10/channels/12/messages"), "12");
        assert_eq!(major_parameter("/api/v10/guilds/34/roles"), "34");
        assert_eq!(
            major_parameter("/api/v10/webhooks/5/tok/messages/@original"),
            "5/tok"
        );
        assert_eq!(
            major_parameter("/api/v10/interactions/6/tok-a/callback"),
            "6/tok-a"
        );
        assert_ne!(
            major_parameter("/api/v10/interactions/6/tok-a/callback"),
            major_parameter("/api/v10/interactions/7/tok-b/callback")
        );
        assert_eq!(major_parameter("/api/v10/users/@me"), "");
    }
}
