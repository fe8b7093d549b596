#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The Prometheus endpoint over real TCP: scrapes show the work done, the bearer token
//! guards every route but `/healthz`, readiness follows `set_ready`, and a taken address
//! is a clear error.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use guildscope_telemetry::metrics::{
    BuildInfo, CONTENT_TYPE, GuildGauges, Metrics, MetricsError, Outcome, PrometheusConfig,
    PrometheusServer,
};
use reqwest::StatusCode;

const TOKEN: &str = "s3cr3t-t0ken";

fn registry() -> Arc<Metrics> {
    Arc::new(Metrics::new(
        BuildInfo {
            version: "0.1.0".to_owned(),
            git_sha: "abc".to_owned(),
        },
        None,
    ))
}

fn local(bearer_token: Option<&str>) -> PrometheusConfig {
    PrometheusConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        bearer_token: bearer_token.map(str::to_owned),
    }
}

fn client() -> reqwest::Client {
    // reqwest is built without a bundled TLS provider; these tests speak plain HTTP, but
    // building a client still asks for one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn url(server: &PrometheusServer, path: &str) -> String {
    format!("http://{}{path}", server.local_addr())
}

/// The value of the one sample whose line starts with `series ` in `text`.
fn value(text: &str, series: &str) -> String {
    let prefix = format!("{series} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .to_owned()
}

#[tokio::test]
async fn a_scrape_shows_exactly_the_work_done() {
    let metrics = registry();
    let server = PrometheusServer::start(local(None), Arc::clone(&metrics))
        .await
        .unwrap();
    for _ in 0..3 {
        metrics.command("ping", Outcome::Ok, Duration::from_millis(2));
    }
    metrics.command("ping", Outcome::Error, Duration::from_millis(30));
    for _ in 0..5 {
        metrics.gateway_event("MESSAGE_CREATE");
        metrics.message(None);
    }
    metrics.rest_request("GET /gateway/bot", Some(200), Duration::ZERO);
    metrics.guild(
        7,
        GuildGauges {
            members: 42,
            channels: 6,
            help_threads_in_use: 1,
        },
    );
    let client = client();

    let response = client.get(url(&server, "/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        CONTENT_TYPE
    );
    let text = response.text().await.unwrap();
    let expected = [
        (
            "guildscope_commands_total{command=\"ping\",outcome=\"ok\"}",
            "3",
        ),
        (
            "guildscope_commands_total{command=\"ping\",outcome=\"error\"}",
            "1",
        ),
        (
            "guildscope_command_duration_seconds_count{command=\"ping\"}",
            "4",
        ),
        (
            "guildscope_command_duration_seconds_sum{command=\"ping\"}",
            "0.036",
        ),
        (
            "guildscope_gateway_events_total{event=\"MESSAGE_CREATE\"}",
            "5",
        ),
        ("guildscope_messages_total", "5"),
        (
            "guildscope_rest_requests_total{route=\"GET /gateway/bot\",status=\"200\"}",
            "1",
        ),
        ("guildscope_guild_members{guild=\"7\"}", "42"),
        ("guildscope_guild_channels{guild=\"7\"}", "6"),
        ("guildscope_help_threads_in_use{guild=\"7\"}", "1"),
        ("guildscope_metrics_scrapes_total", "1"),
    ];
    for (series, expected) in expected {
        assert_eq!(value(&text, series), expected, "{series}");
    }

    // Each scrape is counted, and sees updates made since the last one.
    metrics.message(None);
    let text = client
        .get(url(&server, "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(value(&text, "guildscope_metrics_scrapes_total"), "2");
    assert_eq!(value(&text, "guildscope_messages_total"), "6");

    server.shutdown().await;
}

#[tokio::test]
async fn with_a_token_every_route_but_healthz_needs_it() {
    let server = PrometheusServer::start(local(Some(TOKEN)), registry())
        .await
        .unwrap();
    let client = client();

    let wrong = [
        None,
        Some(format!("Bearer {TOKEN}x")),
        Some("Bearer s3cr3t".to_owned()),
        Some("Bearer ".to_owned()),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
    ];
    for path in ["/metrics", "/readyz"] {
        for authorization in &wrong {
            let mut request = client.get(url(&server, path));
            if let Some(authorization) = authorization {
                request = request.header(reqwest::header::AUTHORIZATION, authorization);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{path} with {authorization:?}"
            );
            assert_eq!(
                response.headers()[reqwest::header::WWW_AUTHENTICATE],
                "Bearer"
            );
            // The body never echoes the token back.
            assert!(!response.text().await.unwrap().contains(TOKEN));
        }
    }

    for authorization in [format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")] {
        let response = client
            .get(url(&server, "/metrics"))
            .header(reqwest::header::AUTHORIZATION, &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{authorization}");
        let text = response.text().await.unwrap();
        assert!(text.contains("guildscope_build_info"));
    }

    let response = client.get(url(&server, "/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");

    server.shutdown().await;
}

#[tokio::test]
async fn readyz_follows_set_ready() {
    let server = PrometheusServer::start(local(Some(TOKEN)), registry())
        .await
        .unwrap();
    let client = client();
    let readyz = || {
        client
            .get(url(&server, "/readyz"))
            .bearer_auth(TOKEN)
            .send()
    };

    assert_eq!(
        readyz().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    server.set_ready(true);
    assert_eq!(readyz().await.unwrap().status(), StatusCode::OK);
    server.set_ready(false);
    assert_eq!(
        readyz().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    // Health does not depend on readiness.
    let response = client.get(url(&server, "/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    server.shutdown().await;
}

#[tokio::test]
async fn an_address_in_use_is_an_error_naming_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let config = PrometheusConfig {
        listen: addr,
        bearer_token: None,
    };
    let error = PrometheusServer::start(config, registry())
        .await
        .unwrap_err();
    assert!(
        matches!(error, MetricsError::Bind { addr: got, .. } if got == addr),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        format!("failed to bind the prometheus endpoint to {addr}")
    );
    let source = std::error::Error::source(&error).unwrap().to_string();
    assert!(source.to_lowercase().contains("in use"), "{source}");
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let server = PrometheusServer::start(local(None), registry())
        .await
        .unwrap();
    let addr: SocketAddr = server.local_addr();
    let response = client().get(url(&server, "/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    server.shutdown().await;
    assert!(TcpStream::connect(addr).is_err());
}

#[tokio::test]
async fn an_empty_or_unusable_token_is_refused_at_start() {
    for token in ["", "two words", "tab\there"] {
        let error = PrometheusServer::start(local(Some(token)), registry())
            .await
            .unwrap_err();
        assert!(
            matches!(
                error,
                MetricsError::InvalidConfig {
                    field: "bearer_token",
                    ..
                }
            ),
            "{error:?}"
        );
    }
}

#[test]
fn config_debug_redacts_the_token_and_toml_uses_defaults() {
    let config: PrometheusConfig = toml::from_str(&format!("bearer_token = \"{TOKEN}\"")).unwrap();
    assert_eq!(
        config.listen,
        "127.0.0.1:9464".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.bearer_token.as_deref(), Some(TOKEN));
    let debug = format!("{config:?}");
    assert!(!debug.contains(TOKEN), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");

    assert_eq!(
        toml::from_str::<PrometheusConfig>("").unwrap(),
        PrometheusConfig::default()
    );
    let unknown = toml::from_str::<PrometheusConfig>("listen_on = \"0.0.0.0:9464\"");
    assert!(unknown.unwrap_err().to_string().contains("listen_on"));
}
