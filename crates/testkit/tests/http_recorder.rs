//! The HTTP recorder against a plain HTTP client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use guildscope_testkit::http::HttpRecorder;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn method_path_query_headers_and_body_round_trip() {
    let recorder = HttpRecorder::start().await.unwrap();
    let body = json!({ "text": "deploy", "tags": ["guildscope"] });

    let answer = common::send(
        "POST",
        &format!("{}/api/annotations?dashboard=7&panel=2", recorder.url()),
        &[
            ("content-type", "application/json"),
            ("Authorization", "Bearer glsa_not_a_real_token"),
            ("X-Custom-Header", "Mixed Case Value"),
        ],
        body.to_string().into_bytes(),
    )
    .await;
    common::send(
        "DELETE",
        &format!("{}/api/annotations/1", recorder.url()),
        &[],
        Vec::new(),
    )
    .await;

    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.json(),
        json!({ "id": 1, "message": "Annotation added" })
    );
    let requests = recorder.wait_for_requests(2, TIMEOUT).await;
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/api/annotations");
    assert_eq!(first.query.as_deref(), Some("dashboard=7&panel=2"));
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(
        first.header("AUTHORIZATION"),
        Some("Bearer glsa_not_a_real_token")
    );
    assert!(
        first
            .headers
            .contains(&("x-custom-header".to_owned(), "Mixed Case Value".to_owned())),
        "{:?}",
        first.headers
    );
    assert_eq!(first.json(), body);
    assert_eq!(requests[1].method, "DELETE");
    assert_eq!(requests[1].path, "/api/annotations/1");
    assert_eq!(requests[1].query, None);
    assert!(requests[1].body.is_empty());
}

#[tokio::test]
async fn configured_status_and_body_are_answered() {
    let recorder = HttpRecorder::start().await.unwrap();
    recorder.respond_with(403, json!({ "message": "Permissions needed" }));

    let answer = common::send(
        "GET",
        &format!("{}/anything", recorder.url()),
        &[],
        Vec::new(),
    )
    .await;

    assert_eq!(answer.status, 403);
    assert_eq!(answer.json(), json!({ "message": "Permissions needed" }));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(recorder.requests().len(), 1);
}

#[tokio::test]
async fn debug_output_hides_credentials() {
    let recorder = HttpRecorder::start().await.unwrap();
    common::send(
        "POST",
        &recorder.url(),
        &[("authorization", "Bearer glsa_not_a_real_token")],
        b"{}".to_vec(),
    )
    .await;

    let requests = recorder.wait_for_requests(1, TIMEOUT).await;
    let debug = format!("{:?}", requests[0]);

    assert!(!debug.contains("glsa_not_a_real_token"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
}
