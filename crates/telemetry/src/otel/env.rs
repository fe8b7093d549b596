//! The standard OpenTelemetry environment variables (`OTEL_EXPORTER_OTLP_*`,
//! `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_METRIC_EXPORT_INTERVAL`,
//! `OTEL_BSP_*`, `OTEL_SDK_DISABLED`) applied over a
//! [`TelemetryConfig`], so an operator can point guildscope at a collector the way they
//! point any OpenTelemetry SDK.
//!
//! Rules, from the specification: an empty variable counts as unset; a signal-specific
//! variable wins over the generic one; a generic endpoint gets the signal's path
//! (`/v1/traces`, `/v1/logs`) appended over HTTP, while a signal-specific one and any gRPC
//! endpoint are used as they are. One deliberate choice: a generic endpoint alone turns on
//! trace export only. Logs go over OTLP when `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` is set or
//! the configuration already asks for it, because most operators want logs kept local;
//! metrics likewise with `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, because the Prometheus
//! endpoint already serves them.

use std::time::Duration;

use super::config::{
    OtlpEndpoint, OtlpProtocol, ParentSampling, Signal, TelemetryConfig, TelemetryError,
    check_headers, check_url, signal_url,
};

/// Generic endpoint, for every signal.
pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Endpoint for traces, used as is.
pub const OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// Endpoint for logs, used as is; setting it turns on OTLP log export.
pub const OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
/// Endpoint for metrics, used as is; setting it turns on OTLP metric export.
pub const OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT";
/// Generic headers, `key=value,key2=value2` with URL-encoded values.
pub const OTEL_EXPORTER_OTLP_HEADERS: &str = "OTEL_EXPORTER_OTLP_HEADERS";
/// Headers for traces.
pub const OTEL_EXPORTER_OTLP_TRACES_HEADERS: &str = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
/// Headers for logs.
pub const OTEL_EXPORTER_OTLP_LOGS_HEADERS: &str = "OTEL_EXPORTER_OTLP_LOGS_HEADERS";
/// Headers for metrics.
pub const OTEL_EXPORTER_OTLP_METRICS_HEADERS: &str = "OTEL_EXPORTER_OTLP_METRICS_HEADERS";
/// Generic protocol: `grpc` or `http/protobuf` (the default).
pub const OTEL_EXPORTER_OTLP_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_PROTOCOL";
/// Protocol for traces.
pub const OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
/// Protocol for logs.
pub const OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL";
/// Protocol for metrics.
pub const OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: &str = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL";
/// Generic export timeout in milliseconds.
pub const OTEL_EXPORTER_OTLP_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TIMEOUT";
/// Export timeout for traces, in milliseconds.
pub const OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT";
/// Export timeout for logs, in milliseconds.
pub const OTEL_EXPORTER_OTLP_LOGS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT";
/// Export timeout for metrics, in milliseconds.
pub const OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: &str = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT";
/// Time between metric exports, in milliseconds (default 60000).
pub const OTEL_METRIC_EXPORT_INTERVAL: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// `service.name`.
pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
/// The sampler: `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
/// `parentbased_always_off` or `parentbased_traceidratio`.
pub const OTEL_TRACES_SAMPLER: &str = "OTEL_TRACES_SAMPLER";
/// The ratio for the `traceidratio` samplers, 0.0 to 1.0 (default 1.0).
pub const OTEL_TRACES_SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";
/// `true` turns all export off (logs on stderr stay).
pub const OTEL_SDK_DISABLED: &str = "OTEL_SDK_DISABLED";
/// Longest a partly filled batch of spans waits before it is exported, in milliseconds.
pub const OTEL_BSP_SCHEDULE_DELAY: &str = "OTEL_BSP_SCHEDULE_DELAY";
/// Spans waiting for export, at most (guildscope's own spans: per thread).
pub const OTEL_BSP_MAX_QUEUE_SIZE: &str = "OTEL_BSP_MAX_QUEUE_SIZE";
/// Spans per export request, at most; no more than the queue holds.
pub const OTEL_BSP_MAX_EXPORT_BATCH_SIZE: &str = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE";
/// Longest one export of spans may take, retries included, in milliseconds: caps the
/// traces endpoint's own timeout (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`), never raises it.
pub const OTEL_BSP_EXPORT_TIMEOUT: &str = "OTEL_BSP_EXPORT_TIMEOUT";

/// The variables of one signal, signal-specific first.
struct SignalVars {
    signal: Signal,
    endpoint: &'static str,
    headers: &'static str,
    protocol: &'static str,
    timeout: &'static str,
    /// Whether the generic endpoint alone turns this signal's export on.
    generic_endpoint_enables: bool,
}

const TRACES: SignalVars = SignalVars {
    signal: Signal::Traces,
    endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    headers: OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    protocol: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    timeout: OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
    generic_endpoint_enables: true,
};

const LOGS: SignalVars = SignalVars {
    signal: Signal::Logs,
    endpoint: OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    headers: OTEL_EXPORTER_OTLP_LOGS_HEADERS,
    protocol: OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    timeout: OTEL_EXPORTER_OTLP_LOGS_TIMEOUT,
    generic_endpoint_enables: false,
};

const METRICS: SignalVars = SignalVars {
    signal: Signal::Metrics,
    endpoint: OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    headers: OTEL_EXPORTER_OTLP_METRICS_HEADERS,
    protocol: OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    timeout: OTEL_EXPORTER_OTLP_METRICS_TIMEOUT,
    generic_endpoint_enables: false,
};

impl TelemetryConfig {
    /// Applies the standard OpenTelemetry environment variables over this configuration.
    ///
    /// `env` looks a variable up; pass `|name| std::env::var(name).ok()` in the binary and
    /// a map in tests. Every variable set is checked, even one that ends up unused, and
    /// the first bad one is returned as [`TelemetryError::Env`] naming it (never quoting a
    /// header value). Variables read: the `OTEL_*` constants of this module.
    pub fn apply_env(
        &mut self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(), TelemetryError> {
        let get = |name: &'static str| env(name).filter(|value| !value.trim().is_empty());

        if let Some(name) = get(OTEL_SERVICE_NAME) {
            self.service_name = name.trim().to_owned();
        }
        let disabled = get(OTEL_SDK_DISABLED)
            .map(|value| parse_bool(OTEL_SDK_DISABLED, &value))
            .transpose()?
            .unwrap_or(false);
        if let Some(sampler) = get(OTEL_TRACES_SAMPLER) {
            let arg = get(OTEL_TRACES_SAMPLER_ARG);
            let (ratio, parent) = parse_sampler(&sampler, arg.as_deref())?;
            self.sample_ratio = ratio;
            self.parent_sampling = parent;
        }

        self.traces = resolve_signal(&get, &TRACES, self.traces.take())?;
        self.logs = resolve_signal(&get, &LOGS, self.logs.take())?;
        self.metrics = resolve_signal(&get, &METRICS, self.metrics.take())?;
        if let Some(interval) = get(OTEL_METRIC_EXPORT_INTERVAL) {
            self.metrics_interval = parse_timeout(OTEL_METRIC_EXPORT_INTERVAL, &interval)?;
        }
        if let Some(delay) = get(OTEL_BSP_SCHEDULE_DELAY) {
            self.scheduled_delay = parse_timeout(OTEL_BSP_SCHEDULE_DELAY, &delay)?;
        }
        if let Some(size) = get(OTEL_BSP_MAX_QUEUE_SIZE) {
            self.max_queue_size = parse_count(OTEL_BSP_MAX_QUEUE_SIZE, &size)?;
        }
        if let Some(size) = get(OTEL_BSP_MAX_EXPORT_BATCH_SIZE) {
            self.max_export_batch_size = parse_count(OTEL_BSP_MAX_EXPORT_BATCH_SIZE, &size)?;
        }
        // The batch processor gives an export this long, and the exporter its own
        // timeout for the same export: whichever is shorter ends it.
        if let Some(timeout) = get(OTEL_BSP_EXPORT_TIMEOUT) {
            let timeout = parse_timeout(OTEL_BSP_EXPORT_TIMEOUT, &timeout)?;
            if let Some(traces) = &mut self.traces {
                traces.timeout = traces.timeout.min(timeout);
            }
        }
        // As in the SDK, a batch never exceeds the queue: a small queue (from the
        // configuration or the environment) makes the batches smaller, not the
        // configuration invalid.
        self.max_export_batch_size = self.max_export_batch_size.min(self.max_queue_size);
        if disabled {
            self.traces = None;
            self.logs = None;
            self.metrics = None;
        }
        Ok(())
    }
}

/// The endpoint of one signal after the environment is applied over `current`.
fn resolve_signal(
    get: &impl Fn(&'static str) -> Option<String>,
    vars: &SignalVars,
    current: Option<OtlpEndpoint>,
) -> Result<Option<OtlpEndpoint>, TelemetryError> {
    let specific_endpoint = get(vars.endpoint)
        .map(|url| checked_url(vars.endpoint, url))
        .transpose()?;
    let generic_endpoint = get(OTEL_EXPORTER_OTLP_ENDPOINT)
        .map(|url| checked_url(OTEL_EXPORTER_OTLP_ENDPOINT, url))
        .transpose()?;
    let protocol = first_of(get, vars.protocol, OTEL_EXPORTER_OTLP_PROTOCOL)
        .map(|(var, value)| {
            value
                .parse::<OtlpProtocol>()
                .map_err(|err| TelemetryError::Env {
                    var,
                    reason: err.to_string(),
                })
        })
        .transpose()?;
    let headers = first_of(get, vars.headers, OTEL_EXPORTER_OTLP_HEADERS)
        .map(|(var, value)| parse_headers(var, &value))
        .transpose()?;
    let timeout = first_of(get, vars.timeout, OTEL_EXPORTER_OTLP_TIMEOUT)
        .map(|(var, value)| parse_timeout(var, &value))
        .transpose()?;

    let enabled = specific_endpoint.is_some()
        || current.is_some()
        || (vars.generic_endpoint_enables && generic_endpoint.is_some());
    if !enabled {
        return Ok(None);
    }
    let mut endpoint = current.unwrap_or_else(|| {
        // Replaced below: one of the endpoint variables is set when there is no current.
        OtlpEndpoint::new(String::new(), OtlpProtocol::HttpProtobuf)
    });
    if let Some(protocol) = protocol {
        endpoint.protocol = protocol;
    }
    if let Some(url) = specific_endpoint {
        endpoint.url = url;
    } else if let Some(base) = generic_endpoint {
        endpoint.url = signal_url(&base, endpoint.protocol, vars.signal);
    }
    if let Some(headers) = headers {
        endpoint.headers = headers;
    }
    if let Some(timeout) = timeout {
        endpoint.timeout = timeout;
    }
    Ok(Some(endpoint))
}

/// The signal-specific variable if set, else the generic one, with the name of the one used.
fn first_of(
    get: &impl Fn(&'static str) -> Option<String>,
    specific: &'static str,
    generic: &'static str,
) -> Option<(&'static str, String)> {
    get(specific)
        .map(|value| (specific, value))
        .or_else(|| get(generic).map(|value| (generic, value)))
}

fn checked_url(var: &'static str, url: String) -> Result<String, TelemetryError> {
    let url = url.trim().to_owned();
    check_url(&url).map_err(|reason| TelemetryError::Env { var, reason })?;
    Ok(url)
}

fn parse_bool(var: &'static str, value: &str) -> Result<bool, TelemetryError> {
    let value = value.trim();
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(TelemetryError::Env {
            var,
            reason: format!("expected true or false, got {value:?}"),
        })
    }
}

fn parse_timeout(var: &'static str, value: &str) -> Result<Duration, TelemetryError> {
    match value.trim().parse::<u64>() {
        Ok(0) => Err(TelemetryError::Env {
            var,
            reason: "must be greater than zero milliseconds".to_owned(),
        }),
        Ok(millis) => Ok(Duration::from_millis(millis)),
        Err(_) => Err(TelemetryError::Env {
            var,
            reason: format!("expected a whole number of milliseconds, got {value:?}"),
        }),
    }
}

fn parse_count(var: &'static str, value: &str) -> Result<usize, TelemetryError> {
    match value.trim().parse::<usize>() {
        Ok(0) => Err(TelemetryError::Env {
            var,
            reason: "must be at least 1".to_owned(),
        }),
        Ok(count) => Ok(count),
        Err(_) => Err(TelemetryError::Env {
            var,
            reason: format!("expected a whole number, got {value:?}"),
        }),
    }
}

/// The sample ratio and parent handling of a sampler name and its argument.
fn parse_sampler(
    sampler: &str,
    arg: Option<&str>,
) -> Result<(f64, ParentSampling), TelemetryError> {
    let ratio = || match arg {
        None => Ok(1.0),
        Some(arg) => match arg.trim().parse::<f64>() {
            Ok(ratio) if ratio.is_finite() && (0.0..=1.0).contains(&ratio) => Ok(ratio),
            _ => Err(TelemetryError::Env {
                var: OTEL_TRACES_SAMPLER_ARG,
                reason: format!("expected a ratio between 0.0 and 1.0, got {arg:?}"),
            }),
        },
    };
    match sampler.trim() {
        "always_on" => Ok((1.0, ParentSampling::Ignore)),
        "always_off" => Ok((0.0, ParentSampling::Ignore)),
        "traceidratio" => Ok((ratio()?, ParentSampling::Ignore)),
        "parentbased_always_on" => Ok((1.0, ParentSampling::Follow)),
        "parentbased_always_off" => Ok((0.0, ParentSampling::Follow)),
        "parentbased_traceidratio" => Ok((ratio()?, ParentSampling::Follow)),
        other => Err(TelemetryError::Env {
            var: OTEL_TRACES_SAMPLER,
            reason: format!(
                "unsupported sampler {other:?}, expected always_on, always_off, traceidratio, \
                 parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
            ),
        }),
    }
}

/// Parses `key=value,key2=value2` with URL-encoded values (the W3C baggage format the
/// specification uses). Errors name the entry and the key, never the value.
fn parse_headers(var: &'static str, value: &str) -> Result<Vec<(String, String)>, TelemetryError> {
    let err = |reason: String| TelemetryError::Env { var, reason };
    let mut headers = Vec::new();
    for (index, entry) in value.split(',').enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let number = index + 1;
        let Some((key, raw)) = entry.split_once('=') else {
            return Err(err(format!("entry {number} is not key=value")));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(err(format!("entry {number} has an empty key")));
        }
        let value = percent_decode(raw.trim()).ok_or_else(|| {
            err(format!(
                "the value of header {key:?} is not valid percent-encoded UTF-8"
            ))
        })?;
        headers.push((key.to_owned(), value));
    }
    check_headers(&headers).map_err(err)?;
    Ok(headers)
}

/// Decodes `%XX` escapes; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
