//! The StatsD sink over a real UDP socket: exact bytes, packing, sanitising, a dead server
//! and a full queue. Every wait is on a datagram or a flush, bounded by a timeout; nothing
//! passes by sleeping long enough.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::timeout;

use super::{EncodeError, Encoder, Metric, Statsd, StatsdConfig, StatsdError, WAKE_DATAGRAMS};

/// How long a test waits for something that should happen at once.
const PATIENCE: Duration = Duration::from_secs(5);

/// A StatsD server: a UDP socket on a free loopback port.
struct Server {
    socket: UdpSocket,
}

impl Server {
    async fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        Self { socket }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    fn config(&self) -> StatsdConfig {
        StatsdConfig::new(self.addr().to_string()).unwrap()
    }

    /// The next datagram, exactly as received.
    async fn recv(&self) -> String {
        let mut buf = vec![0; 65_536];
        let len = timeout(PATIENCE, self.socket.recv(&mut buf))
            .await
            .expect("no datagram arrived in time")
            .unwrap();
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }
}

/// A call on the handle and the exact datagram it must produce.
type EmitCase = (fn(&Statsd), &'static str);

async fn start(config: StatsdConfig) -> Statsd {
    let (statsd, _task) = Statsd::start(config).await.unwrap();
    statsd
}

#[tokio::test]
async fn each_metric_type_is_sent_as_exact_bytes() {
    let server = Server::bind().await;
    let statsd = start(server.config()).await;

    let cases: [EmitCase; 7] = [
        (
            |s| s.count("commands.ping", 1),
            "guildscope.commands.ping:1|c",
        ),
        (|s| s.count("messages", -3), "guildscope.messages:-3|c"),
        (
            |s| s.gauge("guild.total_members", 42.0),
            "guildscope.guild.total_members:42|g",
        ),
        (
            |s| s.gauge("boost.ratio", 0.25),
            "guildscope.boost.ratio:0.25|g",
        ),
        (
            |s| s.gauge("help.total.in_use", -2.0),
            "guildscope.help.total.in_use:0|g\nguildscope.help.total.in_use:-2|g",
        ),
        (
            |s| s.timing("help.in_use_time", Duration::from_micros(12_500)),
            "guildscope.help.in_use_time:12.5|ms",
        ),
        (
            |s| s.send(Metric::counter("channels.general", 1).with_sample_rate(0.1)),
            "guildscope.channels.general:1|c|@0.1",
        ),
    ];
    for (emit, expected) in cases {
        emit(&statsd);
        statsd.flush().await.unwrap();
        assert_eq!(server.recv().await, expected);
    }
    assert_eq!(statsd.dropped(), 0);
    assert_eq!(statsd.send_errors(), 0);
}

#[tokio::test]
async fn configured_prefix_is_joined_with_a_dot_and_empty_prefix_adds_none() {
    let server = Server::bind().await;
    let custom = start(StatsdConfig {
        prefix: "bot".to_owned(),
        ..server.config()
    })
    .await;
    custom.count("errors.bad_argument", 1);
    custom.flush().await.unwrap();
    assert_eq!(server.recv().await, "bot.errors.bad_argument:1|c");

    let bare = start(StatsdConfig {
        prefix: String::new(),
        ..server.config()
    })
    .await;
    bare.timing("latency", Duration::from_millis(3));
    bare.flush().await.unwrap();
    assert_eq!(server.recv().await, "latency:3|ms");
}

#[tokio::test]
async fn names_are_sanitised_to_the_statsd_alphabet() {
    let server = Server::bind().await;
    let statsd = start(server.config()).await;

    // `:`, `|`, `@` and newlines would break the line format; spaces and non-ASCII
    // characters confuse servers. Each character (not byte) becomes one `_`.
    statsd.count("channels.off topic:chat|x@y\nz/é", 1);
    statsd.flush().await.unwrap();
    assert_eq!(
        server.recv().await,
        "guildscope.channels.off_topic_chat_x_y_z__:1|c"
    );
}

#[tokio::test]
async fn many_metrics_are_packed_into_datagrams_no_larger_than_max_and_never_split() {
    let server = Server::bind().await;
    let max_datagram = 100;
    let statsd = start(StatsdConfig {
        max_datagram,
        ..server.config()
    })
    .await;

    let expected: Vec<String> = (0..300)
        .map(|i| format!("guildscope.channels.c{i}:{i}|c"))
        .collect();
    for i in 0..300 {
        statsd.count(&format!("channels.c{i}"), i);
    }
    statsd.flush().await.unwrap();

    let mut received = Vec::new();
    let mut datagrams = 0;
    while received.len() < expected.len() {
        let datagram = server.recv().await;
        datagrams += 1;
        assert!(
            datagram.len() <= max_datagram,
            "datagram of {} bytes: {datagram:?}",
            datagram.len()
        );
        assert!(!datagram.ends_with('\n') && !datagram.starts_with('\n'));
        received.extend(datagram.split('\n').map(str::to_owned));
    }
    // Every line is a whole metric, in order: nothing was split across datagrams.
    assert_eq!(received, expected);
    // And they really were packed: about three 30-byte lines per 100-byte datagram.
    assert!(datagrams <= 120, "{datagrams} datagrams for 300 metrics");
    assert_eq!(statsd.datagrams_sent(), datagrams);
    assert_eq!(statsd.dropped(), 0);
}

#[tokio::test]
async fn a_metric_larger_than_a_datagram_is_dropped_not_split() {
    let server = Server::bind().await;
    let statsd = start(StatsdConfig {
        max_datagram: 64,
        ..server.config()
    })
    .await;

    statsd.count(&"x".repeat(64), 1);
    statsd.count("messages", 1);
    statsd.flush().await.unwrap();

    assert_eq!(server.recv().await, "guildscope.messages:1|c");
    assert_eq!(statsd.dropped(), 1);
}

#[tokio::test]
async fn a_partly_filled_datagram_is_sent_after_the_flush_interval() {
    let server = Server::bind().await;
    let statsd = start(StatsdConfig {
        flush_interval: Duration::from_millis(20),
        ..server.config()
    })
    .await;

    statsd.count("messages", 1);
    statsd.count("channels.general", 1);
    // No flush: the interval alone must send it.
    assert_eq!(
        server.recv().await,
        "guildscope.messages:1|c\nguildscope.channels.general:1|c"
    );
}

#[tokio::test]
async fn several_full_datagrams_are_sent_at_once_without_waiting_for_the_interval() {
    let server = Server::bind().await;
    let statsd = start(StatsdConfig {
        max_datagram: 64,
        // Far longer than the test waits: only a batch of full datagrams can be sent.
        flush_interval: Duration::from_secs(3600),
        ..server.config()
    })
    .await;

    // Two 24-byte lines fill a 64-byte datagram, and 22 lines are 528 bytes, past
    // the eight datagrams' worth (512 bytes) that wakes the sink: ten datagrams go
    // out at once, and the last two lines wait for the interval.
    let lines = (WAKE_DATAGRAMS * 64).div_ceil(24);
    assert_eq!(lines, 22);
    for _ in 0..lines {
        statsd.timing("latency", Duration::from_millis(12));
    }
    for _ in 0..10 {
        assert_eq!(
            server.recv().await,
            "guildscope.latency:12|ms\nguildscope.latency:12|ms"
        );
    }
    assert_eq!(statsd.datagrams_sent(), 10);
    // One line fewer wakes nothing: the sink keeps to its interval.
    let quiet = Server::bind().await;
    let statsd = start(StatsdConfig {
        max_datagram: 64,
        flush_interval: Duration::from_secs(3600),
        ..quiet.config()
    })
    .await;
    for _ in 0..lines - 1 {
        statsd.timing("latency", Duration::from_millis(12));
    }
    let mut buf = [0; 128];
    assert!(
        timeout(Duration::from_millis(300), quiet.socket.recv(&mut buf))
            .await
            .is_err(),
        "a datagram went out before eight datagrams' worth waited"
    );
    statsd.flush().await.unwrap();
    assert_eq!(statsd.datagrams_sent(), 11);
}

#[tokio::test]
async fn counters_are_summed_by_name_until_they_are_sent() {
    let server = Server::bind().await;
    let statsd = start(server.config()).await;

    for _ in 0..1_000 {
        statsd.count("messages", 1);
    }
    statsd.count("channels.general", 2);
    statsd.count("messages", -4);
    statsd.count("channels.general", 3);
    statsd.timing("latency", Duration::from_millis(7));
    statsd.flush().await.unwrap();
    assert_eq!(
        server.recv().await,
        "guildscope.latency:7|ms\nguildscope.messages:996|c\nguildscope.channels.general:5|c"
    );

    // A send starts the sums again.
    statsd.count("messages", 1);
    statsd.flush().await.unwrap();
    assert_eq!(server.recv().await, "guildscope.messages:1|c");

    // A counter with a sample rate is its own line, as StatsD scales it.
    statsd.send(Metric::counter("messages", 1).with_sample_rate(0.5));
    statsd.send(Metric::counter("messages", 1).with_sample_rate(0.5));
    statsd.flush().await.unwrap();
    assert_eq!(
        server.recv().await,
        "guildscope.messages:1|c|@0.5\nguildscope.messages:1|c|@0.5"
    );
    assert_eq!(statsd.dropped(), 0);
}

/// A gauge's last value is the one the server keeps: set on two threads, one after the
/// other, gauges go out in the order they were set, not thread by thread.
#[tokio::test]
async fn gauges_set_on_several_threads_go_out_in_the_order_they_were_set() {
    let server = Server::bind().await;
    let statsd = start(StatsdConfig {
        // Only the flush sends, so every gauge is in the one datagram.
        flush_interval: Duration::from_secs(3600),
        ..server.config()
    })
    .await;
    std::thread::scope(|scope| {
        let (order, orders) = std::sync::mpsc::channel::<f64>();
        let (done, set) = std::sync::mpsc::channel();
        let first = statsd.clone();
        scope.spawn(move || {
            for value in orders {
                first.gauge("guild.total_members", value);
                done.send(()).unwrap();
            }
        });
        order.send(1.0).unwrap();
        set.recv().unwrap();
        let second = statsd.clone();
        scope
            .spawn(move || second.gauge("guild.total_members", 2.0))
            .join()
            .unwrap();
        order.send(3.0).unwrap();
        set.recv().unwrap();
    });
    statsd.flush().await.unwrap();
    assert_eq!(
        server.recv().await,
        "guildscope.guild.total_members:1|g\nguildscope.guild.total_members:2|g\nguildscope.guild.total_members:3|g"
    );
}

#[tokio::test]
async fn dropping_every_handle_sends_what_is_queued_and_ends_the_task() {
    let server = Server::bind().await;
    let (statsd, task) = Statsd::start(StatsdConfig {
        // Long enough that only the shutdown can be what sends the datagram.
        flush_interval: Duration::from_secs(3600),
        ..server.config()
    })
    .await
    .unwrap();
    let clone = statsd.clone();
    statsd.count("commands.ping", 1);
    clone.gauge("guild.total_members", 7.0);
    drop(statsd);
    drop(clone);

    timeout(PATIENCE, task).await.unwrap().unwrap();
    // Summed counters are written after the other lines.
    assert_eq!(
        server.recv().await,
        "guildscope.guild.total_members:7|g\nguildscope.commands.ping:1|c"
    );
}

#[tokio::test]
async fn a_dead_destination_counts_send_errors_and_never_stops_the_sink() {
    // A port nobody listens on: bind one, note it, close it.
    let dead = Server::bind().await.addr();
    let statsd = start(StatsdConfig::new(dead.to_string()).unwrap()).await;

    // The first datagram goes out; the ICMP "port unreachable" it provokes makes a later
    // send fail with ECONNREFUSED. Keep sending until that has been counted.
    let mut attempts = 0_u64;
    timeout(PATIENCE, async {
        while statsd.send_errors() == 0 {
            attempts += 1;
            statsd.count("messages", 1);
            statsd.flush().await.unwrap();
        }
    })
    .await
    .expect("no send error was counted");

    // The task is still alive and still accounting for every datagram.
    statsd.count("messages", 1);
    statsd.flush().await.unwrap();
    assert_eq!(statsd.datagrams_sent() + statsd.send_errors(), attempts + 1);
    assert_eq!(statsd.dropped(), 0);
}

// A current-thread runtime, so the sink task logs to this thread's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_dead_destination_is_logged_once_not_on_every_failed_send() {
    let logs = guildscope_testkit::logs::LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let dead = Server::bind().await.addr();
    let statsd = start(StatsdConfig::new(dead.to_string()).unwrap()).await;

    // Every other send fails (each one answers the ICMP "port unreachable" the send
    // before provoked): keep going until several have failed.
    timeout(PATIENCE, async {
        while statsd.send_errors() < 5 {
            statsd.count("messages", 1);
            statsd.flush().await.unwrap();
        }
    })
    .await
    .expect("sends to a dead port did not fail");

    assert_eq!(
        logs.lines_with_message("statsd send failed; metrics are being lost")
            .len(),
        1,
        "{}",
        logs.text()
    );
    assert!(logs.lines_with_message("statsd sends recovered").is_empty());
}

// A current-thread runtime: the sink task cannot run while the test does not await, so
// the queue fills deterministically. If a metric call blocked, this test would hang.
#[tokio::test(flavor = "current_thread")]
async fn a_full_queue_drops_and_counts_instead_of_blocking() {
    let server = Server::bind().await;
    let statsd = start(StatsdConfig {
        queue: 2,
        ..server.config()
    })
    .await;

    // Two places: a timing and a counter take them, and a counter already
    // waiting keeps summing without taking another.
    statsd.timing("command_duration.ping", Duration::from_millis(3));
    for i in 0..10 {
        statsd.count("messages", i);
    }
    for i in 0..8 {
        statsd.timing("command_duration.help", Duration::from_millis(i));
        statsd.count(&format!("channels.c{i}"), 1);
    }
    assert_eq!(statsd.dropped(), 16);

    statsd.flush().await.unwrap();
    assert_eq!(
        server.recv().await,
        "guildscope.command_duration.ping:3|ms\nguildscope.messages:45|c"
    );

    // With room again, metrics flow.
    statsd.count("messages", 10);
    statsd.flush().await.unwrap();
    assert_eq!(server.recv().await, "guildscope.messages:10|c");
    assert_eq!(statsd.dropped(), 16);
}

#[tokio::test]
async fn a_host_name_is_resolved_when_the_sink_starts() {
    // Listen on whichever address `localhost` resolves to first (127.0.0.1 or ::1), which
    // is the one the sink will pick.
    let first = tokio::net::lookup_host("localhost:0")
        .await
        .unwrap()
        .next()
        .unwrap();
    let server = Server {
        socket: UdpSocket::bind(first).await.unwrap(),
    };
    let address = format!("localhost:{}", server.addr().port());
    let statsd = start(StatsdConfig::new(address).unwrap()).await;

    statsd.count("messages", 1);
    statsd.flush().await.unwrap();
    assert_eq!(server.recv().await, "guildscope.messages:1|c");
}

#[test]
fn encoder_writes_the_statsd_line_format() {
    let encoder = Encoder::new("gs");
    let cases: [(Metric<'_>, &str); 15] = [
        (Metric::counter("a", 1), "gs.a:1|c"),
        (Metric::counter("a", 0), "gs.a:0|c"),
        (Metric::counter("a", -3), "gs.a:-3|c"),
        (
            Metric::counter("a", i64::MIN),
            "gs.a:-9223372036854775808|c",
        ),
        (Metric::counter("a b/c", 2), "gs.a_b_c:2|c"),
        (
            Metric::timer("a", Duration::from_micros(12_500)),
            "gs.a:12.5|ms",
        ),
        (
            Metric::timer("a", Duration::from_nanos(1_020_304)),
            "gs.a:1.020304|ms",
        ),
        (
            Metric::timer("a", Duration::from_nanos(3_040_500)),
            "gs.a:3.0405|ms",
        ),
        (Metric::gauge("a", 1.5), "gs.a:1.5|g"),
        (Metric::gauge("a", -0.5), "gs.a:0|g\ngs.a:-0.5|g"),
        (Metric::timer("a", Duration::ZERO), "gs.a:0|ms"),
        (
            Metric::timer("a", Duration::from_nanos(1)),
            "gs.a:0.000001|ms",
        ),
        (Metric::timer("a", Duration::from_secs(2)), "gs.a:2000|ms"),
        (Metric::counter("a", 1).with_sample_rate(1.0), "gs.a:1|c"),
        (
            Metric::timer("a", Duration::from_millis(5)).with_sample_rate(0.25),
            "gs.a:5|ms|@0.25",
        ),
    ];
    for (metric, expected) in cases {
        assert_eq!(encoder.encode(&metric).unwrap(), expected, "{metric:?}");
    }
    // Every fraction of a millisecond, as six decimals with the trailing zeros cut.
    for nanos in (0..3_000_000u64)
        .step_by(997)
        .chain([999_999, 1_000_001, u64::MAX])
    {
        let fraction = format!("{:06}", nanos % 1_000_000);
        let fraction = fraction.trim_end_matches('0');
        let whole = nanos / 1_000_000;
        let expected = if fraction.is_empty() {
            format!("gs.a:{whole}|ms")
        } else {
            format!("gs.a:{whole}.{fraction}|ms")
        };
        let metric = Metric::timer("a", Duration::from_nanos(nanos));
        assert_eq!(encoder.encode(&metric).unwrap(), expected);
    }
    // Whole milliseconds past `u64::MAX` saturate; the fraction stays exact.
    assert_eq!(
        encoder.encode(&Metric::timer("a", Duration::MAX)).unwrap(),
        format!("gs.a:{}.999999|ms", u64::MAX)
    );
}

#[test]
fn encoder_rejects_what_statsd_cannot_carry() {
    let encoder = Encoder::new("");
    assert_eq!(
        encoder.encode(&Metric::counter("", 1)),
        Err(EncodeError::EmptyName)
    );
    assert!(matches!(
        encoder.encode(&Metric::gauge("a", f64::NAN)),
        Err(EncodeError::NonFinite { .. })
    ));
    for rate in [0.0, -1.0, 1.5, f64::NAN] {
        assert!(matches!(
            encoder.encode(&Metric::counter("a", 1).with_sample_rate(rate)),
            Err(EncodeError::InvalidSampleRate { .. })
        ));
    }
}

#[tokio::test]
async fn unencodable_metrics_are_dropped_and_counted() {
    let server = Server::bind().await;
    let statsd = start(server.config()).await;
    statsd.gauge("a", f64::INFINITY);
    statsd.send(Metric::counter("a", 1).with_sample_rate(2.0));
    assert_eq!(statsd.dropped(), 2);
}

#[test]
fn config_from_toml_uses_defaults_and_rejects_unknown_keys() {
    let config: StatsdConfig = toml::from_str(r#"address = "127.0.0.1:8125""#).unwrap();
    assert_eq!(config, StatsdConfig::new("127.0.0.1:8125").unwrap());
    assert_eq!(config.prefix, "guildscope");
    assert_eq!(config.max_datagram, 1432);
    assert_eq!(config.flush_interval, Duration::from_millis(100));
    assert_eq!(config.queue, 10_000);

    let full: StatsdConfig = toml::from_str(
        r#"
        address = "statsd.internal:8125"
        prefix = "bot"
        max_datagram = 512
        flush_interval_ms = 250
        queue = 64
        "#,
    )
    .unwrap();
    full.validate().unwrap();
    assert_eq!(full.flush_interval, Duration::from_millis(250));

    let unknown = toml::from_str::<StatsdConfig>(
        r#"
        address = "127.0.0.1:8125"
        prefx = "bot"
        "#,
    );
    assert!(unknown.unwrap_err().to_string().contains("prefx"));
}

#[test]
fn config_validation_names_the_offending_field() {
    let base = StatsdConfig::new("127.0.0.1:8125").unwrap();
    let cases: [(StatsdConfig, &str); 11] = [
        (
            StatsdConfig {
                address: String::new(),
                ..base.clone()
            },
            "address",
        ),
        (
            StatsdConfig {
                address: "localhost".into(),
                ..base.clone()
            },
            "address",
        ),
        (
            StatsdConfig {
                address: "localhost:0".into(),
                ..base.clone()
            },
            "address",
        ),
        (
            StatsdConfig {
                address: "localhost:99999".into(),
                ..base.clone()
            },
            "address",
        ),
        (
            StatsdConfig {
                address: "::1:8125".into(),
                ..base.clone()
            },
            "address",
        ),
        (
            StatsdConfig {
                prefix: "bot stats".into(),
                ..base.clone()
            },
            "prefix",
        ),
        (
            StatsdConfig {
                prefix: "bot.".into(),
                ..base.clone()
            },
            "prefix",
        ),
        (
            StatsdConfig {
                max_datagram: 10,
                ..base.clone()
            },
            "max_datagram",
        ),
        (
            StatsdConfig {
                max_datagram: 70_000,
                ..base.clone()
            },
            "max_datagram",
        ),
        (
            StatsdConfig {
                flush_interval: Duration::ZERO,
                ..base.clone()
            },
            "flush_interval",
        ),
        (
            StatsdConfig {
                queue: 0,
                ..base.clone()
            },
            "queue",
        ),
    ];
    for (config, field) in cases {
        match config.validate() {
            Err(StatsdError::InvalidConfig { field: got, .. }) => {
                assert_eq!(got, field, "{config:?}");
            }
            other => panic!("{config:?} gave {other:?}"),
        }
    }
    StatsdConfig::new("[::1]:8125").unwrap();
    StatsdConfig::new("statsd:8125").unwrap();
}

#[tokio::test]
async fn start_refuses_an_invalid_config() {
    let config = StatsdConfig {
        queue: 0,
        ..StatsdConfig::new("127.0.0.1:8125").unwrap()
    };
    assert!(matches!(
        Statsd::start(config).await,
        Err(StatsdError::InvalidConfig { field: "queue", .. })
    ));
}
