//! The fake Sentry against a plain HTTP client sending what Sentry's SDKs
//! send: envelopes (plain and gzip) and store requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use guildscope_testkit::sentry::FakeSentry;
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(10);
const EVENT_ID: &str = "9ec79c33ec9942ab8353589fcb2e04dc";

/// An envelope with a length-delimited event item and a newline-terminated
/// session item.
fn envelope(dsn: &str) -> Vec<u8> {
    let event = json!({
        "event_id": EVENT_ID,
        "level": "error",
        "platform": "native",
        "exception": { "values": [{ "type": "StoreError", "value": "database is locked" }] },
        "tags": { "command.name": "stats" },
    })
    .to_string();
    let session = json!({ "sid": "7c2f", "status": "ok", "init": true }).to_string();
    let mut body = Vec::new();
    body.extend_from_slice(
        json!({ "event_id": EVENT_ID, "dsn": dsn, "sent_at": "2024-01-01T00:00:00Z" })
            .to_string()
            .as_bytes(),
    );
    body.push(b'\n');
    body.extend_from_slice(
        json!({ "type": "event", "length": event.len(), "content_type": "application/json" })
            .to_string()
            .as_bytes(),
    );
    body.push(b'\n');
    body.extend_from_slice(event.as_bytes());
    body.push(b'\n');
    body.extend_from_slice(json!({ "type": "session" }).to_string().as_bytes());
    body.push(b'\n');
    body.extend_from_slice(session.as_bytes());
    body.push(b'\n');
    body
}

fn auth(key: &str) -> String {
    format!("Sentry sentry_version=7, sentry_client=sentry.rust/0.49.0, sentry_key={key}")
}

fn envelope_url(sentry: &FakeSentry) -> String {
    format!("{}/api/42/envelope/", sentry.url())
}

#[tokio::test]
async fn envelope_with_two_items_yields_one_event_and_is_answered_with_its_id() {
    let sentry = FakeSentry::start().await.unwrap();
    let body = envelope(&sentry.dsn());
    let auth = auth(sentry.public_key());

    let answer = common::send(
        "POST",
        &envelope_url(&sentry),
        &[
            ("content-type", "application/x-sentry-envelope"),
            ("x-sentry-auth", auth.as_str()),
        ],
        body.clone(),
    )
    .await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({ "id": EVENT_ID }));
    let events = sentry.wait_for_events(1, TIMEOUT).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["event_id"], EVENT_ID);
    assert_eq!(events[0]["exception"]["values"][0]["type"], "StoreError");
    assert_eq!(events[0]["tags"]["command.name"], "stats");
    let items = sentry.items();
    assert_eq!(
        items
            .iter()
            .map(|item| item.item_type.as_str())
            .collect::<Vec<_>>(),
        ["event", "session"]
    );
    assert_eq!(items[1].json()["sid"], "7c2f");
    assert_eq!(sentry.raw_bodies(), [body]);
}

#[tokio::test]
async fn gzip_envelope_is_decoded() {
    let sentry = FakeSentry::start().await.unwrap();
    let body = envelope(&sentry.dsn());
    let auth = auth(sentry.public_key());

    let answer = common::send(
        "POST",
        &envelope_url(&sentry),
        &[
            ("content-type", "application/x-sentry-envelope"),
            ("content-encoding", "gzip"),
            ("x-sentry-auth", auth.as_str()),
        ],
        common::gzip(&body),
    )
    .await;

    assert_eq!(answer.status, 200);
    assert_eq!(sentry.events().len(), 1);
    assert_eq!(sentry.raw_bodies(), [body]);
}

#[tokio::test]
async fn store_request_with_key_in_query_is_an_event() {
    let sentry = FakeSentry::start().await.unwrap();
    let url = format!(
        "{}/api/42/store/?sentry_version=7&sentry_key={}",
        sentry.url(),
        sentry.public_key()
    );
    let event =
        json!({ "event_id": EVENT_ID, "message": "shard 0 disconnected", "level": "warning" });

    let answer = common::post(&url, "application/json", event.to_string().into_bytes()).await;

    assert_eq!(answer.status, 200);
    assert_eq!(answer.json(), json!({ "id": EVENT_ID }));
    assert_eq!(sentry.events(), [event]);
}

#[tokio::test]
async fn wrong_or_missing_key_is_answered_401_and_nothing_is_kept() {
    let sentry = FakeSentry::start().await.unwrap();
    let body = envelope(&sentry.dsn());
    let wrong = auth("0000000000000000000000000000000f");

    let wrong_key = common::send(
        "POST",
        &envelope_url(&sentry),
        &[("x-sentry-auth", wrong.as_str())],
        body.clone(),
    )
    .await;
    let no_key = common::post(
        &envelope_url(&sentry),
        "application/x-sentry-envelope",
        body,
    )
    .await;

    assert_eq!(wrong_key.status, 401);
    assert_eq!(no_key.status, 401);
    assert!(
        !String::from_utf8_lossy(&wrong_key.body).contains("0000000000000000000000000000000f"),
        "the answer echoes the key"
    );
    assert!(sentry.events().is_empty());
    assert!(sentry.raw_bodies().is_empty());
    assert_eq!(sentry.rejected_requests(), 2);
}

#[tokio::test]
async fn down_sentry_answers_503_then_accepts_again() {
    let sentry = FakeSentry::start().await.unwrap();
    let body = envelope(&sentry.dsn());
    let auth = auth(sentry.public_key());
    let headers = [("x-sentry-auth", auth.as_str())];
    sentry.set_down(true);

    let down = common::send("POST", &envelope_url(&sentry), &headers, body.clone()).await;

    assert_eq!(down.status, 503);
    assert!(sentry.events().is_empty());
    assert!(sentry.raw_bodies().is_empty());

    sentry.set_down(false);
    let up = common::send("POST", &envelope_url(&sentry), &headers, body).await;
    assert_eq!(up.status, 200);
    assert_eq!(sentry.wait_for_events(1, TIMEOUT).await.len(), 1);
}

#[tokio::test]
async fn malformed_envelope_and_unknown_project_are_refused() {
    let sentry = FakeSentry::start().await.unwrap();
    let auth = auth(sentry.public_key());
    let headers = [("x-sentry-auth", auth.as_str())];

    let truncated = common::send(
        "POST",
        &envelope_url(&sentry),
        &headers,
        b"{}\n{\"type\":\"event\",\"length\":500}\n{}".to_vec(),
    )
    .await;
    let other_project = common::send(
        "POST",
        &format!("{}/api/7/envelope/", sentry.url()),
        &headers,
        envelope(&sentry.dsn()),
    )
    .await;

    assert_eq!(truncated.status, 400);
    assert_eq!(other_project.status, 404);
    assert!(sentry.events().is_empty());
    assert_eq!(sentry.rejected_requests(), 2);
}

#[tokio::test]
async fn dsn_names_the_key_host_and_project() {
    let sentry = FakeSentry::start().await.unwrap();
    let dsn = sentry.dsn();
    let expected = format!(
        "http://{}@{}/42",
        sentry.public_key(),
        sentry.url().trim_start_matches("http://")
    );
    assert_eq!(dsn, expected);
    assert_eq!(sentry.public_key().len(), 32);
    assert!(!format!("{sentry:?}").contains(sentry.public_key()));
}
