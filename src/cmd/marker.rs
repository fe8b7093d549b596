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
            Ok(id) => println!("grafana    {}: annotation {id}", grafana.url),
            Err(error) => {
                failed = true;
                println!("grafana    {}: failed: {error}", grafana.url);
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
                honeycomb.api_url, honeycomb.dataset
            ),
            Err(error) => {
                failed = true;
                println!(
                    "honeycomb  {} dataset {}: failed: {error}",
                    honeycomb.api_url, honeycomb.dataset
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
