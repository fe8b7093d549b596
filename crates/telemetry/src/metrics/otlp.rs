//! The registry as OTLP metrics: the same families, names and labels as the Prometheus
//! endpoint, so a dashboard reads either. Counters are monotonic cumulative sums that
//! start when the registry was made, gauges are gauges, and histograms carry their
//! per-bucket counts (OTLP's buckets are not cumulative) with the bounds in seconds.
//! Durations are exported as seconds (`unit` `s`), everything else as integers.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram as OtlpHistogram, HistogramDataPoint, Metric,
    NumberDataPoint, Sum, metric::Data, number_data_point,
};

use super::cells::{Histogram, nanos};
use super::registry::Metrics;
use super::render::{Exposition, Kind, Number, expose};

impl Metrics {
    /// Runs the scrape hooks, then reads every family as OTLP metrics at `now`. A family
    /// without samples is left out.
    pub(crate) fn otlp(&self, now: SystemTime) -> Vec<Metric> {
        self.refresh();
        let mut out = Otlp {
            start: unix_nanos(self.started),
            now: unix_nanos(now),
            metrics: Vec::new(),
        };
        expose(self, &mut out);
        out.metrics.retain(|metric| match &metric.data {
            Some(Data::Sum(sum)) => !sum.data_points.is_empty(),
            Some(Data::Gauge(gauge)) => !gauge.data_points.is_empty(),
            Some(Data::Histogram(histogram)) => !histogram.data_points.is_empty(),
            _ => false,
        });
        out.metrics
    }
}

/// The metrics being built, each sample added to the family announced last.
struct Otlp {
    start: u64,
    now: u64,
    metrics: Vec<Metric>,
}

impl Exposition for Otlp {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let cumulative = AggregationTemporality::Cumulative as i32;
        let data = match kind {
            Kind::Counter => Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: cumulative,
                is_monotonic: true,
            }),
            Kind::Gauge => Data::Gauge(Gauge {
                data_points: Vec::new(),
            }),
            Kind::Histogram => Data::Histogram(OtlpHistogram {
                data_points: Vec::new(),
                aggregation_temporality: cumulative,
            }),
        };
        let unit = if name.ends_with("_seconds") || name.ends_with("_seconds_total") {
            "s"
        } else if name.ends_with("_bytes") {
            "By"
        } else {
            ""
        };
        self.metrics.push(Metric {
            name: name.to_owned(),
            description: help.to_owned(),
            unit: unit.to_owned(),
            data: Some(data),
            ..Metric::default()
        });
    }

    fn sample(&mut self, _name: &str, labels: &[(&str, &dyn fmt::Display)], value: Number) {
        let (start, now) = (self.start, self.now);
        let point = |start_time_unix_nano| NumberDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano,
            time_unix_nano: now,
            value: Some(match value {
                Number::Count(count) => {
                    number_data_point::Value::AsInt(i64::try_from(count).unwrap_or(i64::MAX))
                }
                Number::Seconds(nanos) => number_data_point::Value::AsDouble(seconds(nanos)),
            }),
            ..NumberDataPoint::default()
        };
        match self.metrics.last_mut().and_then(|m| m.data.as_mut()) {
            Some(Data::Sum(sum)) => sum.data_points.push(point(start)),
            Some(Data::Gauge(gauge)) => gauge.data_points.push(point(0)),
            _ => {}
        }
    }

    fn histogram(
        &mut self,
        _name: &str,
        labels: &[(&str, &dyn fmt::Display)],
        histogram: &Histogram,
    ) {
        let bucket_counts: Vec<u64> = histogram.counts().collect();
        let point = HistogramDataPoint {
            attributes: attributes(labels),
            start_time_unix_nano: self.start,
            time_unix_nano: self.now,
            count: bucket_counts
                .iter()
                .fold(0_u64, |sum, &n| sum.wrapping_add(n)),
            sum: Some(seconds(histogram.sum_nanos())),
            bucket_counts,
            explicit_bounds: histogram.bounds().iter().map(|&b| seconds(b)).collect(),
            ..HistogramDataPoint::default()
        };
        if let Some(Data::Histogram(otlp)) = self.metrics.last_mut().and_then(|m| m.data.as_mut()) {
            otlp.data_points.push(point);
        }
    }
}

fn attributes(labels: &[(&str, &dyn fmt::Display)]) -> Vec<KeyValue> {
    labels
        .iter()
        .map(|(key, value)| KeyValue {
            key: (*key).to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(value.to_string())),
            }),
            ..KeyValue::default()
        })
        .collect()
}

fn seconds(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// Nanoseconds since the Unix epoch; 0 for a time before it.
fn unix_nanos(time: SystemTime) -> u64 {
    nanos(time.duration_since(UNIX_EPOCH).unwrap_or_default())
}
