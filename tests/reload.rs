//! `guildscope run` as a separate process against `guildscope simulate`:
//! slash commands registered only when they changed, and feature flags
//! reloaded from the config file while the bot runs (on a file change, on
//! SIGHUP, and not at all from a broken file).

// Test helpers fail by panicking, with the error in the message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use common::{
    Running, command_answer, field, guildscope_in, http, inject_command, start_simulator, wait_for,
};
use serde_json::{Value, json};

/// What a command gated by a flag that is off answers with.
const REFUSED: &str = "is not available to you yet (feature `stats_beta`)";

/// The simulator, and who is who in its one guild.
struct Sim {
    _process: Running,
    info: Value,
    guild: u64,
    channel: u64,
    /// A member the `stats_beta` flag is on for from the start.
    insider: u64,
    /// A member it is off for until the file says otherwise.
    outsider: u64,
}

impl Sim {
    fn start() -> Self {
        let (process, info) = start_simulator(&["--rate", "0", "--guilds", "1", "--members", "60"]);
        let (status, body) = http(
            "GET",
            &format!("{}/community", field(&info, "control_url")),
            None,
            None,
        );
        assert_eq!(status, 200, "{body}");
        let community: Value = serde_json::from_str(&body).unwrap();
        let guild = &community["guilds"][0];
        let id = |value: &Value| value.as_str().unwrap().parse::<u64>().unwrap();
        let channel = guild["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["kind"] == "text")
            .map(|c| id(&c["id"]))
            .expect("a text channel");
        let mut people = guild["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["bot"] == false)
            .map(|m| id(&m["user_id"]));
        Self {
            guild: id(&guild["id"]),
            channel,
            insider: people.next().unwrap(),
            outsider: people.next().unwrap(),
            _process: process,
            info,
        }
    }

    fn control(&self) -> &str {
        field(&self.info, "control_url")
    }

    /// `/stats server` run by `user`; returns the answer.
    fn stats(&self, user: u64) -> String {
        let id = inject_command(
            self.control(),
            (self.guild, self.channel, user),
            "stats",
            json!([{ "name": "server", "type": 1, "options": [] }]),
        );
        command_answer(self.control(), id)
    }

    /// How many times the bot called `method` on a commands route.
    fn command_calls(&self, method: &str, route: &str) -> usize {
        let (status, body) = http("GET", &format!("{}/rest-log", self.control()), None, None);
        assert_eq!(status, 200, "{body}");
        let calls: Vec<Value> = serde_json::from_str(&body).unwrap();
        calls
            .iter()
            .filter(|c| c["method"] == method && c["route"] == route)
            .count()
    }

    /// The config file's text with `stats_beta` on for `users`.
    fn config(&self, users: &[u64], extra: &str) -> String {
        let users: Vec<String> = users.iter().map(|u| format!("\"{u}\"")).collect();
        format!(
            "[log]\nformat = \"json\"\n\n[flags.stats_beta]\nusers = [{}]\ncommands = [\"stats\"]\n{extra}",
            users.join(", ")
        )
    }
}

/// A `guildscope run` process, its config file and its log.
struct Bot {
    process: Running,
    dir: PathBuf,
}

impl Bot {
    /// Starts the bot in `dir` with `config` as its config file and waits
    /// until it is running.
    fn start(sim: &Sim, dir: &Path, config: &str) -> Self {
        std::fs::write(dir.join("guildscope.toml"), config).unwrap();
        let stderr = File::create(dir.join("stderr.log")).unwrap();
        let child = guildscope_in(dir)
            .args([
                "run",
                "--config",
                "guildscope.toml",
                "--database",
                "stats.db",
            ])
            .args(["--api-base", field(&sim.info, "rest_url")])
            .args(["--gateway-base", field(&sim.info, "gateway_url")])
            .env("DISCORD_TOKEN", field(&sim.info, "token"))
            .env("GUILDSCOPE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut bot = Self {
            process: Running(child),
            dir: dir.to_owned(),
        };
        bot.wait_for_log("the bot to run", |line| {
            line["message"] == "guildscope is running"
        });
        bot
    }

    /// Replaces the config file as editors save: a new file renamed over
    /// the old one, so the bot never reads half of it.
    fn edit_config(&self, text: &str) {
        let new = self.dir.join("guildscope.toml.new");
        std::fs::write(&new, text).unwrap();
        std::fs::rename(&new, self.dir.join("guildscope.toml")).unwrap();
    }

    /// The warnings the reload logged.
    fn reload_warnings(&self) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|line| line["level"] == "WARN" && line["target"] == "guildscope::cmd::reload")
            .collect()
    }

    /// Every JSON log line written so far.
    fn log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("stderr.log"))
            .unwrap()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The log lines with this message.
    fn lines(&self, message: &str) -> Vec<Value> {
        self.log()
            .into_iter()
            .filter(|line| line["message"] == message)
            .collect()
    }

    /// Waits (up to 20 s) for a log line matching `pred`, and returns it.
    fn wait_for_log(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(what, Duration::from_secs(20), || {
            if let Some(exit) = self.process.0.try_wait().unwrap() {
                panic!(
                    "guildscope run exited with {exit} while waiting for {what}:\n{}",
                    std::fs::read_to_string(self.dir.join("stderr.log")).unwrap()
                );
            }
            self.log().into_iter().find(|line| pred(line))
        })
    }

    /// The value of one Prometheus sample, from the endpoint the log names.
    fn metric(&self, sample: &str) -> f64 {
        let running = &self.lines("guildscope is running")[0];
        let addr = running["metrics"]
            .as_str()
            .and_then(|m| m.split("http://").nth(1))
            .and_then(|m| m.split('"').next())
            .unwrap_or_else(|| panic!("no metrics address in {running}"));
        let (status, body) = http("GET", &format!("http://{addr}"), None, None);
        assert_eq!(status, 200, "{body}");
        body.lines()
            .find_map(|line| line.strip_prefix(sample)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    fn stop(&mut self) {
        let exit = self.process.terminate();
        assert!(
            exit.success(),
            "guildscope run exited with {exit}:\n{}",
            std::fs::read_to_string(self.dir.join("stderr.log")).unwrap()
        );
    }
}

const GLOBAL_ROUTE: &str = "/api/v10/applications/{application_id}/commands";
const GUILD_ROUTE: &str = "/api/v10/applications/{application_id}/guilds/{guild_id}/commands";

#[test]
fn slash_commands_are_registered_once_and_not_again_while_unchanged() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let config = sim.config(&[], "");

    let mut first = Bot::start(&sim, dir.path(), &config);
    assert_eq!(sim.command_calls("PUT", GLOBAL_ROUTE), 1);
    let registered = first.lines("registered slash commands");
    assert_eq!(registered.len(), 1, "{:?}", first.log());
    assert_eq!(registered[0]["scope"], "global");
    assert_eq!(registered[0]["count"], 4);
    first.stop();

    let mut second = Bot::start(&sim, dir.path(), &config);
    assert_eq!(
        sim.command_calls("PUT", GLOBAL_ROUTE),
        1,
        "the second start registered again"
    );
    assert_eq!(sim.command_calls("GET", GLOBAL_ROUTE), 2);
    let up_to_date = second.lines("slash commands up to date");
    assert_eq!(up_to_date.len(), 1, "{:?}", second.log());
    assert!(second.lines("registered slash commands").is_empty());
    second.stop();

    // Registered in one guild instead: once there, and globally untouched.
    let guild = sim.config(
        &[],
        &format!("\n[commands]\nguilds = [\"{}\"]\n", sim.guild),
    );
    for _ in 0..2 {
        let mut bot = Bot::start(&sim, dir.path(), &guild);
        bot.stop();
    }
    assert_eq!(sim.command_calls("PUT", GUILD_ROUTE), 1);
    assert_eq!(sim.command_calls("GET", GUILD_ROUTE), 2);
    assert_eq!(sim.command_calls("PUT", GLOBAL_ROUTE), 1);
}

#[test]
fn editing_the_config_file_turns_a_flag_on_without_a_restart() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Bot::start(&sim, dir.path(), &sim.config(&[sim.insider], ""));

    let refused = sim.stats(sim.outsider);
    assert!(refused.contains(REFUSED), "{refused}");
    let answered = sim.stats(sim.insider);
    assert!(!answered.contains(REFUSED), "{answered}");

    let edited = Instant::now();
    bot.edit_config(&sim.config(&[sim.insider, sim.outsider], ""));
    let reloaded = bot.wait_for_log("the flags to be reloaded", |line| {
        line["message"] == "feature flags reloaded"
    });
    assert!(
        edited.elapsed() < Duration::from_secs(5),
        "took {:?}",
        edited.elapsed()
    );
    assert_eq!(reloaded["level"], "INFO");
    assert_eq!(reloaded["flags"], "stats_beta");
    assert_eq!(reloaded["trigger"], "file changed");

    let answered = sim.stats(sim.outsider);
    assert!(!answered.contains(REFUSED), "{answered}");
    // Only the flags changed: nothing needs a restart.
    assert!(
        bot.lines("changes outside [flags] take effect at the next restart")
            .is_empty()
    );

    // A change to another section is not applied, and said once.
    bot.edit_config(&sim.config(
        &[sim.insider, sim.outsider],
        "\n[commands]\nprefix = \"?\"\n",
    ));
    let restart = bot.wait_for_log("the restart notice", |line| {
        line["message"] == "changes outside [flags] take effect at the next restart"
    });
    assert_eq!(restart["sections"], "commands");
    assert_eq!(bot.lines("feature flags reloaded").len(), 1);
    bot.stop();
}

#[test]
fn sighup_reloads_the_config_file_and_never_stops_the_bot() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Bot::start(&sim, dir.path(), &sim.config(&[sim.insider], ""));

    // The file is unchanged, so the poll has nothing to do: this line comes
    // from the signal.
    bot.process.hang_up();
    let line = bot.wait_for_log("the reload on SIGHUP", |line| {
        line["message"] == "config file reloaded; no feature flag changed"
    });
    assert_eq!(line["trigger"], "SIGHUP");

    // Edited and signalled at once: applied exactly once, by whichever came
    // first, and the signal is answered either way.
    bot.edit_config(&sim.config(&[sim.insider, sim.outsider], ""));
    bot.process.hang_up();
    bot.wait_for_log("the flags to be reloaded", |line| {
        line["message"] == "feature flags reloaded"
    });
    wait_for(
        "the second SIGHUP's reload",
        Duration::from_secs(20),
        || {
            let signalled = bot
                .log()
                .into_iter()
                .filter(|line| line["trigger"] == "SIGHUP")
                .count();
            (signalled >= 2).then_some(())
        },
    );
    assert_eq!(bot.lines("feature flags reloaded").len(), 1);
    let answered = sim.stats(sim.outsider);
    assert!(!answered.contains(REFUSED), "{answered}");
    bot.stop();
}

#[test]
fn a_broken_config_file_keeps_the_flags_in_force_and_warns_once() {
    let sim = Sim::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bot = Bot::start(&sim, dir.path(), &sim.config(&[sim.insider], ""));

    // Were it valid, this file would let the outsider in.
    bot.edit_config(&sim.config(&[sim.insider, sim.outsider], "percentage = 101\n"));
    let warning = bot.wait_for_log("the warning", |line| {
        line["level"] == "WARN" && line["target"] == "guildscope::cmd::reload"
    });
    assert_eq!(
        warning["message"],
        "the config file is invalid; the feature flags in force are kept"
    );
    assert_eq!(
        warning["error"],
        "config key `flags.stats_beta.percentage`: expected a number from 0 to 100, got 101"
    );

    let refused = sim.stats(sim.outsider);
    assert!(refused.contains(REFUSED), "{refused}");
    let answered = sim.stats(sim.insider);
    assert!(!answered.contains(REFUSED), "{answered}");
    assert_eq!(
        bot.metric(r#"guildscope_errors_total{kind="config_reload"}"#),
        1.0
    );

    // A file that does not parse at all is named with its line.
    bot.edit_config("[flags.stats_beta\n");
    let warnings = wait_for("the second warning", Duration::from_secs(20), || {
        let warnings = bot.reload_warnings();
        (warnings.len() >= 2).then_some(warnings)
    });
    let error = warnings[1]["error"].as_str().unwrap();
    assert!(error.starts_with("guildscope.toml:1:"), "{error}");

    // Fixed, it applies.
    bot.edit_config(&sim.config(&[sim.insider, sim.outsider], ""));
    bot.wait_for_log("the flags to be reloaded", |line| {
        line["message"] == "feature flags reloaded"
    });
    let answered = sim.stats(sim.outsider);
    assert!(!answered.contains(REFUSED), "{answered}");
    // One warning per broken version of the file, not one per poll.
    assert_eq!(bot.reload_warnings().len(), 2, "{:?}", bot.log());
    assert_eq!(
        bot.metric(r#"guildscope_errors_total{kind="config_reload"}"#),
        2.0
    );
    bot.stop();
}
