//! Scenario 7: delivery across server processes. Two `pawpost serve` processes, A and B,
//! share one fresh PostgreSQL schema and one blob folder; every toy is connected to B. At
//! each offered rate the same delivery run goes first through B (the toys' own process,
//! which pushes straight to them: the baseline) and then through A, whose message reaches
//! the toys through a PostgreSQL notification that B follows by reading the message row
//! and the blob back from the store. Both halves run on the same processes, store and
//! toys, so their ratio is what crossing processes costs.
use crate::delivery::{self, Rig, RunArgs};
use crate::stats::ratio;
use crate::Ctx;
use eyre::Result;
use serde_json::{json, Value};
use std::time::Duration;

/// The environment variable that names the PostgreSQL server when `--database-url` is
/// not given.
pub const DATABASE_URL_VAR: &str = "PAWPOST_BENCH_DATABASE_URL";
/// Offered rate of the unmeasured warm-up through each process (opens the servers'
/// database connections and fills their caches before the first measured run).
const WARMUP_RATE: f64 = 10.0;
/// Length of that warm-up, through each process.
const WARMUP: Duration = Duration::from_secs(2);
/// Longest wait for the warm-up's deliveries.
const WARMUP_DRAIN: Duration = Duration::from_secs(10);

/// What the scenario says when it has no database to run on.
pub fn skipped() -> Value {
    let why = format!(
        "no PostgreSQL server: give --database-url postgres://USER@HOST:PORT/DATABASE or set {DATABASE_URL_VAR}"
    );
    eprintln!("relay: skipped: {why}");
    json!({ "skipped": why })
}

/// Latency and rate through A divided by the same through B, at one offered rate.
fn across_over_same(same: &Value, across: &Value) -> Value {
    let lat = |v: &Value, q: &str| v["end_to_end_latency"][q].as_f64();
    json!({
        "delivered_per_s": ratio(across["delivered_per_s"].as_f64(), same["delivered_per_s"].as_f64()),
        "p50": ratio(lat(across, "p50_ms"), lat(same, "p50_ms")),
        "p90": ratio(lat(across, "p90_ms"), lat(same, "p90_ms")),
        "p99": ratio(lat(across, "p99_ms"), lat(same, "p99_ms")),
        "max": ratio(lat(across, "max_ms"), lat(same, "max_ms")),
    })
}

/// Runs the scenario with `toys` toys at each of `rates`; `run` gives the delivery run's
/// arguments at a rate (its `via_peer` is set here).
pub async fn relay(
    ctx: &Ctx,
    database_url: Option<&str>,
    toys: u64,
    rates: &[f64],
    run: impl Fn(f64) -> RunArgs,
) -> Result<Value> {
    let Some(url) = database_url.filter(|u| !u.is_empty()) else {
        return Ok(skipped());
    };
    eprintln!("relay: two processes on one PostgreSQL schema, {toys} toys on B ...");
    let mut rig = Rig::start_pair(ctx, toys, "relay", url).await?;
    let outcome = async {
        let postgres = match rig.shared() {
            Some(shared) => shared.describe().await?,
            None => Value::Null,
        };
        Ok::<_, eyre::Report>((postgres, measure(&mut rig, rates, &run).await?))
    }
    .await;
    let stopped = rig.stop().await;
    let (postgres, runs) = outcome?;
    stopped?;
    Ok(json!({
        "postgres": postgres,
        "toys": toys,
        "toys_connected_to": "B",
        "order": "at each rate: through B (same process), then through A (across processes)",
        "runs": runs,
    }))
}

async fn measure(
    rig: &mut Rig,
    rates: &[f64],
    run: &impl Fn(f64) -> RunArgs,
) -> Result<Vec<Value>> {
    for via_peer in [false, true] {
        let warmup = RunArgs {
            duration: WARMUP,
            drain: WARMUP_DRAIN,
            via_peer,
            ..run(WARMUP_RATE)
        };
        delivery::run(rig, &warmup).await?;
    }
    let mut runs = Vec::new();
    for &rate in rates {
        let base = run(rate);
        eprintln!(
            "relay: {rate}/s for {} s through B (same process) ...",
            base.duration.as_secs()
        );
        let same = delivery::run(
            rig,
            &RunArgs {
                via_peer: false,
                ..base.clone()
            },
        )
        .await?;
        eprintln!("relay: {same}");
        eprintln!(
            "relay: {rate}/s for {} s through A (across processes) ...",
            base.duration.as_secs()
        );
        let across = delivery::run(
            rig,
            &RunArgs {
                via_peer: true,
                ..base
            },
        )
        .await?;
        eprintln!("relay: {across}");
        runs.push(json!({
            "offered_per_s": rate,
            "across_over_same": across_over_same(&same, &across),
            "same_process": same,
            "across_processes": across,
        }));
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::across_over_same;
    use serde_json::json;

    #[test]
    fn the_ratios_divide_across_by_same_and_leave_missing_numbers_out() {
        let same = json!({
            "delivered_per_s": 50.0,
            "end_to_end_latency": {"p50_ms": 4.0, "p90_ms": 5.0, "p99_ms": 10.0, "max_ms": 20.0},
        });
        let across = json!({
            "delivered_per_s": 25.0,
            "end_to_end_latency": {"p50_ms": 6.0, "p90_ms": 5.0, "p99_ms": 30.0},
        });
        let r = across_over_same(&same, &across);
        assert_eq!(r["delivered_per_s"], json!(0.5));
        assert_eq!(r["p50"], json!(1.5));
        assert_eq!(r["p90"], json!(1.0));
        assert_eq!(r["p99"], json!(3.0));
        assert!(r["max"].is_null());
    }
}
