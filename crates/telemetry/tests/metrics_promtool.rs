#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The rendered text of a registry exercised with every method passes
//! `promtool check metrics`, Prometheus's own parser and linter, with nothing to report.
//!
//! promtool comes from Debian's `prometheus` package (`/usr/bin/promtool`); set `PROMTOOL`
//! to use another. A missing promtool fails the test: it is never skipped.

use std::io::Write as _;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use guildscope_telemetry::metrics::{BuildInfo, GuildGauges, LabelLimits, Metrics, Outcome};
use guildscope_telemetry::{Statsd, StatsdConfig};

fn promtool() -> PathBuf {
    let path = std::env::var_os("PROMTOOL")
        .map_or_else(|| PathBuf::from("/usr/bin/promtool"), PathBuf::from);
    assert!(
        path.is_file(),
        "promtool not found at {}: install Debian's `prometheus` package \
         (apt-get install prometheus) or set PROMTOOL to its path",
        path.display()
    );
    path
}

/// What `promtool check metrics` says about `text`: its exit status and everything it
/// printed.
fn check(text: &str) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, printed)
}

/// A registry that has seen every update method, including label values that need
/// escaping and labels past their caps.
fn exercised(statsd: Option<Statsd>) -> Metrics {
    let m = Metrics::with_limits(
        BuildInfo {
            version: "0.1.0".to_owned(),
            git_sha: "0123456789abcdef".to_owned(),
        },
        statsd,
        LabelLimits {
            commands: 3,
            guilds: 2,
            shards: 2,
            ..LabelLimits::default()
        },
    );
    let ms = Duration::from_millis;
    m.command("ping", Outcome::Ok, ms(3));
    m.command("stats", Outcome::UserError, ms(40));
    m.command(
        "say \"hi\" \\ there\nnow",
        Outcome::Error,
        Duration::from_secs(12),
    );
    m.command("folded", Outcome::Ok, ms(1));
    m.gateway_event("MESSAGE_CREATE");
    m.gateway_event("GUILD_CREATE");
    m.message(Some("general"));
    m.message(None);
    m.gateway_latency(0, Some(ms(41)));
    m.gateway_latency(1, None);
    m.gateway_latency(2, Some(ms(90)));
    m.shard_connected(0, true);
    m.shard_connected(1, false);
    m.shard_connected(5, true);
    m.rest_request("POST /channels/{id}/messages", Some(200), Duration::ZERO);
    m.rest_request(
        "POST /channels/{id}/messages",
        Some(429),
        Duration::from_secs(2),
    );
    m.rest_request("GET /gateway/bot", None, ms(1));
    m.rest_request("GET /gateway/bot", Some(1), ms(1));
    m.store_rows("messages", 120);
    m.store_rows("members", 4);
    m.store_batch(ms(7), true);
    m.store_batch(ms(300), false);
    for id in 1..=4 {
        m.guild(
            id,
            GuildGauges {
                members: 100 * id,
                channels: 10 + id,
                help_threads_in_use: id % 2,
            },
        );
    }
    m.guild_removed(1);
    m.error("event_handler");
    m.error("store_write");
    m.telemetry_dropped("otlp", 3);
    m.set_telemetry_dropped("sentry", 1);
    m.on_scrape(Box::new(|m: &Metrics| m.shard_connected(0, true)));
    m
}

#[tokio::test]
async fn promtool_finds_nothing_wrong_with_a_fully_exercised_registry() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let (statsd, _task) =
        Statsd::start(StatsdConfig::new(server.local_addr().unwrap().to_string()).unwrap())
            .await
            .unwrap();
    let metrics = Arc::new(exercised(Some(statsd)));
    let text = metrics.render();
    // The registry really was exercised: every family has samples to check.
    for needle in [
        "guildscope_commands_total{command=\"other\"",
        "guildscope_gateway_latency_seconds{shard=\"0\"}",
        "guildscope_shard_connected{shard=\"other\"} 1",
        "guildscope_rest_requests_total{route=\"GET /gateway/bot\",status=\"other\"} 1",
        "guildscope_guild_members{guild=\"other\"}",
        "guildscope_telemetry_dropped_total{sink=\"statsd\"} 0",
        "guildscope_store_batch_seconds_count 2",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }

    let (status, printed) = check(&text);
    assert!(
        status.success() && printed.is_empty(),
        "promtool check metrics exited with {status} and printed:\n{printed}\non:\n{text}"
    );
}

#[test]
fn promtool_accepts_an_empty_registry_whose_labelled_families_have_no_samples() {
    let text = Metrics::new(
        BuildInfo {
            version: "0.1.0".to_owned(),
            git_sha: "0123456789abcdef".to_owned(),
        },
        None,
    )
    .render();
    assert!(text.contains(
        "# TYPE guildscope_commands_total counter\n# HELP guildscope_command_duration_seconds"
    ));
    let (status, printed) = check(&text);
    assert!(
        status.success() && printed.is_empty(),
        "promtool check metrics exited with {status} and printed:\n{printed}\non:\n{text}"
    );
}

// A control: the check above is only worth something if promtool really lints what it
// is given. It must complain about a counter without `_total` and a family without help,
// and fail on text that does not parse.
#[test]
fn promtool_reports_lint_problems_and_parse_errors() {
    let (status, printed) = check("# HELP foo A counter.\n# TYPE foo counter\nfoo 1\n");
    assert!(!status.success());
    assert!(printed.contains("_total"), "{printed}");

    let (status, printed) = check("# TYPE bar_total counter\nbar_total 1\n");
    assert!(!status.success());
    assert!(printed.contains("no help text"), "{printed}");

    let (status, printed) = check("baz_total{a=\"unterminated} 1\n");
    assert!(!status.success());
    assert!(!printed.is_empty());
}
