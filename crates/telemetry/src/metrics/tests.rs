//! The registry's rendered text, exactly, after known updates: counters, histograms,
//! escaping, the `"other"` fold, gauges that come and go, and concurrent updates.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::render::{Seconds, proc};
use super::{BuildInfo, GuildGauges, LabelLimits, Metrics, Outcome};

fn build() -> BuildInfo {
    BuildInfo {
        version: "1.2.3".to_owned(),
        git_sha: "abc123".to_owned(),
    }
}

fn metrics() -> Metrics {
    Metrics::new(build(), None)
}

fn limited(limits: LabelLimits) -> Metrics {
    Metrics::with_limits(build(), None, limits)
}

/// The lines of one family: its `# HELP`, `# TYPE` and samples, each ending in `\n`.
fn family(text: &str, name: &str) -> String {
    let help = format!("# HELP {name} ");
    let start = text
        .find(&help)
        .unwrap_or_else(|| panic!("no family {name} in:\n{text}"));
    let rest = &text[start..];
    let end = rest[1..].find("# HELP ").map_or(rest.len(), |i| i + 1);
    rest[..end].to_owned()
}

/// The samples of one family, without the comment lines.
fn samples(text: &str, name: &str) -> String {
    family(text, name)
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn commands_render_a_counter_per_outcome_and_a_cumulative_histogram() {
    let m = metrics();
    m.command("ping", Outcome::Ok, ms(3));
    m.command("ping", Outcome::Ok, ms(1));
    m.command("ping", Outcome::Error, Duration::from_micros(12_500));
    m.command("ping", Outcome::UserError, Duration::from_secs(11));
    m.command("help", Outcome::UserError, ms(250));
    let text = m.render();

    assert_eq!(
        family(&text, "guildscope_commands_total"),
        "# HELP guildscope_commands_total Commands run, by command and outcome (ok, user_error, error).\n\
         # TYPE guildscope_commands_total counter\n\
         guildscope_commands_total{command=\"help\",outcome=\"ok\"} 0\n\
         guildscope_commands_total{command=\"help\",outcome=\"user_error\"} 1\n\
         guildscope_commands_total{command=\"help\",outcome=\"error\"} 0\n\
         guildscope_commands_total{command=\"ping\",outcome=\"ok\"} 2\n\
         guildscope_commands_total{command=\"ping\",outcome=\"user_error\"} 1\n\
         guildscope_commands_total{command=\"ping\",outcome=\"error\"} 1\n"
    );
    let ping: String = samples(&text, "guildscope_command_duration_seconds")
        .lines()
        .filter(|line| line.contains("command=\"ping\""))
        .map(|line| format!("{line}\n"))
        .collect();
    // 1 ms lands in le=0.001 (bounds are inclusive), 3 ms in 0.005, 12.5 ms in 0.025,
    // 11 s only in +Inf. The sum is exact: 0.001 + 0.003 + 0.0125 + 11.
    assert_eq!(
        ping,
        "guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.001\"} 1\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.0025\"} 1\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.005\"} 2\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.01\"} 2\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.025\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.05\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.1\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.25\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"0.5\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"1\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"2.5\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"5\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"10\"} 3\n\
         guildscope_command_duration_seconds_bucket{command=\"ping\",le=\"+Inf\"} 4\n\
         guildscope_command_duration_seconds_sum{command=\"ping\"} 11.0165\n\
         guildscope_command_duration_seconds_count{command=\"ping\"} 4\n"
    );
}

#[test]
fn rate_limit_and_store_batch_histograms_use_their_own_buckets() {
    let m = metrics();
    m.rest_request("GET /users/@me", Some(200), Duration::ZERO);
    m.rest_request("GET /users/@me", Some(200), Duration::from_secs(45));
    m.store_batch(Duration::from_micros(400), true);
    m.store_batch(ms(20), false);
    let text = m.render();

    assert_eq!(
        samples(&text, "guildscope_rest_ratelimit_wait_seconds"),
        "guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.001\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.005\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.01\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.05\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.1\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.25\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"0.5\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"1\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"2.5\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"5\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"10\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"30\"} 1\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"60\"} 2\n\
         guildscope_rest_ratelimit_wait_seconds_bucket{route=\"GET /users/@me\",le=\"+Inf\"} 2\n\
         guildscope_rest_ratelimit_wait_seconds_sum{route=\"GET /users/@me\"} 45\n\
         guildscope_rest_ratelimit_wait_seconds_count{route=\"GET /users/@me\"} 2\n"
    );
    assert_eq!(
        samples(&text, "guildscope_store_batch_seconds"),
        "guildscope_store_batch_seconds_bucket{le=\"0.0005\"} 1\n\
         guildscope_store_batch_seconds_bucket{le=\"0.001\"} 1\n\
         guildscope_store_batch_seconds_bucket{le=\"0.0025\"} 1\n\
         guildscope_store_batch_seconds_bucket{le=\"0.005\"} 1\n\
         guildscope_store_batch_seconds_bucket{le=\"0.01\"} 1\n\
         guildscope_store_batch_seconds_bucket{le=\"0.025\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"0.05\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"0.1\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"0.25\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"0.5\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"1\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"2.5\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"5\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"10\"} 2\n\
         guildscope_store_batch_seconds_bucket{le=\"+Inf\"} 2\n\
         guildscope_store_batch_seconds_sum 0.0204\n\
         guildscope_store_batch_seconds_count 2\n"
    );
    assert_eq!(
        samples(&text, "guildscope_store_batch_failures_total"),
        "guildscope_store_batch_failures_total 1\n"
    );
}

#[test]
fn rest_requests_are_counted_by_route_and_status_with_none_after_the_codes() {
    let m = metrics();
    let route = "POST /channels/{id}/messages";
    for status in [Some(429), Some(200), None, Some(200), Some(503)] {
        m.rest_request(route, status, Duration::ZERO);
    }
    m.rest_request("GET /gateway/bot", Some(200), Duration::ZERO);
    // Not an HTTP status: folded rather than becoming a label value.
    m.rest_request("GET /gateway/bot", Some(42), Duration::ZERO);
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_rest_requests_total"),
        "guildscope_rest_requests_total{route=\"GET /gateway/bot\",status=\"200\"} 1\n\
         guildscope_rest_requests_total{route=\"GET /gateway/bot\",status=\"other\"} 1\n\
         guildscope_rest_requests_total{route=\"POST /channels/{id}/messages\",status=\"200\"} 2\n\
         guildscope_rest_requests_total{route=\"POST /channels/{id}/messages\",status=\"429\"} 1\n\
         guildscope_rest_requests_total{route=\"POST /channels/{id}/messages\",status=\"503\"} 1\n\
         guildscope_rest_requests_total{route=\"POST /channels/{id}/messages\",status=\"none\"} 1\n"
    );
    assert!(text.contains("guildscope_metrics_labels_folded_total{label=\"status\"} 1\n"));
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::new(
        BuildInfo {
            version: "1.0\n\"beta\"".to_owned(),
            git_sha: r"C:\sha".to_owned(),
        },
        None,
    );
    m.command("say \"hi\"\\now\nplease", Outcome::Ok, ms(1));
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_build_info"),
        "guildscope_build_info{version=\"1.0\\n\\\"beta\\\"\",git_sha=\"C:\\\\sha\"} 1\n"
    );
    assert!(
        text.contains(
            "guildscope_commands_total{command=\"say \\\"hi\\\"\\\\now\\nplease\",outcome=\"ok\"} 1\n"
        ),
        "{text}"
    );
    // Every line is one line: no raw newline escaped into a value.
    assert!(text.lines().all(|line| line.starts_with('#')
        || line.starts_with("guildscope_")
        || line.starts_with("process_")));
}

#[test]
fn values_past_a_label_cap_fold_into_other_and_are_counted() {
    let m = limited(LabelLimits {
        commands: 2,
        events: 1,
        error_kinds: 1,
        ..LabelLimits::default()
    });
    m.command("a", Outcome::Ok, ms(1));
    m.command("b", Outcome::Ok, ms(1));
    m.command("c", Outcome::Ok, ms(1));
    m.command("d", Outcome::Error, ms(1));
    m.command("a", Outcome::Ok, ms(1));
    // A command literally named "other" shares the fold series instead of duplicating
    // it, and is not counted as folded.
    m.command("other", Outcome::Ok, ms(1));
    m.gateway_event("MESSAGE_CREATE");
    m.gateway_event("TYPING_START");
    m.gateway_event("TYPING_START");
    m.error("store_write");
    m.error("event_handler");
    let text = m.render();

    assert_eq!(
        samples(&text, "guildscope_commands_total"),
        "guildscope_commands_total{command=\"a\",outcome=\"ok\"} 2\n\
         guildscope_commands_total{command=\"a\",outcome=\"user_error\"} 0\n\
         guildscope_commands_total{command=\"a\",outcome=\"error\"} 0\n\
         guildscope_commands_total{command=\"b\",outcome=\"ok\"} 1\n\
         guildscope_commands_total{command=\"b\",outcome=\"user_error\"} 0\n\
         guildscope_commands_total{command=\"b\",outcome=\"error\"} 0\n\
         guildscope_commands_total{command=\"other\",outcome=\"ok\"} 2\n\
         guildscope_commands_total{command=\"other\",outcome=\"user_error\"} 0\n\
         guildscope_commands_total{command=\"other\",outcome=\"error\"} 1\n"
    );
    assert!(text.contains("guildscope_command_duration_seconds_count{command=\"other\"} 3\n"));
    assert_eq!(
        samples(&text, "guildscope_gateway_events_total"),
        "guildscope_gateway_events_total{event=\"MESSAGE_CREATE\"} 1\n\
         guildscope_gateway_events_total{event=\"other\"} 2\n"
    );
    assert_eq!(
        samples(&text, "guildscope_errors_total"),
        "guildscope_errors_total{kind=\"store_write\"} 1\n\
         guildscope_errors_total{kind=\"other\"} 1\n"
    );
    assert_eq!(
        samples(&text, "guildscope_metrics_labels_folded_total"),
        "guildscope_metrics_labels_folded_total{label=\"channel\"} 0\n\
         guildscope_metrics_labels_folded_total{label=\"command\"} 2\n\
         guildscope_metrics_labels_folded_total{label=\"event\"} 2\n\
         guildscope_metrics_labels_folded_total{label=\"guild\"} 0\n\
         guildscope_metrics_labels_folded_total{label=\"kind\"} 1\n\
         guildscope_metrics_labels_folded_total{label=\"route\"} 0\n\
         guildscope_metrics_labels_folded_total{label=\"shard\"} 0\n\
         guildscope_metrics_labels_folded_total{label=\"sink\"} 0\n\
         guildscope_metrics_labels_folded_total{label=\"status\"} 0\n\
         guildscope_metrics_labels_folded_total{label=\"table\"} 0\n"
    );
}

#[test]
fn guild_gauges_are_replaced_removed_and_summed_past_the_cap() {
    let m = limited(LabelLimits {
        guilds: 2,
        ..LabelLimits::default()
    });
    let gauges = |members, channels, help_threads_in_use| GuildGauges {
        members,
        channels,
        help_threads_in_use,
    };
    m.guild(20, gauges(100, 10, 1));
    m.guild(3, gauges(5, 2, 0));
    m.guild(20, gauges(101, 11, 2));
    // Past the cap: 7 and 9 are rendered together as "other".
    m.guild(7, gauges(1_000, 50, 3));
    m.guild(9, gauges(2_000, 60, 4));
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_guild_members"),
        "guildscope_guild_members{guild=\"3\"} 5\n\
         guildscope_guild_members{guild=\"20\"} 101\n\
         guildscope_guild_members{guild=\"other\"} 3000\n"
    );
    assert_eq!(
        samples(&text, "guildscope_guild_channels"),
        "guildscope_guild_channels{guild=\"3\"} 2\n\
         guildscope_guild_channels{guild=\"20\"} 11\n\
         guildscope_guild_channels{guild=\"other\"} 110\n"
    );
    assert_eq!(
        samples(&text, "guildscope_help_threads_in_use"),
        "guildscope_help_threads_in_use{guild=\"3\"} 0\n\
         guildscope_help_threads_in_use{guild=\"20\"} 2\n\
         guildscope_help_threads_in_use{guild=\"other\"} 7\n"
    );
    assert!(text.contains("guildscope_metrics_labels_folded_total{label=\"guild\"} 2\n"));

    // Leaving a labelled guild hands its series to the folded guild with the lowest id.
    m.guild_removed(20);
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_guild_members"),
        "guildscope_guild_members{guild=\"3\"} 5\n\
         guildscope_guild_members{guild=\"7\"} 1000\n\
         guildscope_guild_members{guild=\"other\"} 2000\n"
    );

    // Leaving every folded guild removes the "other" series; a freed slot goes to the
    // next new guild; unknown guilds are ignored.
    m.guild_removed(9);
    m.guild_removed(7);
    m.guild_removed(12_345);
    m.guild(4, gauges(40, 4, 0));
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_guild_members"),
        "guildscope_guild_members{guild=\"3\"} 5\n\
         guildscope_guild_members{guild=\"4\"} 40\n"
    );

    m.guild_removed(3);
    m.guild_removed(4);
    let text = m.render();
    assert_eq!(
        family(&text, "guildscope_guild_members"),
        "# HELP guildscope_guild_members Members, by guild.\n\
         # TYPE guildscope_guild_members gauge\n"
    );
}

#[test]
fn shard_latency_is_omitted_while_unknown() {
    let m = metrics();
    m.shard_connected(1, false);
    m.shard_connected(0, true);
    m.gateway_latency(0, Some(Duration::from_micros(41_250)));
    m.gateway_latency(1, Some(ms(80)));
    m.gateway_latency(1, None);
    m.gateway_latency(10, Some(ms(5)));
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_gateway_latency_seconds"),
        "guildscope_gateway_latency_seconds{shard=\"0\"} 0.04125\n\
         guildscope_gateway_latency_seconds{shard=\"10\"} 0.005\n"
    );
    assert_eq!(
        samples(&text, "guildscope_shard_connected"),
        "guildscope_shard_connected{shard=\"0\"} 1\n\
         guildscope_shard_connected{shard=\"1\"} 0\n"
    );
}

#[test]
fn simple_counters_and_dropped_telemetry_render_exactly() {
    let m = metrics();
    m.message(Some("general"));
    m.message(None);
    m.store_rows("messages", 250);
    m.store_rows("members", 3);
    m.store_rows("messages", 50);
    m.telemetry_dropped("otlp", 2);
    m.telemetry_dropped("otlp", 3);
    m.set_telemetry_dropped("sentry", 7);
    m.set_telemetry_dropped("sentry", 9);
    let text = m.render();
    assert_eq!(
        samples(&text, "guildscope_messages_total"),
        "guildscope_messages_total 2\n"
    );
    assert_eq!(
        samples(&text, "guildscope_store_rows_total"),
        "guildscope_store_rows_total{table=\"members\"} 3\n\
         guildscope_store_rows_total{table=\"messages\"} 300\n"
    );
    assert_eq!(
        samples(&text, "guildscope_telemetry_dropped_total"),
        "guildscope_telemetry_dropped_total{sink=\"otlp\"} 5\n\
         guildscope_telemetry_dropped_total{sink=\"sentry\"} 9\n"
    );
    assert_eq!(
        samples(&text, "guildscope_build_info"),
        "guildscope_build_info{version=\"1.2.3\",git_sha=\"abc123\"} 1\n"
    );
}

#[test]
fn an_empty_registry_renders_every_family_in_a_fixed_order() {
    let text = metrics().render();
    let families: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| rest.split(' ').next().unwrap_or_default())
        .collect();
    let mut expected = vec![
        "guildscope_build_info",
        "guildscope_commands_total",
        "guildscope_command_duration_seconds",
        "guildscope_gateway_events_total",
        "guildscope_gateway_latency_seconds",
        "guildscope_shard_connected",
        "guildscope_messages_total",
        "guildscope_rest_requests_total",
        "guildscope_rest_ratelimit_wait_seconds",
        "guildscope_store_rows_total",
        "guildscope_store_batch_seconds",
        "guildscope_store_batch_failures_total",
        "guildscope_guild_members",
        "guildscope_guild_channels",
        "guildscope_help_threads_in_use",
        "guildscope_errors_total",
        "guildscope_telemetry_dropped_total",
        "guildscope_metrics_scrapes_total",
        "guildscope_metrics_labels_folded_total",
    ];
    if cfg!(target_os = "linux") {
        expected.extend([
            "process_start_time_seconds",
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
        ]);
    }
    assert_eq!(families, expected);
    // Rendering twice gives the same text, apart from the process families.
    let m = metrics();
    m.command("b", Outcome::Ok, ms(1));
    m.command("a", Outcome::Ok, ms(1));
    let cut = |text: String| text[..text.find("# HELP process_").unwrap_or(text.len())].to_owned();
    assert_eq!(cut(m.render()), cut(m.render()));
}

#[cfg(target_os = "linux")]
#[test]
fn process_families_come_from_proc_self() {
    let text = metrics().render();
    let value = |name: &str| -> f64 {
        samples(&text, name)
            .strip_prefix(&format!("{name} "))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} sample in:\n{text}"))
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = value("process_start_time_seconds");
    assert!(
        start > now - 3600.0 && start <= now + 1.0,
        "start {start}, now {now}"
    );
    assert!(value("process_resident_memory_bytes") > 1_000_000.0);
    assert!(value("process_cpu_seconds_total") >= 0.0);
}

#[test]
fn proc_parsers_read_the_right_fields() {
    // A command name with spaces and parentheses must not shift the fields.
    let stat = "4242 (my (odd) bot) S 1 4242 4242 0 -1 4194560 500 0 0 0 \
                123 45 0 0 20 0 8 0 98765 123456789 2048 18446744073709551615";
    assert_eq!(
        proc::parse_stat(stat),
        Some(proc::Stat {
            cpu_ticks: 168,
            start_ticks: 98_765,
        })
    );
    assert_eq!(proc::parse_stat("garbage"), None);
    assert_eq!(
        proc::parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 5\n"),
        Some(1_700_000_000)
    );
    assert_eq!(
        proc::parse_rss_bytes("Name:\tbot\nVmRSS:\t   2048 kB\nThreads:\t4\n"),
        Some(2_097_152)
    );
    assert_eq!(proc::parse_rss_bytes("Name:\tbot\n"), None);
    assert_eq!(proc::ticks_to_nanos(168), 1_680_000_000);
}

#[test]
fn seconds_are_printed_exactly() {
    let cases = [
        (0, "0"),
        (1, "0.000000001"),
        (500_000, "0.0005"),
        (2_500_000, "0.0025"),
        (1_000_000_000, "1"),
        (12_500_000_000, "12.5"),
        (u64::MAX, "18446744073.709551615"),
    ];
    for (nanos, expected) in cases {
        assert_eq!(Seconds(nanos).to_string(), expected);
    }
}

#[test]
fn scrape_hooks_run_before_each_render() {
    let m = metrics();
    let runs = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&runs);
    m.on_scrape(Box::new(move |metrics: &Metrics| {
        let run = seen.fetch_add(1, Ordering::Relaxed) + 1;
        metrics.guild(
            1,
            GuildGauges {
                members: run * 10,
                ..GuildGauges::default()
            },
        );
    }));
    assert!(
        m.render()
            .contains("guildscope_guild_members{guild=\"1\"} 10\n")
    );
    assert!(
        m.render()
            .contains("guildscope_guild_members{guild=\"1\"} 20\n")
    );
    assert_eq!(runs.load(Ordering::Relaxed), 2);
}

#[test]
fn concurrent_updates_add_up_exactly() {
    const THREADS: u64 = 8;
    const UPDATES: u64 = 20_000;
    let m = Arc::new(limited(LabelLimits {
        commands: 3,
        ..LabelLimits::default()
    }));
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let m = Arc::clone(&m);
            scope.spawn(move || {
                for i in 0..UPDATES {
                    // Every thread races to create the same few labels, and more
                    // commands than the cap allows.
                    let command = ["a", "b", "c", "d", "e"][usize::try_from(i % 5).unwrap()];
                    m.command(command, Outcome::Ok, ms(2));
                    m.gateway_event(if i % 2 == 0 {
                        "MESSAGE_CREATE"
                    } else {
                        "TYPING_START"
                    });
                    m.message(None);
                    m.rest_request("GET /gateway/bot", Some(200), Duration::ZERO);
                    m.store_rows("messages", 2);
                    m.guild(
                        thread,
                        GuildGauges {
                            members: i,
                            ..GuildGauges::default()
                        },
                    );
                }
            });
        }
    });
    let total = THREADS * UPDATES;
    let text = m.render();
    let per_command = total / 5;
    assert_eq!(
        samples(&text, "guildscope_commands_total")
            .lines()
            .filter(|line| line.contains("outcome=\"ok\""))
            .collect::<Vec<_>>(),
        [
            format!("guildscope_commands_total{{command=\"a\",outcome=\"ok\"}} {per_command}"),
            format!("guildscope_commands_total{{command=\"b\",outcome=\"ok\"}} {per_command}"),
            format!("guildscope_commands_total{{command=\"c\",outcome=\"ok\"}} {per_command}"),
            format!(
                "guildscope_commands_total{{command=\"other\",outcome=\"ok\"}} {}",
                2 * per_command
            ),
        ]
    );
    assert!(text.contains(&format!(
        "guildscope_command_duration_seconds_bucket{{command=\"a\",le=\"0.0025\"}} {per_command}\n"
    )));
    assert_eq!(
        samples(&text, "guildscope_gateway_events_total"),
        format!(
            "guildscope_gateway_events_total{{event=\"MESSAGE_CREATE\"}} {}\n\
             guildscope_gateway_events_total{{event=\"TYPING_START\"}} {}\n",
            total / 2,
            total / 2
        )
    );
    assert_eq!(
        samples(&text, "guildscope_messages_total"),
        format!("guildscope_messages_total {total}\n")
    );
    assert_eq!(
        samples(&text, "guildscope_rest_requests_total"),
        format!(
            "guildscope_rest_requests_total{{route=\"GET /gateway/bot\",status=\"200\"}} {total}\n"
        )
    );
    assert_eq!(
        samples(&text, "guildscope_store_rows_total"),
        format!(
            "guildscope_store_rows_total{{table=\"messages\"}} {}\n",
            2 * total
        )
    );
    assert!(text.contains(&format!(
        "guildscope_metrics_labels_folded_total{{label=\"command\"}} {}\n",
        2 * per_command
    )));
    for thread in 0..THREADS {
        assert!(text.contains(&format!(
            "guildscope_guild_members{{guild=\"{thread}\"}} {}\n",
            UPDATES - 1
        )));
    }
}

#[test]
fn otlp_metrics_carry_the_same_values_as_cumulative_sums_gauges_and_per_bucket_histograms() {
    use opentelemetry_proto::tonic::metrics::v1::{
        AggregationTemporality, metric::Data, number_data_point::Value,
    };
    use std::time::{SystemTime, UNIX_EPOCH};

    let m = metrics();
    m.command("ping", Outcome::Ok, ms(3));
    m.command("ping", Outcome::Ok, ms(1));
    m.command("ping", Outcome::Error, Duration::from_secs(11));
    m.guild(
        7,
        GuildGauges {
            members: 12,
            channels: 3,
            help_threads_in_use: 1,
        },
    );
    m.gateway_latency(0, Some(ms(42)));
    let now = SystemTime::now();
    let metrics = m.otlp(now);
    let named = |name: &str| {
        metrics
            .iter()
            .find(|metric| metric.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let nanos = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let label = |attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str| {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
            .map(|v| format!("{v:?}"))
    };

    // Counters: monotonic cumulative sums from the registry's start, integer points.
    let commands = named("guildscope_commands_total");
    assert_eq!(commands.unit, "");
    let Some(Data::Sum(sum)) = &commands.data else {
        panic!("{commands:?}")
    };
    assert!(sum.is_monotonic);
    assert_eq!(
        sum.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(sum.data_points.len(), 3, "one point per outcome");
    for point in &sum.data_points {
        assert_eq!(point.time_unix_nano, nanos(now));
        assert!(point.start_time_unix_nano > 0 && point.start_time_unix_nano <= nanos(now));
    }
    let ok = sum
        .data_points
        .iter()
        .find(|p| label(&p.attributes, "outcome").is_some_and(|o| o.contains("\"ok\"")))
        .unwrap();
    assert_eq!(ok.value, Some(Value::AsInt(2)));

    // Histograms: per-bucket counts (not cumulative), one more than the bounds, which
    // are in seconds; the sum in seconds.
    let durations = named("guildscope_command_duration_seconds");
    assert_eq!(durations.unit, "s");
    let Some(Data::Histogram(histogram)) = &durations.data else {
        panic!("{durations:?}")
    };
    assert_eq!(
        histogram.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let point = &histogram.data_points[0];
    assert_eq!(point.count, 3);
    assert_eq!(point.sum, Some(11.004));
    assert_eq!(point.explicit_bounds[0], 0.001);
    assert_eq!(point.explicit_bounds[2], 0.005);
    assert_eq!(point.bucket_counts.len(), point.explicit_bounds.len() + 1);
    assert_eq!(point.bucket_counts[0], 1, "1 ms, bounds are inclusive");
    assert_eq!(point.bucket_counts[1], 0);
    assert_eq!(point.bucket_counts[2], 1, "3 ms");
    assert_eq!(
        point.bucket_counts.last(),
        Some(&1),
        "11 s, above every bound"
    );
    assert_eq!(point.bucket_counts.iter().sum::<u64>(), 3);

    // Gauges: no start time; durations as seconds, counts as integers.
    let Some(Data::Gauge(latency)) = &named("guildscope_gateway_latency_seconds").data else {
        panic!()
    };
    assert_eq!(latency.data_points[0].value, Some(Value::AsDouble(0.042)));
    assert_eq!(latency.data_points[0].start_time_unix_nano, 0);
    let Some(Data::Gauge(members)) = &named("guildscope_guild_members").data else {
        panic!()
    };
    assert_eq!(members.data_points[0].value, Some(Value::AsInt(12)));
    assert_eq!(
        label(&members.data_points[0].attributes, "guild").as_deref(),
        Some("StringValue(\"7\")")
    );

    // Families with nothing in them are left out; every family of the text is there
    // otherwise.
    assert!(
        metrics
            .iter()
            .all(|metric| metric.name != "guildscope_rest_ratelimit_wait_seconds")
    );
    let text = m.render();
    for metric in &metrics {
        assert!(
            text.contains(&format!("# TYPE {} ", metric.name)),
            "{}",
            metric.name
        );
    }
}
