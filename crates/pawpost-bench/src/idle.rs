//! Scenario 1 and 6: the server's footprint with no clients, and with N idle toys.
use crate::fleet::{clock_ticks, cpu_ticks};
use crate::server::{plan, seed, SeedInto, ServerProcess};
use crate::stats::{open_file_limit, round2, round3};
use crate::toys::connect_many;
use crate::Ctx;
use eyre::Result;
use serde_json::{json, Value};
use std::time::Duration;

/// Time for the allocator and the kernel to settle before reading RSS.
const SETTLE: Duration = Duration::from_millis(1500);

/// RSS with no clients, time from spawn to the first successful /healthz (best and
/// median of `runs` cold starts on an empty data folder), and the binary's size.
pub async fn footprint(ctx: &Ctx, runs: usize) -> Result<Value> {
    let mut startups = Vec::new();
    let mut rss = Vec::new();
    for run in 0..runs.max(1) {
        let dir = ctx.fresh_dir(&format!("footprint-{run}"))?;
        let server = ServerProcess::start(&ctx.bin, &dir, &ctx.log("footprint"), &[]).await?;
        startups.push(server.startup);
        tokio::time::sleep(SETTLE).await;
        rss.push(server.rss_kib()?);
        server.stop()?;
        std::fs::remove_dir_all(&dir)?;
    }
    startups.sort();
    rss.sort();
    let binary_bytes = std::fs::metadata(&ctx.bin)?.len();
    Ok(json!({
        "runs": startups.len(),
        "startup_ms_best": crate::stats::ms(startups[0]),
        "startup_ms_median": crate::stats::ms(startups[startups.len() / 2]),
        "idle_rss_kib_median": rss[rss.len() / 2],
        "binary_bytes": binary_bytes,
        "binary_mib": round2(binary_bytes as f64 / 1048576.0),
    }))
}

pub struct IdleArgs {
    pub sizes: Vec<u64>,
    pub per_household: u64,
    pub concurrency: usize,
    pub budget: Duration,
}

/// For each N: a fresh server over a database holding the toys, RSS before and after
/// N toys connect and authenticate, and the connect rate.
pub async fn idle(ctx: &Ctx, args: &IdleArgs) -> Result<Value> {
    let limit = open_file_limit();
    let max = args.sizes.iter().copied().max().unwrap_or(0);
    let dir = ctx.fresh_dir("idle")?;
    let households = plan(0, max, args.per_household, "idle-household");
    eprintln!(
        "idle: seeding {max} toys in {} households ...",
        households.len()
    );
    seed(SeedInto::Sqlite(&dir), &[], &households).await?;
    let mut rows = Vec::new();
    for &n in &args.sizes {
        // Each side holds one descriptor per toy, plus files, the database and listeners.
        if n + 512 > limit {
            eprintln!("idle: skipping N={n}: open-file limit {limit} (raise it with ulimit -n)");
            rows.push(json!({"toys": n, "skipped": format!("open-file limit {limit}")}));
            continue;
        }
        let server =
            ServerProcess::start(&ctx.bin, &dir, &ctx.log(&format!("idle-{n}")), &[]).await?;
        tokio::time::sleep(SETTLE).await;
        let before = server.rss_kib()?;
        eprintln!("idle: connecting {n} toys ...");
        let cpu_before = CpuTicks::now(server.pid());
        let connected = connect_many(server.addr, 0, n, args.concurrency, args.budget).await;
        let cpu = CpuTicks::between(cpu_before, CpuTicks::now(server.pid()));
        tokio::time::sleep(SETTLE).await;
        let after = server.rss_kib()?;
        let ok = connected.sockets.len() as u64;
        let per_toy = if ok > 0 {
            (after.saturating_sub(before)) as f64 / ok as f64
        } else {
            0.0
        };
        let rate = ok as f64 / connected.elapsed.as_secs_f64();
        let ticks = clock_ticks();
        // CPU time per connect, in ms; what the server's share alone would allow on
        // every core of this machine (the toys' side, here on the same cores, elsewhere).
        let per_connect = |t: Option<u64>| {
            t.filter(|_| ok > 0)
                .map(|t| t as f64 * 1000.0 / ticks as f64 / ok as f64)
        };
        let server_ms = per_connect(cpu.map(|c| c.server));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let row = json!({
            "toys": n,
            "connected": ok,
            "failed": connected.failures,
            "first_error": connected.first_error,
            "connect_seconds": round2(connected.elapsed.as_secs_f64()),
            "connects_per_s": round2(rate),
            "server_cpu_ms_per_connect": server_ms.map(round3),
            "bench_cpu_ms_per_connect": per_connect(cpu.map(|c| c.bench)).map(round3),
            "connects_per_s_server_cpu_alone": server_ms.filter(|&v| v > 0.0).map(|v| round2(cores as f64 * 1000.0 / v)),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "rss_per_toy_kib": round2(per_toy),
            "under_10_kib_per_toy": per_toy < 10.0,
        });
        eprintln!("idle: {row}");
        rows.push(row);
        drop(connected);
        server.stop()?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(json!({"open_file_limit": limit, "per_household": args.per_household, "runs": rows}))
}

/// CPU ticks (utime + stime) of the server and of this bench's own process.
#[derive(Clone, Copy)]
struct CpuTicks {
    server: u64,
    bench: u64,
}

impl CpuTicks {
    /// `None` where `/proc` does not say.
    fn now(server: u32) -> Option<Self> {
        Some(Self {
            server: cpu_ticks(server)?,
            bench: cpu_ticks(std::process::id())?,
        })
    }

    /// The ticks spent between `before` and `after`.
    fn between(before: Option<Self>, after: Option<Self>) -> Option<Self> {
        let (before, after) = (before?, after?);
        Some(Self {
            server: after.server.saturating_sub(before.server),
            bench: after.bench.saturating_sub(before.bench),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ticks_between_two_readings_are_per_process_and_need_both() {
        let before = CpuTicks {
            server: 100,
            bench: 40,
        };
        let after = CpuTicks {
            server: 450,
            bench: 90,
        };
        let spent = CpuTicks::between(Some(before), Some(after)).unwrap();
        assert_eq!((spent.server, spent.bench), (350, 50));
        assert!(CpuTicks::between(None, Some(after)).is_none());
        assert!(CpuTicks::between(Some(before), None).is_none());
        // This process read as both: the second reading is never behind the first.
        let own = CpuTicks::now(std::process::id()).expect("/proc says");
        assert!(own.server <= own.bench);
        assert!(CpuTicks::now(u32::MAX).is_none(), "no such process");
    }
}
