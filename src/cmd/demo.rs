//! `guildscope demo`: simulator, bot and SQLite in one process, with live
//! progress and a summary of what flowed. Message commands are on (`!`): a
//! simulated member types a few, and the summary shows them answered.

use std::{
    fmt::Write as _,
    io::{IsTerminal, Write as _},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use guildscope_bot::{
    BotConfig, LatencySummary, Snapshot, WriterConfig, commands,
    roles::{RoleConfig, RoleRef},
};
use guildscope_discord::PrefixCommands;
use guildscope_simulator::{
    BotMessage, ChannelKind, Community, GroundTruth, MessageRequest, SimConfig, Simulator,
};
use guildscope_store::Location;

use crate::{
    cli::DemoArgs,
    cmd::{
        telemetry::{Telemetry, otel_config},
        wait_until, wiring,
    },
    config::{Config, Overrides},
};

/// The demo database when none is given; recreated on every run.
const DEFAULT_DATABASE: &str = "guildscope-demo.db";

/// Guilds and shards in the demo community.
const GUILDS: u32 = 3;
const SHARDS: u32 = 2;

/// Runs the demo and prints its summary.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    // The environment configures telemetry (OTEL_EXPORTER_OTLP_ENDPOINT,
    // SENTRY_DSN, ...); logs are warnings only, as the progress display owns
    // the terminal.
    let mut config = Config::load(None, &Overrides::default())?;
    config.log_level = "warn".into();
    config.telemetry.metrics.listen = Some(args.metrics_listen);
    let telemetry = Telemetry::start(&config).await?;
    let otel = otel_config(&config)?;
    let traces = otel.traces.map(|t| super::marker::origin_and_path(&t.url));
    println!(
        "metrics  {}",
        telemetry
            .prometheus_addr()
            .map(|a| format!("http://{a}/metrics"))
            .unwrap_or_else(|| "off".into())
    );
    if let Some(endpoint) = &otel.metrics {
        println!(
            "metrics  also over OTLP to {} every {} s, and at the end",
            super::marker::origin_and_path(&endpoint.url),
            otel.metrics_interval.as_secs_f64()
        );
    }
    println!(
        "traces   {}",
        traces
            .as_deref()
            .unwrap_or("off (set OTEL_EXPORTER_OTLP_ENDPOINT to export them)")
    );
    let database = match args.database {
        Some(path) => path,
        None => {
            super::remove_sqlite_files(DEFAULT_DATABASE)?;
            PathBuf::from(DEFAULT_DATABASE)
        }
    };
    let started = Instant::now();
    let simulator = Simulator::start(SimConfig {
        seed: args.seed,
        guilds: GUILDS,
        members: 1_500,
        shards: SHARDS,
        ..SimConfig::default()
    })
    .await
    .context("while starting the simulator")?;
    let mut discord = wiring::discord_for(&simulator);
    discord.intents.message_content = true;
    discord.prefix_commands = Some(PrefixCommands {
        prefix: PREFIX.to_owned(),
        commands: commands::catalog::names(),
    });
    let bot = BotConfig {
        writer: Some(WriterConfig::new(Location::Sqlite(database.clone()))),
        prefix: Some(PREFIX.to_owned()),
        // The simulated guilds' game roles are the ones members may take.
        roles: RoleConfig {
            allow: game_roles(simulator.community()),
            marker: None,
        },
        ..BotConfig::default()
    };
    let running = wiring::start(&discord, bot, Some(&telemetry)).await?;

    wait_until(Duration::from_secs(15), || {
        running.gateway_stats.events("GUILD_CREATE") >= u64::from(GUILDS)
    })
    .await
    .context("the simulated guilds did not arrive within 15 s")?;
    simulator.set_rate(args.rate);
    let typed = MessageCommands::type_some(&simulator);

    let mut progress = Progress::new();
    let traffic_started = Instant::now();
    while traffic_started.elapsed() < args.duration {
        let left = args.duration.saturating_sub(traffic_started.elapsed());
        tokio::time::sleep(left.min(progress.interval)).await;
        progress.show(traffic_started.elapsed(), &running.bot_stats.snapshot());
    }
    progress.finish();
    let traffic = traffic_started.elapsed();

    // Stop the traffic and wait until the simulator is quiet and everything it
    // sent has arrived; then close the shards, which ends their sessions, so
    // the ground truth read afterwards is final.
    simulator.set_rate(0.0);
    let sent = |truth: &GroundTruth| truth.events_sent.values().sum::<u64>();
    let mut last = (u64::MAX, Instant::now());
    let _ = wait_until(Duration::from_secs(10), || {
        let now = sent(&simulator.ground_truth());
        if now != last.0 {
            last = (now, Instant::now());
        }
        running.gateway_stats.total_events() >= now
            && last.1.elapsed() >= Duration::from_millis(300)
    })
    .await;
    let message_commands = typed.answers(&simulator).await;
    let gateway_stats = std::sync::Arc::clone(&running.gateway_stats);
    let bot_stats = std::sync::Arc::clone(&running.bot_stats);
    running.stop().await?;
    let truth = simulator.ground_truth();
    simulator.shutdown().await;
    telemetry.shutdown().await;

    let summary = Summary {
        elapsed: started.elapsed(),
        traffic,
        seed: args.seed,
        stats: bot_stats.snapshot(),
        sent: sent(&truth),
        received: gateway_stats.total_events(),
        parse_errors: gateway_stats.parse_errors(),
        message_commands,
        database,
    };
    print!("{}", summary.render());
    Ok(ExitCode::SUCCESS)
}

/// What message commands start with in the demo.
const PREFIX: &str = "!";

/// What a member types in the demo to show message commands.
const TYPED: [&str; 4] = ["!ping", "!help", "!stats server", "!role list"];

/// The names of the game roles in the simulated guilds.
fn game_roles(community: &Community) -> Vec<RoleRef> {
    let mut names: Vec<&str> = community
        .guilds
        .iter()
        .flat_map(|g| g.self_assignable_roles.iter().map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| RoleRef::Name(name.to_owned()))
        .collect()
}

/// Message commands a simulated member typed.
struct MessageCommands {
    channel: u64,
    /// The ids of the messages typed, and what was typed.
    typed: Vec<(u64, &'static str)>,
}

/// How the typed message commands were answered.
struct Answered {
    typed: Vec<&'static str>,
    answered: u64,
    slowest_ms: Option<f64>,
}

impl MessageCommands {
    /// Has a member of the first guild type [`TYPED`] in a text channel.
    fn type_some(simulator: &Simulator) -> Self {
        let community = simulator.community();
        let found = community.guilds.first().and_then(|guild| {
            let channel = guild
                .channels
                .iter()
                .find(|c| c.kind == ChannelKind::Text)?;
            let member = guild.members.iter().find(|m| !m.bot)?;
            Some((guild.id, channel.id, member.user_id))
        });
        let Some((guild_id, channel_id, user_id)) = found else {
            return Self {
                channel: 0,
                typed: Vec::new(),
            };
        };
        let typed = TYPED
            .into_iter()
            .filter_map(|content| {
                let injected = simulator.inject_message(MessageRequest {
                    guild_id,
                    channel_id,
                    user_id,
                    content: content.to_owned(),
                });
                injected.ok().map(|message| (message.id, content))
            })
            .collect();
        Self {
            channel: channel_id,
            typed,
        }
    }

    /// The replies to the typed commands, waiting a few seconds for the
    /// last ones.
    async fn answers(&self, simulator: &Simulator) -> Answered {
        let replies = || -> Vec<BotMessage> {
            simulator
                .bot_messages(self.channel)
                .into_iter()
                .filter(|m| {
                    m.reply_to
                        .is_some_and(|id| self.typed.iter().any(|(typed, _)| *typed == id))
                })
                .collect()
        };
        let _ = wait_until(Duration::from_secs(5), || {
            replies().len() >= self.typed.len()
        })
        .await;
        let replies = replies();
        Answered {
            typed: self.typed.iter().map(|(_, content)| *content).collect(),
            answered: replies.len() as u64,
            slowest_ms: replies
                .iter()
                .filter_map(|m| m.ms_after_trigger)
                .reduce(f64::max),
        }
    }
}

/// The live progress display: one rewritten line on a terminal, plain lines
/// every few seconds otherwise.
struct Progress {
    terminal: bool,
    interval: Duration,
    last_events: u64,
    last_at: Duration,
}

impl Progress {
    fn new() -> Self {
        let terminal = std::io::stdout().is_terminal();
        let interval = if terminal {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(2)
        };
        Self {
            terminal,
            interval,
            last_events: 0,
            last_at: Duration::ZERO,
        }
    }

    fn show(&mut self, at: Duration, s: &Snapshot) {
        let window = (at - self.last_at).as_secs_f64().max(1e-3);
        let rate = (s.events_total - self.last_events) as f64 / window;
        self.last_events = s.events_total;
        self.last_at = at;
        let line = format!(
            "{:>6.1}s  events {:>9} ({:>7.0}/s)  commands {:>6}  rows {:>9}  p99 {:>8}  errors {}",
            at.as_secs_f64(),
            group(s.events_total),
            rate,
            group(s.commands_answered()),
            group(s.rows.tables().iter().map(|(_, n)| n).sum()),
            micros(s.event_latency.p99_us),
            s.errors_total(),
        );
        let mut out = std::io::stdout().lock();
        let _ = if self.terminal {
            write!(out, "\r\x1b[2K{line}")
        } else {
            writeln!(out, "{line}")
        };
        let _ = out.flush();
    }

    fn finish(&self) {
        if self.terminal {
            println!();
        }
    }
}

/// Everything the demo prints at the end.
struct Summary {
    elapsed: Duration,
    traffic: Duration,
    seed: u64,
    stats: Snapshot,
    sent: u64,
    received: u64,
    parse_errors: u64,
    message_commands: Answered,
    database: PathBuf,
}

impl Summary {
    fn render(&self) -> String {
        let s = &self.stats;
        let mut out = String::new();
        let secs = self.traffic.as_secs_f64().max(1e-3);
        let _ = writeln!(
            out,
            "\nguildscope demo: seed {}, {GUILDS} guilds on {SHARDS} shards, ran {:.1} s",
            self.seed,
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "events received   {:>10}  ({:.0}/s during {:.1} s of traffic)",
            group(s.events_total),
            s.events_total as f64 / secs,
            secs
        );
        for (name, count) in &s.events {
            let _ = writeln!(out, "  {name:<28}{:>10}", group(*count));
        }
        let _ = writeln!(
            out,
            "commands answered {:>10}  (ok {}, refused {}, failed {})",
            group(s.commands_answered()),
            s.commands_ok,
            s.commands_user_error,
            s.commands_failed
        );
        let m = &self.message_commands;
        let _ = writeln!(
            out,
            "message commands  {:>10}  answered of {} typed ({}){}",
            group(m.answered),
            m.typed.len(),
            m.typed.join(", "),
            m.slowest_ms
                .map(|ms| format!(", the slowest in {ms:.1} ms"))
                .unwrap_or_default()
        );
        let _ = writeln!(out, "event handling    {}", latency(&s.event_latency));
        let _ = writeln!(out, "command latency   {}", latency(&s.command_latency));
        let _ = writeln!(out, "event to commit   {}", latency(&s.commit_latency));
        let _ = writeln!(out, "rows written");
        for (table, rows) in s.rows.tables() {
            let _ = writeln!(out, "  {table:<28}{:>10}", group(rows));
        }
        let _ = writeln!(
            out,
            "errors            {:>10}",
            group(s.errors_total() + self.parse_errors)
        );
        for (kind, count) in &s.errors {
            let _ = writeln!(out, "  {kind:<28}{:>10}", group(*count));
        }
        let verdict = if self.received == self.sent {
            "every event arrived"
        } else {
            "events missing"
        };
        let _ = writeln!(
            out,
            "simulator check   {verdict}: sent {}, received {}",
            group(self.sent),
            group(self.received)
        );
        let _ = writeln!(out, "database          {}", self.database.display());
        out
    }
}

fn latency(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "no samples".to_owned();
    }
    format!(
        "p50 {}  p95 {}  p99 {}  max {}  ({} samples)",
        micros(l.p50_us),
        micros(l.p95_us),
        micros(l.p99_us),
        micros(l.max_us),
        group(l.count)
    )
}

fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }

    #[test]
    fn latencies_pick_a_readable_unit() {
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(1_500), "1.5 ms");
        assert_eq!(micros(2_500_000), "2.50 s");
    }
}
