//! Endpoint probes against real sockets: a recording HTTP server, a real OTLP receiver, a
//! fake Sentry, UDP and TCP ports that are open, closed or silent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use guildscope_telemetry::probe;
use guildscope_testkit::http::HttpRecorder;
use guildscope_testkit::otlp::OtlpReceiver;
use guildscope_testkit::sentry::FakeSentry;
use serde_json::json;
use tokio::net::UdpSocket;

const TIMEOUT: Duration = Duration::from_secs(5);
const SECRET: &str = "5ecr3t-header-value";

/// A loopback address nothing listens on (TCP or UDP): bound once, then released.
fn closed_port() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    drop(socket);
    addr
}

fn assert_refused(result: &probe::ProbeResult) {
    assert!(!result.ok, "{result:?}");
    assert_eq!(result.detail, "connection refused");
    assert_eq!(result.latency, None);
}

#[tokio::test]
async fn an_answering_http_endpoint_passes_with_its_status_and_latency() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(200, json!({ "database": "ok" }));
    let headers = [("Authorization".to_owned(), format!("Bearer {SECRET}"))];

    let result =
        probe::http_get(&format!("{}/api/health", recorder.url()), &headers, TIMEOUT).await;

    assert!(result.ok, "{result:?}");
    assert!(
        result.detail.starts_with("answered 200 in "),
        "{}",
        result.detail
    );
    assert!(result.detail.ends_with(" ms"), "{}", result.detail);
    assert!(result.latency.is_some());
    let request = &recorder.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/api/health");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
}

#[tokio::test]
async fn an_http_endpoint_that_refuses_the_credentials_fails_without_showing_them() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(403, json!({ "message": "forbidden" }));
    let headers = [("Authorization".to_owned(), format!("Bearer {SECRET}"))];

    let result = probe::http_get(&recorder.url(), &headers, TIMEOUT).await;

    assert!(!result.ok);
    assert_eq!(result.detail, "rejected the credentials (403)");
}

#[tokio::test]
async fn an_http_server_error_fails_with_its_status() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(503, json!({}));

    let result = probe::http_get(&recorder.url(), &[], TIMEOUT).await;

    assert!(!result.ok);
    assert_eq!(result.detail, "answered 503 Service Unavailable");
    assert!(result.latency.is_some());
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let addr = closed_port();

    assert_refused(&probe::http_get(&format!("http://{addr}/api/health"), &[], TIMEOUT).await);
    assert_refused(&probe::tcp(&addr.to_string(), TIMEOUT).await);
    assert_refused(&probe::otlp(&format!("http://{addr}"), false, &[], TIMEOUT).await);
    assert_refused(&probe::otlp(&format!("http://{addr}"), true, &[], TIMEOUT).await);
    assert_refused(&probe::sentry(&format!("http://k3y@{addr}/42"), TIMEOUT).await);
    assert_refused(&probe::honeycomb_auth(&format!("http://{addr}"), SECRET, TIMEOUT).await);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_after_the_timeout() {
    // Connections complete in the kernel's backlog, but nothing ever reads or answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/health", silent.local_addr().unwrap());

    let result = probe::http_get(&url, &[], Duration::from_millis(300)).await;

    assert!(!result.ok);
    assert_eq!(result.detail, "timed out after 300 ms");
}

#[tokio::test]
async fn a_real_otlp_receiver_answers_over_http_and_grpc() {
    let receiver = OtlpReceiver::start().await.unwrap();

    let http = probe::otlp(&receiver.http_endpoint(), false, &[], TIMEOUT).await;
    assert!(http.ok, "{http:?}");
    assert!(
        http.detail.starts_with("answered 200 in "),
        "{}",
        http.detail
    );
    // The empty export was a valid one, and it carried no spans.
    assert_eq!(receiver.export_requests().http, 1);
    assert!(receiver.spans().is_empty());

    let grpc = probe::otlp(&receiver.grpc_endpoint(), true, &[], TIMEOUT).await;
    assert!(grpc.ok, "{grpc:?}");
    assert!(
        grpc.detail.starts_with("accepts connections"),
        "{}",
        grpc.detail
    );
}

#[tokio::test]
async fn the_otlp_http_probe_posts_an_empty_protobuf_export_with_the_headers() {
    let recorder = HttpRecorder::start().await.unwrap();
    let headers = [("x-honeycomb-team".to_owned(), SECRET.to_owned())];

    let result = probe::otlp(&recorder.url(), false, &headers, TIMEOUT).await;

    assert!(result.ok, "{result:?}");
    let request = &recorder.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/traces");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-protobuf")
    );
    assert_eq!(request.header("x-honeycomb-team"), Some(SECRET));
    assert!(request.body.is_empty());

    // A traces URL is used as it is.
    let traces_url = format!("{}/otlp/v1/traces", recorder.url());
    assert!(probe::otlp(&traces_url, false, &headers, TIMEOUT).await.ok);
    assert_eq!(recorder.requests()[1].path, "/otlp/v1/traces");

    // A signal's resolved URL is used as it is, whatever its path: a
    // signal-specific endpoint need not end in the signal's path.
    let custom = format!("{}/ingest/metrics", recorder.url());
    assert!(probe::otlp_at(&custom, false, &headers, TIMEOUT).await.ok);
    assert_eq!(recorder.requests()[2].path, "/ingest/metrics");
    assert_eq!(
        recorder.requests()[2].header("x-honeycomb-team"),
        Some(SECRET)
    );
}

#[tokio::test]
async fn the_otlp_http_probe_tells_rejected_credentials_and_wrong_paths_apart() {
    let recorder = HttpRecorder::start().await.unwrap();
    let headers = [("authorization".to_owned(), format!("Basic {SECRET}"))];

    recorder.respond_with(401, json!({}));
    let rejected = probe::otlp(&recorder.url(), false, &headers, TIMEOUT).await;
    assert!(!rejected.ok);
    assert_eq!(rejected.detail, "rejected the credentials (401)");

    recorder.respond_with(404, json!({}));
    let missing = probe::otlp(&recorder.url(), false, &headers, TIMEOUT).await;
    assert!(!missing.ok);
    assert_eq!(
        missing.detail,
        "answered 404: no OTLP receiver at /v1/traces"
    );

    // Any other answer below 500 is an OTLP receiver answering (here: not liking the body).
    recorder.respond_with(400, json!({}));
    let answered = probe::otlp(&recorder.url(), false, &headers, TIMEOUT).await;
    assert!(answered.ok, "{answered:?}");
    assert!(
        answered.detail.starts_with("answered 400 in "),
        "{}",
        answered.detail
    );
}

#[tokio::test]
async fn a_grpc_https_endpoint_that_does_not_speak_tls_fails_the_handshake() {
    let recorder = HttpRecorder::start().await.unwrap();
    let url = recorder.url().replace("http://", "https://");

    let result = probe::otlp(&url, true, &[], TIMEOUT).await;

    assert!(!result.ok);
    assert!(
        result.detail.starts_with("TLS handshake failed: "),
        "{}",
        result.detail
    );
}

#[tokio::test]
async fn a_listening_udp_port_gets_one_empty_datagram_and_passes() {
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();

    let result = probe::udp(&addr.to_string(), Duration::from_millis(300)).await;

    assert!(result.ok, "{result:?}");
    assert!(result.detail.contains("no refusal"), "{}", result.detail);
    let mut buf = [0u8; 64];
    let (len, _) = tokio::time::timeout(TIMEOUT, server.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(len, 0, "the probe sent {:?}", &buf[..len]);
}

#[tokio::test]
async fn a_closed_udp_port_is_reported_unreachable() {
    let addr = closed_port();

    let result = probe::udp(&addr.to_string(), TIMEOUT).await;

    assert!(!result.ok, "{result:?}");
    assert!(
        result.detail.starts_with("port unreachable"),
        "{}",
        result.detail
    );
}

#[tokio::test]
async fn honeycomb_auth_accepts_a_valid_key_and_names_the_environment() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(
        200,
        json!({
            "id": "key-id",
            "type": "configuration",
            "team": { "name": "Guild", "slug": "guild" },
            "environment": { "name": "Production", "slug": "production" },
        }),
    );

    let result = probe::honeycomb_auth(&recorder.url(), SECRET, TIMEOUT).await;

    assert!(result.ok, "{result:?}");
    assert!(
        result
            .detail
            .starts_with("key valid for environment production ("),
        "{}",
        result.detail
    );
    let request = &recorder.requests()[0];
    assert_eq!(request.method, "GET");
    assert_eq!(request.path, "/1/auth");
    assert_eq!(request.header("x-honeycomb-team"), Some(SECRET));
}

#[tokio::test]
async fn honeycomb_auth_reports_a_rejected_key_without_showing_it() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(401, json!({ "error": format!("unknown API key {SECRET}") }));

    let result = probe::honeycomb_auth(&recorder.url(), SECRET, TIMEOUT).await;

    assert!(!result.ok);
    assert_eq!(result.detail, "key rejected");
}

#[tokio::test]
async fn the_sentry_probe_reaches_the_host_without_sending_an_event() {
    let sentry = FakeSentry::start().await.unwrap();

    let result = probe::sentry(&sentry.dsn(), TIMEOUT).await;

    assert!(result.ok, "{result:?}");
    assert!(result.detail.starts_with("answered "), "{}", result.detail);
    assert!(!result.detail.contains(sentry.public_key()));
    assert!(sentry.raw_bodies().is_empty());
    assert!(sentry.events().is_empty());
}

#[tokio::test]
async fn a_bad_dsn_fails_the_sentry_probe_without_echoing_it() {
    let result = probe::sentry(&format!("ftp://{SECRET}@sentry.example.com/42"), TIMEOUT).await;

    assert!(!result.ok);
    assert!(
        result.detail.starts_with("not a valid DSN"),
        "{}",
        result.detail
    );
    assert!(!result.detail.contains(SECRET), "{}", result.detail);
}

#[tokio::test]
async fn a_bad_address_is_named_without_trying_to_connect() {
    for address in ["no-port", ":8125", "host:notaport"] {
        let tcp = probe::tcp(address, TIMEOUT).await;
        assert!(!tcp.ok);
        assert_eq!(tcp.detail, "expected host:port");
        let udp = probe::udp(address, TIMEOUT).await;
        assert_eq!(udp, tcp);
    }
}
