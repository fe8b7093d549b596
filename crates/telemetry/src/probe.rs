//! Does an exporter's endpoint answer? One probe per kind of endpoint, for
//! `guildscope check-config`, which prints one line per exporter: what it is, where it
//! points, and the [`ProbeResult`] of its probe.
//!
//! A probe never sends telemetry a backend would keep: an empty OTLP export, a request for
//! Grafana's health, Honeycomb's key check, an HTTP request that is not an event for
//! Sentry, an empty UDP datagram for StatsD. Its [`detail`](ProbeResult::detail) names
//! what happened and never contains a header value, key, token or DSN.

use std::io;
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{StatusCode, Url};
use sentry::types::Dsn;
use tokio::net::{TcpStream, UdpSocket};

use crate::markers::{USER_AGENT, error_chain, install_crypto_provider};

/// Longest a UDP probe waits for a refusal before it concludes there was none.
const UDP_REFUSAL_WAIT: Duration = Duration::from_secs(1);

/// What a refused TCP connection is called.
const TCP_REFUSED: &str = "connection refused";

/// What an ICMP "port unreachable" for a UDP datagram is called.
const UDP_REFUSED: &str = "port unreachable (nothing listens there)";

/// The path of the OTLP/HTTP traces endpoint, appended to a base endpoint URL.
const OTLP_TRACES_PATH: &str = "v1/traces";

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    /// Whether the endpoint answered the way a working exporter needs.
    pub ok: bool,
    /// One short phrase: `answered 200 in 3 ms`, `connection refused`,
    /// `timed out after 2 s`. Never a secret.
    pub detail: String,
    /// How long the endpoint took to answer, when it did.
    pub latency: Option<Duration>,
}

impl ProbeResult {
    fn ok(detail: impl Into<String>, latency: Duration) -> Self {
        Self {
            ok: true,
            detail: detail.into(),
            latency: Some(latency),
        }
    }

    fn failed(detail: impl Into<String>, latency: Option<Duration>) -> Self {
        Self {
            ok: false,
            detail: detail.into(),
            latency,
        }
    }
}

/// Probes an OTLP traces endpoint as the exporter would use it.
///
/// Over HTTP (`grpc` false) it posts an empty `ExportTraceServiceRequest` (an empty body is
/// a valid empty protobuf message) with `content-type: application/x-protobuf` and
/// `headers` to the traces URL: `endpoint_url` itself when its path ends in `/v1/traces`,
/// otherwise `endpoint_url` with `/v1/traces` appended, as OpenTelemetry's exporters do
/// with a base endpoint. Any answer below 500 except 404 means an OTLP receiver answered;
/// 401 and 403 mean it rejected the credentials, which fails the probe.
///
/// Over gRPC it connects to the endpoint's host and port and, for `https`, completes a
/// TLS handshake (offering `h2`). The handshake does not check the server's certificate:
/// it shows the endpoint speaks TLS, and nothing is sent over it. The headers are not used.
pub async fn otlp(
    endpoint_url: &str,
    grpc: bool,
    headers: &[(String, String)],
    timeout: Duration,
) -> ProbeResult {
    otlp_signal(endpoint_url, Some(OTLP_TRACES_PATH), grpc, headers, timeout).await
}

/// Probes an OTLP endpoint of any signal as its exporter uses it: as [`otlp`] does,
/// with an empty export request, but posted over HTTP to `url` itself, the signal's full
/// URL as resolved from the configuration (a base URL has its signal's path appended
/// already; a signal-specific one is used as is, whatever its path).
pub async fn otlp_at(
    url: &str,
    grpc: bool,
    headers: &[(String, String)],
    timeout: Duration,
) -> ProbeResult {
    otlp_signal(url, None, grpc, headers, timeout).await
}

/// Probes `endpoint_url`, over HTTP with `path` appended unless it ends with it already.
async fn otlp_signal(
    endpoint_url: &str,
    path: Option<&str>,
    grpc: bool,
    headers: &[(String, String)],
    timeout: Duration,
) -> ProbeResult {
    let url = match parse_http_url(endpoint_url) {
        Ok(url) => url,
        Err(result) => return result,
    };
    if grpc {
        return grpc_connect(&url, timeout).await;
    }

    let url = match path {
        Some(path) => signal_url(url, path),
        None => url,
    };
    let client = match client(timeout) {
        Ok(client) => client,
        Err(result) => return result,
    };
    let headers = match header_map(headers) {
        Ok(headers) => headers,
        Err(result) => return result,
    };
    let request = client
        .post(url.clone())
        .headers(headers)
        .header(CONTENT_TYPE, "application/x-protobuf")
        .body(Vec::new());
    let start = Instant::now();
    match request.send().await {
        Ok(response) => {
            let latency = start.elapsed();
            let status = response.status();
            match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProbeResult::failed(
                    format!("rejected the credentials ({})", status.as_u16()),
                    Some(latency),
                ),
                StatusCode::NOT_FOUND => ProbeResult::failed(
                    format!("answered 404: no OTLP receiver at {}", url.path()),
                    Some(latency),
                ),
                status if status.is_server_error() => {
                    ProbeResult::failed(format!("answered {}", status_text(status)), Some(latency))
                }
                status => ProbeResult::ok(answered(status, latency), latency),
            }
        }
        Err(err) => request_failed(err, timeout),
    }
}

/// Probes an HTTP endpoint with `GET url` and `headers`: a 2xx answer passes, 401 and 403
/// mean the credentials were rejected. For Grafana, pass `{url}/api/health`.
/// Redirects are not followed: the first answer is the one reported.
pub async fn http_get(url: &str, headers: &[(String, String)], timeout: Duration) -> ProbeResult {
    let url = match parse_http_url(url) {
        Ok(url) => url,
        Err(result) => return result,
    };
    let client = match client(timeout) {
        Ok(client) => client,
        Err(result) => return result,
    };
    let headers = match header_map(headers) {
        Ok(headers) => headers,
        Err(result) => return result,
    };
    let start = Instant::now();
    match client.get(url).headers(headers).send().await {
        Ok(response) => {
            let latency = start.elapsed();
            let status = response.status();
            if status.is_success() {
                ProbeResult::ok(answered(status, latency), latency)
            } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                ProbeResult::failed(
                    format!("rejected the credentials ({})", status.as_u16()),
                    Some(latency),
                )
            } else {
                ProbeResult::failed(format!("answered {}", status_text(status)), Some(latency))
            }
        }
        Err(err) => request_failed(err, timeout),
    }
}

/// Checks a Honeycomb API key with `GET {api_url}/1/auth`: 200 means the key is valid
/// (`key valid`, with the environment's name when Honeycomb gives it), 401 `key rejected`.
pub async fn honeycomb_auth(api_url: &str, api_key: &str, timeout: Duration) -> ProbeResult {
    let mut url = match parse_http_url(api_url) {
        Ok(url) => url,
        Err(result) => return result,
    };
    match url.path_segments_mut() {
        Ok(mut segments) => {
            segments.pop_if_empty().extend(["1", "auth"]);
        }
        Err(()) => return ProbeResult::failed("not an http(s) url", None),
    }
    let client = match client(timeout) {
        Ok(client) => client,
        Err(result) => return result,
    };
    let Ok(key) = HeaderValue::from_str(api_key) else {
        return ProbeResult::failed("the API key is not a valid header value", None);
    };
    let start = Instant::now();
    match client.get(url).header("X-Honeycomb-Team", key).send().await {
        Ok(response) => {
            let latency = start.elapsed();
            match response.status() {
                StatusCode::OK => {
                    let body: serde_json::Value = response.json().await.unwrap_or_default();
                    let environment = body
                        .pointer("/environment/slug")
                        .and_then(serde_json::Value::as_str)
                        .filter(|slug| !slug.is_empty());
                    let detail = match environment {
                        Some(slug) => format!("key valid for environment {slug} ({})", ms(latency)),
                        None => format!("key valid ({})", ms(latency)),
                    };
                    ProbeResult::ok(detail, latency)
                }
                StatusCode::UNAUTHORIZED => ProbeResult::failed("key rejected", Some(latency)),
                status => {
                    ProbeResult::failed(format!("answered {}", status_text(status)), Some(latency))
                }
            }
        }
        Err(err) => request_failed(err, timeout),
    }
}

/// Checks that the host in a Sentry DSN answers HTTP at all (any status passes) with a
/// `GET` of its root, which sends no event and no key.
pub async fn sentry(dsn: &str, timeout: Duration) -> ProbeResult {
    // The parser's messages are fixed phrases; they never repeat the DSN.
    let dsn = match Dsn::from_str(dsn.trim()) {
        Ok(dsn) => dsn,
        Err(err) => return ProbeResult::failed(format!("not a valid DSN ({err})"), None),
    };
    let text = format!("{}://{}:{}/", dsn.scheme(), dsn.host(), dsn.port());
    let url = match Url::parse(&text) {
        Ok(url) => url,
        Err(_) => return ProbeResult::failed("the DSN's host is not a valid host name", None),
    };
    let client = match client(timeout) {
        Ok(client) => client,
        Err(result) => return result,
    };
    let start = Instant::now();
    match client.get(url).send().await {
        Ok(response) => {
            let latency = start.elapsed();
            ProbeResult::ok(answered(response.status(), latency), latency)
        }
        Err(err) => request_failed(err, timeout),
    }
}

/// Checks a UDP endpoint such as a StatsD server at `address` (`host:port`).
///
/// It sends one empty datagram from a connected socket. StatsD servers split datagrams
/// into lines and skip empty ones, so nothing is recorded. If nothing listens, the host
/// answers with an ICMP "port unreachable", which the connected socket reports on the
/// next receive or send: the probe waits up to a second (or `timeout`, if shorter) and
/// then sends a second empty datagram to collect it. Without a refusal the probe passes,
/// though UDP cannot prove a server is there: a firewall may drop datagrams silently.
pub async fn udp(address: &str, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let addr = match resolve(address, timeout).await {
        Ok(addr) => addr,
        Err(result) => return result,
    };
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = match UdpSocket::bind(local).await {
        Ok(socket) => socket,
        Err(err) => {
            return ProbeResult::failed(format!("could not open a udp socket: {err}"), None);
        }
    };
    if let Err(err) = socket.connect(addr).await {
        return io_failed(&err, timeout, UDP_REFUSED);
    }
    if let Err(err) = socket.send(&[]).await {
        return io_failed(&err, timeout, UDP_REFUSED);
    }
    let wait = UDP_REFUSAL_WAIT.min(timeout);
    let mut buf = [0u8; 512];
    match tokio::time::timeout(wait, socket.recv(&mut buf)).await {
        Ok(Err(err)) => return io_failed(&err, timeout, UDP_REFUSED),
        Ok(Ok(_)) => {
            let latency = start.elapsed();
            return ProbeResult::ok(format!("answered a datagram in {}", ms(latency)), latency);
        }
        Err(_) => {}
    }
    if let Err(err) = socket.send(&[]).await {
        return io_failed(&err, timeout, UDP_REFUSED);
    }
    ProbeResult::ok(
        format!(
            "took datagrams; no refusal within {} (UDP cannot confirm a listener)",
            seconds(wait)
        ),
        start.elapsed(),
    )
}

/// Checks that `address` (`host:port`) accepts TCP connections.
pub async fn tcp(address: &str, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let addr = match resolve(address, timeout).await {
        Ok(addr) => addr,
        Err(result) => return result,
    };
    let remaining = timeout.saturating_sub(start.elapsed());
    match tokio::time::timeout(remaining, TcpStream::connect(addr)).await {
        Ok(Ok(_stream)) => {
            let latency = start.elapsed();
            ProbeResult::ok(format!("accepts connections ({})", ms(latency)), latency)
        }
        Ok(Err(err)) => io_failed(&err, timeout, TCP_REFUSED),
        Err(_) => timed_out(timeout),
    }
}

/// A gRPC endpoint: a TCP connection, then a TLS handshake for `https`.
async fn grpc_connect(url: &Url, timeout: Duration) -> ProbeResult {
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return ProbeResult::failed("the url names no host", None);
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if url.scheme() == "http" {
        return tcp(&join_host_port(&host, port), timeout).await;
    }
    // rustls runs on a blocking socket here, so the whole handshake runs on a blocking
    // thread; each socket operation stops at the deadline, and so does the wait for it.
    let handshake = tokio::task::spawn_blocking(move || tls_handshake(&host, port, timeout));
    match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => ProbeResult::failed("the TLS probe stopped unexpectedly", None),
        Err(_) => timed_out(timeout),
    }
}

fn tls_handshake(host: &str, port: u16, timeout: Duration) -> ProbeResult {
    let start = Instant::now();
    let addrs = match (host, port).to_socket_addrs() {
        Ok(addrs) => addrs.collect::<Vec<_>>(),
        Err(_) => return ProbeResult::failed(format!("could not resolve {host}"), None),
    };
    let Some(addr) = addrs.first().copied() else {
        return ProbeResult::failed(format!("{host} resolved to no address"), None);
    };
    let mut stream = match StdTcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => stream,
        Err(err) => return io_failed(&err, timeout, TCP_REFUSED),
    };
    let remaining = timeout
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(1));
    if stream.set_read_timeout(Some(remaining)).is_err()
        || stream.set_write_timeout(Some(remaining)).is_err()
    {
        return ProbeResult::failed("could not set socket timeouts", None);
    }

    install_crypto_provider();
    let Some(provider) = rustls::crypto::CryptoProvider::get_default() else {
        return ProbeResult::failed("no TLS crypto provider is installed", None);
    };
    let verifier = Arc::new(HandshakeOnly {
        algorithms: provider.signature_verification_algorithms,
    });
    let config = match rustls::ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
    {
        Ok(builder) => builder,
        Err(err) => return ProbeResult::failed(format!("TLS setup failed: {err}"), None),
    };
    let mut config = config
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let server_name = match rustls::pki_types::ServerName::try_from(host.to_owned()) {
        Ok(name) => name,
        Err(_) => {
            return ProbeResult::failed(format!("{host} is not a valid TLS server name"), None);
        }
    };
    let mut connection = match rustls::ClientConnection::new(Arc::new(config), server_name) {
        Ok(connection) => connection,
        Err(err) => return ProbeResult::failed(format!("TLS setup failed: {err}"), None),
    };
    while connection.is_handshaking() {
        if let Err(err) = connection.complete_io(&mut stream) {
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) {
                return timed_out(timeout);
            }
            return ProbeResult::failed(format!("TLS handshake failed: {err}"), None);
        }
    }
    let latency = start.elapsed();
    ProbeResult::ok(
        format!(
            "accepts TLS connections ({}; certificate not checked by this probe)",
            ms(latency)
        ),
        latency,
    )
}

/// A certificate verifier for a handshake that only shows a server speaks TLS.
///
/// It accepts any certificate chain but still checks the handshake signatures, so the
/// server must hold the key of the certificate it presents. Nothing is sent over the
/// connection it makes, so a wrong server learns nothing.
#[derive(Debug)]
struct HandshakeOnly {
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for HandshakeOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// An HTTP client for one probe: no redirects, everything within `timeout`.
fn client(timeout: Duration) -> Result<reqwest::Client, ProbeResult> {
    install_crypto_provider();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(USER_AGENT)
        .build()
        .map_err(|err| {
            ProbeResult::failed(
                format!(
                    "could not build an http client: {}",
                    error_chain(&err.without_url())
                ),
                None,
            )
        })
}

/// Parses an absolute http(s) URL; the failure names no part of it.
fn parse_http_url(text: &str) -> Result<Url, ProbeResult> {
    match Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        Ok(_) => Err(ProbeResult::failed("not an http(s) url with a host", None)),
        Err(err) => Err(ProbeResult::failed(
            format!("not a valid url ({err})"),
            None,
        )),
    }
}

/// The OTLP/HTTP traces URL for an endpoint URL.
fn signal_url(mut url: Url, path: &str) -> Url {
    if url
        .path()
        .trim_end_matches('/')
        .strip_suffix(path)
        .is_some_and(|rest| rest.ends_with('/'))
    {
        return url;
    }
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().extend(path.split('/'));
    }
    url
}

/// The headers to send; a bad one is named, its value never shown.
fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, ProbeResult> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let Ok(header) = HeaderName::from_bytes(name.trim().as_bytes()) else {
            return Err(ProbeResult::failed(
                format!("header name {name:?} is not valid"),
                None,
            ));
        };
        let Ok(mut value) = HeaderValue::from_str(value.trim()) else {
            return Err(ProbeResult::failed(
                format!("the value of header {header} is not valid"),
                None,
            ));
        };
        value.set_sensitive(true);
        map.append(header, value);
    }
    Ok(map)
}

/// Resolves `host:port` to its first address within `timeout`.
async fn resolve(address: &str, timeout: Duration) -> Result<SocketAddr, ProbeResult> {
    if let Ok(addr) = address.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(ProbeResult::failed("expected host:port", None));
    };
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(ProbeResult::failed("expected host:port", None));
    }
    match tokio::time::timeout(timeout, tokio::net::lookup_host(address)).await {
        Ok(Ok(mut addrs)) => addrs
            .next()
            .ok_or_else(|| ProbeResult::failed(format!("{host} resolved to no address"), None)),
        Ok(Err(_)) => Err(ProbeResult::failed(
            format!("could not resolve {host}"),
            None,
        )),
        Err(_) => Err(timed_out(timeout)),
    }
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A failed request, in a phrase: refused, timed out, unresolved, or the error's causes
/// (never the URL, which may carry credentials).
fn request_failed(err: reqwest::Error, timeout: Duration) -> ProbeResult {
    if err.is_timeout() {
        return timed_out(timeout);
    }
    let err = err.without_url();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => {
                    return ProbeResult::failed(TCP_REFUSED, None);
                }
                io::ErrorKind::TimedOut => return timed_out(timeout),
                _ => {}
            }
        }
        source = cause.source();
    }
    let chain = error_chain(&err);
    let detail = if chain.contains("dns error") {
        "could not resolve the host name".to_owned()
    } else {
        chain
    };
    ProbeResult::failed(detail, None)
}

/// A failed socket operation, in a phrase; `refused` is what a refusal is called.
fn io_failed(err: &io::Error, timeout: Duration, refused: &str) -> ProbeResult {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => ProbeResult::failed(refused, None),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => timed_out(timeout),
        _ => ProbeResult::failed(err.to_string(), None),
    }
}

fn timed_out(timeout: Duration) -> ProbeResult {
    ProbeResult::failed(format!("timed out after {}", seconds(timeout)), None)
}

fn answered(status: StatusCode, latency: Duration) -> String {
    format!("answered {} in {}", status.as_u16(), ms(latency))
}

/// `503 Service Unavailable`, or just the number for a status with no name.
fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// `3 ms`, `<1 ms`.
fn ms(duration: Duration) -> String {
    match duration.as_millis() {
        0 => "<1 ms".to_owned(),
        n => format!("{n} ms"),
    }
}

/// `2 s`, `1.5 s`, `500 ms`.
fn seconds(duration: Duration) -> String {
    if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_endpoint_gets_the_signal_path() {
        let url = |text: &str| signal_url(Url::parse(text).unwrap(), OTLP_TRACES_PATH).to_string();
        assert_eq!(url("http://otel:4318"), "http://otel:4318/v1/traces");
        assert_eq!(
            url("http://otel:4318/otlp/"),
            "http://otel:4318/otlp/v1/traces"
        );
        assert_eq!(
            url("http://otel:4318/v1/traces"),
            "http://otel:4318/v1/traces"
        );
        // A path that only ends like the signal's is a base like any other.
        assert_eq!(
            url("http://otel:4318/av1/traces"),
            "http://otel:4318/av1/traces/v1/traces"
        );
    }

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(seconds(Duration::from_secs(2)), "2 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(500)), "500 ms");
        assert_eq!(ms(Duration::from_micros(300)), "<1 ms");
        assert_eq!(ms(Duration::from_millis(3)), "3 ms");
    }

    #[test]
    fn a_bad_header_value_is_named_but_not_shown() {
        let headers = [("x-api-key".to_owned(), "sec\nret".to_owned())];
        let err = header_map(&headers).unwrap_err();
        assert!(err.detail.contains("x-api-key"), "{}", err.detail);
        assert!(!err.detail.contains("sec"), "{}", err.detail);
    }
}
