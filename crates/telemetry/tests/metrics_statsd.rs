#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The registry's StatsD fan-out over a real UDP socket: the exact lines each update
//! method sends, under the reference community bot's names.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use guildscope_telemetry::metrics::{BuildInfo, GuildGauges, LabelLimits, Metrics, Outcome};
use guildscope_telemetry::{Statsd, StatsdConfig};

/// How long the test waits for datagrams that should arrive at once.
const PATIENCE: Duration = Duration::from_secs(5);

/// Reads datagrams until a line equal to `last` arrives; returns every line before it.
fn lines_until(server: &UdpSocket, last: &str) -> Vec<String> {
    let deadline = Instant::now() + PATIENCE;
    let mut lines = Vec::new();
    let mut buf = vec![0; 65_536];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "{last:?} never arrived; got {lines:#?}");
        server.set_read_timeout(Some(left)).unwrap();
        let len = server
            .recv(&mut buf)
            .unwrap_or_else(|error| panic!("{last:?} never arrived ({error}); got {lines:#?}"));
        for line in std::str::from_utf8(&buf[..len]).unwrap().split('\n') {
            if line == last {
                return lines;
            }
            lines.push(line.to_owned());
        }
    }
}

#[tokio::test]
async fn every_update_sends_the_reference_bots_statsd_lines() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = StatsdConfig::new(server.local_addr().unwrap().to_string()).unwrap();
    let (statsd, _task) = Statsd::start(config).await.unwrap();
    let m = Metrics::with_limits(
        BuildInfo {
            version: "0.1.0".to_owned(),
            git_sha: "abc".to_owned(),
        },
        Some(statsd.clone()),
        LabelLimits {
            channels: 2,
            ..LabelLimits::default()
        },
    );
    let gauges = |members, help_threads_in_use| GuildGauges {
        members,
        channels: 3,
        help_threads_in_use,
    };

    m.command("ping", Outcome::Ok, Duration::from_micros(12_500));
    m.command("tag get", Outcome::Error, Duration::from_millis(3));
    m.command("ping", Outcome::UserError, Duration::from_millis(1));
    // Not sent to StatsD at all.
    m.gateway_event("MESSAGE_CREATE");
    m.gateway_latency(0, Some(Duration::from_millis(40)));
    m.shard_connected(0, true);
    m.store_rows("messages", 10);
    m.store_batch(Duration::from_millis(5), false);
    m.telemetry_dropped("otlp", 1);
    m.message(Some("Off Topic.chat/é"));
    m.message(None);
    m.message(Some("help-0"));
    // Past the cap of two channel names.
    m.message(Some("memes"));
    m.guild(1, gauges(10, 2));
    m.guild(2, gauges(5, 1));
    m.guild(1, gauges(12, 0));
    m.guild_removed(2);
    m.guild_removed(99);
    m.error("event_handler");
    m.rest_request("GET /gateway/bot", Some(200), Duration::ZERO);
    m.rest_request("GET /gateway/bot", None, Duration::ZERO);
    m.rest_request("POST /channels/{id}/messages", Some(404), Duration::ZERO);
    m.rest_request(
        "POST /channels/{id}/messages",
        Some(429),
        Duration::from_secs(1),
    );
    // A last metric marks the end, so nothing unexpected can hide after the others.
    statsd.count("end", 1);
    statsd.flush().await.unwrap();

    // Timings and gauges go out one line each, in order; counters are summed
    // by name until the send and follow, in the order they first came.
    assert_eq!(
        lines_until(&server, "guildscope.end:1|c"),
        [
            "guildscope.command_duration.ping:12.5|ms",
            "guildscope.command_duration.tag_get:3|ms",
            "guildscope.command_duration.ping:1|ms",
            "guildscope.guild.total_members:10|g",
            "guildscope.help.total.in_use:2|g",
            "guildscope.guild.total_members:15|g",
            "guildscope.help.total.in_use:3|g",
            "guildscope.guild.total_members:17|g",
            "guildscope.help.total.in_use:1|g",
            "guildscope.guild.total_members:12|g",
            "guildscope.help.total.in_use:0|g",
            "guildscope.commands.ping:2|c",
            "guildscope.commands.tag_get:1|c",
            "guildscope.errors.command:1|c",
            "guildscope.errors.user_error:1|c",
            "guildscope.messages:4|c",
            "guildscope.channels.off_topic_chat__:1|c",
            "guildscope.channels.help-0:1|c",
            "guildscope.channels.other:1|c",
            "guildscope.errors.event_handler:1|c",
            "guildscope.errors.api_error_404:1|c",
            "guildscope.errors.api_error_429:1|c",
        ]
    );
    assert_eq!(statsd.dropped(), 0);
    // The fold is visible on the Prometheus side too.
    assert!(
        m.render()
            .contains("guildscope_metrics_labels_folded_total{label=\"channel\"} 1\n")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn what_the_statsd_queue_drops_is_reported_as_dropped_telemetry() {
    let server = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = StatsdConfig {
        queue: 1,
        ..StatsdConfig::new(server.local_addr().unwrap().to_string()).unwrap()
    };
    let (statsd, _task) = Statsd::start(config).await.unwrap();
    let m = Metrics::new(
        BuildInfo {
            version: "0.1.0".to_owned(),
            git_sha: "abc".to_owned(),
        },
        Some(statsd.clone()),
    );
    // On a current-thread runtime the sink task cannot drain the queue until the test
    // awaits. The first message takes the one slot and the second is summed into it;
    // both errors, a counter of another name, find the queue full.
    m.message(None);
    m.message(None);
    m.error("event_handler");
    m.error("event_handler");
    assert_eq!(statsd.dropped(), 2);
    assert!(
        m.render()
            .contains("guildscope_telemetry_dropped_total{sink=\"statsd\"} 2\n")
    );
}
