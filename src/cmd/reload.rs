//! Live reload of the feature flags while `guildscope run` runs: on SIGHUP,
//! and when the config file's content changes (read every 2 s and compared by
//! a hash of its bytes, which needs no file-watching dependency and sees
//! edits made through renames and symlinks alike).
//!
//! The whole file is validated again, exactly as at start. A valid file puts
//! its flags in force at once; other sections take effect at the next
//! restart, which is said once. An invalid or unreadable file is reported in
//! one warning (the error names the key) and counted as a `config_reload`
//! error, and the flags in force stay: a reload never stops the bot.

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use guildscope_bot::{BotStats, Flag, LiveFlags};

use crate::config::{Config, ConfigFile, Overrides};

/// How often the config file is read to see whether it changed.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP: reload even when the file looks unchanged, and say so.
    Signal,
    /// A poll of the file; acts only when its content changed.
    Poll,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Self::Signal => "SIGHUP",
            Self::Poll => "file changed",
        }
    }
}

/// Reloads the configuration and puts its feature flags in force.
pub struct Reloader {
    /// The file the bot started with; `None` when it runs without one.
    started: Option<ConfigFile>,
    /// Command-line and environment values, applied over the file as at start.
    overrides: Overrides,
    /// The flags in force, by name, to say which ones a reload changed.
    flags: BTreeMap<String, Flag>,
    /// Where the flags are put in force.
    live: Arc<LiveFlags>,
    /// Where failed reloads are counted.
    stats: Arc<BotStats>,
    /// A hash of the content last read: a poll that reads the same does
    /// nothing, so a broken file is reported once, not every 2 s.
    seen: Option<u64>,
    /// Whether the last read failed, so an unreadable file is reported once.
    unreadable: bool,
    /// The sections last said to need a restart.
    reported: Vec<String>,
}

impl Reloader {
    /// A reloader for the bot started from `file` (and `overrides`) with
    /// `config`, whose flags are in force in `live`.
    pub fn new(
        file: Option<ConfigFile>,
        overrides: Overrides,
        config: &Config,
        live: Arc<LiveFlags>,
        stats: Arc<BotStats>,
    ) -> Self {
        Self {
            seen: file.as_ref().map(|file| digest(file.bytes())),
            started: file,
            overrides,
            flags: config.flags.clone(),
            live,
            stats,
            unreadable: false,
            reported: Vec::new(),
        }
    }

    /// Whether there is a file to watch.
    fn watches_a_file(&self) -> bool {
        self.started.is_some()
    }

    /// Reads and validates the file; puts its flags in force when it is
    /// valid, and reports what happened.
    pub async fn reload(&mut self, trigger: Trigger) {
        let Some(started) = &self.started else {
            if trigger == Trigger::Signal {
                tracing::info!(
                    trigger = trigger.as_str(),
                    "no config file to reload: guildscope run was started without --config"
                );
            }
            return;
        };
        let path = started.path().to_owned();
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || std::fs::read(path)).await
        };
        let bytes = match read.unwrap_or_else(|join| Err(std::io::Error::other(join))) {
            Ok(bytes) => bytes,
            Err(error) => {
                if trigger == Trigger::Signal || !self.unreadable {
                    self.unreadable = true;
                    self.stats.error("config_reload");
                    tracing::warn!(
                        trigger = trigger.as_str(),
                        path = %path.display(),
                        %error,
                        "cannot read the config file; the feature flags in force are kept"
                    );
                }
                return;
            }
        };
        self.unreadable = false;
        let hash = digest(&bytes);
        if trigger == Trigger::Poll && self.seen == Some(hash) {
            return;
        }
        self.seen = Some(hash);
        let loaded = ConfigFile::from_bytes(&path, bytes)
            .and_then(|file| file.load(&self.overrides).map(|config| (file, config)));
        let (file, config) = match loaded {
            Ok(loaded) => loaded,
            Err(error) => {
                self.stats.error("config_reload");
                tracing::warn!(
                    trigger = trigger.as_str(),
                    %error,
                    "the config file is invalid; the feature flags in force are kept"
                );
                return;
            }
        };
        let changed = changed_flags(&self.flags, &config.flags);
        if self.live.replace(config.flag_set()) {
            tracing::info!(
                trigger = trigger.as_str(),
                flags = %changed.join(", "),
                "feature flags reloaded"
            );
            self.flags = config.flags;
        } else if trigger == Trigger::Signal {
            tracing::info!(
                trigger = trigger.as_str(),
                "config file reloaded; no feature flag changed"
            );
        }
        let sections = file.sections_changed_from(started);
        if sections != self.reported {
            if !sections.is_empty() {
                tracing::info!(
                    sections = %sections.join(", "),
                    "changes outside [flags] take effect at the next restart"
                );
            }
            self.reported = sections;
        }
    }
}

/// The names of the flags that were added, removed or changed.
fn changed_flags(before: &BTreeMap<String, Flag>, after: &BTreeMap<String, Flag>) -> Vec<String> {
    let mut names: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .cloned()
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// A hash of a file's content, to tell whether it changed.
fn digest(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// SIGHUP, listened for from the moment it is installed: until then the
/// signal's default action would end the process.
pub struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    /// Starts listening for SIGHUP; where that is not possible, a reload
    /// happens on file changes only.
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            let signal = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGHUP; the config file is still watched");
                    None
                }
            };
            Self { signal }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Resolves at the next SIGHUP; never, when there is none to wait for.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

/// Reloads on every SIGHUP and whenever the file changes, until aborted.
pub async fn watch(mut reloader: Reloader, mut hangup: Hangup) {
    let mut poll =
        tokio::time::interval_at(tokio::time::Instant::now() + POLL_INTERVAL, POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let watches_a_file = reloader.watches_a_file();
    loop {
        let trigger = tokio::select! {
            () = hangup.next() => Trigger::Signal,
            _ = poll.tick(), if watches_a_file => Trigger::Poll,
        };
        reloader.reload(trigger).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use guildscope_bot::LiveFlags;
    use guildscope_model::UserId;

    use super::*;

    const STARTED: &str =
        "[storage]\nurl = \"a.db\"\n\n[flags.beta]\nusers = [\"5\"]\ncommands = [\"stats\"]\n";

    struct Setup {
        _dir: tempfile::TempDir,
        path: std::path::PathBuf,
        reloader: Reloader,
        live: Arc<LiveFlags>,
        stats: Arc<BotStats>,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guildscope.toml");
        std::fs::write(&path, STARTED).unwrap();
        let file = ConfigFile::read(&path).unwrap();
        let config = file.load(&Overrides::default()).unwrap();
        let live = Arc::new(LiveFlags::new(config.flag_set()));
        let stats = Arc::new(BotStats::default());
        let reloader = Reloader::new(
            Some(file),
            Overrides::default(),
            &config,
            Arc::clone(&live),
            Arc::clone(&stats),
        );
        Setup {
            _dir: dir,
            path,
            reloader,
            live,
            stats,
        }
    }

    fn users_of_beta(live: &LiveFlags) -> Vec<u64> {
        let flags = live.current();
        (1..=10)
            .filter(|&user| {
                flags.evaluate(
                    "beta",
                    guildscope_bot::flags::Subject {
                        user: UserId::new(user),
                        guild: None,
                        roles: &[],
                    },
                )
            })
            .collect()
    }

    fn errors(stats: &BotStats) -> u64 {
        stats.snapshot().errors_total()
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn a_changed_file_puts_its_flags_in_force() {
        let mut s = setup();
        assert_eq!(users_of_beta(&s.live), [5]);
        s.reloader.reload(Trigger::Poll).await;
        assert_eq!(users_of_beta(&s.live), [5]);
        write(&s.path, &STARTED.replace("[\"5\"]", "[\"5\", \"7\"]"));
        s.reloader.reload(Trigger::Poll).await;
        assert_eq!(users_of_beta(&s.live), [5, 7]);
        assert_eq!(errors(&s.stats), 0);
    }

    #[tokio::test]
    async fn a_signal_rereads_the_file_even_when_no_poll_saw_it_change() {
        let mut s = setup();
        write(&s.path, &STARTED.replace("[\"5\"]", "[\"8\"]"));
        s.reloader.reload(Trigger::Signal).await;
        assert_eq!(users_of_beta(&s.live), [8]);
        // The poll that follows finds nothing new.
        s.reloader.reload(Trigger::Poll).await;
        assert_eq!(users_of_beta(&s.live), [8]);
        assert_eq!(errors(&s.stats), 0);
    }

    #[tokio::test]
    async fn a_broken_file_keeps_the_flags_and_counts_once_per_content() {
        let mut s = setup();
        write(
            &s.path,
            &STARTED.replace("commands = [\"stats\"]", "percentage = 300"),
        );
        s.reloader.reload(Trigger::Poll).await;
        s.reloader.reload(Trigger::Poll).await;
        assert_eq!(users_of_beta(&s.live), [5]);
        assert_eq!(errors(&s.stats), 1);
        // Asked for explicitly, it is reported again.
        s.reloader.reload(Trigger::Signal).await;
        assert_eq!(errors(&s.stats), 2);
        std::fs::remove_file(&s.path).unwrap();
        s.reloader.reload(Trigger::Poll).await;
        s.reloader.reload(Trigger::Poll).await;
        assert_eq!(errors(&s.stats), 3);
        assert_eq!(users_of_beta(&s.live), [5]);
    }

    #[tokio::test]
    async fn other_sections_are_reported_and_not_applied() {
        let mut s = setup();
        write(
            &s.path,
            &STARTED
                .replace("a.db", "b.db")
                .replace("[\"5\"]", "[\"6\"]"),
        );
        s.reloader.reload(Trigger::Poll).await;
        assert_eq!(users_of_beta(&s.live), [6]);
        assert_eq!(s.reloader.reported, ["storage"]);
        write(&s.path, STARTED);
        s.reloader.reload(Trigger::Poll).await;
        assert!(s.reloader.reported.is_empty());
        assert_eq!(users_of_beta(&s.live), [5]);
    }

    #[test]
    fn changed_flags_are_named() {
        let flag = |user: u64| Flag {
            users: vec![UserId::new(user)],
            ..Flag::default()
        };
        let before = BTreeMap::from([("a".to_owned(), flag(1)), ("b".to_owned(), flag(2))]);
        let after = BTreeMap::from([("b".to_owned(), flag(3)), ("c".to_owned(), flag(4))]);
        assert_eq!(changed_flags(&before, &after), ["a", "b", "c"]);
        assert!(changed_flags(&before, &before).is_empty());
    }
}
