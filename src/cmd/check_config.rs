//! `guildscope check-config`: is the configuration valid, which exporters
//! are on, and does each configured endpoint answer?
//!
//! One line per part, `ok`, `off` or `FAIL` first so the output reads as a
//! checklist; the exit code is non-zero when the config is invalid or any
//! configured endpoint does not answer.

use std::{process::ExitCode, time::Duration};

use guildscope_bot::roles::RoleRef;
use guildscope_model::Snowflake;
use guildscope_telemetry::{
    otel::OtlpProtocol,
    probe::{self, ProbeResult},
};

use crate::{
    cli::CheckConfigArgs,
    cmd::{
        marker::{origin, origin_and_path},
        telemetry::otel_config,
    },
    config::{Config, Overrides},
};

/// One line of the report.
struct Line {
    state: State,
    part: &'static str,
    text: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Ok,
    Off,
    Fail,
}

impl State {
    fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok  ",
            Self::Off => "off ",
            Self::Fail => "FAIL",
        }
    }
}

impl Line {
    fn new(state: State, part: &'static str, text: impl Into<String>) -> Self {
        Self {
            state,
            part,
            text: text.into(),
        }
    }

    fn probed(part: &'static str, what: String, result: ProbeResult) -> Self {
        let state = if result.ok { State::Ok } else { State::Fail };
        Self::new(state, part, format!("{what}: {}", result.detail))
    }
}

/// Prints the checklist.
pub async fn run(args: CheckConfigArgs) -> anyhow::Result<ExitCode> {
    let overrides = Overrides {
        database: args.config.database,
        ..Overrides::default()
    };
    let source = match &args.config.config {
        Some(path) => path.display().to_string(),
        None => "no config file (defaults and environment)".to_owned(),
    };
    let config = match Config::load(args.config.config.as_deref(), &overrides) {
        Ok(config) => config,
        Err(error) => {
            print_lines(&[Line::new(State::Fail, "config", error.to_string())]);
            return Ok(ExitCode::FAILURE);
        }
    };
    let lines = check(&config, &source, args.timeout).await;
    print_lines(&lines);
    Ok(if lines.iter().any(|l| l.state == State::Fail) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_lines(lines: &[Line]) {
    for line in lines {
        println!("{} {:<10} {}", line.state.label(), line.part, line.text);
    }
}

async fn check(config: &Config, source: &str, timeout: Duration) -> Vec<Line> {
    let telemetry = &config.telemetry;
    let mut lines = vec![Line::new(State::Ok, "config", format!("{source}: valid"))];

    // The command settings share the Discord line: they are what the bot
    // asks of Discord (where commands are registered, which intent).
    let commands = commands_summary(config);
    lines.push(match config.token() {
        Ok(_) => Line::new(
            State::Ok,
            "discord",
            format!(
                "{}; token set; {commands}",
                config
                    .api_base
                    .as_deref()
                    .unwrap_or("https://discord.com/api")
            ),
        ),
        Err(error) => Line::new(State::Fail, "discord", format!("{error}; {commands}")),
    });
    lines.push(Line::new(State::Ok, "storage", config.storage.to_string()));

    let otel = otel_config(config);
    match otel
        .as_ref()
        .map(|otel| (&otel.traces, &otel.logs, otel.sample_ratio))
    {
        Ok((Some(endpoint), logs, sample_ratio)) => {
            let grpc = endpoint.protocol == OtlpProtocol::Grpc;
            let what = format!(
                "OTLP {} {} (sampling {sample_ratio}){}",
                endpoint.protocol,
                origin_and_path(&endpoint.url),
                if logs.is_some() { ", logs too" } else { "" }
            );
            let result = probe::otlp_at(&endpoint.url, grpc, &endpoint.headers, timeout).await;
            lines.push(Line::probed("traces", what, result));
        }
        Ok((None, _, _)) => lines.push(Line::new(
            State::Off,
            "traces",
            "no endpoint (set traces.endpoint or OTEL_EXPORTER_OTLP_ENDPOINT)",
        )),
        Err(error) => lines.push(Line::new(State::Fail, "traces", format!("{error:#}"))),
    }

    lines.push(match &telemetry.metrics.listen {
        Some(addr) => {
            let auth = if telemetry.metrics.bearer_token.is_some() {
                "bearer token required"
            } else {
                "no token"
            };
            match std::net::TcpListener::bind(addr) {
                Ok(_) => Line::new(
                    State::Ok,
                    "metrics",
                    format!(
                        "Prometheus endpoint http://{addr}/metrics ({auth}); the address is free"
                    ),
                ),
                Err(error) => Line::new(
                    State::Fail,
                    "metrics",
                    format!("Prometheus endpoint {addr}: cannot listen: {error}"),
                ),
            }
        }
        None => Line::new(
            State::Off,
            "metrics",
            "Prometheus endpoint disabled (set metrics.listen or GUILDSCOPE_METRICS_LISTEN to an address such as 127.0.0.1:9464)",
        ),
    });

    // Metrics over OTLP are opt-in: a second line only when asked for.
    if let Ok(otel) = &otel
        && let Some(endpoint) = &otel.metrics
    {
        let grpc = endpoint.protocol == OtlpProtocol::Grpc;
        let what = format!(
            "OTLP {} {} every {} s",
            endpoint.protocol,
            origin_and_path(&endpoint.url),
            otel.metrics_interval.as_secs_f64()
        );
        let result = probe::otlp_at(&endpoint.url, grpc, &endpoint.headers, timeout).await;
        lines.push(Line::probed("metrics", what, result));
    }

    match &telemetry.statsd {
        Some(statsd) => {
            let result = probe::udp(&statsd.address, timeout).await;
            let what = format!("{} prefix {:?}", statsd.address, statsd.prefix);
            lines.push(Line::probed("statsd", what, result));
        }
        None => lines.push(Line::new(
            State::Off,
            "statsd",
            "no [statsd] section (add one with address = \"host:8125\")",
        )),
    }

    match &telemetry.sentry {
        Some(sentry) => {
            let result = probe::sentry(sentry.dsn.expose(), timeout).await;
            lines.push(Line::probed(
                "sentry",
                format!("DSN set (sample rate {})", sentry.sample_rate),
                result,
            ));
        }
        None => lines.push(Line::new(
            State::Off,
            "sentry",
            "no DSN (set SENTRY_DSN or sentry.dsn_file)",
        )),
    }

    match &telemetry.grafana {
        Some(grafana) => {
            let headers: Vec<(String, String)> = grafana
                .token
                .iter()
                .map(|t| ("authorization".to_owned(), format!("Bearer {}", t.expose())))
                .collect();
            let url = format!("{}/api/health", grafana.url.trim_end_matches('/'));
            let result = probe::http_get(&url, &headers, timeout).await;
            lines.push(Line::probed("grafana", origin(&grafana.url), result));
        }
        None => lines.push(Line::new(
            State::Off,
            "grafana",
            "no [markers.grafana] section (add one with url = \"https://grafana.example.com\" and the token in GUILDSCOPE_GRAFANA_TOKEN)",
        )),
    }
    match &telemetry.honeycomb {
        Some(honeycomb) => {
            let result =
                probe::honeycomb_auth(&honeycomb.api_url, honeycomb.key.expose(), timeout).await;
            lines.push(Line::probed(
                "honeycomb",
                format!("{} dataset {}", origin(&honeycomb.api_url), honeycomb.dataset),
                result,
            ));
        }
        None => lines.push(Line::new(
            State::Off,
            "honeycomb",
            "no [markers.honeycomb] section (add one with dataset = \"...\" and the key in GUILDSCOPE_HONEYCOMB_KEY)",
        )),
    }
    lines
}

/// Where slash commands are registered, whether message commands are on,
/// and which roles members may give themselves.
fn commands_summary(config: &Config) -> String {
    let scope = if config.command_guilds.is_empty() {
        "slash commands registered globally".to_owned()
    } else {
        let guilds: Vec<String> = config
            .command_guilds
            .iter()
            .map(|g| g.get().to_string())
            .collect();
        let noun = if guilds.len() == 1 { "guild" } else { "guilds" };
        format!("slash commands registered in {noun} {}", guilds.join(", "))
    };
    let prefix = match &config.prefix {
        Some(prefix) => {
            format!("message commands with {prefix:?} (needs the Message Content intent)")
        }
        None => "message commands off (set commands.prefix)".to_owned(),
    };
    let role = |role: &RoleRef| match role {
        RoleRef::Id(id) => id.get().to_string(),
        RoleRef::Name(name) => format!("{name:?}"),
    };
    let mut roles: Vec<String> = config.roles.allow.iter().map(role).collect();
    if let Some(marker) = &config.roles.marker {
        roles.push(format!("those under {}", role(marker)));
    }
    let roles = if roles.is_empty() {
        "no self-assignable roles (set roles.allow or roles.marker)".to_owned()
    } else {
        format!("self-assignable roles: {}", roles.join(", "))
    };
    format!("{scope}; {prefix}; {roles}")
}
