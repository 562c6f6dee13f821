//! Scenario 8: a fleet of server processes on one PostgreSQL, the first limit of a
//! million toys (BENCHMARKS.md, "A million toys"). Every process listens to the one
//! `NOTIFY` channel of its schema, so every process receives every note: the notes
//! received grow with messages × processes.
//!
//! For each number of processes P, `--toys` toys (one per household) are spread over P
//! `pawpost serve` processes sharing a fresh PostgreSQL schema and blob folder, in
//! contiguous blocks. Three windows are measured, each with every process's CPU time
//! (`/proc/PID/stat`), the CPU time of the machine's PostgreSQL processes, and the notes
//! on the channel, counted by a listener of the bench's own (PostgreSQL hands every note
//! to every listener of the channel, so it receives exactly what each process receives):
//!
//! 1. **idle**: nothing sent; what a process costs with its toys connected (presence).
//! 2. **messages**: uploads at a fixed offered rate, message `m` to toy `m mod T` through
//!    process `m mod P`, as a load balancer that knows nothing of the toys would spread
//!    them; the toys acknowledge every `Deliver`. Latency runs from the start of the
//!    upload to the toy's receipt of the frame.
//! 3. **flood**: the bench itself announces notes of the servers' own form (a `Message`
//!    naming a toy that no process holds, and `Live` changes, in the proportion of real
//!    traffic) at a fixed rate, by default the rate each process would receive at the
//!    evening peak of a million toys: what receiving them costs each process, and
//!    PostgreSQL, with nothing else going on.
//!
//! From each window the CPU of the processes, and of PostgreSQL, is divided by the notes
//! all processes received: the CPU one note costs each process that receives it, whose
//! median over the runs is carried to a million toys' evening peak. Every loop is
//! bounded in count and time.
use crate::server::{plan, seed, OwnerClient, SeedInto, ServerProcess, SharedStore};
use crate::stats::{round2, summary};
use crate::toys::{connect_many, next_delivery, Ws};
use crate::Ctx;
use eyre::{bail, eyre, Result};
use pawpost_crypto::{os_rng, seal, MediaType, MessageId, MessageParams};
use pawpost_domain::{DeviceId, HouseholdId};
use pawpost_server::events::Change;
use pawpost_server::relay::Note;
use serde_json::{json, Value};
use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// Messages a second at the evening peak of a million toys whose families send ten
/// messages a day each (BENCHMARKS.md: 116/s on average, five times that at the peak).
pub const MILLION_PEAK_MESSAGES_PER_S: f64 = 580.0;
/// Processes a million toys take at 19,000 toys a process (BENCHMARKS.md).
pub const MILLION_PROCESSES: f64 = 53.0;
/// Notes a second each process receives at that peak, as BENCHMARKS.md estimated them
/// (four notes per message); the flood's default rate.
pub const MILLION_PEAK_NOTES_PER_S: f64 = 2_300.0;
/// `Live` notes sent in the flood for each `Message` note (one `Live` for the message,
/// two for its receipts, as in BENCHMARKS.md's estimate).
const FLOOD_LIVE_PER_MESSAGE: usize = 3;
/// Connections the flood announces through at once (the servers' pools each announce
/// on their own connections, one note per statement).
const FLOOD_CONNECTIONS: usize = 8;
/// The flood is paced in slices of this length.
const FLOOD_TICK: Duration = Duration::from_millis(20);
/// Pause after the toys connect (their `Online` notes, rosters) before measuring.
const SETTLE: Duration = Duration::from_secs(3);
/// Pause after the last delivery so that the toys' receipts and their notes land in the
/// window.
const AFTER_DRAIN: Duration = Duration::from_secs(1);
/// Toys connecting at once to each process.
const CONNECT_CONCURRENCY: usize = 16;
/// Longest time spent connecting one process's toys.
const CONNECT_BUDGET: Duration = Duration::from_secs(120);
/// Longest wait for a page's event stream to open.
const PAGE_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the witness listener to start.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// Clock ticks a second of `/proc/PID/stat` when `getconf CLK_TCK` cannot say.
const DEFAULT_CLOCK_TICKS: u64 = 100;
/// Longest `max_in_flight` accepted: every unanswered upload holds a task and a body.
pub const MAX_IN_FLIGHT_LIMIT: usize = 10_000;

#[derive(Clone)]
pub struct FleetArgs {
    /// Numbers of processes, one run each.
    pub processes: Vec<usize>,
    /// Toys in all, one per household.
    pub toys: u64,
    /// Offered uploads a second in the messages window.
    pub rate: f64,
    pub duration: Duration,
    pub envelope_bytes: usize,
    pub drain: Duration,
    pub max_in_flight: usize,
    /// Length of the idle window.
    pub idle: Duration,
    /// Notes a second in the flood window (0 leaves it out).
    pub flood_rate: f64,
    pub flood: Duration,
    /// Open pages (the owner's live event streams) on each process during a second
    /// flood window (0 leaves it out).
    pub pages: usize,
}

/// What the scenario says when it has no database to run on.
pub fn skipped() -> Value {
    let why = format!(
        "no PostgreSQL server: give --database-url postgres://USER@HOST:PORT/DATABASE or set {}",
        crate::relay::DATABASE_URL_VAR
    );
    eprintln!("fleet: skipped: {why}");
    json!({ "skipped": why })
}

/// The notification channel the servers on `schema` share (as pawpost-store-postgres
/// names it: `pawpost_SCHEMA`, cut to PostgreSQL's 63-byte identifiers).
pub fn channel_for(schema: &str) -> String {
    let mut channel = format!("pawpost_{schema}");
    channel.truncate(pawpost_store_postgres::MAX_SCHEMA_NAME_LEN);
    channel
}

pub async fn fleet(ctx: &Ctx, database_url: Option<&str>, args: &FleetArgs) -> Result<Value> {
    let Some(url) = database_url.filter(|u| !u.is_empty()) else {
        return Ok(skipped());
    };
    if args.processes.is_empty() || args.processes.contains(&0) {
        bail!("--processes needs one or more numbers of processes, each at least 1");
    }
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate needs a number of uploads per second above 0");
    }
    if !(args.flood_rate.is_finite() && args.flood_rate >= 0.0) {
        bail!(
            "--flood-rate needs a number of notes per second, 0 or more (0 leaves the flood out)"
        );
    }
    if args.pages > pawpost_server::events::MAX_STREAMS_PER_ACCOUNT {
        bail!(
            "--pages is at most {} (the live streams one account may open on a process)",
            pawpost_server::events::MAX_STREAMS_PER_ACCOUNT
        );
    }
    if args.toys == 0 {
        bail!("--toys needs at least 1 toy");
    }
    if args.max_in_flight > MAX_IN_FLIGHT_LIMIT {
        bail!("--max-in-flight is at most {MAX_IN_FLIGHT_LIMIT}");
    }
    let root = ctx.fresh_root("fleet")?;
    let shared = SharedStore::fresh(url, root.join("blobs"))?;
    let outcome = run_all(ctx, &root, &shared, args).await;
    let dropped = shared.drop_schema().await;
    let _ = std::fs::remove_dir_all(&root);
    let result = outcome?;
    dropped?;
    Ok(result)
}

async fn run_all(
    ctx: &Ctx,
    root: &std::path::Path,
    shared: &SharedStore,
    args: &FleetArgs,
) -> Result<Value> {
    let households = plan(0, args.toys, 1, "fleet-household");
    eprintln!("fleet: seeding {} toys with their rosters ...", args.toys);
    seed(SeedInto::Postgres(shared), &[], &households).await?;
    let postgres = shared.describe().await?;
    let witness = Witness::start(&shared.url, &channel_for(&shared.schema)).await?;
    let ticks = clock_ticks();
    let mut owner: Option<OwnerClient> = None;
    let mut runs = Vec::new();
    for &p in &args.processes {
        eprintln!("fleet: {p} processes, {} toys ...", args.toys);
        let run = one_fleet(
            ctx,
            root,
            shared,
            &households,
            &mut owner,
            &witness,
            ticks,
            p,
            args,
        )
        .await?;
        eprintln!(
            "fleet: {p} processes: {}",
            serde_json::to_string(&run["summary"])?
        );
        runs.push(run);
    }
    witness.stop().await;
    let cost = json!({
        "flood": note_cost(&runs, "flood"),
        "flood_with_pages": note_cost(&runs, "flood_with_pages"),
        "messages": note_cost(&runs, "messages"),
    });
    Ok(json!({
        "postgres": postgres,
        "toys": args.toys,
        "offered_per_s": args.rate,
        "seconds": args.duration.as_secs_f64(),
        "flood_notes_per_s": args.flood_rate,
        "flood_seconds": args.flood.as_secs_f64(),
        "clock_ticks_per_s": ticks,
        "runs": runs,
        "note_cost": cost,
    }))
}

/// One run with `p` processes.
#[allow(clippy::too_many_arguments)]
async fn one_fleet(
    ctx: &Ctx,
    root: &std::path::Path,
    shared: &SharedStore,
    households: &[crate::server::HouseholdPlan],
    owner: &mut Option<OwnerClient>,
    witness: &Witness,
    ticks: u64,
    p: usize,
    args: &FleetArgs,
) -> Result<Value> {
    let mut servers = Vec::with_capacity(p);
    for j in 0..p {
        let server = ServerProcess::start(
            &ctx.bin,
            &root.join(format!("p{p}-{j}")),
            &ctx.log(&format!("fleet-p{p}-{j}")),
            &shared.server_args(),
        )
        .await?;
        servers.push(server);
    }
    let outcome = async {
        let signed_in = match owner.take() {
            Some(o) => o,
            None => {
                let o = OwnerClient::sign_in(&servers[0].base).await?;
                o.register_owner_device().await?;
                o
            }
        };
        let uploaders: Vec<OwnerClient> = servers.iter().map(|s| signed_in.at(&s.base)).collect();
        *owner = Some(signed_in);
        // Toys in contiguous blocks: process j holds blocks[j].
        let toys = args.toys;
        let p64 = p as u64;
        let blocks: Vec<(u64, u64)> = (0..p64)
            .map(|j| (j * toys / p64, (j + 1) * toys / p64))
            .collect();
        let (tx, receipts) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut readers = Vec::new();
        for (j, &(first, end)) in blocks.iter().enumerate() {
            let connected = connect_many(
                servers[j].addr,
                first,
                end - first,
                CONNECT_CONCURRENCY,
                CONNECT_BUDGET,
            )
            .await;
            if connected.sockets.len() as u64 != end - first {
                bail!(
                    "only {} of {} toys connected to process {j}: {:?}",
                    connected.sockets.len(),
                    end - first,
                    connected.first_error
                );
            }
            for (_, ws) in connected.sockets {
                readers.push(tokio::spawn(read_toy(ws, tx.clone(), stop.clone())));
            }
        }
        drop(tx);
        tokio::time::sleep(SETTLE).await;
        let pids: Vec<u32> = servers.iter().map(ServerProcess::pid).collect();

        let idle_start = Snapshot::take(&pids, witness).await;
        tokio::time::sleep(args.idle).await;
        let idle = Snapshot::take(&pids, witness).await.since(&idle_start, ticks);

        let mut rig = Fleet {
            uploaders,
            households,
            blocks: &blocks,
            receipts,
        };
        let sealed = seal_all(&rig, args)?;
        let messages_start = Snapshot::take(&pids, witness).await;
        let delivery = send_and_wait(&mut rig, sealed, args).await?;
        tokio::time::sleep(AFTER_DRAIN).await;
        let messages = Snapshot::take(&pids, witness)
            .await
            .since(&messages_start, ticks);

        let channel = channel_for(&shared.schema);
        let flood_window = || async {
            let start = Snapshot::take(&pids, witness).await;
            let (sent, took) = flood(&shared.url, &channel, args).await?;
            tokio::time::sleep(AFTER_DRAIN).await;
            let mut window = Snapshot::take(&pids, witness).await.since(&start, ticks);
            window["announced_by_the_bench"] = json!(sent);
            window["announced_per_s"] = json!(round2(sent as f64 / took.as_secs_f64()));
            Ok::<Value, eyre::Report>(window)
        };
        let flood = if args.flood_rate > 0.0 {
            flood_window().await?
        } else {
            Value::Null
        };
        let flood_with_pages = if args.flood_rate > 0.0 && args.pages > 0 {
            let pages = open_pages(&rig.uploaders, args.pages).await?;
            let window = flood_window().await;
            for page in &pages {
                page.abort();
            }
            let mut window = window?;
            window["pages_per_process"] = json!(args.pages);
            window
        } else {
            Value::Null
        };
        stop.store(true, Ordering::Relaxed);
        for r in &readers {
            r.abort();
        }
        let accepted = delivery["accepted_201"].as_f64().unwrap_or(0.0);
        let notes = messages["notes"]["total"].as_f64().unwrap_or(0.0);
        let cpu_total = |w: &Value| w["processes_cpu_ms_per_s"]["total"].as_f64();
        let summary = json!({
            "processes": p,
            "toys_per_process": toys / p64,
            "idle_cpu_ms_per_s_per_process": per_process(cpu_total(&idle), p),
            "messages_cpu_ms_per_s_per_process": per_process(cpu_total(&messages), p),
            "notes_per_message": if accepted > 0.0 { json!(round2(notes / accepted)) } else { Value::Null },
            "notes_received_per_s_per_process": messages["notes"]["per_s"],
            "delivery_p50_ms": delivery["end_to_end_latency"]["p50_ms"],
            "delivery_p99_ms": delivery["end_to_end_latency"]["p99_ms"],
            "flood_notes_received_per_s_per_process": flood["notes"]["per_s"],
            "flood_cpu_ms_per_s_per_process": per_process(cpu_total(&flood), p),
            "flood_postgres_cpu_ms_per_s": flood["postgres_cpu_ms_per_s"],
            "flood_announced_per_s": flood["announced_per_s"],
            "flood_wal_syncs_per_note": flood["wal_syncs_per_note"],
            "flood_with_pages_cpu_ms_per_s_per_process": per_process(cpu_total(&flood_with_pages), p),
            "flood_with_pages_notes_received_per_s_per_process": flood_with_pages["notes"]["per_s"],
            "flood_with_pages_postgres_cpu_ms_per_s": flood_with_pages["postgres_cpu_ms_per_s"],
        });
        Ok::<_, eyre::Report>(json!({
            "processes": p,
            "toys_per_process": blocks.iter().map(|(a, b)| b - a).collect::<Vec<_>>(),
            "summary": summary,
            "idle": idle,
            "messages": messages,
            "delivery": delivery,
            "flood": flood,
            "flood_with_pages": flood_with_pages,
        }))
    }
    .await;
    let mut stopped = Ok(());
    for s in servers {
        stopped = stopped.and(s.stop());
    }
    let run = outcome?;
    stopped?;
    Ok(run)
}

fn per_process(total: Option<f64>, p: usize) -> Value {
    total.map_or(Value::Null, |t| json!(round2(t / p as f64)))
}

/// The processes' owner sessions, the toys' blocks and the toys' receipts.
struct Fleet<'a> {
    uploaders: Vec<OwnerClient>,
    households: &'a [crate::server::HouseholdPlan],
    blocks: &'a [(u64, u64)],
    receipts: mpsc::UnboundedReceiver<(Uuid, Instant)>,
}

impl Fleet<'_> {
    /// The process that holds toy `toy`.
    fn holder(&self, toy: u64) -> usize {
        self.blocks
            .iter()
            .position(|&(first, end)| (first..end).contains(&toy))
            .unwrap_or(0)
    }
}

/// Reads one toy's frames: on `Deliver`, note the time and acknowledge, as a real toy
/// does (the acknowledgement is a receipt the server stores and announces). Opening the
/// envelope is left out: the bench's CPU is the servers' too.
async fn read_toy(mut ws: Ws, tx: mpsc::UnboundedSender<(Uuid, Instant)>, stop: Arc<AtomicBool>) {
    while let Some((_, at, id)) = next_delivery(&mut ws, &stop).await {
        let _ = tx.send((Uuid::from_bytes(id.0), at));
    }
}

/// One message ready to upload: the uploading process, the household, the message id,
/// whether it crosses processes, and the bytes.
struct Sealed {
    via: usize,
    household: Uuid,
    id: Uuid,
    across: bool,
    bytes: Vec<u8>,
}

/// Seals every envelope before the clock starts. Message `m` goes to toy `m mod T`
/// through process `m mod P`.
fn seal_all(rig: &Fleet<'_>, args: &FleetArgs) -> Result<Vec<Sealed>> {
    let owner = crate::server::owner_device();
    let count = usize::try_from(crate::stats::offered(args.rate, args.duration))?;
    let make = |payload: usize, toy: u64, household: Uuid| -> Result<(Uuid, Vec<u8>)> {
        let id = Uuid::now_v7();
        let bytes = seal(
            &mut os_rng(),
            &owner.keys,
            &MessageParams {
                message_id: MessageId(*id.as_bytes()),
                household_id: pawpost_crypto::HouseholdId(*household.as_bytes()),
                created_at_ms: 1_764_000_000_000,
                media_type: MediaType::OggOpus,
                duration_ms: 3000,
                recipients: &[crate::keys::BenchDevice::toy(toy).public()],
            },
            &vec![0x4f; payload],
        )
        .map_err(|e| eyre!("seal: {e:?}"))?;
        Ok((id, bytes))
    };
    let first = rig
        .households
        .first()
        .ok_or_else(|| eyre!("no households"))?;
    let overhead = make(1000, first.first_toy, first.id)?
        .1
        .len()
        .saturating_sub(1000);
    let payload = args.envelope_bytes.saturating_sub(overhead).max(1);
    let toys = rig.households.len();
    let p = rig.uploaders.len();
    let mut out = Vec::with_capacity(count);
    for m in 0..count {
        let h = &rig.households[m % toys];
        let via = m % p;
        let (id, bytes) = make(payload, h.first_toy, h.id)?;
        out.push(Sealed {
            via,
            household: h.id,
            id,
            across: rig.holder(h.first_toy) != via,
            bytes,
        });
    }
    Ok(out)
}

/// Uploads `sealed` at the offered rate (open loop, at most `max_in_flight` unanswered)
/// and waits, bounded, for every accepted message to reach its toy.
async fn send_and_wait(
    rig: &mut Fleet<'_>,
    sealed: Vec<Sealed>,
    args: &FleetArgs,
) -> Result<Value> {
    while rig.receipts.try_recv().is_ok() {}
    let count = sealed.len();
    let across_of: HashMap<Uuid, bool> = sealed.iter().map(|s| (s.id, s.across)).collect();
    let in_flight = Arc::new(AtomicUsize::new(0));
    let mut not_sent = 0u64;
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for (k, s) in sealed.into_iter().enumerate() {
        tokio::time::sleep_until((t0 + interval * u32::try_from(k)?).into()).await;
        if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
            not_sent += 1;
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let up = &rig.uploaders[s.via];
        let request = up
            .http
            .post(format!(
                "{}/api/v1/households/{}/messages",
                up.base, s.household
            ))
            .bearer_auth(&up.token)
            .header("content-type", "application/octet-stream")
            .body(s.bytes);
        let in_flight = in_flight.clone();
        let id = s.id;
        handles.push(tokio::spawn(async move {
            let start = Instant::now();
            let status = request.send().await.map_or(0, |r| r.status().as_u16());
            in_flight.fetch_sub(1, Ordering::Relaxed);
            (id, start, status)
        }));
    }
    let mut accepted: HashMap<Uuid, Instant> = HashMap::new();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for h in handles {
        let (id, start, status) = h.await?;
        *statuses.entry(status).or_insert(0) += 1;
        if status == 201 {
            accepted.insert(id, start);
        }
    }
    let accepted_count = accepted.len();
    let deadline = Instant::now() + args.drain;
    let (mut all, mut same, mut across) = (Vec::new(), Vec::new(), Vec::new());
    while !accepted.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rig.receipts.recv()).await {
            Ok(Some((id, at))) => {
                if let Some(start) = accepted.remove(&id) {
                    let latency = at.duration_since(start);
                    all.push(latency);
                    if across_of.get(&id).copied().unwrap_or(false) {
                        across.push(latency);
                    } else {
                        same.push(latency);
                    }
                }
            }
            _ => break,
        }
    }
    Ok(json!({
        "offered": count,
        "not_sent_client_backlog": not_sent,
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "accepted_201": accepted_count,
        "delivered": all.len(),
        "end_to_end_latency": summary(&mut all),
        "uploaded_through_the_toys_process": summary(&mut same),
        "uploaded_through_another_process": summary(&mut across),
    }))
}

/// Opens `pages` live event streams of the owner on each process (as open tabs of the
/// web app) and reads them until aborted: a process with a page open reads, for every
/// `Live` note it receives, who may hear of it from the store.
async fn open_pages(
    uploaders: &[OwnerClient],
    pages: usize,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    // No overall timeout: a stream stays open until the window ends.
    let http = crate::tls::http_client(reqwest::Client::builder())?;
    let mut tasks = Vec::new();
    for up in uploaders {
        for _ in 0..pages {
            let response = tokio::time::timeout(
                PAGE_OPEN_TIMEOUT,
                http.get(format!("{}/api/v1/events", up.base))
                    .bearer_auth(&up.token)
                    .send(),
            )
            .await
            .map_err(|_| eyre!("an event stream did not open within {PAGE_OPEN_TIMEOUT:?}"))??;
            if !response.status().is_success() {
                bail!("opening an event stream answered {}", response.status());
            }
            let mut response = response;
            tasks.push(tokio::spawn(async move {
                while let Ok(Some(_)) = response.chunk().await {}
            }));
        }
    }
    Ok(tasks)
}

/// Announces notes of the servers' form at `flood_rate` a second for `flood`, from an
/// origin no process has, through [`FLOOD_CONNECTIONS`] connections, one note per
/// statement as the servers send them. Returns how many were announced, and in what time.
async fn flood(url: &str, channel: &str, args: &FleetArgs) -> Result<(u64, Duration)> {
    let started = Instant::now();
    let origin = Uuid::new_v4();
    let total = crate::stats::offered(args.flood_rate, args.flood);
    let per_connection = total.div_ceil(FLOOD_CONNECTIONS as u64);
    let mut tasks = Vec::new();
    for c in 0..FLOOD_CONNECTIONS {
        let mut conn = PgConnection::connect(url).await.map_err(|e| {
            eyre!("connecting to PostgreSQL for the flood: {e}; check --database-url")
        })?;
        let channel = channel.to_owned();
        let interval = args.flood.div_f64(per_connection.max(1) as f64);
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let mut sent = 0u64;
            let mut next_tick = t0;
            while sent < per_connection {
                // Send what is due by the end of this tick, then sleep.
                next_tick += FLOOD_TICK;
                while sent < per_connection && t0 + interval.mul_f64(sent as f64) < next_tick {
                    let note = flood_note(origin, c as u64 * per_connection + sent);
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(&channel)
                        .bind(note)
                        .execute(&mut conn)
                        .await
                        .map_err(|e| eyre!("announcing a note: {e}"))?;
                    sent += 1;
                }
                tokio::time::sleep_until(next_tick.into()).await;
                if t0.elapsed() > flood_budget(interval, per_connection) {
                    break;
                }
            }
            let _ = conn.close().await;
            Ok::<u64, eyre::Report>(sent)
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await??;
    }
    Ok((sent, started.elapsed()))
}

/// The longest a flood connection keeps going: twice its planned length, so that a
/// PostgreSQL that cannot keep up ends the window instead of stretching it.
fn flood_budget(interval: Duration, count: u64) -> Duration {
    interval.mul_f64(count as f64) * 2
}

/// Flood note `n`: a `Message` for a toy no process holds, or a `Live` change for a
/// household no page has open, in the proportion of real traffic.
fn flood_note(origin: Uuid, n: u64) -> String {
    let note = if n.is_multiple_of(FLOOD_LIVE_PER_MESSAGE as u64 + 1) {
        Note::Message {
            id: Uuid::now_v7(),
            devices: vec![DeviceId(Uuid::new_v4())],
        }
    } else {
        Note::Live {
            change: Change::receipt(HouseholdId(Uuid::new_v4()), Uuid::now_v7()),
        }
    };
    let mut wire = serde_json::to_value(&note).expect("a note is plain JSON");
    wire["origin"] = json!(origin);
    wire.to_string()
}

/// The bench's own listener on the channel: counts every note by kind.
struct Witness {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
    task: tokio::task::JoinHandle<()>,
    /// For PostgreSQL's WAL statistics.
    stats: tokio::sync::Mutex<PgConnection>,
}

impl Witness {
    async fn start(url: &str, channel: &str) -> Result<Self> {
        let mut listener = tokio::time::timeout(LISTEN_TIMEOUT, PgListener::connect(url))
            .await
            .map_err(|_| eyre!("PostgreSQL did not answer within {LISTEN_TIMEOUT:?}"))?
            .map_err(|e| eyre!("listening on PostgreSQL: {e}; check --database-url"))?;
        listener
            .listen(channel)
            .await
            .map_err(|e| eyre!("LISTEN {channel}: {e}"))?;
        let stats = PgConnection::connect(url)
            .await
            .map_err(|e| eyre!("connecting to PostgreSQL: {e}; check --database-url"))?;
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let seen = counts.clone();
        let task = tokio::spawn(async move {
            while let Ok(n) = listener.recv().await {
                let kind = serde_json::from_str::<Value>(n.payload())
                    .ok()
                    .and_then(|v| v["kind"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| "unknown".to_owned());
                *seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(kind)
                    .or_insert(0) += 1;
            }
        });
        Ok(Self {
            counts,
            task,
            stats: tokio::sync::Mutex::new(stats),
        })
    }

    /// `pg_stat_wal.wal_sync` (`None` where the server has no such view, before
    /// PostgreSQL 14, or the role may not read it) and `pg_notification_queue_usage()`.
    async fn postgres_stats(&self) -> (Option<i64>, Option<f64>) {
        let mut conn = self.stats.lock().await;
        let syncs = sqlx::query_scalar::<_, i64>("SELECT wal_sync FROM pg_stat_wal")
            .fetch_one(&mut *conn)
            .await
            .ok();
        let usage = sqlx::query_scalar::<_, f64>("SELECT pg_notification_queue_usage()")
            .fetch_one(&mut *conn)
            .await
            .ok();
        (syncs, usage)
    }

    fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.stats.into_inner().close().await;
    }
}

/// CPU ticks of each process and of PostgreSQL, the notes heard, and the load, at one
/// moment.
struct Snapshot {
    at: Instant,
    processes: Vec<u64>,
    postgres: HashMap<u32, u64>,
    notes: BTreeMap<String, u64>,
    load: String,
    /// PostgreSQL's WAL syncs since its statistics were reset (the whole cluster's).
    wal_syncs: Option<i64>,
    /// The share of PostgreSQL's notification queue in use: above 0 when a listener
    /// has not yet read what was announced.
    queue_usage: Option<f64>,
}

impl Snapshot {
    async fn take(pids: &[u32], witness: &Witness) -> Self {
        let (wal_syncs, queue_usage) = witness.postgres_stats().await;
        Self {
            at: Instant::now(),
            processes: pids.iter().map(|&p| cpu_ticks(p).unwrap_or(0)).collect(),
            postgres: postgres_ticks(),
            notes: witness.counts(),
            load: std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
            wal_syncs,
            queue_usage,
        }
    }

    /// What happened between `start` and this snapshot, per second of the window.
    fn since(&self, start: &Snapshot, ticks: u64) -> Value {
        let secs = self.at.duration_since(start.at).as_secs_f64();
        let ms_per_s = |t: u64| round2(t as f64 * 1000.0 / ticks as f64 / secs);
        let each: Vec<u64> = self
            .processes
            .iter()
            .zip(&start.processes)
            .map(|(b, a)| b.saturating_sub(*a))
            .collect();
        let total: u64 = each.iter().sum();
        let pg: u64 = self
            .postgres
            .iter()
            .filter_map(|(pid, t)| Some(t.saturating_sub(*start.postgres.get(pid)?)))
            .sum();
        let mut kinds = serde_json::Map::new();
        let mut notes = 0u64;
        for (kind, n) in &self.notes {
            let d = n.saturating_sub(start.notes.get(kind).copied().unwrap_or(0));
            notes += d;
            if d > 0 {
                kinds.insert(kind.clone(), json!(d));
            }
        }
        let load1 = |s: &str| s.split_whitespace().next().map(str::to_owned);
        let wal_syncs = match (start.wal_syncs, self.wal_syncs) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        json!({
            "wal_syncs": wal_syncs,
            "notification_queue_usage_at_end": self.queue_usage,
            "wal_syncs_per_note": wal_syncs.filter(|_| notes > 0).map(|w| round2(w as f64 / notes as f64)),
            "seconds": round2(secs),
            "processes_cpu_ms_per_s": {
                "each": each.iter().map(|&t| ms_per_s(t)).collect::<Vec<_>>(),
                "total": ms_per_s(total),
            },
            "postgres_cpu_ms_per_s": ms_per_s(pg),
            "notes": {
                "total": notes,
                "per_s": round2(notes as f64 / secs),
                "by_kind": kinds,
            },
            "load_1min": {"start": load1(&start.load), "end": load1(&self.load)},
        })
    }
}

/// utime + stime of `pid`, in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_ticks(&stat)
}

/// utime + stime from the text of `/proc/PID/stat` (fields 14 and 15, counted after the
/// command name, which may hold spaces and parentheses).
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU ticks of every `postgres` process on the machine (other users' work included).
fn postgres_ticks() -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() != "postgres" {
            continue;
        }
        if let Some(t) = cpu_ticks(pid) {
            out.insert(pid, t);
        }
    }
    out
}

/// Clock ticks a second, as `getconf CLK_TCK` says.
pub(crate) fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(DEFAULT_CLOCK_TICKS)
}

/// The CPU the processes, and PostgreSQL, spend on one note one process receives, in
/// each window of each run (CPU of the window over notes received by all processes), the
/// median over the runs, and what that median makes at a million toys' evening peak.
/// PostgreSQL's figure counts every `postgres` process on the machine, so it includes
/// other work on the same server.
fn note_cost(runs: &[Value], window: &str) -> Value {
    let mut per_process = Vec::new();
    let mut per_postgres = Vec::new();
    let mut rows = Vec::new();
    for r in runs {
        let (Some(p), Some(notes)) = (
            r["processes"].as_f64(),
            r[window]["notes"]["per_s"].as_f64(),
        ) else {
            continue;
        };
        let received = notes * p;
        if received <= 0.0 {
            continue;
        }
        // ms of CPU a second over notes a second: ms per note; × 1000: µs.
        let cpu = r[window]["processes_cpu_ms_per_s"]["total"].as_f64();
        let pg = r[window]["postgres_cpu_ms_per_s"].as_f64();
        let us = |ms: Option<f64>| ms.map(|ms| round2(ms * 1000.0 / received));
        if let Some(v) = us(cpu) {
            per_process.push(v);
        }
        if let Some(v) = us(pg) {
            per_postgres.push(v);
        }
        rows.push(json!({
            "processes": p,
            "notes_received_per_s_all_processes": round2(received),
            "processes_cpu_us_per_note_received": us(cpu),
            "postgres_cpu_us_per_note_received": us(pg),
        }));
    }
    let (Some(process_us), Some(postgres_us)) =
        (median(&mut per_process), median(&mut per_postgres))
    else {
        return json!({"runs": rows});
    };
    let notes = MILLION_PEAK_NOTES_PER_S;
    let cores = |us: f64| (us * notes / 1e6 * 1000.0).round() / 1000.0;
    json!({
        "runs": rows,
        "median_processes_cpu_us_per_note_received": process_us,
        "median_postgres_cpu_us_per_note_received": postgres_us,
        "million_toys_peak": {
            "processes": MILLION_PROCESSES,
            "messages_per_s": MILLION_PEAK_MESSAGES_PER_S,
            "notes_received_per_s_per_process": notes,
            "cores_per_process_for_notes": cores(process_us),
            "cores_in_all_processes_for_notes": round2(cores(process_us) * MILLION_PROCESSES),
            "postgres_cores_for_notes": round2(cores(postgres_us) * MILLION_PROCESSES),
        },
    })
}

/// The middle value (the mean of the two middle ones for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (pawpost (serve) x) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    1234 567 0 0 20 0 9 0 100 200000 3000 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(1234 + 567));
        assert_eq!(parse_cpu_ticks("4242 (cut"), None);
        assert_eq!(parse_cpu_ticks("4242 (short) S 1 2"), None);
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn the_cost_of_a_note_divides_cpu_by_the_notes_every_process_received() {
        let run = |p: f64, cpu: f64, pg: f64| {
            json!({"processes": p, "flood": {
                "notes": {"per_s": 1000.0},
                "processes_cpu_ms_per_s": {"total": cpu},
                "postgres_cpu_ms_per_s": pg,
            }})
        };
        // 10 µs a note in each process; PostgreSQL 20, 40 and 30 µs.
        let runs = [
            run(1.0, 10.0, 20.0),
            run(2.0, 20.0, 80.0),
            run(4.0, 40.0, 120.0),
        ];
        let cost = note_cost(&runs, "flood");
        assert_eq!(
            cost["median_processes_cpu_us_per_note_received"],
            json!(10.0)
        );
        assert_eq!(
            cost["median_postgres_cpu_us_per_note_received"],
            json!(30.0)
        );
        assert_eq!(
            cost["runs"][1]["notes_received_per_s_all_processes"],
            json!(2000.0)
        );
        // 10 µs × 2,300 notes a second: 0.023 of a core in each process.
        assert_eq!(
            cost["million_toys_peak"]["cores_per_process_for_notes"],
            json!(0.023)
        );
        assert!(note_cost(&runs, "messages")["runs"]
            .as_array()
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_channel_is_the_stores_and_flood_notes_are_notes_the_servers_read() {
        let schema = "pawpost_bench_0123456789abcdef0123456789abcdef";
        assert_eq!(channel_for(schema), format!("pawpost_{schema}"));
        assert_eq!(channel_for(&"s".repeat(80)).len(), 63);
        let origin = Uuid::new_v4();
        let kinds: Vec<String> = (0..8)
            .map(|n| {
                let text = flood_note(origin, n);
                assert!(text.len() <= pawpost_store::MAX_NOTE_BYTES);
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["origin"], json!(origin));
                // The server's own reading of the note takes it.
                let back: Note = serde_json::from_value(v.clone()).unwrap();
                assert!(matches!(back, Note::Message { .. } | Note::Live { .. }));
                v["kind"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(kinds.iter().filter(|k| *k == "message").count(), 2);
        assert_eq!(kinds.iter().filter(|k| *k == "live").count(), 6);
    }
}
