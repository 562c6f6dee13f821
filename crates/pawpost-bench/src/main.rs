//! `pawpost-bench`: measures a real `pawpost serve` (started from the release binary)
//! on this machine: idle toys, delivery latency, a Mosquitto peer under the same load
//! (and the durable peers NATS JetStream and RabbitMQ), the raw storage ceiling, a
//! login storm, the idle footprint, delivery across two server processes sharing
//! PostgreSQL, and a fleet of up to eight processes on one PostgreSQL (what the notes
//! every process receives cost). Prints a table and writes JSON. Every loop is
//! bounded in count and in time. See BENCHMARKS.md.
#![forbid(unsafe_code)]

mod delivery;
mod fleet;
mod idle;
mod jetstream;
mod keys;
mod mqtt;
mod rabbitmq;
mod relay;
mod report;
mod server;
mod stats;
mod storage;
mod tls;
mod toys;

use clap::{Args, Parser, Subcommand};
use eyre::Result;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "pawpost-bench",
    about = "Benchmarks of a real `pawpost serve` on this machine"
)]
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
    /// Serve the measured server over TLS (`--tls-cert`, with a certificate the bench
    /// makes) and connect toys with wss; the Mosquitto idle run adds a TLS listener.
    #[arg(long, global = true)]
    tls: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Idle RSS, start-up time to the first successful /healthz, binary size.
    Footprint(FootprintArgs),
    /// N authenticated idle toys: server RSS per toy and connect rate.
    Idle(IdleCli),
    /// Uploads at fixed offered rates to online toys: end-to-end latency and rate.
    Delivery(DeliveryCli),
    /// Delivery latency with and without a flood of wrong passwords.
    Storm(StormCli),
    /// The same fan-out through Mosquitto, and its RSS per idle subscriber.
    Mqtt(MqttCli),
    /// The same fan-out through NATS JetStream (file storage, synced before the publish
    /// acknowledgement where the server can), on a `nats-server` the bench starts.
    Jetstream(DeliveryCli),
    /// The same fan-out through RabbitMQ quorum queues with publisher confirms (confirmed
    /// after the broker's fsync), on a running broker: amqp://guest:guest@127.0.0.1:5672/%2f,
    /// or the URL in PAWPOST_BENCH_AMQP_URL. Each run declares fresh queues and deletes them.
    Rabbitmq(DeliveryCli),
    /// Blob writes and SQLite inserts as fast as this disk allows, without the server.
    Storage(StorageCli),
    /// Delivery to toys on process B, uploaded through B and through A (both on one
    /// PostgreSQL schema and blob folder): what crossing processes costs.
    Relay(RelayCli),
    /// Toys spread over 1, 2, 4, 8 processes on one PostgreSQL schema: what each process
    /// spends on the notes every process receives (the first limit of a million toys).
    Fleet(FleetCli),
    /// Every scenario with its defaults; prints the table and writes results.json.
    All(AllCli),
}

#[derive(Args, Clone)]
struct DeliveryCli {
    /// Online toys, one per household; messages go to them in turn.
    #[arg(long, default_value_t = 100)]
    toys: u64,
    /// Offered upload rates per second, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,200")]
    rates: Vec<f64>,
    /// Seconds of offered load per rate.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Size of each sealed envelope in bytes (the payload is sized to match).
    #[arg(long, default_value_t = 30_000)]
    envelope_bytes: usize,
    /// Longest wait for deliveries after the offer ends, in seconds.
    #[arg(long, default_value_t = 20)]
    drain_s: u64,
    /// Unanswered uploads at most; a message whose turn comes beyond it is not sent.
    #[arg(long, default_value_t = 1000)]
    max_in_flight: usize,
}

#[derive(Args, Clone)]
struct StormCli {
    #[command(flatten)]
    delivery: DeliveryCli,
    /// Concurrent clients sending wrong passwords.
    #[arg(long, default_value_t = 16)]
    attackers: usize,
    #[command(flatten)]
    reconnects: ReconnectCli,
}

#[derive(Args, Clone)]
struct ReconnectCli {
    /// Toys that reconnect over and over in the reconnect storm (stored, not otherwise
    /// connected); 0 leaves that storm out.
    #[arg(long, default_value_t = 2000)]
    reconnect_toys: u64,
    /// Toys connecting at once in the reconnect storm.
    #[arg(long, default_value_t = 32)]
    reconnect_workers: usize,
}

#[derive(Args, Clone)]
struct MqttCli {
    /// The broker.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: std::net::SocketAddr,
    #[command(flatten)]
    delivery: DeliveryCli,
    /// Idle subscribers for the broker's RSS per connection.
    #[arg(long, default_value_t = 10_000)]
    idle: u64,
}

#[derive(Args, Clone)]
struct RelayCli {
    #[command(flatten)]
    delivery: DeliveryCli,
    #[command(flatten)]
    database: DatabaseCli,
}

#[derive(Args, Clone)]
struct FleetCli {
    /// Numbers of processes, comma-separated; one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    processes: Vec<usize>,
    /// Toys in all, one per household, spread over the processes in equal blocks.
    #[arg(long, default_value_t = 2000)]
    toys: u64,
    /// Offered uploads per second, spread over the processes in turn.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seconds of offered uploads per run.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Size of each sealed envelope in bytes.
    #[arg(long, default_value_t = 30_000)]
    envelope_bytes: usize,
    /// Longest wait for deliveries after the offer ends, in seconds.
    #[arg(long, default_value_t = 20)]
    drain_s: u64,
    /// Unanswered uploads at most; a message whose turn comes beyond it is not sent.
    #[arg(long, default_value_t = 1000)]
    max_in_flight: usize,
    /// Seconds of the idle window (toys connected, nothing sent).
    #[arg(long, default_value_t = 5)]
    idle_s: u64,
    /// Notes per second the bench announces itself in the flood window (0 leaves it
    /// out); the default is what each process receives at a million toys' evening peak.
    #[arg(long, default_value_t = fleet::MILLION_PEAK_NOTES_PER_S)]
    flood_rate: f64,
    /// Seconds of each flood window.
    #[arg(long, default_value_t = 10)]
    flood_s: u64,
    /// Open pages (live event streams) per process in a second flood window; 0 leaves
    /// that window out.
    #[arg(long, default_value_t = 1)]
    pages: usize,
    #[command(flatten)]
    database: DatabaseCli,
}

impl FleetCli {
    fn args(&self) -> fleet::FleetArgs {
        fleet::FleetArgs {
            processes: self.processes.clone(),
            toys: self.toys,
            rate: self.rate,
            duration: Duration::from_secs(self.seconds),
            envelope_bytes: self.envelope_bytes,
            drain: Duration::from_secs(self.drain_s),
            max_in_flight: self.max_in_flight,
            idle: Duration::from_secs(self.idle_s),
            flood_rate: self.flood_rate,
            flood: Duration::from_secs(self.flood_s),
            pages: self.pages,
        }
    }
}

#[derive(Args, Clone)]
struct DatabaseCli {
    /// PostgreSQL server for the relay scenario (postgres://USER@HOST:PORT/DATABASE); a
    /// fresh schema is made on it and dropped at the end. Without it the scenario is skipped.
    #[arg(long, env = relay::DATABASE_URL_VAR, hide_env_values = true)]
    database_url: Option<String>,
}

#[derive(Args, Clone)]
struct StorageCli {
    /// Messages at most per concurrency level.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    #[arg(long, default_value_t = 30_000)]
    envelope_bytes: usize,
    /// Writers at once, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Seconds per concurrency level at most.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

#[derive(Args, Clone)]
struct AllCli {
    #[command(flatten)]
    idle: IdleCli,
    #[command(flatten)]
    mqtt: MqttCli,
    /// Concurrent clients sending wrong passwords in the storm.
    #[arg(long, default_value_t = 16)]
    attackers: usize,
    /// Offered rate during the storm (and its baseline).
    #[arg(long, default_value_t = 50.0)]
    storm_rate: f64,
    #[command(flatten)]
    reconnects: ReconnectCli,
    #[command(flatten)]
    database: DatabaseCli,
}

#[derive(Args, Clone)]
struct FootprintArgs {
    /// Cold starts to time.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

#[derive(Args, Clone)]
struct IdleCli {
    /// Numbers of idle toys, comma-separated; sizes beyond the open-file limit are skipped.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,50000")]
    sizes: Vec<u64>,
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
    pub fn fresh_root(&self, name: &str) -> Result<PathBuf> {
        let dir = self.work_dir.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// `data` inside an empty folder `work_dir/name` (the server creates it).
    pub fn fresh_dir(&self, name: &str) -> Result<PathBuf> {
        Ok(self.fresh_root(name)?.join("data"))
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
    if cli.tls {
        tls::enable(
            &std::env::temp_dir().join(format!("pawpost-bench-tls-{}", std::process::id())),
        )?;
    }
    let (name, result) = match cli.command {
        Command::Footprint(a) => ("footprint", idle::footprint(&ctx, a.runs).await?),
        Command::Idle(a) => ("idle", idle::idle(&ctx, &a.args()).await?),
        Command::Delivery(a) => ("delivery", delivery_rates(&ctx, &a).await?),
        Command::Storm(a) => (
            "storm",
            storm(&ctx, &a.delivery, a.attackers, &a.reconnects, None).await?,
        ),
        Command::Mqtt(a) => ("mqtt", mqtt_all(&ctx, &a).await?),
        Command::Jetstream(a) => ("jetstream", jetstream_all(&ctx, &a).await?),
        Command::Rabbitmq(a) => ("rabbitmq", rabbitmq::delivery_rates(&peer_runs(&a)).await?),
        Command::Storage(a) => ("storage", storage::ceiling(&ctx, &a.args()).await?),
        Command::Relay(a) => ("relay", relay_on(&ctx, &a.delivery, &a.database).await?),
        Command::Fleet(a) => (
            "fleet",
            fleet::fleet(&ctx, a.database.database_url.as_deref(), &a.args()).await?,
        ),
        Command::All(a) => ("results", all(&ctx, &a).await?),
    };
    let result = json!({"machine": machine(), name: result});
    if name == "results" {
        report::print(&result);
    } else {
        println!("{}", serde_json::to_string_pretty(&result)?);
        if name == "relay" {
            report::print_relay(&result["relay"]);
        }
    }
    let path = ctx.write(name, &result)?;
    eprintln!("results written to {}", path.display());
    Ok(())
}

impl IdleCli {
    fn args(&self) -> idle::IdleArgs {
        idle::IdleArgs {
            sizes: self.sizes.clone(),
            per_household: self.per_household,
            concurrency: self.concurrency,
            budget: Duration::from_secs(self.budget_s),
        }
    }
}

impl StorageCli {
    fn args(&self) -> storage::StorageArgs {
        storage::StorageArgs {
            messages: self.messages,
            envelope_bytes: self.envelope_bytes,
            concurrency: self.concurrency.clone(),
            budget: Duration::from_secs(self.seconds),
        }
    }
}

impl DeliveryCli {
    fn run(&self, rate: f64) -> delivery::RunArgs {
        delivery::RunArgs {
            rate,
            duration: Duration::from_secs(self.seconds),
            envelope_bytes: self.envelope_bytes,
            drain: Duration::from_secs(self.drain_s),
            max_in_flight: self.max_in_flight,
            via_peer: false,
        }
    }
}

async fn delivery_on(rig: &mut delivery::Rig, a: &DeliveryCli) -> Result<Vec<Value>> {
    let mut runs = Vec::new();
    for &rate in &a.rates {
        eprintln!("delivery: {rate}/s for {} s ...", a.seconds);
        let r = delivery::run(rig, &a.run(rate)).await?;
        eprintln!("delivery: {r}");
        runs.push(r);
    }
    Ok(runs)
}

async fn delivery_rates(ctx: &Ctx, a: &DeliveryCli) -> Result<Value> {
    let mut rig = delivery::Rig::start(ctx, a.toys, 0, "delivery").await?;
    let runs = delivery_on(&mut rig, a).await;
    rig.stop().await?;
    Ok(json!({"runs": runs?}))
}

/// Delivery at the first rate of `a` without, then with, the storm of wrong passwords,
/// then with the reconnect storm (toys of the rig's spares). A rig can be passed in.
async fn storm(
    ctx: &Ctx,
    a: &DeliveryCli,
    attackers: usize,
    reconnects: &ReconnectCli,
    rig: Option<&mut delivery::Rig>,
) -> Result<Value> {
    let mut own = None;
    let rig = match rig {
        Some(rig) => rig,
        None => {
            own.insert(delivery::Rig::start(ctx, a.toys, reconnects.reconnect_toys, "storm").await?)
        }
    };
    let rate = a.rates.first().copied().unwrap_or(50.0);
    let result = async {
        eprintln!("storm: baseline at {rate}/s ...");
        let baseline = delivery::run(rig, &a.run(rate)).await?;
        eprintln!("storm: {attackers} attackers, delivery at {rate}/s ...");
        let flood = delivery::Storm::start(&rig.server.base, attackers);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let under = delivery::run(rig, &a.run(rate)).await;
        let attack = flood.finish().await;
        let under = under?;
        let p99 = |v: &Value| v["end_to_end_latency"]["p99_ms"].as_f64();
        let mut result = json!({
            "attackers": attackers,
            "baseline": baseline,
            "under_storm": under,
            "storm": attack,
            "p99_factor": stats::ratio(p99(&under), p99(&baseline)),
        });
        if !rig.spare_toys.is_empty() {
            let workers = reconnects.reconnect_workers;
            eprintln!("storm: {workers} toys at a time reconnecting, delivery at {rate}/s ...");
            let storm =
                delivery::Reconnects::start(rig.server.addr, rig.spare_toys.clone(), workers);
            tokio::time::sleep(Duration::from_secs(2)).await;
            let under = delivery::run(rig, &a.run(rate)).await;
            let reconnects = storm.finish().await;
            let under = under?;
            result["reconnect"] = json!({
                "toys": rig.spare_toys.end - rig.spare_toys.start,
                "workers": workers,
                "under_storm": under,
                "storm": reconnects,
                "p99_factor": stats::ratio(p99(&under), p99(&baseline)),
            });
        }
        Ok::<Value, eyre::Report>(result)
    }
    .await;
    if let Some(rig) = own {
        rig.stop().await?;
    }
    result
}

/// The relay scenario with `a`'s toys, rates and run lengths, or a note that it is
/// skipped without a database.
async fn relay_on(ctx: &Ctx, a: &DeliveryCli, db: &DatabaseCli) -> Result<Value> {
    relay::relay(ctx, db.database_url.as_deref(), a.toys, &a.rates, |rate| {
        a.run(rate)
    })
    .await
}

async fn mqtt_all(ctx: &Ctx, a: &MqttCli) -> Result<Value> {
    let mut runs = Vec::new();
    for &rate in &a.delivery.rates {
        eprintln!("mqtt: {rate}/s for {} s ...", a.delivery.seconds);
        let r = mqtt::delivery(
            a.broker,
            &mqtt::MqttRun {
                subscribers: a.delivery.toys,
                rate,
                duration: Duration::from_secs(a.delivery.seconds),
                payload_bytes: a.delivery.envelope_bytes,
                drain: Duration::from_secs(a.delivery.drain_s),
                max_in_flight: u16::try_from(a.delivery.max_in_flight).unwrap_or(u16::MAX),
            },
        )
        .await?;
        eprintln!("mqtt: {r}");
        runs.push(r);
    }
    let idle = if a.idle > 0 {
        eprintln!("mqtt: {} idle subscribers ...", a.idle);
        mqtt::idle(a.broker, a.idle, 64).await?
    } else {
        Value::Null
    };
    let idle_tls = if a.idle > 0 && tls::current().is_some() {
        eprintln!("mqtt: {} idle subscribers over TLS ...", a.idle);
        mqtt::idle_tls(&ctx.work_dir, a.idle, 64).await?
    } else {
        Value::Null
    };
    Ok(json!({"runs": runs, "idle": idle, "idle_tls": idle_tls}))
}

/// One broker run per rate of `d`: a subscriber per toy, the same payload and drain.
fn peer_runs(d: &DeliveryCli) -> Vec<mqtt::MqttRun> {
    d.rates
        .iter()
        .map(|&rate| mqtt::MqttRun {
            subscribers: d.toys,
            rate,
            duration: Duration::from_secs(d.seconds),
            payload_bytes: d.envelope_bytes,
            drain: Duration::from_secs(d.drain_s),
            max_in_flight: u16::try_from(d.max_in_flight).unwrap_or(u16::MAX),
        })
        .collect()
}

async fn jetstream_all(ctx: &Ctx, d: &DeliveryCli) -> Result<Value> {
    jetstream::delivery_rates(&ctx.work_dir, &peer_runs(d)).await
}

async fn all(ctx: &Ctx, a: &AllCli) -> Result<Value> {
    eprintln!("footprint ...");
    let footprint = idle::footprint(ctx, 3).await?;
    let idle = idle::idle(ctx, &a.idle.args()).await?;
    eprintln!("storage ceiling ...");
    let storage = storage::ceiling(
        ctx,
        &storage::StorageArgs {
            messages: 20_000,
            envelope_bytes: a.mqtt.delivery.envelope_bytes,
            concurrency: vec![1, 16],
            budget: Duration::from_secs(10),
        },
    )
    .await?;
    let d = &a.mqtt.delivery;
    let mut rig =
        delivery::Rig::start(ctx, d.toys, a.reconnects.reconnect_toys, "delivery").await?;
    let outcome = async {
        let runs = delivery_on(&mut rig, d).await?;
        let storm_args = DeliveryCli {
            rates: vec![a.storm_rate],
            ..d.clone()
        };
        let storm = storm(ctx, &storm_args, a.attackers, &a.reconnects, Some(&mut rig)).await?;
        Ok::<_, eyre::Report>((runs, storm))
    }
    .await;
    rig.stop().await?;
    let (runs, storm) = outcome?;
    // A broken database costs only this scenario, not the ones measured before it.
    let relay = relay_on(ctx, d, &a.database).await.unwrap_or_else(|e| {
        eprintln!("relay: failed: {e:#}");
        json!({ "error": format!("{e:#}") })
    });
    // The peer runs after the pawpost server has stopped, on the same cores.
    let mut mqtt_args = a.mqtt.clone();
    mqtt_args.idle = idle["runs"]
        .as_array()
        .and_then(|rows| rows.iter().filter_map(|r| r["connected"].as_u64()).max())
        .unwrap_or(mqtt_args.idle);
    let mqtt = mqtt_all(ctx, &mqtt_args).await?;
    let jetstream = jetstream_all(ctx, d).await.unwrap_or_else(|e| {
        eprintln!("jetstream: failed: {e:#}");
        json!({ "error": format!("{e:#}") })
    });
    let rabbitmq = rabbitmq::delivery_rates(&peer_runs(d))
        .await
        .unwrap_or_else(|e| {
            eprintln!("rabbitmq: failed: {e:#}");
            json!({ "error": format!("{e:#}") })
        });
    let mut result = json!({
        "footprint": footprint,
        "idle": idle,
        "storage": storage,
        "delivery": {"runs": runs},
        "storm": storm,
        "relay": relay,
        "mqtt": mqtt,
        "jetstream": jetstream,
        "rabbitmq": rabbitmq,
    });
    result["ratios"] = report::ratios(&result);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
