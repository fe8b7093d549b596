//! Unit tests of the pipeline's configuration, environment variables, filter and JSON
//! log lines. Export to a real OTLP receiver is tested in `tests/otel.rs`.

use std::collections::HashMap;
use std::time::Duration;

use guildscope_testkit::logs::LogBuffer;

use super::pipeline::{filter_directives, is_exporter_target};
use super::*;

/// Variable names and values.
type Env<'a> = Vec<(&'a str, &'a str)>;

/// An environment made of `pairs`.
fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

/// The default configuration with `pairs` applied.
fn applied(pairs: &[(&str, &str)]) -> TelemetryConfig {
    let mut config = TelemetryConfig::default();
    config.apply_env(env(pairs)).unwrap();
    config
}

/// The error applying `pairs` to the default configuration gives.
fn env_error(pairs: &[(&str, &str)]) -> (String, String) {
    let mut config = TelemetryConfig::default();
    match config.apply_env(env(pairs)) {
        Err(TelemetryError::Env { var, reason }) => {
            let message = TelemetryError::Env {
                var,
                reason: reason.clone(),
            }
            .to_string();
            assert!(!message.contains('\n'), "one line: {message}");
            (var.to_owned(), message)
        }
        other => panic!("expected an environment error, got {other:?}"),
    }
}

#[test]
fn no_variables_change_nothing() {
    assert_eq!(applied(&[]), TelemetryConfig::default());
}

#[test]
fn empty_variables_count_as_unset() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, ""),
        (OTEL_SERVICE_NAME, " "),
        (OTEL_SDK_DISABLED, ""),
        (OTEL_TRACES_SAMPLER, ""),
        (OTEL_EXPORTER_OTLP_TIMEOUT, ""),
    ]);
    assert_eq!(config, TelemetryConfig::default());
}

#[test]
fn generic_http_endpoint_gets_the_traces_path_and_turns_on_traces_only() {
    let config = applied(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4318")]);
    let traces = config.traces.unwrap();
    assert_eq!(traces.url, "http://collector:4318/v1/traces");
    assert_eq!(traces.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(traces.timeout, Duration::from_secs(10));
    assert!(traces.headers.is_empty());
    assert_eq!(config.logs, None);
}

#[test]
fn generic_endpoint_with_trailing_slash_gets_one_slash() {
    let config = applied(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "https://api.honeycomb.io/")]);
    assert_eq!(
        config.traces.unwrap().url,
        "https://api.honeycomb.io/v1/traces"
    );
}

#[test]
fn generic_grpc_endpoint_is_used_as_is() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4317"),
        (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
    ]);
    let traces = config.traces.unwrap();
    assert_eq!(traces.url, "http://collector:4317");
    assert_eq!(traces.protocol, OtlpProtocol::Grpc);
}

#[test]
fn traces_endpoint_is_used_as_is_and_wins_over_the_generic_one() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://generic:4318"),
        (
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            "http://traces:4318/custom",
        ),
    ]);
    assert_eq!(config.traces.unwrap().url, "http://traces:4318/custom");
}

#[test]
fn logs_endpoint_turns_on_log_export_and_is_used_as_is() {
    let config = applied(&[(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:4318/in")]);
    assert_eq!(config.traces, None);
    let logs = config.logs.unwrap();
    assert_eq!(logs.url, "http://logs:4318/in");
    assert_eq!(logs.protocol, OtlpProtocol::HttpProtobuf);
}

#[test]
fn metrics_endpoint_turns_on_metric_export_and_the_interval_is_read() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://generic:4318"),
        (
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
            "http://metrics:4318/in",
        ),
        (OTEL_EXPORTER_OTLP_METRICS_HEADERS, "x-team=abc"),
        (OTEL_METRIC_EXPORT_INTERVAL, "15000"),
    ]);
    let metrics = config.metrics.unwrap();
    assert_eq!(metrics.url, "http://metrics:4318/in");
    assert_eq!(
        metrics.headers,
        vec![("x-team".to_owned(), "abc".to_owned())]
    );
    assert_eq!(config.metrics_interval, Duration::from_secs(15));
    assert_eq!(config.logs, None);
}

#[test]
fn a_generic_endpoint_alone_leaves_metrics_to_prometheus_but_moves_configured_ones() {
    let config = applied(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://generic:4318")]);
    assert_eq!(config.metrics, None);
    assert_eq!(config.metrics_interval, Duration::from_secs(60));

    let mut config = TelemetryConfig {
        metrics: Some(OtlpEndpoint::new(
            "http://old:4318/v1/metrics",
            OtlpProtocol::HttpProtobuf,
        )),
        ..TelemetryConfig::default()
    };
    config
        .apply_env(env(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://new:4318")]))
        .unwrap();
    assert_eq!(config.metrics.unwrap().url, "http://new:4318/v1/metrics");
}

#[test]
fn a_bad_metric_interval_is_named() {
    let (var, message) = env_error(&[(OTEL_METRIC_EXPORT_INTERVAL, "soon")]);
    assert_eq!(var, OTEL_METRIC_EXPORT_INTERVAL);
    assert!(
        message.contains("whole number of milliseconds"),
        "{message}"
    );
    let (var, _) = env_error(&[(OTEL_METRIC_EXPORT_INTERVAL, "0")]);
    assert_eq!(var, OTEL_METRIC_EXPORT_INTERVAL);
}

#[test]
fn the_batch_variables_set_the_span_batches() {
    let config = applied(&[
        (OTEL_BSP_SCHEDULE_DELAY, "250"),
        (OTEL_BSP_MAX_QUEUE_SIZE, "4096"),
        (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "1024"),
    ]);
    assert_eq!(config.scheduled_delay, Duration::from_millis(250));
    assert_eq!(config.max_queue_size, 4096);
    assert_eq!(config.max_export_batch_size, 1024);
    config.validate().unwrap();

    for (var, value, expected) in [
        (OTEL_BSP_MAX_QUEUE_SIZE, "lots", "whole number"),
        (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "0", "at least 1"),
        (
            OTEL_BSP_SCHEDULE_DELAY,
            "-5",
            "whole number of milliseconds",
        ),
    ] {
        let (named, message) = env_error(&[(var, value)]);
        assert_eq!(named, var);
        assert!(message.contains(expected), "{message}");
    }
}

#[test]
fn the_batch_export_timeout_caps_the_traces_timeout_and_never_raises_it() {
    let traces = |pairs: &[(&str, &str)]| {
        let mut all = vec![(OTEL_EXPORTER_OTLP_ENDPOINT, "http://collector:4317")];
        all.extend_from_slice(pairs);
        applied(&all).traces.expect("traces on")
    };
    let default = traces(&[]).timeout;
    assert_eq!(
        traces(&[(OTEL_BSP_EXPORT_TIMEOUT, "2500")]).timeout,
        Duration::from_millis(2500)
    );
    // Longer than the exporter's own timeout: the exporter's ends the export first.
    assert_eq!(
        traces(&[(OTEL_BSP_EXPORT_TIMEOUT, "600000")]).timeout,
        default
    );
    assert_eq!(
        traces(&[
            (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "800"),
            (OTEL_BSP_EXPORT_TIMEOUT, "2500"),
        ])
        .timeout,
        Duration::from_millis(800)
    );
    let (named, message) = env_error(&[(OTEL_BSP_EXPORT_TIMEOUT, "soon")]);
    assert_eq!(named, OTEL_BSP_EXPORT_TIMEOUT);
    assert!(
        message.contains("whole number of milliseconds"),
        "{message}"
    );
}

#[test]
fn a_queue_smaller_than_a_batch_makes_the_batches_smaller() {
    // From the configuration file (`traces.queue_size`) ...
    let mut config = TelemetryConfig {
        max_queue_size: 100,
        ..TelemetryConfig::default()
    };
    config.apply_env(env(&[])).unwrap();
    assert_eq!(config.max_export_batch_size, 100);
    config.validate().unwrap();
    // ... or from the environment, whichever is smaller.
    let config = applied(&[
        (OTEL_BSP_MAX_QUEUE_SIZE, "64"),
        (OTEL_BSP_MAX_EXPORT_BATCH_SIZE, "128"),
    ]);
    assert_eq!(
        (config.max_queue_size, config.max_export_batch_size),
        (64, 64)
    );
    config.validate().unwrap();
}

#[test]
fn sdk_disabled_turns_metric_export_off_too() {
    let config = applied(&[
        (
            OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
            "http://metrics:4318/v1/metrics",
        ),
        (OTEL_SDK_DISABLED, "true"),
    ]);
    assert_eq!(config.metrics, None);
}

#[test]
fn generic_endpoint_moves_configured_logs_with_the_logs_path() {
    let mut config = TelemetryConfig {
        logs: Some(OtlpEndpoint::new(
            "http://old:4318/v1/logs",
            OtlpProtocol::HttpProtobuf,
        )),
        ..TelemetryConfig::default()
    };
    config
        .apply_env(env(&[(OTEL_EXPORTER_OTLP_ENDPOINT, "http://new:4318")]))
        .unwrap();
    assert_eq!(config.logs.unwrap().url, "http://new:4318/v1/logs");
    assert_eq!(config.traces.unwrap().url, "http://new:4318/v1/traces");
}

#[test]
fn settings_without_an_endpoint_apply_to_the_configured_endpoint_only() {
    let pairs = [
        (OTEL_EXPORTER_OTLP_PROTOCOL, "grpc"),
        (OTEL_EXPORTER_OTLP_HEADERS, "a=b"),
        (OTEL_EXPORTER_OTLP_TIMEOUT, "500"),
    ];
    let config = applied(&pairs);
    assert_eq!(config.traces, None);
    assert_eq!(config.logs, None);

    let mut config = TelemetryConfig {
        traces: Some(OtlpEndpoint::new(
            "http://configured:4317",
            OtlpProtocol::HttpProtobuf,
        )),
        ..TelemetryConfig::default()
    };
    config.apply_env(env(&pairs)).unwrap();
    let traces = config.traces.unwrap();
    assert_eq!(traces.url, "http://configured:4317");
    assert_eq!(traces.protocol, OtlpProtocol::Grpc);
    assert_eq!(traces.headers, vec![("a".to_owned(), "b".to_owned())]);
    assert_eq!(traces.timeout, Duration::from_millis(500));
}

#[test]
fn headers_are_split_trimmed_and_url_decoded() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318"),
        (
            OTEL_EXPORTER_OTLP_HEADERS,
            " x-honeycomb-team = abc%20def%2C1 ,x-honeycomb-dataset=guild%3Dscope,,",
        ),
    ]);
    assert_eq!(
        config.traces.unwrap().headers,
        vec![
            ("x-honeycomb-team".to_owned(), "abc def,1".to_owned()),
            ("x-honeycomb-dataset".to_owned(), "guild=scope".to_owned()),
        ]
    );
}

#[test]
fn signal_specific_headers_protocol_and_timeout_win() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4317"),
        (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://logs:4318/v1/logs"),
        (OTEL_EXPORTER_OTLP_HEADERS, "k=generic"),
        (OTEL_EXPORTER_OTLP_TRACES_HEADERS, "k=traces"),
        (OTEL_EXPORTER_OTLP_LOGS_HEADERS, "k=logs"),
        (OTEL_EXPORTER_OTLP_PROTOCOL, "http/protobuf"),
        (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "grpc"),
        (OTEL_EXPORTER_OTLP_LOGS_PROTOCOL, "http"),
        (OTEL_EXPORTER_OTLP_TIMEOUT, "1000"),
        (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "2000"),
        (OTEL_EXPORTER_OTLP_LOGS_TIMEOUT, "3000"),
    ]);
    let traces = config.traces.unwrap();
    assert_eq!(traces.url, "http://c:4317", "grpc: generic endpoint as is");
    assert_eq!(traces.protocol, OtlpProtocol::Grpc);
    assert_eq!(traces.headers, vec![("k".to_owned(), "traces".to_owned())]);
    assert_eq!(traces.timeout, Duration::from_secs(2));
    let logs = config.logs.unwrap();
    assert_eq!(logs.url, "http://logs:4318/v1/logs");
    assert_eq!(logs.protocol, OtlpProtocol::HttpProtobuf);
    assert_eq!(logs.headers, vec![("k".to_owned(), "logs".to_owned())]);
    assert_eq!(logs.timeout, Duration::from_secs(3));
}

#[test]
fn generic_headers_and_timeout_reach_both_signals() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318"),
        (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://c:4318/v1/logs"),
        (OTEL_EXPORTER_OTLP_HEADERS, "k=v"),
        (OTEL_EXPORTER_OTLP_TIMEOUT, "250"),
    ]);
    for endpoint in [config.traces.unwrap(), config.logs.unwrap()] {
        assert_eq!(endpoint.headers, vec![("k".to_owned(), "v".to_owned())]);
        assert_eq!(endpoint.timeout, Duration::from_millis(250));
    }
}

#[test]
fn service_name_is_read() {
    assert_eq!(
        applied(&[(OTEL_SERVICE_NAME, "guildscope-staging")]).service_name,
        "guildscope-staging"
    );
}

#[test]
fn every_sampler_is_understood() {
    let cases = [
        ("always_on", None, 1.0, ParentSampling::Ignore),
        ("always_off", None, 0.0, ParentSampling::Ignore),
        ("traceidratio", Some("0.25"), 0.25, ParentSampling::Ignore),
        ("traceidratio", None, 1.0, ParentSampling::Ignore),
        ("parentbased_always_on", None, 1.0, ParentSampling::Follow),
        ("parentbased_always_off", None, 0.0, ParentSampling::Follow),
        (
            "parentbased_traceidratio",
            Some("0.5"),
            0.5,
            ParentSampling::Follow,
        ),
        // The argument only matters to the ratio samplers.
        ("always_on", Some("0.1"), 1.0, ParentSampling::Ignore),
    ];
    for (sampler, arg, ratio, parent) in cases {
        let mut pairs = vec![(OTEL_TRACES_SAMPLER, sampler)];
        if let Some(arg) = arg {
            pairs.push((OTEL_TRACES_SAMPLER_ARG, arg));
        }
        let config = applied(&pairs);
        assert_eq!(config.sample_ratio, ratio, "{sampler} {arg:?}");
        assert_eq!(config.parent_sampling, parent, "{sampler} {arg:?}");
    }
}

#[test]
fn sdk_disabled_turns_export_off() {
    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318"),
        (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "http://c:4318/v1/logs"),
        (OTEL_SDK_DISABLED, "TRUE"),
    ]);
    assert_eq!(config.traces, None);
    assert_eq!(config.logs, None);

    let config = applied(&[
        (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318"),
        (OTEL_SDK_DISABLED, "false"),
    ]);
    assert!(config.traces.is_some());
}

#[test]
fn bad_values_are_errors_naming_the_variable() {
    let endpoint = (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318");
    // (environment, variable named in the error, hint the message gives)
    let cases: Vec<(Env, &str, &str)> = vec![
        (
            vec![(OTEL_EXPORTER_OTLP_ENDPOINT, "collector:4318")],
            OTEL_EXPORTER_OTLP_ENDPOINT,
            "http://",
        ),
        (
            vec![(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "not a url")],
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
            "not a URL",
        ),
        (
            vec![(OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, "ftp://c/logs")],
            OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
            "http://",
        ),
        (
            vec![endpoint, (OTEL_EXPORTER_OTLP_PROTOCOL, "http/json")],
            OTEL_EXPORTER_OTLP_PROTOCOL,
            "http/json",
        ),
        (
            vec![endpoint, (OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "udp")],
            OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
            "udp",
        ),
        (
            vec![endpoint, (OTEL_EXPORTER_OTLP_TIMEOUT, "10s")],
            OTEL_EXPORTER_OTLP_TIMEOUT,
            "milliseconds",
        ),
        (
            vec![endpoint, (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT, "0")],
            OTEL_EXPORTER_OTLP_TRACES_TIMEOUT,
            "greater than zero",
        ),
        (
            vec![(OTEL_TRACES_SAMPLER, "jaeger_remote")],
            OTEL_TRACES_SAMPLER,
            "unsupported sampler",
        ),
        (
            vec![
                (OTEL_TRACES_SAMPLER, "traceidratio"),
                (OTEL_TRACES_SAMPLER_ARG, "1.5"),
            ],
            OTEL_TRACES_SAMPLER_ARG,
            "between 0.0 and 1.0",
        ),
        (
            vec![
                (OTEL_TRACES_SAMPLER, "parentbased_traceidratio"),
                (OTEL_TRACES_SAMPLER_ARG, "half"),
            ],
            OTEL_TRACES_SAMPLER_ARG,
            "between 0.0 and 1.0",
        ),
        (
            vec![(OTEL_SDK_DISABLED, "yes")],
            OTEL_SDK_DISABLED,
            "true or false",
        ),
    ];
    for (pairs, var, hint) in cases {
        let (got_var, message) = env_error(&pairs);
        assert_eq!(got_var, var, "{pairs:?}");
        assert!(message.contains(var), "{message}");
        assert!(message.contains(hint), "{message} should mention {hint}");
    }
}

#[test]
fn bad_headers_are_errors_that_never_quote_the_value() {
    let secret = "s3cr3t-team-key";
    let cases = [
        (format!("x-honeycomb-team{secret}"), "not key=value"),
        (format!("={secret}"), "empty key"),
        (format!("x-honeycomb-team={secret}%zz"), "percent-encoded"),
        (format!("x-honeycomb-team={secret}%"), "percent-encoded"),
        (format!("x-honeycomb-team={secret}%ff"), "percent-encoded"),
        (format!("bad header={secret}"), "not a valid header name"),
        (format!("x-team={secret}%0A"), "cannot carry"),
    ];
    for (value, hint) in cases {
        for var in [
            OTEL_EXPORTER_OTLP_HEADERS,
            OTEL_EXPORTER_OTLP_TRACES_HEADERS,
            OTEL_EXPORTER_OTLP_LOGS_HEADERS,
        ] {
            let (got_var, message) = env_error(&[
                (OTEL_EXPORTER_OTLP_ENDPOINT, "http://c:4318"),
                (var, value.as_str()),
            ]);
            assert_eq!(got_var, var);
            assert!(message.contains(hint), "{message} should mention {hint}");
            assert!(!message.contains(secret), "leaked the value: {message}");
        }
    }
}

#[test]
fn debug_redacts_header_values() {
    let config = TelemetryConfig {
        traces: Some(
            OtlpEndpoint::new("https://api.honeycomb.io:443", OtlpProtocol::Grpc)
                .with_header("x-honeycomb-team", "s3cr3t-team-key"),
        ),
        ..TelemetryConfig::default()
    };
    let debug = format!("{config:?}");
    assert!(debug.contains("x-honeycomb-team"), "{debug}");
    assert!(debug.contains("[redacted]"), "{debug}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    let pretty = format!("{config:#?}");
    assert!(!pretty.contains("s3cr3t"), "{pretty}");
}

#[test]
fn debug_shows_no_credentials_or_query_written_into_a_url() {
    let endpoint = OtlpEndpoint::new(
        "https://team:s3cr3t@collector.example:4318/v1/traces?key=t0ken",
        OtlpProtocol::HttpProtobuf,
    );
    let debug = format!("{endpoint:?}");
    assert!(
        debug.contains("https://collector.example:4318/v1/traces [credentials or query redacted]"),
        "{debug}"
    );
    assert!(
        !debug.contains("s3cr3t") && !debug.contains("t0ken") && !debug.contains("team"),
        "{debug}"
    );
    let plain = OtlpEndpoint::new("http://127.0.0.1:4317", OtlpProtocol::Grpc);
    assert!(format!("{plain:?}").contains("url: \"http://127.0.0.1:4317/\""));
    let broken = OtlpEndpoint::new("user:s3cr3t@nowhere", OtlpProtocol::Grpc);
    assert!(!format!("{broken:?}").contains("s3cr3t"));
}

#[test]
fn for_signal_appends_the_path_over_http_only() {
    let http = OtlpEndpoint::for_signal(
        "http://127.0.0.1:4318/",
        OtlpProtocol::HttpProtobuf,
        Signal::Logs,
    );
    assert_eq!(http.url, "http://127.0.0.1:4318/v1/logs");
    let grpc = OtlpEndpoint::for_signal("http://127.0.0.1:4317", OtlpProtocol::Grpc, Signal::Logs);
    assert_eq!(grpc.url, "http://127.0.0.1:4317");
}

#[test]
fn protocol_and_format_names_parse() {
    assert_eq!("grpc".parse(), Ok(OtlpProtocol::Grpc));
    assert_eq!("http/protobuf".parse(), Ok(OtlpProtocol::HttpProtobuf));
    assert_eq!("http".parse(), Ok(OtlpProtocol::HttpProtobuf));
    assert!("http/json".parse::<OtlpProtocol>().is_err());
    assert_eq!("json".parse(), Ok(LogFormat::Json));
    assert_eq!("pretty".parse(), Ok(LogFormat::Pretty));
    assert_eq!("auto".parse(), Ok(LogFormat::Auto));
    assert!("yaml".parse::<LogFormat>().is_err());
}

#[test]
fn validation_names_the_field() {
    let cases: Vec<(TelemetryConfig, &str)> = vec![
        (
            TelemetryConfig {
                sample_ratio: 1.5,
                ..TelemetryConfig::default()
            },
            "sample_ratio",
        ),
        (
            TelemetryConfig {
                sample_ratio: f64::NAN,
                ..TelemetryConfig::default()
            },
            "sample_ratio",
        ),
        (
            TelemetryConfig {
                max_queue_size: 0,
                ..TelemetryConfig::default()
            },
            "max_queue_size",
        ),
        (
            TelemetryConfig {
                max_export_batch_size: 9000,
                ..TelemetryConfig::default()
            },
            "max_export_batch_size",
        ),
        (
            TelemetryConfig {
                scheduled_delay: Duration::ZERO,
                ..TelemetryConfig::default()
            },
            "scheduled_delay",
        ),
        (
            TelemetryConfig {
                service_name: String::new(),
                ..TelemetryConfig::default()
            },
            "service_name",
        ),
        (
            TelemetryConfig {
                log_filter: " ".to_owned(),
                ..TelemetryConfig::default()
            },
            "log_filter",
        ),
        (
            TelemetryConfig {
                traces: Some(OtlpEndpoint::new("localhost", OtlpProtocol::Grpc)),
                ..TelemetryConfig::default()
            },
            "traces.url",
        ),
        (
            TelemetryConfig {
                logs: Some(
                    OtlpEndpoint::new("http://c/v1/logs", OtlpProtocol::HttpProtobuf)
                        .with_timeout(Duration::ZERO),
                ),
                ..TelemetryConfig::default()
            },
            "logs.timeout",
        ),
        (
            TelemetryConfig {
                traces: Some(
                    OtlpEndpoint::new("http://c:4317", OtlpProtocol::Grpc)
                        .with_header("x-key", "line\nbreak-s3cr3t"),
                ),
                ..TelemetryConfig::default()
            },
            "traces.headers",
        ),
    ];
    for (config, field) in cases {
        match config.validate() {
            Err(err @ TelemetryError::InvalidConfig { field: got, .. }) => {
                assert_eq!(got, field);
                let message = err.to_string();
                assert!(message.contains(field), "{message}");
                assert!(!message.contains("s3cr3t"), "{message}");
            }
            other => panic!("expected an error for {field}, got {other:?}"),
        }
    }
    TelemetryConfig::default().validate().unwrap();
}

#[test]
fn a_bad_log_filter_is_refused_by_build() {
    let config = TelemetryConfig {
        log_filter: "info,guildscope=loud".to_owned(),
        ..TelemetryConfig::default()
    };
    match build_with_writer(&config, LogBuffer::default()) {
        Err(err @ TelemetryError::LogFilter { .. }) => {
            assert!(err.to_string().contains("guildscope=loud"), "{err}");
        }
        other => panic!("expected a filter error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn grpc_log_export_outside_a_runtime_is_an_error_not_a_panic() {
    let config = TelemetryConfig {
        logs: Some(OtlpEndpoint::new(
            "http://127.0.0.1:4317",
            OtlpProtocol::Grpc,
        )),
        ..TelemetryConfig::default()
    };
    match build_with_writer(&config, LogBuffer::default()) {
        Err(err @ TelemetryError::NoRuntime { signal: "logs" }) => {
            assert!(err.to_string().contains("tokio runtime"), "{err}");
        }
        other => panic!("expected NoRuntime, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn exporter_crates_are_held_at_warn_unless_named() {
    assert_eq!(
        filter_directives("info"),
        "info,opentelemetry=warn,tonic=warn,h2=warn,hyper=warn,hyper_util=warn,reqwest=warn,tower=warn"
    );
    assert_eq!(
        filter_directives("debug, h2=trace ,tonic::transport=debug"),
        "debug,h2=trace,tonic::transport=debug,opentelemetry=warn,hyper=warn,hyper_util=warn,\
         reqwest=warn,tower=warn"
    );
    // A bare level stricter than warn quiets them as much.
    assert_eq!(
        filter_directives("error"),
        "error,opentelemetry=error,tonic=error,h2=error,hyper=error,hyper_util=error,\
         reqwest=error,tower=error"
    );
}

#[test]
fn exporter_targets_are_recognised_at_crate_boundaries() {
    for target in [
        "opentelemetry",
        "opentelemetry_sdk::trace",
        "opentelemetry-otlp",
        "tonic::transport",
        "h2::proto",
        "hyper",
        "hyper_util::client",
        "reqwest::connect",
        "tower::buffer",
        "guildscope_telemetry::otel::export",
    ] {
        assert!(is_exporter_target(target), "{target}");
    }
    for target in [
        "guildscope",
        "guildscope_bot::commands",
        "h2o",
        "hyperloglog",
        "guildscope_telemetry::statsd",
    ] {
        assert!(!is_exporter_target(target), "{target}");
    }
}

#[derive(Debug)]
struct Outer(Inner);

#[derive(Debug)]
struct Inner;

impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("store write failed")
    }
}

impl std::fmt::Display for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("disk full")
    }
}

impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

impl std::error::Error for Inner {}

#[test]
fn json_lines_carry_typed_fields_and_the_span_name() {
    let buffer = LogBuffer::default();
    let config = TelemetryConfig {
        log_format: LogFormat::Json,
        ..TelemetryConfig::default()
    };
    let (dispatch, _guard) = build_with_writer(&config, buffer.clone()).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(
            count = 3_u64,
            delta = -2_i64,
            ratio = 0.5,
            ok = true,
            "outside"
        );
        let span = tracing::info_span!("command", command.name = "stats");
        let _entered = span.enter();
        let error = Outer(Inner);
        tracing::warn!(
            guild_id = %42,
            target = "a field named target",
            error = &error as &(dyn std::error::Error + 'static),
            "command failed"
        );
        tracing::debug!("filtered out at info");
    });

    let lines = buffer.json_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let outside = &lines[0];
    assert_eq!(outside["level"], "INFO");
    assert_eq!(outside["message"], "outside");
    assert_eq!(outside["target"], module_path!());
    assert_eq!(outside["count"], 3);
    assert_eq!(outside["delta"], -2);
    assert_eq!(outside["ratio"], 0.5);
    assert_eq!(outside["ok"], true);
    assert!(outside.get("span").is_none());
    assert!(outside["timestamp"].as_str().unwrap().ends_with('Z'));

    let inside = &lines[1];
    assert_eq!(inside["level"], "WARN");
    assert_eq!(inside["message"], "command failed");
    assert_eq!(inside["span"], "command");
    assert_eq!(inside["guild_id"], "42");
    assert_eq!(inside["target"], module_path!());
    assert_eq!(inside["fields.target"], "a field named target");
    assert_eq!(inside["error"], "store write failed: disk full");
    // Without a trace pipeline there are no ids to print.
    assert!(inside.get("trace_id").is_none());
    assert!(inside.get("span_id").is_none());
}

#[test]
fn pretty_lines_are_plain_text_without_colours_off_a_terminal() {
    let buffer = LogBuffer::default();
    let config = TelemetryConfig {
        log_format: LogFormat::Pretty,
        ..TelemetryConfig::default()
    };
    let (dispatch, _guard) = build_with_writer(&config, buffer.clone()).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(guild_id = 7_u64, "member joined");
    });
    let text = buffer.text();
    assert!(text.contains("INFO"), "{text}");
    assert!(text.contains("member joined"), "{text}");
    assert!(text.contains("guild_id=7"), "{text}");
    assert!(!text.contains('\u{1b}'), "no ANSI escapes: {text:?}");
    assert!(!text.trim_start().starts_with('{'), "{text}");
}

#[test]
fn auto_format_means_json_off_a_terminal() {
    let buffer = LogBuffer::default();
    let (dispatch, _guard) =
        build_with_writer(&TelemetryConfig::default(), buffer.clone()).unwrap();
    tracing::dispatcher::with_default(&dispatch, || tracing::info!("hello"));
    assert_eq!(buffer.json_lines()[0]["message"], "hello");
}

#[test]
fn without_traces_there_is_no_trace_id() {
    let buffer = LogBuffer::default();
    let (dispatch, guard) = build_with_writer(&TelemetryConfig::default(), buffer).unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        let span = tracing::info_span!("request");
        let _entered = span.enter();
        assert_eq!(current_trace_id(), None);
    });
    assert_eq!(guard.span_counts(), SpanCounts::default());
}
