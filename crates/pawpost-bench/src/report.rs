//! The summary table, the pawpost/Mosquitto, pawpost/JetStream and pawpost/RabbitMQ
//! ratios, and the relay scenario's table.
use crate::stats::ratio;
use serde_json::{json, Value};

fn runs(v: &Value) -> Vec<Value> {
    v["runs"].as_array().cloned().unwrap_or_default()
}

fn at_rate(v: &Value, rate: f64) -> Option<Value> {
    runs(v)
        .into_iter()
        .find(|r| r["offered_per_s"].as_f64() == Some(rate))
}

/// pawpost divided by Mosquitto (or by the disk's ceiling) for each comparable number.
pub fn ratios(r: &Value) -> Value {
    let mut delivery = Vec::new();
    for p in runs(&r["delivery"]) {
        let Some(rate) = p["offered_per_s"].as_f64() else {
            continue;
        };
        let Some(m) = at_rate(&r["mqtt"], rate) else {
            continue;
        };
        let lat = |v: &Value, q: &str| v["end_to_end_latency"][q].as_f64();
        delivery.push(json!({
            "offered_per_s": rate,
            "delivered_per_s_pawpost_over_mosquitto": ratio(p["delivered_per_s"].as_f64(), m["delivered_per_s"].as_f64()),
            "p50_pawpost_over_mosquitto": ratio(lat(&p, "p50_ms"), lat(&m, "p50_ms")),
            "p99_pawpost_over_mosquitto": ratio(lat(&p, "p99_ms"), lat(&m, "p99_ms")),
            "p50_pawpost_over_jetstream": at_rate(&r["jetstream"], rate).map_or(Value::Null, |j| ratio(lat(&p, "p50_ms"), lat(&j, "p50_ms"))),
            "p99_pawpost_over_jetstream": at_rate(&r["jetstream"], rate).map_or(Value::Null, |j| ratio(lat(&p, "p99_ms"), lat(&j, "p99_ms"))),
            "p50_pawpost_over_rabbitmq": at_rate(&r["rabbitmq"], rate).map_or(Value::Null, |q| ratio(lat(&p, "p50_ms"), lat(&q, "p50_ms"))),
            "p99_pawpost_over_rabbitmq": at_rate(&r["rabbitmq"], rate).map_or(Value::Null, |q| ratio(lat(&p, "p99_ms"), lat(&q, "p99_ms"))),
        }));
    }
    let idle_n = r["mqtt"]["idle"]["connected"].as_u64();
    let pawpost_idle = runs(&r["idle"])
        .into_iter()
        .find(|row| row["connected"].as_u64() == idle_n && idle_n.is_some());
    let best_storage = runs(&r["storage"])
        .iter()
        .filter_map(|row| row["messages_per_s"].as_f64())
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    let best_accepted = runs(&r["delivery"])
        .iter()
        .filter_map(|row| row["accepted_per_s"].as_f64())
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
    json!({
        "delivery": delivery,
        "idle_rss_per_connection_pawpost_over_mosquitto": ratio(
            pawpost_idle.as_ref().and_then(|row| row["rss_per_toy_kib"].as_f64()),
            r["mqtt"]["idle"]["rss_per_subscriber_kib"].as_f64(),
        ),
        "idle_connections_compared": idle_n,
        "best_accepted_per_s_over_storage_ceiling": ratio(best_accepted, best_storage),
        "storm_p99_factor": r["storm"]["p99_factor"],
        "reconnect_storm_p99_factor": r["storm"]["reconnect"]["p99_factor"],
        "relay_across_over_same": runs(&r["relay"])
            .iter()
            .map(|row| json!({
                "offered_per_s": row["offered_per_s"],
                "across_over_same": row["across_over_same"],
            }))
            .collect::<Vec<_>>(),
    })
}

fn num(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn row(cells: [String; 4]) {
    println!(
        "{:<52} {:>14} {:>14} {:>10}",
        cells[0], cells[1], cells[2], cells[3]
    );
}

pub fn print(all: &Value) {
    let r = &all["results"];
    let m = &all["machine"];
    println!(
        "\npawpost benchmarks: {} cores ({}), {} GiB, kernel {}, open-file limit {}\n",
        num(&m["cpus"]),
        num(&m["cpu_model"]),
        num(&m["mem_gib"]),
        num(&m["kernel"]),
        num(&m["open_file_limit"])
    );
    row([
        "metric".into(),
        "pawpost".into(),
        "mosquitto".into(),
        "ratio".into(),
    ]);
    row([
        "-".repeat(52),
        "-".repeat(14),
        "-".repeat(14),
        "-".repeat(10),
    ]);
    let f = &r["footprint"];
    row([
        "idle RSS, no clients (KiB)".into(),
        num(&f["idle_rss_kib_median"]),
        "".into(),
        "".into(),
    ]);
    row([
        "start-up to first /healthz (ms, median)".into(),
        num(&f["startup_ms_median"]),
        "".into(),
        "".into(),
    ]);
    row([
        "binary size (MiB)".into(),
        num(&f["binary_mib"]),
        "".into(),
        "".into(),
    ]);
    let mi = &r["mqtt"]["idle"];
    for i in runs(&r["idle"]) {
        let n = i["toys"].as_u64().unwrap_or(0);
        if let Some(skip) = i["skipped"].as_str() {
            row([
                format!("{n} idle toys"),
                format!("skipped ({skip})"),
                "".into(),
                "".into(),
            ]);
            continue;
        }
        let same = mi["connected"].as_u64() == i["connected"].as_u64();
        let peer = if same {
            num(&mi["rss_per_subscriber_kib"])
        } else {
            "".into()
        };
        let ratio = if same {
            ratio(
                i["rss_per_toy_kib"].as_f64(),
                mi["rss_per_subscriber_kib"].as_f64(),
            )
        } else {
            Value::Null
        };
        row([
            format!("{n} idle toys: RSS per connection (KiB)"),
            num(&i["rss_per_toy_kib"]),
            peer,
            num(&ratio),
        ]);
        let peer_rate = if same {
            num(&mi["connects_per_s"])
        } else {
            "".into()
        };
        row([
            format!("{n} idle toys: connects + auth per s"),
            num(&i["connects_per_s"]),
            peer_rate,
            "".into(),
        ]);
    }
    for p in runs(&r["delivery"]) {
        let rate = p["offered_per_s"].as_f64().unwrap_or(0.0);
        let m = at_rate(&r["mqtt"], rate).unwrap_or(Value::Null);
        let lat = |v: &Value, q: &str| v["end_to_end_latency"][q].clone();
        for (label, a, b) in [
            (
                "delivered per s",
                p["delivered_per_s"].clone(),
                m["delivered_per_s"].clone(),
            ),
            ("p50 end-to-end (ms)", lat(&p, "p50_ms"), lat(&m, "p50_ms")),
            ("p99 end-to-end (ms)", lat(&p, "p99_ms"), lat(&m, "p99_ms")),
        ] {
            row([
                format!("offered {rate}/s: {label}"),
                num(&a),
                num(&b),
                num(&ratio(a.as_f64(), b.as_f64())),
            ]);
        }
        if let Some(j) = at_rate(&r["jetstream"], rate) {
            let synced = r["jetstream"]["synced_before_ack"].as_bool() == Some(true);
            let peer = if synced { "synced" } else { "not synced" };
            for (q, label) in [("p50_ms", "p50"), ("p99_ms", "p99")] {
                row([
                    format!("offered {rate}/s: {label} (ms), JetStream ({peer}) as the peer"),
                    num(&lat(&p, q)),
                    num(&lat(&j, q)),
                    num(&ratio(lat(&p, q).as_f64(), lat(&j, q).as_f64())),
                ]);
            }
        }
        if let Some(b) = at_rate(&r["rabbitmq"], rate) {
            for (q, label) in [("p50_ms", "p50"), ("p99_ms", "p99")] {
                row([
                    format!("offered {rate}/s: {label} (ms), RabbitMQ (synced) as the peer"),
                    num(&lat(&p, q)),
                    num(&lat(&b, q)),
                    num(&ratio(lat(&p, q).as_f64(), lat(&b, q).as_f64())),
                ]);
            }
        }
        row([
            format!("offered {rate}/s: accepted (201) / offered"),
            format!("{}/{}", num(&p["accepted_201"]), num(&p["offered"])),
            format!("{}/{}", num(&m["delivered"]), num(&m["offered"])),
            "".into(),
        ]);
    }
    for s in runs(&r["storage"]) {
        row([
            format!(
                "storage ceiling, {} writers (messages/s)",
                num(&s["concurrency"])
            ),
            num(&s["messages_per_s"]),
            "".into(),
            "".into(),
        ]);
    }
    row([
        "disk: 4 KiB write + fdatasync per s".into(),
        num(&r["storage"]["disk_fsyncs_per_s_4kib"]),
        "".into(),
        "".into(),
    ]);
    let st = &r["storm"];
    row([
        "storm: p99 without (ms)".into(),
        num(&st["baseline"]["end_to_end_latency"]["p99_ms"]),
        "".into(),
        "".into(),
    ]);
    row([
        "storm: p99 with (ms)".into(),
        num(&st["under_storm"]["end_to_end_latency"]["p99_ms"]),
        "".into(),
        num(&st["p99_factor"]),
    ]);
    row([
        "storm: wrong passwords answered 401 per s".into(),
        num(&st["storm"]["wrong_password_401_per_s"]),
        "".into(),
        "".into(),
    ]);
    row([
        "reconnect storm: p99 with (ms)".into(),
        num(&st["reconnect"]["under_storm"]["end_to_end_latency"]["p99_ms"]),
        "".into(),
        num(&st["reconnect"]["p99_factor"]),
    ]);
    row([
        "reconnect storm: connects (+ auth) per s".into(),
        num(&st["reconnect"]["storm"]["connects_per_s"]),
        "".into(),
        "".into(),
    ]);
    print_relay(&r["relay"]);
    println!("\nratios: {}", r["ratios"]);
}

/// The relay scenario: each number through B (the toys' process) and through A, and A
/// over B.
pub fn print_relay(relay: &Value) {
    println!();
    if let Some(why) = relay["skipped"].as_str() {
        println!("delivery across processes: skipped ({why})");
        return;
    }
    if let Some(error) = relay["error"].as_str() {
        println!("delivery across processes: failed ({error})");
        return;
    }
    let pg = &relay["postgres"];
    println!(
        "delivery across processes: {} toys on B; PostgreSQL {} (fsync {}, synchronous_commit {})\n",
        num(&relay["toys"]),
        num(&pg["server_version"]),
        num(&pg["fsync"]),
        num(&pg["synchronous_commit"])
    );
    row([
        "metric".into(),
        "same process".into(),
        "across".into(),
        "across/same".into(),
    ]);
    row([
        "-".repeat(52),
        "-".repeat(14),
        "-".repeat(14),
        "-".repeat(10),
    ]);
    for run in runs(relay) {
        let rate = run["offered_per_s"].as_f64().unwrap_or(0.0);
        let (same, across, r) = (
            &run["same_process"],
            &run["across_processes"],
            &run["across_over_same"],
        );
        row([
            format!("offered {rate}/s: delivered per s"),
            num(&same["delivered_per_s"]),
            num(&across["delivered_per_s"]),
            num(&r["delivered_per_s"]),
        ]);
        for q in ["p50", "p90", "p99", "max"] {
            let lat = |v: &Value| v["end_to_end_latency"][format!("{q}_ms")].clone();
            row([
                format!("offered {rate}/s: {q} end-to-end (ms)"),
                num(&lat(same)),
                num(&lat(across)),
                num(&r[q]),
            ]);
        }
        for q in ["p50", "p99"] {
            let lat = |v: &Value| v["upload_201_latency"][format!("{q}_ms")].as_f64();
            let (a, b) = (lat(same), lat(across));
            row([
                format!("offered {rate}/s: {q} upload answered 201 (ms)"),
                num(&json!(a)),
                num(&json!(b)),
                num(&ratio(b, a)),
            ]);
        }
        let counts = |v: &Value| {
            format!(
                "{}/{}/{}",
                num(&v["delivered"]),
                num(&v["accepted_201"]),
                num(&v["offered"])
            )
        };
        row([
            format!("offered {rate}/s: delivered/accepted/offered"),
            counts(same),
            counts(across),
            "".into(),
        ]);
    }
}
