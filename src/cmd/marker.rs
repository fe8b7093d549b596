//! `guildscope marker`: a deploy marker on the graphs people look at, posted
//! to every endpoint under `[markers]`.

use std::{
    process::ExitCode,
    time::{Duration, SystemTime},
};

use anyhow::bail;
use guildscope_telemetry::markers::{self, GrafanaTarget, HoneycombTarget, Marker, http_client};

use crate::{
    cli::MarkerArgs,
    config::{Config, Overrides},
};

/// Posts the marker to each configured endpoint, printing one line per
/// endpoint; fails if any endpoint refused it or none is configured.
pub async fn run(args: MarkerArgs) -> anyhow::Result<ExitCode> {
    let config = Config::load(args.config.config.as_deref(), &Overrides::default())?;
    let telemetry = &config.telemetry;
    if telemetry.grafana.is_none() && telemetry.honeycomb.is_none() {
        bail!(
            "no marker endpoint is configured: add [markers.grafana] and/or [markers.honeycomb] to the config file"
        );
    }
    let now = SystemTime::now();
    let (start, end) = match args.duration {
        Some(took) => (now.checked_sub(took).unwrap_or(now), Some(now)),
        None => (now, None),
    };
    let marker = Marker {
        text: args.text,
        kind: args.kind,
        url: args.url,
        start,
        end,
        tags: args.tags,
    };
    let client = http_client(Duration::from_secs(10))?;
    let mut failed = false;
    if let Some(grafana) = &telemetry.grafana {
        let target = GrafanaTarget {
            url: grafana.url.clone(),
            token: grafana.token.as_ref().map(|t| t.expose().to_owned()),
            dashboard_uid: grafana.dashboard_uid.clone(),
            tags: grafana.tags.clone(),
        };
        match markers::post_grafana(&client, &target, &marker).await {
            Ok(id) => println!("grafana    {}: annotation {id}", origin(&grafana.url)),
            Err(error) => {
                failed = true;
                println!("grafana    {}: failed: {error}", origin(&grafana.url));
            }
        }
    }
    if let Some(honeycomb) = &telemetry.honeycomb {
        let target = HoneycombTarget {
            api_url: honeycomb.api_url.clone(),
            dataset: honeycomb.dataset.clone(),
            api_key: honeycomb.key.expose().to_owned(),
        };
        match markers::post_honeycomb(&client, &target, &marker).await {
            Ok(id) => println!(
                "honeycomb  {} dataset {}: marker {id}",
                origin(&honeycomb.api_url),
                honeycomb.dataset
            ),
            Err(error) => {
                failed = true;
                println!(
                    "honeycomb  {} dataset {}: failed: {error}",
                    origin(&honeycomb.api_url),
                    honeycomb.dataset
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `scheme://host:port` of a configured URL, for output: never the
/// credentials someone may have written into it (`https://user:pass@...`),
/// nor its path or query. The port is the scheme's default when none is
/// written.
pub(crate) fn origin(url: &str) -> String {
    split_url(url).0
}

/// [`origin`] followed by the URL's path, still without credentials or
/// query.
pub(crate) fn origin_and_path(url: &str) -> String {
    let (origin, path) = split_url(url);
    format!("{origin}{path}")
}

/// The origin (`scheme://host:port`) and the path of `url`.
fn split_url(url: &str) -> (String, &str) {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let scheme = scheme.to_ascii_lowercase();
    // Credentials end at the last `@` before the query. Cutting there even
    // when a mistyped password holds a `/` keeps all of it out of sight.
    let before_query = rest.split(['?', '#']).next().unwrap_or_default();
    let rest = match before_query.rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (host_port, tail) = rest.split_at(end);
    let path = if tail.starts_with('/') {
        tail.split(['?', '#']).next().unwrap_or_default()
    } else {
        ""
    };
    let (host, port) = match host_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]:4317`.
        Some(inside) => match inside.split_once(']') {
            Some((ip, after)) => (format!("[{ip}]"), after.strip_prefix(':')),
            None => (host_port.to_owned(), None),
        },
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host.to_owned(), Some(port)),
            None => (host_port.to_owned(), None),
        },
    };
    let port = match port {
        Some(port) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(port.to_owned())
        }
        // Anything else after a colon is not a port; it is left out.
        Some(_) => None,
        None => match scheme.as_str() {
            "http" => Some("80".to_owned()),
            "https" => Some("443".to_owned()),
            _ => None,
        },
    };
    let origin = match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    };
    (origin, path)
}

#[cfg(test)]
mod tests {
    use super::{origin, origin_and_path};

    #[test]
    fn credentials_in_a_configured_url_are_never_shown() {
        assert_eq!(
            origin("https://admin:hunter2@grafana.example.com/grafana?orgId=1"),
            "https://grafana.example.com:443"
        );
        assert_eq!(
            origin("http://token@127.0.0.1:3000/"),
            "http://127.0.0.1:3000"
        );
        assert_eq!(origin("http://[::1]:4317"), "http://[::1]:4317");
        assert_eq!(
            origin_and_path("http://u:pa/ss@otel:4318/v1/traces?key=k"),
            "http://otel:4318/v1/traces"
        );
        assert_eq!(origin_and_path("http://otel:4317"), "http://otel:4317");
        assert_eq!(
            origin("HTTPS://api.honeycomb.io"),
            "https://api.honeycomb.io:443"
        );
    }
}
