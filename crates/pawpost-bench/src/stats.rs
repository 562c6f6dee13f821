//! Percentiles and small helpers for the result tables.
use serde_json::{json, Value};
use std::time::Duration;

/// How many messages an open-loop run offers: `rate` a second for `duration`, at least one.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "rate and duration are positive command-line values, and `as` saturates at u64's bounds"
)]
pub fn offered(rate: f64, duration: Duration) -> u64 {
    (rate * duration.as_secs_f64()).round().max(1.0) as u64
}

/// Upper bounds (ms) of the latency histogram's buckets; the last bucket is open.
pub const HISTOGRAM_BOUNDS_MS: [f64; 10] =
    [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0, 500.0];

/// How many samples fall at or under each bound and over the one before (`le_ms`), and
/// beyond the last (`le_ms` null), in order: where a tail comes from shows as a second
/// hump.
pub fn histogram(sorted: &[Duration]) -> Value {
    let mut counts = [0u64; HISTOGRAM_BOUNDS_MS.len() + 1];
    for d in sorted {
        let at = ms(*d);
        let bucket = HISTOGRAM_BOUNDS_MS
            .iter()
            .position(|bound| at <= *bound)
            .unwrap_or(HISTOGRAM_BOUNDS_MS.len());
        counts[bucket] += 1;
    }
    counts
        .iter()
        .enumerate()
        .map(|(i, count)| json!({"le_ms": HISTOGRAM_BOUNDS_MS.get(i), "count": count}))
        .collect()
}

/// Latency summary in milliseconds: count, p50, p90, p99, max, and the histogram.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a quantile in [0, 1] times the slice's length is a rank from 0 to that length"
)]
pub fn summary(samples: &mut [Duration]) -> Value {
    if samples.is_empty() {
        return json!({"count": 0});
    }
    samples.sort_unstable();
    let pick = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        ms(samples[rank - 1])
    };
    json!({
        "count": samples.len(),
        "p50_ms": pick(0.50),
        "p90_ms": pick(0.90),
        "p99_ms": pick(0.99),
        "max_ms": ms(*samples.last().expect("not empty")),
        "histogram": histogram(samples),
    })
}

pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 1e2
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `a / b`, or null when either side is missing or b is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Value {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => json!(round2(a / b)),
        _ => Value::Null,
    }
}

/// Soft limit on open files for this process (inherited by the server it starts).
pub fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

/// Waits until `count` messages have arrived (each `(seq, when)` from `arrivals`) or
/// `deadline` passes; returns each message's latency from its entry in `starts` (taken
/// out, so that a duplicate arrival counts once) and when the last one arrived (`since`
/// when none did).
pub async fn drain_arrivals(
    arrivals: &mut tokio::sync::mpsc::UnboundedReceiver<(u64, std::time::Instant)>,
    starts: &mut std::collections::HashMap<u64, std::time::Instant>,
    count: u64,
    deadline: std::time::Instant,
    since: std::time::Instant,
) -> Result<(Vec<Duration>, std::time::Instant), std::num::TryFromIntError> {
    let mut latencies = Vec::with_capacity(usize::try_from(count)?);
    let mut last = since;
    while (latencies.len() as u64) < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match tokio::time::timeout(left, arrivals.recv()).await {
            Ok(Some((seq, at))) => {
                if let Some(start) = starts.remove(&seq) {
                    latencies.push(at.duration_since(start));
                    last = last.max(at);
                }
            }
            _ => break,
        }
    }
    Ok((latencies, last))
}
