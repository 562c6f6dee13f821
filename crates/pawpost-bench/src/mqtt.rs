//! Scenario 3, the peer: Mosquitto (Debian's default configuration: in memory, anonymous,
//! no payload encryption) under the same fan-out: one subscriber per toy, QoS 1, the same
//! payload size and offered rate; and broker RSS per idle subscriber.
use crate::server::rss_kib;
use crate::stats::{round2, summary};
use eyre::{bail, eyre, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;

/// The broker's process id: from its pid file, else the first process named mosquitto.
pub fn broker_pid() -> Option<u32> {
    if let Ok(text) = std::fs::read_to_string("/run/mosquitto/mosquitto.pid") {
        if let Ok(pid) = text.trim().parse::<u32>() {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                return Some(pid);
            }
        }
    }
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "mosquitto").then_some(pid)
    })
}

fn remaining_length(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = u8::try_from(n % 128).expect("a remainder of 128 fits in a byte");
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            break;
        }
    }
}

fn packet(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    remaining_length(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn string(s: &str, out: &mut Vec<u8>) {
    let len = u16::try_from(s.len()).expect("the bench's topic names and client ids are short");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// An idle MQTT 3.1.1 subscriber written by hand (CONNECT with keep-alive off, one QoS 1
/// SUBSCRIBE), so that holding thousands costs the client only a socket each.
async fn idle_subscriber(
    broker: SocketAddr,
    index: u64,
    tls: bool,
) -> Result<Box<dyn crate::tls::Io>> {
    let socket = TcpSocket::new_v4()?;
    let source = u8::try_from(index / 20_000)
        .ok()
        .and_then(|n| n.checked_add(2))
        .ok_or_else(|| eyre!("subscriber {index}: 20,000 per loopback address, and 127.0.0.2 to 127.0.0.255 are all taken"))?;
    let source = Ipv4Addr::new(127, 0, 0, source);
    socket.bind(SocketAddr::new(IpAddr::V4(source), 0))?;
    let stream = socket.connect(broker).await?;
    let mut stream: Box<dyn crate::tls::Io> = match crate::tls::current() {
        Some(bench_tls) if tls => bench_tls.connect(stream).await?,
        _ => Box::new(stream),
    };
    let mut connect = Vec::new();
    string("MQTT", &mut connect);
    connect.extend_from_slice(&[4, 0x02, 0, 0]);
    string(&format!("pawpost-bench-idle-{index}"), &mut connect);
    stream.write_all(&packet(0x10, &connect)).await?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await?;
    if connack[0] != 0x20 || connack[3] != 0 {
        bail!("CONNACK refused: {connack:?}");
    }
    let mut subscribe = vec![0, 1];
    string(&format!("pawpost-bench/idle/{index}"), &mut subscribe);
    subscribe.push(1);
    stream.write_all(&packet(0x82, &subscribe)).await?;
    let mut suback = [0u8; 5];
    stream.read_exact(&mut suback).await?;
    if suback[0] != 0x90 || suback[4] > 2 {
        bail!("SUBACK refused: {suback:?}");
    }
    Ok(stream)
}

/// Broker RSS before and after `count` idle subscribers connect and subscribe.
pub async fn idle(broker: SocketAddr, count: u64, concurrency: usize) -> Result<Value> {
    let pid = broker_pid().ok_or_else(|| eyre!("mosquitto is not running"))?;
    idle_at(broker, pid, count, concurrency, false).await
}

/// The same with the subscribers on the TLS listener of a Mosquitto started for the
/// purpose, with the bench's certificate (`--tls`).
pub async fn idle_tls(work_dir: &Path, count: u64, concurrency: usize) -> Result<Value> {
    let tls = crate::tls::current().ok_or_else(|| eyre!("idle_tls needs --tls"))?;
    let broker = TlsBroker::start(work_dir, tls)?;
    idle_at(broker.addr, broker.pid(), count, concurrency, true).await
}

async fn idle_at(
    broker: SocketAddr,
    pid: u32,
    count: u64,
    concurrency: usize,
    tls: bool,
) -> Result<Value> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let next = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(120);
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let next = next.clone();
        let failures = failures.clone();
        workers.push(tokio::spawn(async move {
            let mut held = Vec::new();
            let mut first_error = None;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || Instant::now() > deadline {
                    break;
                }
                match tokio::time::timeout(Duration::from_secs(30), idle_subscriber(broker, i, tls))
                    .await
                {
                    Ok(Ok(s)) => held.push(s),
                    Ok(Err(e)) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(e.to_string());
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert("timed out".to_owned());
                    }
                }
            }
            (held, first_error)
        }));
    }
    let mut held = Vec::new();
    let mut first_error = None;
    for w in workers {
        let (h, e) = w.await?;
        held.extend(h);
        first_error = first_error.or(e);
    }
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after = rss_kib(pid)?;
    let ok = held.len() as u64;
    drop(held);
    Ok(json!({
        "tls": tls,
        "subscribers": count,
        "connected": ok,
        "failed": failures.load(Ordering::Relaxed),
        "first_error": first_error,
        "connects_per_s": round2(ok as f64 / elapsed.as_secs_f64()),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_per_subscriber_kib": round2(after.saturating_sub(before) as f64 / ok.max(1) as f64),
    }))
}

pub struct MqttRun {
    pub subscribers: u64,
    pub rate: f64,
    pub duration: Duration,
    pub payload_bytes: usize,
    pub drain: Duration,
    pub max_in_flight: u16,
}

fn options(id: String, broker: SocketAddr, payload: usize, inflight: u16) -> MqttOptions {
    let mut o = MqttOptions::new(id, broker.ip().to_string(), broker.port());
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(true);
    o.set_max_packet_size(payload + 1024, payload + 1024);
    o.set_inflight(inflight);
    o
}

/// Subscribers `toy/<i>` at QoS 1; one publisher sends message `k` to subscriber
/// `k mod subscribers` at the offered rate. Latency: publish call to the subscriber's
/// receipt.
pub async fn delivery(broker: SocketAddr, args: &MqttRun) -> Result<Value> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let mut subs = Vec::new();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<()>();
    let run_id = std::process::id();
    for i in 0..args.subscribers {
        let (client, mut events) = AsyncClient::new(
            options(
                format!("pb-sub-{run_id}-{i}"),
                broker,
                args.payload_bytes,
                100,
            ),
            64,
        );
        let tx = tx.clone();
        let ready = ready_tx.clone();
        client
            .subscribe(format!("pawpost-bench/toy/{i}"), QoS::AtLeastOnce)
            .await?;
        subs.push((
            client,
            tokio::spawn(async move {
                loop {
                    match events.poll().await {
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            let at = Instant::now();
                            if p.payload.len() >= 8 {
                                let mut seq = [0u8; 8];
                                seq.copy_from_slice(&p.payload[..8]);
                                let _ = tx.send((u64::from_be_bytes(seq), at));
                            }
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = ready.send(());
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }),
        ));
    }
    let ready_deadline = Instant::now() + Duration::from_secs(60);
    for _ in 0..args.subscribers {
        let left = ready_deadline.saturating_duration_since(Instant::now());
        if tokio::time::timeout(left, ready_rx.recv()).await.is_err() {
            bail!("MQTT subscribers did not all subscribe within 60 s");
        }
    }
    let (publisher, mut events) = AsyncClient::new(
        options(
            format!("pb-pub-{run_id}"),
            broker,
            args.payload_bytes,
            args.max_in_flight,
        ),
        1024,
    );
    let pubacks = Arc::new(AtomicU64::new(0));
    let pubacks_seen = pubacks.clone();
    let pub_loop = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    pubacks_seen.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    let count = crate::stats::offered(args.rate, args.duration);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut starts: HashMap<u64, Instant> = HashMap::with_capacity(usize::try_from(count)?);
    let t0 = Instant::now();
    for k in 0..count {
        tokio::time::sleep_until((t0 + interval * u32::try_from(k)?).into()).await;
        let mut payload = vec![0x4f; args.payload_bytes];
        payload[..8].copy_from_slice(&k.to_be_bytes());
        let start = Instant::now();
        publisher
            .publish(
                format!("pawpost-bench/toy/{}", k % args.subscribers),
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await?;
        starts.insert(k, start);
    }
    let offer_ended = t0.elapsed();
    let (mut latencies, last) =
        crate::stats::drain_arrivals(&mut rx, &mut starts, count, Instant::now() + args.drain, t0)
            .await?;
    let delivered = latencies.len();
    let _ = publisher.disconnect().await;
    for (client, task) in subs {
        let _ = client.disconnect().await;
        task.abort();
    }
    pub_loop.abort();
    Ok(json!({
        "offered_per_s": args.rate,
        "seconds": args.duration.as_secs_f64(),
        "payload_bytes": args.payload_bytes,
        "subscribers": args.subscribers,
        "offered": count,
        "pubacks": pubacks.load(Ordering::Relaxed),
        "delivered": delivered,
        "delivered_per_s": round2(delivered as f64 / last.duration_since(t0).max(offer_ended).as_secs_f64()),
        "end_to_end_latency": summary(&mut latencies),
    }))
}

/// A Mosquitto of the bench's own with one TLS listener on a free loopback port, in
/// memory, anonymous; stopped when dropped.
struct TlsBroker {
    child: std::process::Child,
    addr: SocketAddr,
}

impl TlsBroker {
    fn start(work_dir: &Path, tls: &crate::tls::BenchTls) -> Result<Self> {
        let port = crate::server::free_port()?;
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let config = work_dir.join("mosquitto-tls.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\ncertfile {}\nkeyfile {}\nallow_anonymous true\n\
                persistence false\nlog_dest stderr\n",
                tls.cert.display(),
                tls.key.display()
            ),
        )?;
        let log = std::fs::File::create(work_dir.join("mosquitto-tls.log"))?;
        let child = std::process::Command::new("mosquitto")
            .arg("-c")
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| eyre!("starting mosquitto: {e} (apt-get install mosquitto)"))?;
        let broker = Self { child, addr };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "mosquitto's TLS listener did not open within 10 s; see {}",
                    work_dir.join("mosquitto-tls.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(broker)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
