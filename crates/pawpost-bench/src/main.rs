//! `pawpost-bench`: measures a real `pawpost serve` (started from the release binary)
//! on this machine: idle toys, delivery latency, a Mosquitto peer under the same load,
//! the raw storage ceiling, a login storm, and the idle footprint. Prints a table and
//! writes JSON. Every loop is bounded in count and in time. See BENCHMARKS.md.
#![forbid(unsafe_code)]

mod idle;
mod keys;
mod server;
mod stats;
mod toys;

use clap::{Args, Parser, Subcommand};
use eyre::Result;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(name = "pawpost-bench", about = "Benchmarks of a real `pawpost serve` on this machine")]
struct Cli {
    /// The server binary to measure.
    #[arg(long, default_value = "target/release/pawpost")]
    bin: PathBuf,
    /// Scratch folder for data folders and server logs (on the disk being measured).
    #[arg(long, default_value = "target/bench-work")]
    work_dir: PathBuf,
    /// Where JSON results go (one file per scenario, and results.json for `all`).
    #[arg(long, default_value = "target/bench-results")]
    out_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Idle RSS, start-up time to the first successful /healthz, binary size.
    Footprint(FootprintArgs),
    /// N authenticated idle toys: server RSS per toy and connect rate.
    Idle(IdleCli),
}

#[derive(Args, Clone)]
struct FootprintArgs {
    /// Cold starts to time.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(Args, Clone)]
struct IdleCli {
    /// Numbers of toys, comma-separated; sizes beyond the open-file limit are skipped.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    toys: Vec<u64>,
    /// Toys per household in the seeded database.
    #[arg(long, default_value_t = 4)]
    per_household: u64,
    /// Connections being set up at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Longest time spent connecting one size, in seconds.
    #[arg(long, default_value_t = 180)]
    budget_s: u64,
}

/// Paths shared by the scenarios.
pub struct Ctx {
    pub bin: PathBuf,
    pub work_dir: PathBuf,
    pub out_dir: PathBuf,
}

impl Ctx {
    /// An empty folder `work_dir/name`.
    pub fn fresh_dir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.work_dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir.join("data"))
    }

    pub fn log(&self, name: &str) -> PathBuf {
        self.work_dir.join(format!("{name}.log"))
    }

    fn write(&self, name: &str, value: &Value) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.out_dir)?;
        let path = self.out_dir.join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(value)? + "\n")?;
        Ok(path)
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()?.join(path)
    })
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let mem_kib = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": cpu,
        "mem_gib": stats::round2(mem_kib as f64 / 1048576.0),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "open_file_limit": stats::open_file_limit(),
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let ctx = Ctx {
        bin: absolute(&cli.bin)?,
        work_dir: absolute(&cli.work_dir)?,
        out_dir: absolute(&cli.out_dir)?,
    };
    std::fs::create_dir_all(&ctx.work_dir)?;
    let (name, result) = match cli.command {
        Command::Footprint(a) => ("footprint", idle::footprint(&ctx, a.runs).await?),
        Command::Idle(a) => (
            "idle",
            idle::idle(
                &ctx,
                &idle::IdleArgs {
                    sizes: a.toys,
                    per_household: a.per_household,
                    concurrency: a.concurrency,
                    budget: Duration::from_secs(a.budget_s),
                },
            )
            .await?,
        ),
    };
    let result = json!({"machine": machine(), name: result});
    println!("{}", serde_json::to_string_pretty(&result)?);
    let path = ctx.write(name, &result)?;
    eprintln!("results written to {}", path.display());
    Ok(())
}
