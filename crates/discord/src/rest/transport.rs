//! Sending one REST request: the HTTP client, the rate limiter in front of
//! it, and the retries a 429 asks for.
//!
//! twilight-http builds and validates each request (path, JSON body, audit
//! log reason); this module sends it. That keeps every wait on a rate limit
//! measurable and every retry paced by Discord's `retry_after`, and keeps
//! request paths, which hold interaction and webhook tokens, out of spans,
//! logs and errors.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use guildscope_trace::{Span, Value};
use http::{
    HeaderValue, Method, Request, StatusCode, Uri,
    header::{AUTHORIZATION, CONTENT_TYPE, USER_AGENT},
};
use http_body_util::{BodyExt, Full, Limited as LimitedBody};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Deserialize;

use super::{
    error::RestError,
    ratelimit::{Headers, Limited, RateLimiter, Scope},
};

/// Discord's REST API version.
const API_VERSION: u8 = 10;

/// How long one attempt may take, from connecting to the end of the body.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest response body read; Discord's are far smaller.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How many times a request is sent again after a 429 before the 429 is
/// returned.
const MAX_RESENDS: u32 = 5;

/// The wait after a 429 that says nothing about how long to wait.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What happened to one call, for its span and the observer.
#[derive(Debug, Default)]
pub(crate) struct Exchange {
    /// Whether a request went out at least once.
    pub(crate) sent: bool,
    /// The status of the last response.
    pub(crate) status: Option<u16>,
    /// The bucket the last response named.
    pub(crate) bucket: Option<Arc<str>>,
    /// Time spent waiting on rate limits, 429 retries included.
    pub(crate) waited: Duration,
    /// How many times the request was sent again after a 429.
    pub(crate) resends: u32,
}

/// Sends requests to one API base.
pub(crate) struct Transport {
    /// The HTTP client (HTTP/1.1 with a connection pool; TLS for `https`).
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// `{scheme}://{host}/api/v10`.
    base: String,
    /// `Bot <token>`, marked sensitive so no HTTP layer prints it.
    authorization: HeaderValue,
    /// Set once Discord rejected the token: later requests that need it
    /// fail without being sent, as Discord asks of clients.
    token_rejected: AtomicBool,
    /// The limiter every request goes through.
    limiter: RateLimiter,
}

/// A Discord error body (or the part of it that is read).
#[derive(Debug, Deserialize)]
struct ErrorBody {
    /// Discord's JSON error code.
    code: Option<u64>,
    /// Discord's message.
    message: Option<String>,
    /// Seconds to wait, on a 429.
    retry_after: Option<f64>,
    /// Whether a 429 is the global limit.
    global: Option<bool>,
}

impl Transport {
    /// A transport for `api_base` (`http://host:port`, `https://host`, or a
    /// bare host meaning `https`; Discord itself when `None`).
    pub(crate) fn new(api_base: Option<&str>, token: &str) -> Result<Self, &'static str> {
        let base = match api_base.map(|base| base.trim_end_matches('/')) {
            None => "https://discord.com".to_owned(),
            Some(base) if base.starts_with("http://") || base.starts_with("https://") => {
                base.to_owned()
            }
            Some(host) => format!("https://{host}"),
        };
        let base = format!("{base}/api/v{API_VERSION}");
        base.parse::<Uri>()
            .map_err(|_| "the api base is not a valid url")?;
        let token = token.trim();
        let token = if token.starts_with("Bot ") || token.starts_with("Bearer ") {
            token.to_owned()
        } else {
            format!("Bot {token}")
        };
        let mut authorization =
            HeaderValue::from_str(&token).map_err(|_| "the token is not a valid header value")?;
        authorization.set_sensitive(true);
        // Without TCP_NODELAY, a request written in more than one segment
        // waits for the server's delayed ACK (up to 40 ms on Linux) before
        // its last part leaves: Nagle's algorithm. Every answer to a
        // command is such a request.
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            base,
            authorization,
            token_rejected: AtomicBool::new(false),
            limiter: RateLimiter::default(),
        })
    }

    /// Sends `request` on `route`, waiting on rate limits and retrying after
    /// a 429, and returns the body of a successful response. `exchange`
    /// collects what happened; waits are children of `span`, and each 429
    /// sent again is an event on it.
    pub(crate) async fn send(
        &self,
        route: &'static str,
        request: twilight_http::request::Request,
        span: &mut Span,
        exchange: &mut Exchange,
    ) -> Result<Bytes, RestError> {
        let authorized = request.use_authorization_token();
        if authorized && self.token_rejected.load(Ordering::Relaxed) {
            return Err(RestError::Unauthorized { route });
        }
        let prepared = self.prepare(route, &request)?;
        let key = self.limiter.key(route, request.path());
        loop {
            let (ticket, waited) = self.limiter.acquire(key, authorized, span.context()).await;
            exchange.waited += waited;
            exchange.sent = true;
            let attempt = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
                let response = self.http.request(prepared.build()?).await?;
                let (parts, body) = response.into_parts();
                let body = LimitedBody::new(body, MAX_BODY_BYTES)
                    .collect()
                    .await?
                    .to_bytes();
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>((parts, body))
            })
            .await;
            // A failed attempt drops its ticket, which gives its place back.
            let (parts, body) = match attempt {
                Ok(Ok(answer)) => answer,
                Ok(Err(source)) => return Err(RestError::Transport { route, source }),
                Err(_) => {
                    return Err(RestError::Transport {
                        route,
                        source: "no complete response within 10 s".into(),
                    });
                }
            };
            let status = parts.status;
            let headers = Headers::parse(&parts.headers);
            exchange.status = Some(status.as_u16());
            if headers.bucket.is_some() {
                exchange.bucket.clone_from(&headers.bucket);
            }
            if status.is_success() {
                self.limiter.complete(ticket, &headers, None);
                return Ok(body);
            }
            let error: Option<ErrorBody> = serde_json::from_slice(&body).ok();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let limited = limited(&headers, error.as_ref());
                self.limiter.complete(ticket, &headers, Some(limited));
                if exchange.resends < MAX_RESENDS {
                    exchange.resends += 1;
                    let retry_after_ms = super::ratelimit::millis(limited.retry_after);
                    span.add_event(
                        "rate limited by discord; sending again after the wait",
                        [
                            ("scope", Value::from(limited.scope.as_str())),
                            ("retry_after_ms", Value::from(retry_after_ms)),
                        ],
                    );
                    tracing::debug!(
                        route,
                        scope = limited.scope.as_str(),
                        retry_after_ms,
                        "rate limited by discord; sending again after the wait"
                    );
                    continue;
                }
            } else {
                self.limiter.complete(ticket, &headers, None);
            }
            if status == StatusCode::UNAUTHORIZED {
                if authorized {
                    self.token_rejected.store(true, Ordering::Relaxed);
                }
                return Err(RestError::Unauthorized { route });
            }
            let (code, message) = error.map_or((None, None), |error| (error.code, error.message));
            return Err(RestError::Status {
                route,
                status: status.as_u16(),
                code,
                message,
            });
        }
    }

    /// The parts of the HTTP request that do not change between attempts.
    fn prepare(
        &self,
        route: &'static str,
        request: &twilight_http::request::Request,
    ) -> Result<Prepared, RestError> {
        let invalid = |reason| RestError::Invalid { route, reason };
        let uri = format!("{}/{}", self.base, request.path())
            .parse::<Uri>()
            .map_err(|_| invalid("the request path is not a valid url"))?;
        let method = Method::from_bytes(request.method().name().as_bytes())
            .map_err(|_| invalid("the request method is not valid"))?;
        let mut headers = http::HeaderMap::new();
        headers.insert(USER_AGENT, user_agent());
        if request.use_authorization_token() {
            headers.insert(AUTHORIZATION, self.authorization.clone());
        }
        let body = if let Some(form) = request.form() {
            let content_type = HeaderValue::from_bytes(&form.content_type())
                .map_err(|_| invalid("the multipart content type is not valid"))?;
            headers.insert(CONTENT_TYPE, content_type);
            Bytes::from(form.clone().build())
        } else if let Some(body) = request.body() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            Bytes::copy_from_slice(body)
        } else {
            Bytes::new()
        };
        // The audit log reason, when a request has one.
        if let Some(extra) = request.headers() {
            for (name, value) in extra {
                headers.insert(name.clone(), value.clone());
            }
        }
        Ok(Prepared {
            method,
            uri,
            headers,
            body,
        })
    }
}

/// A request ready to be sent, as often as needed.
struct Prepared {
    /// Its method.
    method: Method,
    /// Its full URL.
    uri: Uri,
    /// Its headers.
    headers: http::HeaderMap,
    /// Its body (empty when it has none).
    body: Bytes,
}

impl Prepared {
    /// The HTTP request for one attempt.
    fn build(&self) -> Result<Request<Full<Bytes>>, http::Error> {
        let mut request = Request::builder()
            .method(self.method.clone())
            .uri(self.uri.clone())
            .body(Full::new(self.body.clone()))?;
        *request.headers_mut() = self.headers.clone();
        Ok(request)
    }
}

/// The `User-Agent` Discord asks bots to send.
fn user_agent() -> HeaderValue {
    HeaderValue::from_static(concat!(
        "DiscordBot (",
        env!("CARGO_PKG_REPOSITORY"),
        ", ",
        env!("CARGO_PKG_VERSION"),
        ")"
    ))
}

/// What a 429 limits and for how long: the body's `retry_after` (the most
/// precise), else `x-ratelimit-reset-after`, else `Retry-After`.
fn limited(headers: &Headers, body: Option<&ErrorBody>) -> Limited {
    let global = body.and_then(|body| body.global).unwrap_or(false);
    let scope = match headers.scope {
        Some(scope) => scope,
        None if global => Scope::Global,
        None => Scope::User,
    };
    let retry_after = body
        .and_then(|body| body.retry_after)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .or(headers.reset_after)
        .or(headers.retry_after)
        .unwrap_or(DEFAULT_RETRY_AFTER);
    Limited { scope, retry_after }
}
