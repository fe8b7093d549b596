//! Deploy markers against a recording HTTP server on a real socket: the exact request
//! Grafana and Honeycomb receive, and what a refusal or an absent service looks like.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use guildscope_telemetry::markers::{
    GrafanaTarget, HoneycombTarget, Marker, MarkerError, MarkerId, http_client, post_grafana,
    post_honeycomb,
};
use guildscope_testkit::http::HttpRecorder;
use serde_json::json;

const TOKEN: &str = "glsa_5ecr3t_t0ken";
const KEY: &str = "hcaik_5ecr3t_key";

/// A deploy that ran from 1,700,000,000.250 s to 1,700,000,090.750 s after the epoch.
fn marker() -> Marker {
    Marker {
        text: "deploy 1a2b3c4 to production".to_owned(),
        kind: "deploy".to_owned(),
        url: Some("https://ci.example.com/runs/77".to_owned()),
        start: UNIX_EPOCH + Duration::from_millis(1_700_000_000_250),
        end: Some(UNIX_EPOCH + Duration::from_millis(1_700_000_090_750)),
        tags: vec!["v0.1.0".to_owned(), "guildscope".to_owned()],
    }
}

fn grafana(recorder: &HttpRecorder) -> GrafanaTarget {
    GrafanaTarget {
        url: recorder.url(),
        token: Some(TOKEN.to_owned()),
        dashboard_uid: Some("guildscope-overview".to_owned()),
        tags: vec!["guildscope".to_owned(), "production".to_owned()],
    }
}

fn honeycomb(recorder: &HttpRecorder, dataset: &str) -> HoneycombTarget {
    HoneycombTarget {
        api_url: recorder.url(),
        dataset: dataset.to_owned(),
        api_key: KEY.to_owned(),
    }
}

fn client() -> reqwest::Client {
    http_client(Duration::from_secs(5)).unwrap()
}

#[tokio::test]
async fn a_grafana_annotation_is_posted_with_bearer_auth_and_exact_json() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(200, json!({ "id": 4711, "message": "Annotation added" }));

    let id = post_grafana(&client(), &grafana(&recorder), &marker())
        .await
        .unwrap();

    assert_eq!(id, MarkerId::Grafana(4711));
    assert_eq!(id.to_string(), "4711");
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/annotations");
    assert_eq!(request.query, None);
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "time": 1_700_000_000_250_u64,
            "timeEnd": 1_700_000_090_750_u64,
            // The target's tags, the marker's, then its kind; "guildscope" once.
            "tags": ["guildscope", "production", "v0.1.0", "deploy"],
            "text": "deploy 1a2b3c4 to production — https://ci.example.com/runs/77",
            "dashboardUID": "guildscope-overview",
        })
    );
}

#[tokio::test]
async fn a_grafana_annotation_without_token_end_link_or_dashboard_sends_only_what_is_set() {
    let recorder = HttpRecorder::start().await.unwrap();
    let target = GrafanaTarget {
        url: format!("{}/", recorder.url()),
        token: None,
        dashboard_uid: None,
        tags: Vec::new(),
    };
    let marker = Marker {
        url: None,
        end: None,
        tags: Vec::new(),
        ..marker()
    };

    let id = post_grafana(&client(), &target, &marker).await.unwrap();

    assert_eq!(id, MarkerId::Grafana(1));
    let request = &recorder.requests()[0];
    assert_eq!(request.path, "/api/annotations");
    assert_eq!(request.header("authorization"), None);
    assert_eq!(
        request.json(),
        json!({
            "time": 1_700_000_000_250_u64,
            "tags": ["deploy"],
            "text": "deploy 1a2b3c4 to production",
        })
    );
}

#[tokio::test]
async fn a_honeycomb_marker_is_posted_to_the_encoded_dataset_with_the_team_header() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(
        201,
        json!({ "id": "2eYSd5bq3Kp", "message": "deploy 1a2b3c4 to production", "type": "deploy" }),
    );

    let id = post_honeycomb(
        &client(),
        &honeycomb(&recorder, "guild scope/prod"),
        &marker(),
    )
    .await
    .unwrap();

    assert_eq!(id, MarkerId::Honeycomb("2eYSd5bq3Kp".to_owned()));
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/1/markers/guild%20scope%2Fprod");
    assert_eq!(request.header("x-honeycomb-team"), Some(KEY));
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "message": "deploy 1a2b3c4 to production",
            "type": "deploy",
            "start_time": 1_700_000_000_u64,
            "end_time": 1_700_000_090_u64,
            "url": "https://ci.example.com/runs/77",
        })
    );
}

#[tokio::test]
async fn an_environment_wide_honeycomb_marker_goes_to_all() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(200, json!({ "id": "abc" }));
    let marker = Marker::deploy("deploy 1a2b3c4");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    post_honeycomb(
        &client(),
        &honeycomb(&recorder, HoneycombTarget::ALL_DATASETS),
        &marker,
    )
    .await
    .unwrap();

    let request = &recorder.requests()[0];
    assert_eq!(request.path, "/1/markers/__all__");
    let body = request.json();
    assert_eq!(body["type"], "deploy");
    assert!(
        body.get("end_time").is_none() && body.get("url").is_none(),
        "{body}"
    );
    let start = body["start_time"].as_u64().unwrap();
    assert!(start.abs_diff(now) <= 5, "start_time {start}, now {now}");
}

#[tokio::test]
async fn a_401_from_grafana_is_a_clear_error_without_the_token() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(401, json!({ "message": "invalid API key" }));

    let err = post_grafana(&client(), &grafana(&recorder), &marker())
        .await
        .unwrap_err();

    let text = err.to_string();
    let host = recorder.url().trim_start_matches("http://").to_owned();
    assert_eq!(
        text,
        format!("grafana at {host} answered 401 Unauthorized: invalid API key")
    );
    assert!(matches!(err, MarkerError::Rejected { status, .. } if status == 401));
    assert!(!format!("{err:?}").contains(TOKEN));
}

#[tokio::test]
async fn a_401_from_honeycomb_is_a_clear_error_even_when_the_answer_echoes_the_key() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(401, json!({ "error": format!("unknown API key {KEY}") }));

    let err = post_honeycomb(&client(), &honeycomb(&recorder, "guildscope"), &marker())
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(text.starts_with("honeycomb at 127.0.0.1:"), "{text}");
    assert!(
        text.ends_with("answered 401 Unauthorized: unknown API key [redacted]"),
        "{text}"
    );
    assert!(!text.contains(KEY), "{text}");
    assert!(!format!("{err:?}").contains(KEY), "{err:?}");
}

#[tokio::test]
async fn a_long_error_message_is_shortened() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(500, json!({ "message": "x".repeat(5_000) }));

    let err = post_grafana(&client(), &grafana(&recorder), &marker())
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(
        text.contains("answered 500 Internal Server Error: xxx"),
        "{text}"
    );
    assert!(text.ends_with('…'), "{text}");
    assert!(text.len() < 400, "{} bytes", text.len());
}

#[tokio::test]
async fn a_success_without_an_id_is_an_error() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(200, json!({ "message": "ok" }));

    let err = post_honeycomb(&client(), &honeycomb(&recorder, "guildscope"), &marker())
        .await
        .unwrap_err();

    assert!(matches!(err, MarkerError::NoId { .. }), "{err}");
    assert!(err.to_string().contains("without a marker id"), "{err}");
}

#[tokio::test]
async fn an_absent_service_is_named_by_its_host_and_nothing_more() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let target = GrafanaTarget {
        url: format!("http://admin:{TOKEN}@{addr}/grafana?orgId=1"),
        token: Some(TOKEN.to_owned()),
        dashboard_uid: None,
        tags: Vec::new(),
    };

    let err = post_grafana(&client(), &target, &marker())
        .await
        .unwrap_err();

    let text = err.to_string();
    assert!(
        text.starts_with(&format!("failed to reach grafana at {addr}: ")),
        "{text}"
    );
    assert!(text.to_lowercase().contains("refused"), "{text}");
    assert!(!text.contains(TOKEN), "{text}");
    assert!(!format!("{err:?}").contains(TOKEN), "{err:?}");
}

#[tokio::test]
async fn a_url_that_is_not_http_is_refused_before_sending() {
    let target = GrafanaTarget {
        url: "grafana:3000".to_owned(),
        token: None,
        dashboard_uid: None,
        tags: Vec::new(),
    };

    let err = post_grafana(&client(), &target, &marker())
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            MarkerError::InvalidUrl {
                service: "grafana",
                ..
            }
        ),
        "{err}"
    );
}
