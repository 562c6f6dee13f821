//! The durable peer: NATS JetStream with file storage under the same fan-out as
//! Mosquitto (one subscriber per toy, each on its own connection with a consumer of its
//! own subject; one publisher at the offered rate; the same payload size). The bench
//! starts its own `nats-server` on a free loopback port with a generated configuration
//! and a store folder on the measured disk, asking it to sync every write before it
//! acknowledges (`sync_interval: always`); a server too old to know that setting
//! (before 2.10) is started without it, and the result says `synced: false`: its
//! acknowledgement then follows the write to the operating system, not a sync.
use crate::mqtt::MqttRun;
use crate::stats::{round2, summary};
use async_nats::jetstream::{self, consumer, stream};
use eyre::{bail, eyre, Result};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long the server may take to open its port.
const START_LIMIT: Duration = Duration::from_secs(10);
/// The stream every toy subject belongs to.
const STREAM: &str = "PAWPOST_BENCH";
/// Subjects `<SUBJECT_PREFIX>.<toy>`.
const SUBJECT_PREFIX: &str = "pawpost-bench.toy";

/// A `nats-server` of the bench's own; stopped when dropped.
struct Broker {
    child: Child,
    addr: SocketAddr,
    synced: bool,
    version: String,
    log: PathBuf,
}

fn config(port: u16, store: &Path, synced: bool) -> String {
    let sync = if synced {
        "  sync_interval: always\n"
    } else {
        ""
    };
    format!(
        "listen: 127.0.0.1:{port}\nmax_payload: 1048576\njetstream {{\n  store_dir: \"{}\"\n{sync}}}\n",
        store.display()
    )
}

impl Broker {
    fn start(work_dir: &Path) -> Result<Self> {
        let version = Command::new("nats-server")
            .arg("--version")
            .output()
            .map_err(|e| eyre!("nats-server not found ({e}): apt-get install nats-server"))?;
        let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        let dir = work_dir.join("jetstream");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("nats-server.log");
        for synced in [true, false] {
            let port = crate::server::free_port()?;
            let conf = dir.join("nats.conf");
            std::fs::write(&conf, config(port, &dir.join("store"), synced))?;
            let out = std::fs::File::create(&log)?;
            let mut child = Command::new("nats-server")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()?;
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
            let deadline = Instant::now() + START_LIMIT;
            loop {
                if let Some(status) = child.try_wait()? {
                    let said = std::fs::read_to_string(&log).unwrap_or_default();
                    if synced && said.contains("sync_interval") {
                        eprintln!("jetstream: {version} does not know sync_interval (2.10 and later do); measuring without it");
                        break;
                    }
                    bail!("nats-server stopped ({status}): {said}");
                }
                if std::net::TcpStream::connect(addr).is_ok() {
                    return Ok(Self {
                        child,
                        addr,
                        synced,
                        version,
                        log,
                    });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    bail!(
                        "nats-server did not open {addr} within 10 s; see {}",
                        log.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        bail!("nats-server would not start; see {}", log.display())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One run per offered rate on one fresh server; the stream is file-backed with one
/// replica.
pub async fn delivery_rates(work_dir: &Path, runs: &[MqttRun]) -> Result<Value> {
    let broker = Broker::start(work_dir)?;
    let mut results = Vec::new();
    for run in runs {
        eprintln!(
            "jetstream: {}/s for {} s ...",
            run.rate,
            run.duration.as_secs()
        );
        results.push(delivery(broker.addr, run).await?);
    }
    Ok(json!({
        "server": broker.version,
        "storage": "file",
        "synced_before_ack": broker.synced,
        "setting": if broker.synced { "sync_interval: always" } else { "default (this server has no sync_interval)" },
        "log": broker.log.display().to_string(),
        "runs": results,
    }))
}

/// Subscribers on `pawpost-bench.toy.<i>`, each its own connection and pull consumer
/// (explicit acknowledgement, new messages only); one publisher sends message `k` to
/// subscriber `k mod subscribers` at the offered rate and collects the stream's
/// acknowledgements on the side. Latency: publish call to the subscriber's receipt.
async fn delivery(addr: SocketAddr, args: &MqttRun) -> Result<Value> {
    let url = format!("nats://{addr}");
    let publisher = async_nats::connect(&url).await?;
    let js = jetstream::new(publisher.clone());
    let _ = js.delete_stream(STREAM).await;
    let stream = js
        .create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            storage: stream::StorageType::File,
            num_replicas: 1,
            max_age: Duration::from_secs(600),
            ..Default::default()
        })
        .await
        .map_err(|e| eyre!("creating the stream: {e}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let mut subs = Vec::new();
    for i in 0..args.subscribers {
        let client = async_nats::connect(&url).await?;
        let consumer = jetstream::new(client.clone())
            .create_consumer_on_stream(
                consumer::pull::Config {
                    filter_subject: format!("{SUBJECT_PREFIX}.{i}"),
                    ack_policy: consumer::AckPolicy::Explicit,
                    deliver_policy: consumer::DeliverPolicy::New,
                    ..Default::default()
                },
                STREAM,
            )
            .await
            .map_err(|e| eyre!("subscriber {i}: {e}"))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| eyre!("subscriber {i}: {e}"))?;
        let tx = tx.clone();
        subs.push((
            client,
            tokio::spawn(async move {
                while let Some(Ok(message)) = messages.next().await {
                    let at = Instant::now();
                    if message.payload.len() >= 8 {
                        let mut seq = [0u8; 8];
                        seq.copy_from_slice(&message.payload[..8]);
                        let _ = tx.send((u64::from_be_bytes(seq), at));
                    }
                    let _ = message.ack().await;
                }
            }),
        ));
    }
    let acks = Arc::new(AtomicU64::new(0));
    let count = crate::stats::offered(args.rate, args.duration);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut starts: HashMap<u64, Instant> = HashMap::with_capacity(usize::try_from(count)?);
    let mut ack_waits = Vec::with_capacity(usize::try_from(count)?);
    let t0 = Instant::now();
    for k in 0..count {
        tokio::time::sleep_until((t0 + interval * u32::try_from(k)?).into()).await;
        let mut payload = vec![0x4f; args.payload_bytes];
        payload[..8].copy_from_slice(&k.to_be_bytes());
        let start = Instant::now();
        let ack = js
            .publish(
                format!("{SUBJECT_PREFIX}.{}", k % args.subscribers),
                payload.into(),
            )
            .await
            .map_err(|e| eyre!("publishing: {e}"))?;
        starts.insert(k, start);
        let acks = acks.clone();
        ack_waits.push(tokio::spawn(async move {
            if ack.await.is_ok() {
                acks.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let offer_ended = t0.elapsed();
    let (mut latencies, last) =
        crate::stats::drain_arrivals(&mut rx, &mut starts, count, Instant::now() + args.drain, t0)
            .await?;
    for wait in ack_waits {
        let _ = tokio::time::timeout(Duration::from_secs(5), wait).await;
    }
    let delivered = latencies.len();
    for (client, task) in subs {
        task.abort();
        drop(client);
    }
    drop(stream);
    let _ = js.delete_stream(STREAM).await;
    Ok(json!({
        "offered_per_s": args.rate,
        "seconds": args.duration.as_secs_f64(),
        "payload_bytes": args.payload_bytes,
        "subscribers": args.subscribers,
        "offered": count,
        "publish_acks": acks.load(Ordering::Relaxed),
        "delivered": delivered,
        "delivered_per_s": round2(delivered as f64 / last.duration_since(t0).max(offer_ended).as_secs_f64()),
        "end_to_end_latency": summary(&mut latencies),
    }))
}
