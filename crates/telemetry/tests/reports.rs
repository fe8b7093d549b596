//! Error reports against a fake Sentry that speaks Sentry's ingest protocol over a real
//! socket: what an event holds (and nothing more), a Sentry that is down or never
//! answers, sampling, flushing, and a bad DSN.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use guildscope_telemetry::reports::{ErrorReport, ErrorReporter, ReportError, SentryConfig};
use guildscope_testkit::sentry::FakeSentry;
use serde_json::{Value, json};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(10);

const RELEASE: &str = "guildscope@0.1.0+1a2b3c4";

/// A report with every field set.
fn full_report() -> ErrorReport<'static> {
    ErrorReport {
        kind: "command",
        error: "database is locked",
        command: Some("stats"),
        user_id: Some(80_351_110_224_678_912),
        guild_id: Some(267_624_335_836_053_506),
        channel_id: Some(267_659_945_086_812_160),
        message_id: Some(1_100_000_000_000_000_001),
        interaction_id: Some(1_200_000_000_000_000_002),
        shard: Some(3),
        trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736"),
    }
}

fn config(sentry: &FakeSentry) -> SentryConfig {
    let mut config = SentryConfig::new(sentry.dsn(), RELEASE);
    config.environment = Some("staging".to_owned());
    config
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test]
async fn a_report_arrives_with_every_tag_the_user_id_the_jump_link_release_and_environment() {
    let sentry = FakeSentry::start().await.unwrap();
    let reporter = ErrorReporter::start(config(&sentry)).unwrap();

    let id = reporter
        .report(&full_report())
        .expect("report was not queued");

    let events = sentry.wait_for_events(1, PATIENCE).await;
    let event = &events[0];
    assert_eq!(event["event_id"], id);
    assert_eq!(id.len(), 32, "{id}");
    assert_eq!(event["message"], "database is locked");
    assert_eq!(
        event["exception"]["values"],
        json!([{ "type": "command", "value": "database is locked" }])
    );
    // Sentry's protocol leaves `level` out when it is `error`, the default.
    assert!(
        event.get("level").is_none_or(|level| level == "error"),
        "{event}"
    );
    assert_eq!(
        event["tags"],
        json!({
            "command": "stats",
            "guild_id": "267624335836053506",
            "channel_id": "267659945086812160",
            "message_id": "1100000000000000001",
            "interaction_id": "1200000000000000002",
            "shard": "3",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        })
    );
    assert_eq!(event["user"], json!({ "id": "80351110224678912" }));
    assert_eq!(
        event["extra"],
        json!({
            "jump_to": "https://discord.com/channels/267624335836053506/267659945086812160/1100000000000000001"
        })
    );
    assert_eq!(event["release"], RELEASE);
    assert_eq!(event["environment"], "staging");
    assert_eq!(
        event["contexts"]["trace"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn the_envelope_holds_exactly_the_expected_keys_and_nothing_about_the_host() {
    let sentry = FakeSentry::start().await.unwrap();
    let reporter = ErrorReporter::start(config(&sentry)).unwrap();

    let id = reporter.report(&full_report()).unwrap();
    sentry.wait_for_events(1, PATIENCE).await;

    let bodies = sentry.raw_bodies();
    assert_eq!(bodies.len(), 1);
    let body = String::from_utf8(bodies[0].clone()).unwrap();
    let lines: Vec<Value> = body
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    // The envelope: a header, then exactly one item, an event.
    let header = &lines[0];
    assert_eq!(header["event_id"].as_str().unwrap().replace('-', ""), id);
    assert!(
        keys(header).is_subset(&BTreeSet::from(["event_id", "dsn", "sdk", "sent_at"])),
        "unexpected envelope header keys: {header}"
    );
    assert!(
        header.get("dsn").is_none(),
        "the DSN went into the envelope: {header}"
    );
    let items = sentry.items();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].item_type, "event");
    assert_eq!(lines.len(), 3, "{body}");
    let event = &lines[2];

    assert_eq!(
        keys(event),
        BTreeSet::from([
            "event_id",
            "message",
            "exception",
            "platform",
            "timestamp",
            "release",
            "environment",
            "user",
            "contexts",
            "tags",
            "extra",
            "sdk",
        ]),
        "{event}"
    );
    // No host name, request, breadcrumbs, modules or threads: nothing beyond the report.
    for absent in [
        "server_name",
        "request",
        "breadcrumbs",
        "modules",
        "threads",
    ] {
        assert!(event.get(absent).is_none(), "{absent} in {event}");
    }
    assert_eq!(keys(&event["user"]), BTreeSet::from(["id"]));
    assert_eq!(keys(&event["contexts"]), BTreeSet::from(["trace"]));
    assert_eq!(
        keys(&event["contexts"]["trace"]),
        BTreeSet::from(["type", "trace_id", "span_id"])
    );
    assert_eq!(keys(&event["extra"]), BTreeSet::from(["jump_to"]));
    assert_eq!(
        keys(&event["exception"]["values"][0]),
        BTreeSet::from(["type", "value"])
    );
    // No integration ran: nothing was added to the event behind the reporter's back.
    assert!(
        event["sdk"]
            .get("integrations")
            .is_none_or(|integrations| integrations == &json!([])),
        "{event}"
    );
    // The key travels in the auth header only, never in the body.
    assert!(!body.contains(sentry.public_key()), "{body}");
}

#[tokio::test]
async fn while_sentry_is_down_reports_return_at_once_and_the_reporter_recovers() {
    let sentry = FakeSentry::start().await.unwrap();
    sentry.set_down(true);
    let mut config = config(&sentry);
    config.queue = 10;
    let reporter = ErrorReporter::start(config).unwrap();

    let start = Instant::now();
    let queued = (0..1_000)
        .filter(|_| reporter.report(&full_report()).is_some())
        .count() as u64;
    let elapsed = start.elapsed();

    // A thousand reports cost microseconds each; a caller waiting on Sentry even once
    // would take a round trip per report.
    assert!(
        elapsed < Duration::from_secs(1),
        "1,000 reports took {elapsed:?}"
    );
    assert!(
        reporter.dropped() > 0,
        "a 10-report queue took 1,000 reports"
    );
    assert_eq!(queued + reporter.dropped(), 1_000);

    assert!(reporter.flush(PATIENCE).await, "the queue did not drain");
    assert!(sentry.events().is_empty());

    sentry.set_down(false);
    let id = reporter
        .report(&ErrorReport::new("event", "after the outage"))
        .unwrap();
    assert!(reporter.flush(PATIENCE).await);
    let events = sentry.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event_id"], id);
}

#[tokio::test]
async fn a_sentry_that_never_answers_costs_callers_nothing() {
    // A listener that is never accepted from: connections complete in the kernel and the
    // requests then wait for an answer that never comes.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dsn = format!(
        "http://0123456789abcdef@{}/42",
        silent.local_addr().unwrap()
    );
    let mut config = SentryConfig::new(dsn, RELEASE);
    config.queue = 5;
    let reporter = ErrorReporter::start(config).unwrap();

    let start = Instant::now();
    for _ in 0..1_000 {
        reporter.report(&full_report());
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "1,000 reports took {:?}",
        start.elapsed()
    );
    assert!(
        reporter.dropped() >= 1_000 - 6,
        "dropped {}",
        reporter.dropped()
    );

    // Flushing gives up at its timeout instead of waiting on Sentry.
    let start = Instant::now();
    assert!(!reporter.flush(Duration::from_millis(200)).await);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_sentry_is_not_an_error_for_callers() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let reporter =
        ErrorReporter::start(SentryConfig::new(format!("http://abc@{addr}/42"), RELEASE)).unwrap();

    assert!(reporter.report(&full_report()).is_some());
    // The refused connection fails fast; the queue drains.
    assert!(reporter.flush(PATIENCE).await);
    assert!(reporter.report(&full_report()).is_some());
}

#[tokio::test]
async fn after_flush_returns_every_report_has_been_delivered() {
    let sentry = FakeSentry::start().await.unwrap();
    let reporter = ErrorReporter::start(config(&sentry)).unwrap();
    let clone = reporter.clone();

    let mut ids = BTreeSet::new();
    for i in 0..20 {
        let handle = if i % 2 == 0 { &reporter } else { &clone };
        ids.insert(
            handle
                .report(&ErrorReport::new("store", "disk full"))
                .unwrap(),
        );
    }

    assert!(reporter.flush(PATIENCE).await);
    let arrived: BTreeSet<String> = sentry
        .events()
        .iter()
        .map(|event| event["event_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(arrived, ids);
    assert_eq!(reporter.dropped(), 0);
}

#[tokio::test]
async fn a_sample_rate_of_zero_sends_nothing() {
    let sentry = FakeSentry::start().await.unwrap();
    let mut config = config(&sentry);
    config.sample_rate = 0.0;
    let reporter = ErrorReporter::start(config).unwrap();

    assert_eq!(reporter.report(&full_report()), None);
    assert!(reporter.flush(PATIENCE).await);
    assert!(sentry.raw_bodies().is_empty());
    assert_eq!(reporter.dropped(), 0);
}

#[test]
fn a_bad_dsn_names_the_field_and_not_the_key() {
    let key = "5ec12e7k3y0000000000000000000000";
    for dsn in [
        format!("htp//{key}@sentry.example.com/42"),
        format!("ftp://{key}@sentry.example.com/42"),
        format!("https://{key}@sentry.example.com/"),
        format!("https://:{key}@sentry.example.com/42"),
        key.to_owned(),
    ] {
        let err = ErrorReporter::start(SentryConfig::new(dsn.clone(), RELEASE)).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(
                err,
                ReportError::InvalidConfig {
                    field: "sentry.dsn",
                    ..
                }
            ),
            "{text}"
        );
        assert!(text.contains("sentry.dsn"), "{text}");
        assert!(!text.contains(key), "the key leaked for {dsn:?}: {text}");
        assert!(!format!("{err:?}").contains(key), "{err:?}");
    }
}

/// A change to a valid configuration.
type Change = fn(&mut SentryConfig);

#[test]
fn bad_settings_name_their_field() {
    let dsn = "https://abc@sentry.example.com/42";
    let cases: [(Change, &str); 4] = [
        (|c| c.sample_rate = 1.5, "sentry.sample_rate"),
        (|c| c.sample_rate = f32::NAN, "sentry.sample_rate"),
        (|c| c.queue = 0, "sentry.queue"),
        (|c| c.release = String::new(), "sentry.release"),
    ];
    for (change, field) in cases {
        let mut config = SentryConfig::new(dsn, RELEASE);
        change(&mut config);
        let err = ErrorReporter::start(config).unwrap_err();
        assert!(err.to_string().contains(field), "{err} should name {field}");
    }
}

#[test]
fn the_reporter_can_be_shared_across_threads() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    shareable::<ErrorReporter>();
}

#[test]
fn debug_output_carries_no_dsn() {
    let config = SentryConfig::new("https://5ec12e7@sentry.example.com/42", RELEASE);
    let text = format!("{config:?}");
    assert!(!text.contains("5ec12e7"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");

    // The reporter starts without an async runtime and says nothing of its DSN either.
    let reporter = ErrorReporter::start(config).unwrap();
    let text = format!("{reporter:?}");
    assert!(!text.contains("5ec12e7"), "{text}");
    assert!(text.contains(RELEASE), "{text}");
}
