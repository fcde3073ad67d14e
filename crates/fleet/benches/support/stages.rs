//! Where the time goes: the fleet's own latency histograms (its Prometheus
//! `/metrics`), read before and after a load phase, turned into per-stage
//! means and quantiles for that phase alone.

use std::collections::BTreeMap;

/// One histogram (summed over the series a stage selects).
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// (upper bound, cumulative count), ascending; the last is +Inf.
    buckets: BTreeMap<u64, f64>,
    sum: f64,
    count: f64,
}

/// A stage of the send path and the series that time it.
pub struct Stage {
    pub name: &'static str,
    pub metric: &'static str,
    /// Every `key="value"` here must be in the series' labels.
    pub labels: &'static [&'static str],
}

/// The send path's stages, in the order a message goes through them.
pub const SEND_PATH: [Stage; 5] = [
    Stage {
        name: "REST POST /channels/{id}/messages (gateway, whole request)",
        metric: "http_request_duration_seconds",
        labels: &[
            "method=\"POST\"",
            "route=\"/api/v1/channels/{id}/messages\"",
        ],
    },
    Stage {
        name: "  of which gRPC SendMessage (messages service: authorize, insert, outbox)",
        metric: "grpc_client_duration_seconds",
        labels: &["method=\"messages.SendMessage\""],
    },
    Stage {
        name: "commit -> broker acknowledged (outbox relay)",
        metric: "outbox_publish_lag_seconds",
        labels: &["service=\"messages\""],
    },
    Stage {
        name: "commit -> fanned out into Redis (relay, broker, consumer, Redis)",
        metric: "realtime_event_lag_seconds",
        labels: &[],
    },
    Stage {
        name: "commit -> handed to each socket (the above, Redis pub/sub, gateway)",
        metric: "realtime_delivery_seconds",
        labels: &[],
    },
];

impl Histogram {
    /// Sums the series of `metric` whose labels contain all of `labels`.
    pub fn read(text: &str, metric: &str, labels: &[&str]) -> Histogram {
        let mut histogram = Histogram::default();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            if !labels.iter().all(|label| series.contains(label)) {
                continue;
            }
            if let Some(rest) = series.strip_prefix(metric) {
                if rest.starts_with("_sum") {
                    histogram.sum += value;
                } else if rest.starts_with("_count") {
                    histogram.count += value;
                } else if rest.starts_with("_bucket") {
                    let bound = le(rest).unwrap_or(f64::INFINITY);
                    *histogram.buckets.entry(bound.to_bits()).or_default() += value;
                }
            }
        }
        histogram
    }

    /// What was recorded between `before` and `self`.
    pub fn since(&self, before: &Histogram) -> Histogram {
        let buckets = self
            .buckets
            .iter()
            .map(|(bound, count)| {
                let earlier = before.buckets.get(bound).copied().unwrap_or(0.0);
                (*bound, count - earlier)
            })
            .collect();
        Histogram {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    pub fn count(&self) -> f64 {
        self.count
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count > 0.0 {
            1000.0 * self.sum / self.count
        } else {
            0.0
        }
    }

    /// The `q` quantile in ms, interpolated inside its bucket (as
    /// Prometheus' `histogram_quantile` does).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let mut ordered: Vec<(f64, f64)> = self
            .buckets
            .iter()
            .map(|(bound, count)| (f64::from_bits(*bound), *count))
            .collect();
        ordered.sort_by(|a, b| a.0.total_cmp(&b.0));
        let target = q * self.count;
        let (mut lower, mut below) = (0.0, 0.0);
        for (upper, cumulative) in ordered {
            if cumulative >= target && cumulative > below {
                if upper.is_infinite() {
                    return 1000.0 * lower;
                }
                let share = (target - below) / (cumulative - below);
                return 1000.0 * (lower + (upper - lower) * share);
            }
            (lower, below) = (upper, cumulative);
        }
        1000.0 * lower
    }
}

fn le(series_rest: &str) -> Option<f64> {
    let start = series_rest.find("le=\"")? + 4;
    let end = series_rest[start..].find('"')? + start;
    match &series_rest[start..end] {
        "+Inf" => Some(f64::INFINITY),
        bound => bound.parse().ok(),
    }
}

/// Prints each stage's count, mean, p50 and p99 between two scrapes.
pub fn report(before: &str, after: &str) {
    println!("  where the time goes (the fleet's own histograms, this phase only):");
    for stage in &SEND_PATH {
        let during = Histogram::read(after, stage.metric, stage.labels).since(&Histogram::read(
            before,
            stage.metric,
            stage.labels,
        ));
        println!(
            "    {:<74} n={:>6.0}  mean {:>7.1} ms  p50 {:>7.1} ms  p99 {:>7.1} ms",
            stage.name,
            during.count(),
            during.mean_ms(),
            during.quantile_ms(0.5),
            during.quantile_ms(0.99),
        );
    }
}
