//! Deploy markers: a line on every graph at the moment something changed, as a Grafana
//! annotation ([`post_grafana`]) or a Honeycomb marker ([`post_honeycomb`]).
//!
//! `guildscope marker` posts one when a deploy starts or ends, so a change in latency or error
//! rate can be read against what was deployed when. Errors name the service, its host and
//! what it answered, never a token or key.

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Serialize;
use serde_json::Value;

/// The `User-Agent` of every request guildscope's telemetry makes.
pub(crate) const USER_AGENT: &str = concat!("guildscope/", env!("CARGO_PKG_VERSION"));

/// Longest piece of a service's error message carried into a [`MarkerError`].
const MAX_MESSAGE: usize = 200;

/// Makes `ring` the process's TLS crypto provider, unless one is installed already.
///
/// The HTTP client is built without a provider of its own, so one must be installed
/// before the first client is built; whichever part of the process gets there first wins.
pub(crate) fn install_crypto_provider() {
    // An error only says a provider is installed already, which is all that is needed.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for posting markers: every request, connecting included, ends after
/// `timeout`.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, MarkerError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|source| MarkerError::Client { source })
}

/// Something that happened at a moment, or over a span of time, worth marking on graphs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// One line saying what happened: `deploy 1a2b3c4 to production`.
    pub text: String,
    /// What kind of thing it is: `deploy`. Becomes a Grafana tag and the Honeycomb type.
    pub kind: String,
    /// A link to more (the build, the commit, the change list).
    pub url: Option<String>,
    /// When it started (or happened).
    pub start: SystemTime,
    /// When it ended, for something that took a while.
    pub end: Option<SystemTime>,
    /// Extra Grafana tags. Honeycomb markers have no tags.
    pub tags: Vec<String>,
}

impl Marker {
    /// A `deploy` marker at this moment, with no link, end or tags.
    pub fn deploy(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            kind: "deploy".to_owned(),
            url: None,
            start: SystemTime::now(),
            end: None,
            tags: Vec::new(),
        }
    }
}

/// A Grafana instance that takes annotations.
#[derive(Clone, PartialEq, Eq)]
pub struct GrafanaTarget {
    /// Grafana's base URL: `http://grafana:3000`.
    pub url: String,
    /// A service account token, sent as `Authorization: Bearer <token>`. Secret.
    pub token: Option<String>,
    /// Put the annotation on this dashboard only; otherwise it is an organization-wide
    /// annotation, shown on every dashboard that asks for its tags.
    pub dashboard_uid: Option<String>,
    /// Tags on every annotation from this target.
    pub tags: Vec<String>,
}

impl fmt::Debug for GrafanaTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrafanaTarget")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("dashboard_uid", &self.dashboard_uid)
            .field("tags", &self.tags)
            .finish()
    }
}

/// A Honeycomb environment or dataset that takes markers.
#[derive(Clone, PartialEq, Eq)]
pub struct HoneycombTarget {
    /// Honeycomb's API base URL: [`HoneycombTarget::DEFAULT_API_URL`] unless the team is
    /// elsewhere (`https://api.eu1.honeycomb.io`).
    pub api_url: String,
    /// The dataset to mark, or `__all__` for every dataset in the environment.
    pub dataset: String,
    /// A configuration key allowed to manage markers, sent as `X-Honeycomb-Team`. Secret.
    pub api_key: String,
}

impl HoneycombTarget {
    /// Honeycomb's API in the US region.
    pub const DEFAULT_API_URL: &str = "https://api.honeycomb.io";

    /// The dataset name that marks every dataset in the environment.
    pub const ALL_DATASETS: &str = "__all__";
}

impl fmt::Debug for HoneycombTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HoneycombTarget")
            .field("api_url", &self.api_url)
            .field("dataset", &self.dataset)
            .field("api_key", &"[redacted]")
            .finish()
    }
}

/// What a service calls the marker it created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MarkerId {
    /// A Grafana annotation id.
    Grafana(u64),
    /// A Honeycomb marker id.
    Honeycomb(String),
}

impl fmt::Display for MarkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Grafana(id) => write!(f, "{id}"),
            Self::Honeycomb(id) => f.write_str(id),
        }
    }
}

/// Everything posting a marker can fail on. No variant carries a token or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarkerError {
    /// The HTTP client could not be built.
    #[error("failed to build the http client for markers")]
    Client {
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The target's URL is not an absolute http(s) URL.
    #[error("invalid {service} url: {reason}")]
    InvalidUrl {
        /// `grafana` or `honeycomb`.
        service: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The request did not get an answer: the host is unknown, refused the connection,
    /// or took too long.
    #[error("failed to reach {service} at {host}: {reason}")]
    Transport {
        /// `grafana` or `honeycomb`.
        service: &'static str,
        /// `host:port` the request went to.
        host: String,
        /// What went wrong, the causes included.
        reason: String,
        /// The underlying error, its URL removed.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with a status other than 2xx.
    #[error("{service} at {host} answered {status}: {message}")]
    Rejected {
        /// `grafana` or `honeycomb`.
        service: &'static str,
        /// `host:port` the request went to.
        host: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
        /// The answer's error message, shortened; `no message` if it had none.
        message: String,
    },
    /// The service answered 2xx without the id of a created marker.
    #[error("{service} at {host} answered {status} without a marker id")]
    NoId {
        /// `grafana` or `honeycomb`.
        service: &'static str,
        /// `host:port` the request went to.
        host: String,
        /// The HTTP status.
        status: reqwest::StatusCode,
    },
}

/// Grafana's `POST /api/annotations` body.
#[derive(Serialize)]
struct GrafanaAnnotation<'a> {
    time: u64,
    #[serde(rename = "timeEnd", skip_serializing_if = "Option::is_none")]
    time_end: Option<u64>,
    tags: Vec<&'a str>,
    text: String,
    #[serde(rename = "dashboardUID", skip_serializing_if = "Option::is_none")]
    dashboard_uid: Option<&'a str>,
}

/// Honeycomb's `POST /1/markers/<dataset>` body.
#[derive(Serialize)]
struct HoneycombMarker<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    start_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
}

/// Posts `marker` as a Grafana annotation (`POST {url}/api/annotations`) and returns its id.
///
/// Tags are the target's, then the marker's, then its kind, each once. The marker's link,
/// if any, is appended to the text (` — <url>`), since annotations have no link field.
pub async fn post_grafana(
    client: &reqwest::Client,
    target: &GrafanaTarget,
    marker: &Marker,
) -> Result<MarkerId, MarkerError> {
    const SERVICE: &str = "grafana";
    let url = endpoint(SERVICE, &target.url, &["api", "annotations"])?;

    let mut seen = HashSet::new();
    let tags = target
        .tags
        .iter()
        .chain(&marker.tags)
        .map(String::as_str)
        .chain([marker.kind.as_str()])
        .filter(|tag| !tag.is_empty() && seen.insert(*tag))
        .collect();
    let text = match &marker.url {
        Some(link) => format!("{} — {link}", marker.text),
        None => marker.text.clone(),
    };
    let body = GrafanaAnnotation {
        time: unix_millis(marker.start),
        time_end: marker.end.map(unix_millis),
        tags,
        text,
        dashboard_uid: target.dashboard_uid.as_deref(),
    };

    let mut request = client
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .json(&body);
    if let Some(token) = &target.token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let secret = target.token.as_deref().unwrap_or_default();
    let (status, answer) = send(SERVICE, &url, request, secret).await?;
    match answer.get("id").and_then(Value::as_u64) {
        Some(id) => Ok(MarkerId::Grafana(id)),
        None => Err(MarkerError::NoId {
            service: SERVICE,
            host: host(&url),
            status,
        }),
    }
}

/// Posts `marker` as a Honeycomb marker (`POST {api_url}/1/markers/{dataset}`) and returns
/// its id. Honeycomb markers carry no tags, so `marker.tags` are not sent.
pub async fn post_honeycomb(
    client: &reqwest::Client,
    target: &HoneycombTarget,
    marker: &Marker,
) -> Result<MarkerId, MarkerError> {
    const SERVICE: &str = "honeycomb";
    if target.dataset.is_empty() {
        return Err(MarkerError::InvalidUrl {
            service: SERVICE,
            reason: format!(
                "the dataset is empty (use {:?} for the whole environment)",
                HoneycombTarget::ALL_DATASETS
            ),
        });
    }
    let url = endpoint(SERVICE, &target.api_url, &["1", "markers", &target.dataset])?;
    let body = HoneycombMarker {
        message: &marker.text,
        kind: &marker.kind,
        start_time: unix_seconds(marker.start),
        end_time: marker.end.map(unix_seconds),
        url: marker.url.as_deref(),
    };
    let request = client
        .post(url.clone())
        .header(ACCEPT, "application/json")
        .header("X-Honeycomb-Team", &target.api_key)
        .json(&body);
    let (status, answer) = send(SERVICE, &url, request, &target.api_key).await?;
    match answer.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => Ok(MarkerId::Honeycomb(id.to_owned())),
        _ => Err(MarkerError::NoId {
            service: SERVICE,
            host: host(&url),
            status,
        }),
    }
}

/// `base` with `segments` appended as path segments, each percent-encoded as needed.
fn endpoint(
    service: &'static str,
    base: &str,
    segments: &[&str],
) -> Result<reqwest::Url, MarkerError> {
    let invalid = |reason: String| MarkerError::InvalidUrl { service, reason };
    let mut url = reqwest::Url::parse(base.trim())
        .map_err(|err| invalid(format!("expected an absolute http(s) url ({err})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "expected an http or https url, got scheme {:?}",
            url.scheme()
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| invalid("expected a url that can have a path".to_owned()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Sends `request` and returns the status and JSON body of a 2xx answer; anything else is
/// an error that carries no trace of `secret`.
async fn send(
    service: &'static str,
    url: &reqwest::Url,
    request: reqwest::RequestBuilder,
    secret: &str,
) -> Result<(reqwest::StatusCode, Value), MarkerError> {
    let response = request.send().await.map_err(|err| {
        let err = err.without_url();
        MarkerError::Transport {
            service,
            host: host(url),
            reason: redact(&error_chain(&err), secret),
            source: err,
        }
    })?;
    let status = response.status();
    // A body that cannot be read or parsed is treated as empty: the status still says
    // what happened, and a 2xx answer without an id is reported as such.
    let body = response.bytes().await.unwrap_or_default();
    let answer: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status.is_success() {
        return Ok((status, answer));
    }
    let message = answer
        .get("message")
        .or_else(|| answer.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            (!text.is_empty() && answer.is_null()).then(|| text.to_owned())
        })
        .unwrap_or_else(|| "no message".to_owned());
    Err(MarkerError::Rejected {
        service,
        host: host(url),
        status,
        message: truncate(&redact(&message, secret), MAX_MESSAGE),
    })
}

/// `text` with every occurrence of `secret` replaced, in case a service echoes it.
pub(crate) fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "[redacted]")
    }
}

/// At most `max` characters of `text` on one line, with `…` when shortened.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

/// An error and its causes on one line: `a: b: c`, each cause once.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `host:port` of a URL, for messages: never a path, query or credentials.
pub(crate) fn host(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port_or_known_default()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "an unnamed host".to_owned(),
    }
}

/// Milliseconds since the Unix epoch; 0 for a time before it.
fn unix_millis(time: SystemTime) -> u64 {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds since the Unix epoch; 0 for a time before it.
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_are_percent_encoded_as_one_segment() {
        let url = endpoint(
            "honeycomb",
            "https://api.honeycomb.io/",
            &["1", "markers", "my data/set"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.honeycomb.io/1/markers/my%20data%2Fset"
        );
    }

    #[test]
    fn a_base_path_is_kept() {
        let url = endpoint(
            "grafana",
            "http://proxy:8080/grafana",
            &["api", "annotations"],
        )
        .unwrap();
        assert_eq!(url.as_str(), "http://proxy:8080/grafana/api/annotations");
    }

    #[test]
    fn a_url_without_http_is_refused() {
        let err = endpoint("grafana", "grafana:3000", &["api"]).unwrap_err();
        assert!(err.to_string().starts_with("invalid grafana url"), "{err}");
    }

    #[test]
    fn truncation_cuts_on_a_character_boundary_and_flattens_lines() {
        assert_eq!(truncate("héllo\nworld", 4), "héll…");
        assert_eq!(truncate("a\nb", 10), "a b");
    }

    #[test]
    fn debug_redacts_secrets() {
        let grafana = GrafanaTarget {
            url: "http://grafana:3000".into(),
            token: Some("glsa_secret".into()),
            dashboard_uid: None,
            tags: vec![],
        };
        let honeycomb = HoneycombTarget {
            api_url: HoneycombTarget::DEFAULT_API_URL.into(),
            dataset: "__all__".into(),
            api_key: "hcaik_secret".into(),
        };
        let text = format!("{grafana:?} {honeycomb:?}");
        assert!(!text.contains("secret"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
