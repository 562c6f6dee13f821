//! Scenarios 2 and 5: relatives upload sealed envelopes at a fixed offered rate to toys
//! that are online; latency runs from the start of the upload to the toy's receipt of the
//! `Deliver` frame. The toy acknowledges (`Delivered`) and opens every envelope, as a real
//! toy does. Optionally a flood of wrong passwords, or of toys reconnecting, runs at the
//! same time. The relay
//! scenario runs the same measurement with the toys on one process and the uploads
//! through another that shares its store.
use crate::keys::BenchDevice;
use crate::server::{
    owner_device, plan, seed, HouseholdPlan, OwnerClient, SeedInto, Seeded, ServerProcess,
    SharedStore,
};
use crate::stats::{round2, summary};
use crate::toys::{connect_many, connect_toy, next_delivery, Ws};
use crate::Ctx;
use eyre::{bail, eyre, Result};
use pawpost_crypto::{os_rng, seal, Envelope, MediaType, MessageId, MessageParams};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

/// One toy's receipt of a `Deliver`, with whether the envelope opened and verified.
struct Receipt {
    message: [u8; 16],
    at: Instant,
    opened: bool,
}

/// A server process with `toys` online toys, one per household, and the owner signed in;
/// for the relay scenario, a second process on the same store that no toy is connected to.
pub struct Rig {
    /// The process the toys are connected to.
    pub server: ServerProcess,
    /// The owner, signed in at `server`.
    pub owner: OwnerClient,
    /// Another process sharing `server`'s database and blob folder.
    pub peer: Option<Peer>,
    pub households: Vec<HouseholdPlan>,
    /// Toys stored with their rosters but not connected (their indices), for a reconnect
    /// storm.
    pub spare_toys: Range<u64>,
    receipts: mpsc::UnboundedReceiver<Receipt>,
    stop: Arc<AtomicBool>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// This rig's scratch folder (data folders, blobs), removed when it stops.
    root: PathBuf,
    /// Where the servers keep blobs, counted after each run.
    blob_dir: PathBuf,
    /// The PostgreSQL schema the processes share, dropped when the rig stops.
    shared: Option<SharedStore>,
}

/// A second server process on the rig's store, and the owner's session on it.
pub struct Peer {
    pub server: ServerProcess,
    pub owner: OwnerClient,
}

/// Failed sign-ins allowed by the storm's server: high enough that every wrong password
/// costs a full Argon2id hash (many attacking addresses), not a cheap 429.
const STORM_LIMIT: &str = "1000000000";

/// Server arguments every rig's processes get.
fn limits_args() -> Vec<String> {
    vec![
        "--login-failures-per-account".to_owned(),
        STORM_LIMIT.to_owned(),
        "--login-failures-per-address".to_owned(),
        STORM_LIMIT.to_owned(),
    ]
}

impl Rig {
    /// One process on its own SQLite database in a fresh data folder, with `spares`
    /// more toys stored (4 a household, rosters included) that are not connected.
    pub async fn start(ctx: &Ctx, toys: u64, spares: u64, name: &str) -> Result<Self> {
        let root = ctx.fresh_root(name)?;
        let data_dir = root.join("data");
        let households = plan(0, toys, 1, "delivery-household");
        let spare_households = plan(toys, spares, 4, "spare-household");
        let seeded = seed(SeedInto::Sqlite(&data_dir), &households, &spare_households).await?;
        let server =
            ServerProcess::start(&ctx.bin, &data_dir, &ctx.log(name), &limits_args()).await?;
        let blob_dir = data_dir.join(pawpost_storage::BLOBS_DIR);
        let mut rig = Self::bring_online(server, None, households, seeded, root, blob_dir).await?;
        rig.spare_toys = toys..toys + spares;
        Ok(rig)
    }

    /// Two processes, B (the toys') and A, on a fresh schema of the PostgreSQL server at
    /// `database_url` and one shared blob folder. The schema is dropped when the rig stops,
    /// or here when starting fails.
    pub async fn start_pair(ctx: &Ctx, toys: u64, name: &str, database_url: &str) -> Result<Self> {
        let root = ctx.fresh_root(name)?;
        let shared = SharedStore::fresh(database_url, root.join("blobs"))?;
        match Self::pair_on(ctx, toys, name, &root, &shared).await {
            Ok(mut rig) => {
                rig.shared = Some(shared);
                Ok(rig)
            }
            Err(e) => {
                if let Err(cleanup) = shared.drop_schema().await {
                    eprintln!("{name}: {cleanup}");
                }
                let _ = std::fs::remove_dir_all(&root);
                Err(e)
            }
        }
    }

    async fn pair_on(
        ctx: &Ctx,
        toys: u64,
        name: &str,
        root: &std::path::Path,
        shared: &SharedStore,
    ) -> Result<Self> {
        let households = plan(0, toys, 1, "delivery-household");
        let seeded = seed(SeedInto::Postgres(shared), &households, &[]).await?;
        let mut args = limits_args();
        args.extend(shared.server_args());
        let b = ServerProcess::start(
            &ctx.bin,
            &root.join("b"),
            &ctx.log(&format!("{name}-b")),
            &args,
        )
        .await?;
        let a = ServerProcess::start(
            &ctx.bin,
            &root.join("a"),
            &ctx.log(&format!("{name}-a")),
            &args,
        )
        .await?;
        Self::bring_online(
            b,
            Some(a),
            households,
            seeded,
            root.to_owned(),
            shared.blob_dir.clone(),
        )
        .await
    }

    /// The household over the API of `server` (sign-in, the owner's device, each
    /// roster), then every toy connected to `server` with a reader task.
    async fn bring_online(
        server: ServerProcess,
        peer: Option<ServerProcess>,
        households: Vec<HouseholdPlan>,
        seeded: Seeded,
        root: PathBuf,
        blob_dir: PathBuf,
    ) -> Result<Self> {
        let owner = OwnerClient::sign_in(&server.base).await?;
        owner.register_owner_device().await?;
        for h in &households {
            owner.publish_roster(h, seeded.owner_account).await?;
        }
        let peer = peer.map(|server| Peer {
            owner: owner.at(&server.base),
            server,
        });
        let toys = households.len() as u64;
        let connected = connect_many(server.addr, 0, toys, 16, Duration::from_secs(60)).await;
        if connected.sockets.len() as u64 != toys {
            bail!(
                "only {} of {toys} toys connected: {:?}",
                connected.sockets.len(),
                connected.first_error
            );
        }
        let (tx, receipts) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let readers = connected
            .sockets
            .into_iter()
            .map(|(index, ws)| tokio::spawn(read_toy(index, ws, tx.clone(), stop.clone())))
            .collect();
        Ok(Self {
            server,
            owner,
            peer,
            households,
            spare_toys: 0..0,
            receipts,
            stop,
            readers,
            root,
            blob_dir,
            shared: None,
        })
    }

    /// The PostgreSQL schema and blob folder the processes share, if they do.
    pub fn shared(&self) -> Option<&SharedStore> {
        self.shared.as_ref()
    }

    /// Stops the processes, drops the shared schema if any, and removes the scratch folder.
    pub async fn stop(self) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        for r in &self.readers {
            r.abort();
        }
        let mut stopped = Ok(());
        if let Some(peer) = self.peer {
            stopped = peer.server.stop();
        }
        let stopped_toys_process = self.server.stop();
        let dropped = match &self.shared {
            Some(shared) => shared.drop_schema().await,
            None => Ok(()),
        };
        let _ = std::fs::remove_dir_all(&self.root);
        stopped.and(stopped_toys_process).and(dropped)
    }
}

/// Reads one toy's frames: on `Deliver`, note the time, acknowledge, and open the
/// envelope with the toy's keys (checking the owner's signature).
async fn read_toy(
    index: u64,
    mut ws: Ws,
    tx: mpsc::UnboundedSender<Receipt>,
    stop: Arc<AtomicBool>,
) {
    let owner = owner_device().public();
    let me = BenchDevice::toy(index);
    while let Some((envelope, at, id)) = next_delivery(&mut ws, &stop).await {
        let opened = pawpost_crypto::open(&envelope, &me.keys, &owner).is_ok();
        let _ = tx.send(Receipt {
            message: id.0,
            at,
            opened,
        });
    }
}

#[derive(Clone)]
pub struct RunArgs {
    pub rate: f64,
    pub duration: Duration,
    pub envelope_bytes: usize,
    pub drain: Duration,
    pub max_in_flight: usize,
    /// Upload through the rig's other process (`Rig::peer`) instead of the toys' own.
    pub via_peer: bool,
}

/// Seals every envelope before the clock starts, so sealing costs the client nothing
/// during the run. Message `k` goes to the toy of household `k mod households`.
fn seal_all(rig: &Rig, count: usize, envelope_bytes: usize) -> Result<Vec<Sealed>> {
    let owner = owner_device();
    // Envelope overhead with one recipient, measured once.
    let probe = |payload: usize, h: &HouseholdPlan| -> Result<Vec<u8>> {
        let toy = BenchDevice::toy(h.first_toy).public();
        let id = Uuid::now_v7();
        seal(
            &mut os_rng(),
            &owner.keys,
            &MessageParams {
                message_id: MessageId(*id.as_bytes()),
                household_id: pawpost_crypto::HouseholdId(*h.id.as_bytes()),
                created_at_ms: 1_764_000_000_000,
                media_type: MediaType::OggOpus,
                duration_ms: 3000,
                recipients: &[toy],
            },
            &vec![0x4f; payload],
        )
        .map_err(|e| eyre!("seal: {e:?}"))
    };
    let first = rig
        .households
        .first()
        .ok_or_else(|| eyre!("no households"))?;
    let overhead = probe(1000, first)?.len().saturating_sub(1000);
    let payload = envelope_bytes.saturating_sub(overhead).max(1);
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let h = &rig.households[k % rig.households.len()];
        let bytes = probe(payload, h)?;
        let id = Envelope::parse(&bytes)
            .map_err(|e| eyre!("{e:?}"))?
            .header()
            .message_id
            .0;
        out.push((h.id, id, bytes));
    }
    Ok(out)
}

/// A sealed envelope ready to upload: its household, message id and bytes.
type Sealed = (Uuid, [u8; 16], Vec<u8>);

struct Upload {
    message: [u8; 16],
    start: Instant,
    done: Instant,
    status: u16,
}

/// A flood of wrong passwords from `attackers` concurrent clients until `stop`.
pub struct Storm {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<BTreeMap<u16, u64>>>,
    started: Instant,
}

impl Storm {
    pub fn start(base: &str, attackers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..attackers)
            .map(|a| {
                let stop = stop.clone();
                let base = base.to_owned();
                tokio::spawn(async move {
                    let http = crate::tls::http_client(
                        reqwest::Client::builder().timeout(Duration::from_secs(30)),
                    )
                    .expect("client builds");
                    let mut counts = BTreeMap::new();
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let body = json!({
                            "email": crate::server::OWNER_EMAIL,
                            "password": format!("wrong guess {a} {n} harbour kettle"),
                        });
                        let status = match http
                            .post(format!("{base}/api/v1/sessions"))
                            .json(&body)
                            .send()
                            .await
                        {
                            Ok(r) => r.status().as_u16(),
                            Err(_) => 0,
                        };
                        *counts.entry(status).or_insert(0) += 1;
                    }
                    counts
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            started: Instant::now(),
        }
    }

    pub async fn finish(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let mut all: BTreeMap<u16, u64> = BTreeMap::new();
        for t in self.tasks {
            if let Ok(counts) = t.await {
                for (k, v) in counts {
                    *all.entry(k).or_insert(0) += v;
                }
            }
        }
        let total: u64 = all.values().sum();
        let hashed = all.get(&401).copied().unwrap_or(0);
        json!({
            "attempts": total,
            "attempts_per_s": round2(total as f64 / elapsed.as_secs_f64()),
            "wrong_password_401_per_s": round2(hashed as f64 / elapsed.as_secs_f64()),
            "by_status": all.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// A reconnect storm, as after a deploy: `workers` clients each connect a toy of
/// `toys` in turn (TCP, WebSocket, challenge, signed `Auth`, until its roster arrives),
/// hang up, and connect the next, until stopped.
pub struct Reconnects {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<(u64, u64, Option<String>)>>,
    started: Instant,
}

impl Reconnects {
    pub fn start(server: SocketAddr, toys: Range<u64>, workers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicU64::new(0));
        let span = toys.end.saturating_sub(toys.start).max(1);
        let tasks = (0..workers.max(1))
            .map(|_| {
                let stop = stop.clone();
                let next = next.clone();
                let first = toys.start;
                tokio::spawn(async move {
                    let (mut connected, mut failed, mut first_error) = (0u64, 0u64, None);
                    while !stop.load(Ordering::Relaxed) {
                        let toy = first + next.fetch_add(1, Ordering::Relaxed) % span;
                        match connect_toy(server, toy).await {
                            Ok(ws) => {
                                connected += 1;
                                drop(ws);
                            }
                            Err(e) => {
                                failed += 1;
                                first_error.get_or_insert_with(|| format!("toy {toy}: {e}"));
                            }
                        }
                    }
                    (connected, failed, first_error)
                })
            })
            .collect();
        Self {
            stop,
            tasks,
            started: Instant::now(),
        }
    }

    pub async fn finish(self) -> Value {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let (mut connected, mut failed, mut first_error) = (0u64, 0u64, None);
        for t in self.tasks {
            if let Ok((c, f, e)) = t.await {
                connected += c;
                failed += f;
                first_error = first_error.or(e);
            }
        }
        json!({
            "connects": connected,
            "connects_per_s": round2(connected as f64 / elapsed),
            "failed": failed,
            "first_error": first_error,
        })
    }
}

/// One run at a fixed offered rate: open loop (a slow server does not slow the offer);
/// a message whose turn comes while `max_in_flight` uploads are unanswered is counted
/// as not sent.
pub async fn run(rig: &mut Rig, args: &RunArgs) -> Result<Value> {
    let count = usize::try_from(crate::stats::offered(args.rate, args.duration))?;
    let uploader = if args.via_peer {
        &rig.peer
            .as_ref()
            .ok_or_else(|| {
                eyre!("uploading through another process needs a rig started with start_pair")
            })?
            .owner
    } else {
        &rig.owner
    };
    let envelopes = seal_all(rig, count, args.envelope_bytes)?;
    let envelope_len = envelopes.first().map_or(0, |e| e.2.len());
    while rig.receipts.try_recv().is_ok() {}
    let in_flight = Arc::new(AtomicUsize::new(0));
    let skipped = Arc::new(AtomicU64::new(0));
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let t0 = Instant::now();
    let mut handles = Vec::with_capacity(count);
    for (k, (household, message, bytes)) in envelopes.into_iter().enumerate() {
        tokio::time::sleep_until((t0 + interval * u32::try_from(k)?).into()).await;
        if in_flight.load(Ordering::Relaxed) >= args.max_in_flight {
            skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let http = uploader.http.clone();
        let url = format!("{}/api/v1/households/{household}/messages", uploader.base);
        let token = uploader.token.clone();
        let in_flight = in_flight.clone();
        handles.push(tokio::spawn(async move {
            let start = Instant::now();
            let status = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await
                .map_or(0, |r| r.status().as_u16());
            in_flight.fetch_sub(1, Ordering::Relaxed);
            Upload {
                message,
                start,
                done: Instant::now(),
                status,
            }
        }));
    }
    let offer_ended = t0.elapsed();
    let mut uploads = Vec::with_capacity(handles.len());
    for h in handles {
        uploads.push(h.await?);
    }
    let mut accepted: HashMap<[u8; 16], Instant> = uploads
        .iter()
        .filter(|u| u.status == 201)
        .map(|u| (u.message, u.start))
        .collect();
    let mut statuses: BTreeMap<u16, u64> = BTreeMap::new();
    for u in &uploads {
        *statuses.entry(u.status).or_insert(0) += 1;
    }
    let accepted_count = accepted.len();
    // Every accepted message should reach its toy; wait for the stragglers, bounded.
    // Each message counts once, at its first delivery.
    let drain_deadline = Instant::now() + args.drain;
    let mut latencies = Vec::with_capacity(accepted_count);
    // When each message's upload started (from the run's start) and how long it took.
    let mut timeline = Vec::with_capacity(accepted_count);
    let mut opened = 0u64;
    let mut last_receipt = t0;
    while !accepted.is_empty() {
        let left = drain_deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rig.receipts.recv()).await {
            Ok(Some(r)) => {
                if let Some(start) = accepted.remove(&r.message) {
                    latencies.push(r.at.duration_since(start));
                    timeline.push((start.duration_since(t0), r.at.duration_since(start)));
                    opened += u64::from(r.opened);
                    last_receipt = last_receipt.max(r.at);
                }
            }
            _ => break,
        }
    }
    let mut acks: Vec<Duration> = uploads
        .iter()
        .filter(|u| u.status == 201)
        .map(|u| u.done.duration_since(u.start))
        .collect();
    let last_ack = uploads
        .iter()
        .filter(|u| u.status == 201)
        .map(|u| u.done)
        .max()
        .unwrap_or(t0);
    let delivered = latencies.len();
    let blobs = count_files(&rig.blob_dir);
    Ok(json!({
        "offered_per_s": args.rate,
        "seconds": args.duration.as_secs_f64(),
        "envelope_bytes": envelope_len,
        "toys": rig.households.len(),
        "offered": count,
        "not_sent_client_backlog": skipped.load(Ordering::Relaxed),
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "uploaded_through": if args.via_peer { "another process" } else { "the toys' process" },
        "accepted_201": accepted_count,
        "delivered": delivered,
        "opened_and_verified_by_toy": opened,
        "blob_files_on_disk_total": blobs,
        "accepted_per_s": round2(accepted_count as f64 / last_ack.duration_since(t0).max(offer_ended).as_secs_f64()),
        "delivered_per_s": round2(delivered as f64 / last_receipt.duration_since(t0).max(offer_ended).as_secs_f64()),
        "upload_201_latency": summary(&mut acks),
        "end_to_end_latency": summary(&mut latencies),
        "slowest_end_to_end": slowest(timeline, SLOWEST_LISTED),
    }))
}

/// How many of a run's slowest deliveries its result lists, with when they started.
const SLOWEST_LISTED: usize = 20;

/// The `n` slowest of `timeline` (upload start from the run's start, latency), slowest
/// first: whether the tail comes at one moment or spreads over the run.
fn slowest(mut timeline: Vec<(Duration, Duration)>, n: usize) -> Value {
    timeline.sort_by_key(|&(_, took)| std::cmp::Reverse(took));
    timeline
        .iter()
        .take(n)
        .map(|(at, took)| json!({"started_at_ms": crate::stats::ms(*at), "ms": crate::stats::ms(*took)}))
        .collect()
}

pub fn count_files(dir: &std::path::Path) -> u64 {
    let mut count = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if !e.file_name().to_string_lossy().starts_with(".tmp") {
                count += 1;
            }
        }
    }
    count
}
