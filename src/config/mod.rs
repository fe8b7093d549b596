//! Configuration: a TOML file, then `GUILDSCOPE_*` environment variables and
//! command-line flags over it, validated into typed settings at start.
//!
//! Two stages, as everywhere user input enters: [`RawConfig`] is exactly what
//! the file says (unknown keys rejected), [`Config`] is the checked form the
//! program runs with. Every error names the key and what was expected, in one
//! line.

use std::{
    collections::BTreeMap,
    fmt, fs,
    path::{Path, PathBuf},
    time::Duration,
};

mod telemetry;

use guildscope_bot::{
    Flag, Flags,
    roles::{RoleConfig, RoleRef},
};
use guildscope_model::{ChannelId, GuildId, RoleId, Secret, Snowflake};
use guildscope_store::{Location, MessageErasure};
use serde::Deserialize;

pub use self::telemetry::{OtlpProtocol, TelemetrySettings};

/// The config file's shape, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    discord: RawDiscord,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    stats: RawStats,
    #[serde(default)]
    bus: RawBus,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    commands: RawCommands,
    #[serde(default)]
    roles: RawRoles,
    #[serde(default)]
    service: telemetry::RawService,
    #[serde(default)]
    traces: telemetry::RawTraces,
    #[serde(default)]
    metrics: telemetry::RawMetrics,
    statsd: Option<guildscope_telemetry::StatsdConfig>,
    #[serde(default)]
    sentry: telemetry::RawSentry,
    #[serde(default)]
    markers: telemetry::RawMarkers,
    #[serde(default)]
    flags: BTreeMap<String, RawFlag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlag {
    #[serde(default)]
    everyone: bool,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    guilds: Vec<String>,
    #[serde(default)]
    percentage: u8,
    #[serde(default)]
    commands: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDiscord {
    token_file: Option<PathBuf>,
    api_base: Option<String>,
    gateway_base: Option<String>,
    shards: Option<u32>,
    large_threshold: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: Option<String>,
    batch_size: Option<usize>,
    batch_interval_ms: Option<u64>,
    forget_messages: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStats {
    #[serde(default)]
    staff_roles: Vec<String>,
    #[serde(default)]
    ignored_channels: Vec<String>,
    include_bots: Option<bool>,
    keyed_hash_key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBus {
    capacity: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommands {
    prefix: Option<String>,
    #[serde(default)]
    guilds: Vec<String>,
    defer_after_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoles {
    #[serde(default)]
    allow: Vec<String>,
    marker: Option<String>,
}

/// A configuration error: one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    origin: String,
    message: String,
}

impl ConfigError {
    pub(crate) fn key(key: &str, message: impl fmt::Display) -> Self {
        Self {
            origin: format!("config key `{key}`"),
            message: message.to_string(),
        }
    }
}

/// `value`, or `default` when the key is unset; zero is refused, naming `key`
/// and what the number counts (`""`, or `" of milliseconds"`).
pub(crate) fn positive<T>(
    key: &str,
    value: Option<T>,
    default: T,
    unit: &str,
) -> Result<T, ConfigError>
where
    T: Copy + PartialEq + From<u8>,
{
    let value = value.unwrap_or(default);
    if value == T::from(0) {
        return Err(ConfigError::key(
            key,
            format!("expected a positive number{unit}, got 0"),
        ));
    }
    Ok(value)
}

/// Values given on the command line or in the environment, which win over
/// the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--api-base` / `GUILDSCOPE_API_BASE`.
    pub api_base: Option<String>,
    /// `--gateway-base` / `GUILDSCOPE_GATEWAY_BASE`.
    pub gateway_base: Option<String>,
    /// `--database` / `GUILDSCOPE_DATABASE`.
    pub database: Option<String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty text on a terminal, JSON otherwise.
    Auto,
    /// Human-readable text.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Discord REST base URL; `None` is the real Discord.
    pub api_base: Option<String>,
    /// Discord gateway base URL; `None` is the real Discord.
    pub gateway_base: Option<String>,
    /// Where the token file is, if the token is not in the environment.
    pub token_file: Option<PathBuf>,
    /// Shard count override; `None` asks Discord.
    pub shards: Option<u32>,
    /// Members sent with GUILD_CREATE before the guild counts as large.
    pub large_threshold: u64,
    /// Where statistics are stored.
    pub storage: Location,
    /// Ops per store transaction.
    pub batch_size: usize,
    /// Longest wait before a partial batch is committed, in milliseconds.
    pub batch_interval_ms: u64,
    /// What `forget-user` does with the user's messages by default.
    pub forget_messages: MessageErasure,
    /// Roles whose holders count as staff.
    pub staff_roles: Vec<RoleId>,
    /// Channels and categories whose messages are not stored.
    pub ignored_channels: Vec<ChannelId>,
    /// Store messages written by bots too.
    pub include_bots: bool,
    /// A file holding the key for keyed hashes of message content.
    pub keyed_hash_key_file: Option<PathBuf>,
    /// Events the bus holds before the gateway waits.
    pub bus_capacity: usize,
    /// The log filter (`info`, `guildscope=debug,warn`, ...).
    pub log_level: String,
    /// How logs are written.
    pub log_format: LogFormat,
    /// What message commands start with (`!`); `None` answers slash
    /// commands only.
    pub prefix: Option<String>,
    /// Guilds to register the slash commands in, instead of globally.
    pub command_guilds: Vec<GuildId>,
    /// How long a command works before a slash command is acknowledged.
    pub defer_after: Duration,
    /// Which roles members may give themselves.
    pub roles: RoleConfig,
    /// Traces, metrics, error reports and deploy markers.
    pub telemetry: TelemetrySettings,
    /// Feature flags, by name (reloadable while `run` runs).
    pub flags: BTreeMap<String, Flag>,
}

impl Config {
    /// Reads `path` (if given), applies `overrides`, and validates.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        match path {
            Some(path) => ConfigFile::read(path)?.load(overrides),
            None => Self::validate(RawConfig::default(), overrides),
        }
    }

    /// The feature flags, ready to be put in force.
    pub fn flag_set(&self) -> Flags {
        Flags::new(self.flags.clone())
    }

    /// Checks every value and builds the typed configuration.
    pub fn validate(raw: RawConfig, overrides: &Overrides) -> Result<Self, ConfigError> {
        let api_base = overrides.api_base.clone().or(raw.discord.api_base);
        if let Some(url) = &api_base {
            check_url("discord.api_base", url, &["http://", "https://"])?;
        }
        let gateway_base = overrides.gateway_base.clone().or(raw.discord.gateway_base);
        if let Some(url) = &gateway_base {
            check_url("discord.gateway_base", url, &["ws://", "wss://"])?;
        }
        let shards = match raw.discord.shards {
            Some(0) | None => None,
            Some(n) => Some(n),
        };
        let large_threshold = raw.discord.large_threshold.unwrap_or(250);
        if !(50..=250).contains(&large_threshold) {
            return Err(ConfigError::key(
                "discord.large_threshold",
                format!("expected a number from 50 to 250, got {large_threshold}"),
            ));
        }
        let url = overrides
            .database
            .clone()
            .or(raw.storage.url)
            .unwrap_or_else(|| "guildscope.db".into());
        if url.trim().is_empty() {
            return Err(ConfigError::key(
                "storage.url",
                "expected an SQLite file path or a postgres:// URL, got an empty string",
            ));
        }
        let storage = Location::parse(&url);
        let batch_size = positive("storage.batch_size", raw.storage.batch_size, 2_000, "")?;
        let forget_messages = match raw
            .storage
            .forget_messages
            .as_deref()
            .unwrap_or("anonymise")
        {
            "anonymise" => MessageErasure::Anonymise,
            "delete" => MessageErasure::Delete,
            other => {
                return Err(ConfigError::key(
                    "storage.forget_messages",
                    format!("expected \"delete\" or \"anonymise\", got {other:?}"),
                ));
            }
        };
        let bus_capacity = positive("bus.capacity", raw.bus.capacity, 4_096, "")?;
        let log_format = match raw.log.format.as_deref().unwrap_or("auto") {
            "auto" => LogFormat::Auto,
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::key(
                    "log.format",
                    format!("expected \"auto\", \"pretty\" or \"json\", got {other:?}"),
                ));
            }
        };
        let commands = validate_commands(raw.commands)?;
        let roles = validate_roles(raw.roles)?;
        let mut flags = BTreeMap::new();
        for (name, flag) in raw.flags {
            let key = |field: &str| format!("flags.{name}.{field}");
            if flag.percentage > 100 {
                return Err(ConfigError::key(
                    &key("percentage"),
                    format!("expected a number from 0 to 100, got {}", flag.percentage),
                ));
            }
            let flag = Flag {
                everyone: flag.everyone,
                roles: parse_ids(&key("roles"), &flag.roles)?,
                users: parse_ids(&key("users"), &flag.users)?,
                guilds: parse_ids(&key("guilds"), &flag.guilds)?,
                percentage: flag.percentage,
                commands: flag.commands,
            };
            flags.insert(name, flag);
        }
        let env = |name: &str| std::env::var(name).ok();
        let telemetry = telemetry::validate(
            telemetry::RawTelemetry {
                service: raw.service,
                traces: raw.traces,
                metrics: raw.metrics,
                statsd: raw.statsd,
                sentry: raw.sentry,
                markers: raw.markers,
            },
            &env,
        )?;
        Ok(Self {
            api_base,
            gateway_base,
            token_file: raw.discord.token_file,
            shards,
            large_threshold,
            storage,
            batch_size,
            batch_interval_ms: raw.storage.batch_interval_ms.unwrap_or(100),
            forget_messages,
            staff_roles: parse_ids("stats.staff_roles", &raw.stats.staff_roles)?,
            ignored_channels: parse_ids("stats.ignored_channels", &raw.stats.ignored_channels)?,
            include_bots: raw.stats.include_bots.unwrap_or(false),
            keyed_hash_key_file: raw.stats.keyed_hash_key_file,
            bus_capacity,
            log_level: raw.log.level.unwrap_or_else(|| "info".into()),
            log_format,
            prefix: commands.prefix,
            command_guilds: commands.guilds,
            defer_after: commands.defer_after,
            roles,
            telemetry,
            flags,
        })
    }

    /// The bot token: `DISCORD_TOKEN`, else the configured token file.
    pub fn token(&self) -> Result<Secret, ConfigError> {
        token_from(
            std::env::var("DISCORD_TOKEN").ok(),
            self.token_file.as_deref(),
        )
    }
}

/// A config file as read: its path and text. `run` keeps the one it started
/// with, so a reload can tell which sections changed.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let bytes = fs::read(path).map_err(|e| ConfigError {
            origin: path.display().to_string(),
            message: format!("cannot read the config file: {e}"),
        })?;
        Self::from_bytes(path, bytes)
    }

    /// The file at `path` whose content is `bytes`.
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, ConfigError> {
        let text = String::from_utf8(bytes).map_err(|e| ConfigError {
            origin: path.display().to_string(),
            message: format!(
                "the config file is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Ok(Self {
            path: path.to_owned(),
            text,
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's content.
    pub fn bytes(&self) -> &[u8] {
        self.text.as_bytes()
    }

    /// Parses and validates the file, with `overrides` over it.
    pub fn load(&self, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::validate(parse(&self.text, &self.path)?, overrides)
    }

    /// The top-level sections, other than `[flags]`, whose content differs
    /// between this file and `other` (comments and layout aside), by name.
    pub fn sections_changed_from(&self, other: &Self) -> Vec<String> {
        let table = |text: &str| toml::from_str::<toml::Table>(text).unwrap_or_default();
        let (mine, theirs) = (table(&self.text), table(&other.text));
        let mut names: Vec<String> = mine
            .keys()
            .chain(theirs.keys())
            .filter(|name| name.as_str() != "flags" && mine.get(*name) != theirs.get(*name))
            .cloned()
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }
}

impl Config {
    /// The key for keyed hashes of message content, if keyed hashing is on:
    /// `GUILDSCOPE_KEYED_HASH_KEY`, else the file `stats.keyed_hash_key_file`.
    pub fn keyed_hash_key(&self) -> Result<Option<Secret>, ConfigError> {
        keyed_hash_key_from(
            std::env::var("GUILDSCOPE_KEYED_HASH_KEY").ok(),
            self.keyed_hash_key_file.as_deref(),
        )
    }
}

fn keyed_hash_key_from(
    env: Option<String>,
    file: Option<&Path>,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(key) = env.filter(|k| !k.trim().is_empty()) {
        return Ok(Some(Secret::new(key.trim())));
    }
    let Some(file) = file else { return Ok(None) };
    let text = fs::read_to_string(file).map_err(|e| {
        ConfigError::key(
            "stats.keyed_hash_key_file",
            format!("cannot read {}: {e}", file.display()),
        )
    })?;
    let key = text.trim();
    if key.len() < 16 {
        return Err(ConfigError::key(
            "stats.keyed_hash_key_file",
            format!(
                "{} must hold a key of at least 16 characters",
                file.display()
            ),
        ));
    }
    Ok(Some(Secret::new(key)))
}

/// The `[commands]` section, checked.
struct CommandSettings {
    prefix: Option<String>,
    guilds: Vec<GuildId>,
    defer_after: Duration,
}

/// Longest message-command prefix.
const MAX_PREFIX_CHARS: usize = 5;

/// The longest `commands.defer_after_ms`: Discord drops an interaction that
/// is not acknowledged within 3 s, and the acknowledgement itself needs time
/// to get there.
const MAX_DEFER_AFTER_MS: u64 = 2_500;

fn validate_commands(raw: RawCommands) -> Result<CommandSettings, ConfigError> {
    let prefix = match raw.prefix {
        None => None,
        Some(prefix) if prefix.is_empty() => None,
        Some(prefix) => {
            if prefix.chars().count() > MAX_PREFIX_CHARS || prefix.chars().any(char::is_whitespace)
            {
                return Err(ConfigError::key(
                    "commands.prefix",
                    format!(
                        "expected at most {MAX_PREFIX_CHARS} characters without spaces, such as \"!\" (or \"\" for no message commands), got {prefix:?}"
                    ),
                ));
            }
            Some(prefix)
        }
    };
    let mut guilds: Vec<GuildId> = parse_ids("commands.guilds", &raw.guilds)?;
    if let Some(zero) = raw.guilds.iter().zip(&guilds).find(|(_, id)| id.get() == 0) {
        return Err(ConfigError::key(
            "commands.guilds",
            format!(
                "expected Discord ids as strings of digits, got {:?}",
                zero.0
            ),
        ));
    }
    guilds.sort_unstable();
    guilds.dedup();
    let defer_after_ms = raw
        .defer_after_ms
        .unwrap_or(guildscope_bot::commands::DEFAULT_DEFER_AFTER.as_millis() as u64);
    if !(1..=MAX_DEFER_AFTER_MS).contains(&defer_after_ms) {
        return Err(ConfigError::key(
            "commands.defer_after_ms",
            format!("expected a number from 1 to {MAX_DEFER_AFTER_MS}, got {defer_after_ms}"),
        ));
    }
    Ok(CommandSettings {
        prefix,
        guilds,
        defer_after: Duration::from_millis(defer_after_ms),
    })
}

fn validate_roles(raw: RawRoles) -> Result<RoleConfig, ConfigError> {
    Ok(RoleConfig {
        allow: raw
            .allow
            .iter()
            .map(|role| role_ref("roles.allow", role))
            .collect::<Result<_, _>>()?,
        marker: raw
            .marker
            .as_deref()
            .map(|role| role_ref("roles.marker", role))
            .transpose()?,
    })
}

/// A role named in the configuration: a string of digits is its id,
/// anything else its name.
fn role_ref(key: &str, value: &str) -> Result<RoleRef, ConfigError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::key(
            key,
            "expected a role name or id, got an empty string",
        ));
    }
    if !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(RoleRef::Name(value.to_owned()));
    }
    match trimmed.parse::<u64>() {
        Ok(id) if id > 0 => Ok(RoleRef::Id(RoleId::new(id))),
        _ => Err(ConfigError::key(
            key,
            format!("expected a role name or a Discord role id, got {value:?}"),
        )),
    }
}

fn token_from(env: Option<String>, file: Option<&Path>) -> Result<Secret, ConfigError> {
    telemetry::secret("discord.token_file", env, file)?.ok_or_else(|| {
        ConfigError::key(
            "discord.token_file",
            "no bot token: set DISCORD_TOKEN or point discord.token_file at a file holding the token",
        )
    })
}

fn check_url(key: &str, url: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    if schemes
        .iter()
        .any(|s| url.starts_with(s) && url.len() > s.len())
    {
        Ok(())
    } else {
        Err(ConfigError::key(
            key,
            format!(
                "expected a URL starting with {}, got {url:?}",
                schemes.join(" or ")
            ),
        ))
    }
}

fn parse_ids<T: std::str::FromStr>(key: &str, values: &[String]) -> Result<Vec<T>, ConfigError> {
    values
        .iter()
        .map(|v| {
            v.parse().map_err(|_| {
                ConfigError::key(
                    key,
                    format!("expected Discord ids as strings of digits, got {v:?}"),
                )
            })
        })
        .collect()
}

/// Parses config text; errors carry the file, line and offending key.
pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start].matches('\n').count() + 1);
        let origin = match line {
            Some(line) => format!("{}:{line}", path.display()),
            None => path.display().to_string(),
        };
        ConfigError {
            origin,
            message: e.message().replace('\n', " "),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("guildscope.example.toml");
        let config = Config::load(Some(&path), &Overrides::default()).unwrap();
        assert_eq!(config.storage, Location::Sqlite("guildscope.db".into()));
        assert_eq!(config.prefix, None);
        assert_eq!(config.defer_after, Duration::from_millis(1_500));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let err = parse(
            "[discord]\napi_base = \"http://x\"\nshard = 2\n",
            Path::new("g.toml"),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("g.toml:3:"), "{message}");
        assert!(message.contains("shard"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn a_bad_value_names_the_key() {
        let raw = parse(
            "[discord]\napi_base = \"discord.com\"\n",
            Path::new("g.toml"),
        )
        .unwrap();
        let err = Config::validate(raw, &Overrides::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `discord.api_base`: expected a URL starting with http:// or https://, got \"discord.com\""
        );
    }

    #[test]
    fn a_zero_count_is_refused_with_its_key() {
        for (toml, expected) in [
            (
                "[storage]\nbatch_size = 0\n",
                "config key `storage.batch_size`: expected a positive number, got 0",
            ),
            (
                "[bus]\ncapacity = 0\n",
                "config key `bus.capacity`: expected a positive number, got 0",
            ),
            (
                "[traces]\nmetrics_interval_ms = 0\n",
                "config key `traces.metrics_interval_ms`: expected a positive number of milliseconds, got 0",
            ),
        ] {
            let raw = parse(toml, Path::new("g.toml")).unwrap();
            let err = Config::validate(raw, &Overrides::default()).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }
    }

    #[test]
    fn forget_messages_defaults_to_anonymise_and_rejects_other_words() {
        let config = Config::validate(RawConfig::default(), &Overrides::default()).unwrap();
        assert_eq!(config.forget_messages, MessageErasure::Anonymise);
        let raw = parse(
            "[storage]\nforget_messages = \"delete\"\n",
            Path::new("g.toml"),
        )
        .unwrap();
        let config = Config::validate(raw, &Overrides::default()).unwrap();
        assert_eq!(config.forget_messages, MessageErasure::Delete);
        let raw = parse(
            "[storage]\nforget_messages = \"shred\"\n",
            Path::new("g.toml"),
        )
        .unwrap();
        let err = Config::validate(raw, &Overrides::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "config key `storage.forget_messages`: expected \"delete\" or \"anonymise\", got \"shred\""
        );
    }

    #[test]
    fn overrides_win_over_the_file() {
        let raw = parse("[storage]\nurl = \"a.db\"\n", Path::new("g.toml")).unwrap();
        let overrides = Overrides {
            database: Some("b.db".into()),
            ..Overrides::default()
        };
        let config = Config::validate(raw, &overrides).unwrap();
        assert_eq!(config.storage, Location::Sqlite("b.db".into()));
    }

    #[test]
    fn a_missing_token_names_both_places_to_put_it() {
        let err = token_from(None, None).unwrap_err().to_string();
        assert!(
            err.contains("DISCORD_TOKEN") && err.contains("discord.token_file"),
            "{err}"
        );
    }

    #[test]
    fn keyed_hashing_is_off_unless_a_key_is_given() {
        assert!(keyed_hash_key_from(None, None).unwrap().is_none());
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        fs::write(&short, "abc\n").unwrap();
        let err = keyed_hash_key_from(None, Some(&short))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config key `stats.keyed_hash_key_file`"),
            "{err}"
        );
        let good = dir.path().join("good");
        fs::write(&good, "0123456789abcdef0123\n").unwrap();
        let key = keyed_hash_key_from(None, Some(&good)).unwrap().unwrap();
        assert_eq!(key.expose(), "0123456789abcdef0123");
        assert_eq!(format!("{key:?}"), "[redacted]");
    }

    fn validate_text(text: &str) -> Result<Config, ConfigError> {
        Config::validate(parse(text, Path::new("g.toml"))?, &Overrides::default())
    }

    #[test]
    fn commands_default_to_slash_only_registered_globally() {
        let config = validate_text("").unwrap();
        assert_eq!(config.prefix, None);
        assert!(config.command_guilds.is_empty());
        assert_eq!(config.defer_after, Duration::from_millis(1_500));
        assert_eq!(config.roles, RoleConfig::default());
        let config = validate_text("[commands]\nprefix = \"\"\n").unwrap();
        assert_eq!(config.prefix, None);
    }

    #[test]
    fn the_commands_section_is_checked_key_by_key() {
        let config = validate_text(
            "[commands]\nprefix = \"gs!\"\nguilds = [\"42\", \"7\", \"42\"]\ndefer_after_ms = 2500\n",
        )
        .unwrap();
        assert_eq!(config.prefix.as_deref(), Some("gs!"));
        assert_eq!(config.command_guilds, [GuildId::new(7), GuildId::new(42)]);
        assert_eq!(config.defer_after, Duration::from_millis(2_500));

        let error = |text: &str| validate_text(text).unwrap_err().to_string();
        assert_eq!(
            error("[commands]\nprefix = \"! \"\n"),
            "config key `commands.prefix`: expected at most 5 characters without spaces, such as \"!\" (or \"\" for no message commands), got \"! \""
        );
        assert!(
            error("[commands]\nprefix = \"bot!!!\"\n").starts_with("config key `commands.prefix`:")
        );
        // Five characters, counted as characters, not bytes.
        assert!(validate_text("[commands]\nprefix = \"ééééé\"\n").is_ok());
        assert_eq!(
            error("[commands]\nguilds = [\"abc\"]\n"),
            "config key `commands.guilds`: expected Discord ids as strings of digits, got \"abc\""
        );
        assert!(
            error("[commands]\nguilds = [\"0\"]\n").starts_with("config key `commands.guilds`:")
        );
        for bad in [0, 2_501] {
            assert_eq!(
                error(&format!("[commands]\ndefer_after_ms = {bad}\n")),
                format!(
                    "config key `commands.defer_after_ms`: expected a number from 1 to 2500, got {bad}"
                )
            );
        }
        let unknown = parse("[commands]\nprefixes = \"!\"\n", Path::new("g.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            unknown.starts_with("g.toml:2:") && unknown.contains("prefixes"),
            "{unknown}"
        );
    }

    #[test]
    fn roles_are_ids_when_all_digits_and_names_otherwise() {
        let config = validate_text(
            "[roles]\nallow = [\"Chess\", \"123456789012345678\", \"Among Us 2\"]\nmarker = \"── Games ──\"\n",
        )
        .unwrap();
        assert_eq!(
            config.roles,
            RoleConfig {
                allow: vec![
                    RoleRef::Name("Chess".into()),
                    RoleRef::Id(RoleId::new(123_456_789_012_345_678)),
                    RoleRef::Name("Among Us 2".into()),
                ],
                marker: Some(RoleRef::Name("── Games ──".into())),
            }
        );
        let config = validate_text("[roles]\nmarker = \"42\"\n").unwrap();
        assert_eq!(config.roles.marker, Some(RoleRef::Id(RoleId::new(42))));

        let error = |text: &str| validate_text(text).unwrap_err().to_string();
        assert_eq!(
            error("[roles]\nallow = [\"Chess\", \" \"]\n"),
            "config key `roles.allow`: expected a role name or id, got an empty string"
        );
        assert_eq!(
            error("[roles]\nmarker = \"99999999999999999999999\"\n"),
            "config key `roles.marker`: expected a role name or a Discord role id, got \"99999999999999999999999\""
        );
        assert!(error("[roles]\nallow = [\"0\"]\n").starts_with("config key `roles.allow`:"));
    }

    #[test]
    fn sections_other_than_flags_that_changed_are_named() {
        let file = |text: &str| ConfigFile {
            path: PathBuf::from("g.toml"),
            text: text.to_owned(),
        };
        let before = file("[storage]\nurl = \"a.db\"\n[flags.beta]\neveryone = true\n");
        let reworded =
            file("# the database\n[storage]\nurl   = \"a.db\"\n[flags.beta]\neveryone = false\n");
        assert!(reworded.sections_changed_from(&before).is_empty());
        let moved = file("[commands]\nprefix = \"!\"\n[storage]\nurl = \"b.db\"\n");
        assert_eq!(
            moved.sections_changed_from(&before),
            ["commands", "storage"]
        );
    }

    #[test]
    fn the_token_file_is_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        fs::write(&file, "abc.def.ghi\n").unwrap();
        let token = token_from(None, Some(&file)).unwrap();
        assert_eq!(token.expose(), "abc.def.ghi");
        assert_eq!(format!("{token:?}"), "[redacted]");
    }
}
