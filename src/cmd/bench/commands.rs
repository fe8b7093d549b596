//! `guildscope bench commands`: how fast commands are answered while the
//! bot ingests a busy community. The simulator sends messages at a steady
//! rate and slash commands at another; the latency of each command is
//! measured by the simulator, from dispatching INTERACTION_CREATE to
//! receiving the interaction callback, so it includes both sides of the
//! gateway and REST (the simulator included). The bot's own figure (event
//! received to answer sent) is printed beside it.
//!
//! The commands are a mix of what members run: `/ping`, `/stats server`,
//! `/stats me`, `/role list` and `/help`, each with its own percentiles.

use std::{
    collections::BTreeMap,
    process::ExitCode,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use guildscope_bot::{
    BotConfig, BotStats, CollectorConfig, WriterConfig,
    roles::{RoleConfig, RoleRef},
};
use guildscope_simulator::{
    ChannelKind, InteractionKind, InteractionRequest, SimConfig, Simulator,
};
use guildscope_store::Location;
use hdrhistogram::Histogram;
use serde_json::json;

use crate::{
    cli::BenchCommandsArgs,
    cmd::{wait_until, wiring},
    config::LogFormat,
    logging,
};

/// Guilds in the simulated community.
const GUILDS: u32 = 2;

/// Worker threads of the simulator's runtime. Discord answers REST on other
/// machines than those that write the gateway; with one thread, REST
/// answers waited behind the compression of gateway dispatches.
const SIMULATOR_THREADS: usize = 2;

/// Messages and commands sent before the measured window, so it starts
/// with the bot's connections, caches and prepared statements in use, as in
/// a bot that has been running.
const WARM_UP: Duration = Duration::from_secs(1);

/// The commands sent, in turn: name, options, label.
fn mix() -> Vec<(&'static str, serde_json::Value, &'static str)> {
    let sub = |name: &str| json!([{ "name": name, "type": 1 }]);
    vec![
        ("ping", json!([]), "/ping"),
        ("stats", sub("server"), "/stats server"),
        ("stats", sub("me"), "/stats me"),
        ("role", sub("list"), "/role list"),
        ("help", json!([]), "/help"),
    ]
}

/// Runs the benchmark and prints its table.
pub async fn run(args: BenchCommandsArgs) -> anyhow::Result<ExitCode> {
    logging::init("warn", LogFormat::Auto);
    let database = std::env::temp_dir().join(format!(
        "guildscope-bench-commands-{}.db",
        std::process::id()
    ));
    let database_text = database.display().to_string();
    super::super::remove_sqlite_files(&database_text)?;

    // The simulator stands for Discord: it runs on the same two cores but on
    // a runtime of its own, so its work never holds the bot's workers.
    let simulator = Simulator::start_isolated(
        SimConfig {
            guilds: GUILDS,
            members: 1_000,
            // Only the benchmark's own messages and commands.
            rate: 0.0,
            ..SimConfig::default()
        },
        SIMULATOR_THREADS,
    )
    .await
    .context("while starting the simulator")?;
    let community = simulator.community().clone();
    let guild = &community.guilds[0];
    let discord = wiring::discord_for(&simulator);
    let bot = BotConfig {
        collector: CollectorConfig {
            include_bots: true,
            ..CollectorConfig::default()
        },
        writer: Some(WriterConfig::new(Location::Sqlite(database.clone()))),
        max_commands_in_flight: 1_024,
        roles: RoleConfig {
            allow: guild
                .self_assignable_roles
                .iter()
                .cloned()
                .map(RoleRef::Name)
                .collect(),
            marker: None,
        },
        ..BotConfig::default()
    };
    let running = wiring::start(&discord, bot, None).await?;
    wait_until(Duration::from_secs(15), || {
        running.gateway_stats.events("GUILD_CREATE") >= u64::from(GUILDS)
    })
    .await
    .context("the simulated guilds did not arrive")?;
    let members: Vec<u64> = guild
        .members
        .iter()
        .filter(|m| !m.bot)
        .map(|m| m.user_id)
        .collect();
    let channel = guild
        .channels
        .iter()
        .find(|c| c.kind == ChannelKind::Text)
        .context("no text channel")?
        .id;

    // Messages first, so commands meet a busy bot from the start. They are
    // MESSAGE_CREATE from the simulator's firehose, released in small
    // batches every millisecond to keep the asked rate. The driver stands for
    // Discord's users, so it runs on the simulator's runtime.
    let stats = Arc::clone(&running.bot_stats);
    let mix: Vec<_> = mix()
        .into_iter()
        .filter(|(name, _, _)| args.only.is_empty() || args.only.iter().any(|o| o == name))
        .collect();
    if mix.is_empty() {
        bail!("--only names no command of the mix (ping, stats, role, help)");
    }
    let simulator = Arc::new(simulator);
    let driver = Driver {
        simulator: Arc::clone(&simulator),
        stats: Arc::clone(&stats),
        mix,
        members,
        guild: guild.id,
        channel,
        rate: args.rate,
        ingest: args.ingest,
        seconds: args.seconds,
    };
    let driven = simulator
        .runtime()
        .spawn(driver.run())
        .await
        .context("the benchmark driver stopped")??;
    let Driven {
        sent,
        warmed,
        window,
        messages,
    } = driven;
    let total = sent.len() as u64;
    wait_until(Duration::from_secs(60), || {
        stats.snapshot().commands_answered() >= warmed + total
    })
    .await
    .context("the commands were not all answered")?;

    // The target's measure: from the INTERACTION_CREATE on the bot's socket to
    // the callback arriving. End to end adds the simulator's own queueing
    // before the write.
    let mut end_to_end = histogram()?;
    let mut all = histogram()?;
    let mut by_label: BTreeMap<&str, Histogram<u64>> = BTreeMap::new();
    let (mut late, mut unanswered, mut unnoted) = (0, 0, 0);
    for (id, label) in &sent {
        let record = simulator
            .interaction_responses(*id)
            .with_context(|| format!("interaction {id} was not recorded"))?;
        late += u64::from(record.late_callbacks);
        let Some(callback) = record.callback else {
            unanswered += 1;
            continue;
        };
        end_to_end.record(micros(callback.ms_after_dispatch))?;
        // An interaction the simulator never noted as written (none should be)
        // counts with its end-to-end time, which is longer.
        let us = micros(callback.ms_after_written.unwrap_or_else(|| {
            unnoted += 1;
            callback.ms_after_dispatch
        }));
        all.record(us)?;
        match by_label.get_mut(label) {
            Some(h) => h.record(us)?,
            None => {
                let mut h = histogram()?;
                h.record(us)?;
                by_label.insert(label, h);
            }
        }
    }
    let snapshot = stats.snapshot();
    running.stop().await?;
    if let Ok(simulator) = Arc::try_unwrap(simulator) {
        simulator.shutdown().await;
    }
    super::super::remove_sqlite_files(&database_text)?;

    let ms = |us: u64| us as f64 / 1_000.0;
    println!("benchmark          commands answered while ingesting (simulator included)");
    println!(
        "workload           {total} commands at {:.0}/s over {:.1} s, messages at {:.0}/s asked, after a {:.0} s warm-up of both",
        args.rate,
        window.as_secs_f64(),
        args.ingest,
        WARM_UP.as_secs_f64()
    );
    println!(
        "ingest             {messages} messages handled in the window ({:.0}/s)",
        messages as f64 / window.as_secs_f64()
    );
    println!(
        "answers            {} ok, {} refused, {} failed of {} (warm-up included); measured: {late} too late (over 3 s), {unanswered} never in time",
        snapshot.commands_ok,
        snapshot.commands_user_error,
        snapshot.commands_failed,
        warmed + total
    );
    if unnoted > 0 {
        println!(
            "                   {unnoted} callbacks without a noted write: counted end to end in both tables"
        );
    }
    println!(
        "received → answered (INTERACTION_CREATE on the bot's socket → callback request at the simulator)"
    );
    println!("                   p50 ms   p90 ms   p99 ms   max ms");
    let row = |label: &str, h: &Histogram<u64>| {
        println!(
            "{label:<18} {:>6.2}   {:>6.2}   {:>6.2}   {:>6.2}",
            ms(h.value_at_quantile(0.5)),
            ms(h.value_at_quantile(0.9)),
            ms(h.value_at_quantile(0.99)),
            ms(h.max())
        );
    };
    row("all commands", &all);
    for (label, h) in &by_label {
        row(label, h);
    }
    println!(
        "end to end (the simulator's dispatch, its gateway writer included → callback request)"
    );
    row("all commands", &end_to_end);
    println!(
        "in the bot         p50 {:.2} ms, p99 {:.2} ms (event received to answer sent, warm-up included)",
        snapshot.command_latency.p50_us as f64 / 1_000.0,
        snapshot.command_latency.p99_us as f64 / 1_000.0
    );
    let p99 = ms(all.value_at_quantile(0.99));
    println!(
        "target             p99 under 5 ms from received to answered: {}",
        if p99 < 5.0 { "met" } else { "not met" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Sends the messages and commands at their rates.
struct Driver {
    simulator: Arc<Simulator>,
    stats: Arc<BotStats>,
    mix: Vec<(&'static str, serde_json::Value, &'static str)>,
    members: Vec<u64>,
    guild: u64,
    channel: u64,
    rate: f64,
    ingest: f64,
    seconds: f64,
}

/// What the driver sent.
struct Driven {
    /// Interaction id and label of every measured command.
    sent: Vec<(u64, &'static str)>,
    /// Commands sent during the warm-up, before the measured ones.
    warmed: u64,
    /// How long sending the commands took.
    window: Duration,
    /// Messages the bot handled in that window.
    messages: u64,
}

impl Driver {
    async fn run(self) -> anyhow::Result<Driven> {
        let mut ingest = Pacer::new(self.ingest);
        // Members leave as the traffic goes on; a command from one who left is
        // refused by the simulator and sent from the next member instead.
        let mut next_member = 0;
        let warm_up = (self.rate * WARM_UP.as_secs_f64()) as u64;
        let warmed = self
            .send(&mut ingest, &mut next_member, warm_up)
            .await?
            .len() as u64;
        let messages_before = messages_handled(&self.stats);
        let started = Instant::now();
        let total = (self.rate * self.seconds) as u64;
        let sent = self.send(&mut ingest, &mut next_member, total).await?;
        Ok(Driven {
            sent,
            warmed,
            window: started.elapsed(),
            messages: messages_handled(&self.stats) - messages_before,
        })
    }

    /// Sends `total` commands at the rate, messages going on meanwhile, and
    /// returns their ids and labels.
    async fn send(
        &self,
        ingest: &mut Pacer,
        next_member: &mut usize,
        total: u64,
    ) -> anyhow::Result<Vec<(u64, &'static str)>> {
        let simulator = &self.simulator;
        let started = Instant::now();
        let mut sent: Vec<(u64, &'static str)> = Vec::with_capacity(total as usize);
        while (sent.len() as u64) < total {
            if started.elapsed() > Duration::from_secs_f64(self.seconds * 3.0 + 10.0) {
                bail!("could not send {total} commands in time");
            }
            simulator.firehose(ingest.due());
            let due = ((started.elapsed().as_secs_f64() * self.rate) as u64 + 1).min(total);
            while (sent.len() as u64) < due {
                let i = sent.len();
                let (name, options, label) = &self.mix[i % self.mix.len()];
                *next_member += 1;
                let injected = simulator.inject_interaction(InteractionRequest {
                    guild_id: self.guild,
                    user_id: self.members[*next_member % self.members.len()],
                    channel_id: self.channel,
                    name: (*name).into(),
                    options: options.clone(),
                    kind: InteractionKind::Command,
                });
                match injected {
                    Ok(injected) => sent.push((injected.id, label)),
                    Err(guildscope_simulator::SimError::UnknownMember { .. }) => continue,
                    Err(error) => return Err(error.into()),
                }
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(sent)
    }
}

/// How many events are due at a steady rate since the pacer started.
struct Pacer {
    rate: f64,
    started: Instant,
    released: u64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self {
            rate,
            started: Instant::now(),
            released: 0,
        }
    }

    /// Events due since the last call.
    fn due(&mut self) -> u64 {
        let total = (self.started.elapsed().as_secs_f64() * self.rate) as u64;
        let due = total.saturating_sub(self.released);
        self.released = total.max(self.released);
        due
    }
}

/// Milliseconds as whole microseconds, at least one.
fn micros(ms: f64) -> u64 {
    (ms * 1_000.0).round().max(1.0) as u64
}

fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("while making a histogram")
}

fn messages_handled(stats: &BotStats) -> u64 {
    stats
        .snapshot()
        .events
        .get("MESSAGE_CREATE")
        .copied()
        .unwrap_or(0)
}
