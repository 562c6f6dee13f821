//! Scenario 4: the storage ceiling without the server: what accepting a message writes
//! (through the server's own store crates, as its defaults choose: a small envelope in
//! its SQLite row, a large one as an fsynced blob file first; the row committed in a
//! group commit shared with the other writers, the log synced after it), and what a
//! toy's `Delivered` writes (a receipt), as fast as this disk allows; plus the raw fsync
//! rate of the disk.
use crate::stats::round2;
use crate::Ctx;
use eyre::{eyre, Result};
use pawpost_blob_local::LocalBlobStore;
use pawpost_domain::{
    Account, AccountId, Device, DeviceId, DeviceKind, Email, Household, HouseholdId, Message,
    ReceiptState, ENVELOPE_IN_ROW,
};
use pawpost_server::config::DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES;
use pawpost_storage::{DatabaseUrl, BLOBS_DIR};
use pawpost_store::{BlobKey, BlobStore, MetadataStore};
use pawpost_store_sqlite::SqliteStore;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use uuid::Uuid;

/// 4 KiB writes each followed by fdatasync, for up to `budget`.
fn fsync_rate(dir: &std::path::Path, budget: Duration) -> Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0x5au8; 4096];
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < budget && n < 100_000 {
        file.write_all(&block)?;
        file.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

pub struct StorageArgs {
    pub messages: u64,
    pub envelope_bytes: usize,
    pub concurrency: Vec<usize>,
    pub budget: Duration,
}

pub async fn ceiling(ctx: &Ctx, args: &StorageArgs) -> Result<Value> {
    let data = ctx.fresh_dir("storage")?;
    std::fs::create_dir_all(&data)?;
    let fsyncs = fsync_rate(&data, Duration::from_secs(3))?;
    let store = Arc::new(
        SqliteStore::open(DatabaseUrl::sqlite_in(&data).as_str())
            .await
            .map_err(|e| eyre!("{e}"))?,
    );
    let blobs = Arc::new(LocalBlobStore::open(data.join(BLOBS_DIR)).map_err(|e| eyre!("{e}"))?);
    let now = OffsetDateTime::now_utc();
    let account = AccountId::new();
    let household = HouseholdId::new();
    let sender = DeviceId(Uuid::new_v4());
    let toy = DeviceId(Uuid::new_v4());
    let e = |e: pawpost_store::StoreError| eyre!("{e}");
    store
        .create_account(&Account {
            id: account,
            email: Email::parse("storage@example.org").map_err(|e| eyre!("{e:?}"))?,
            display_name: "Storage".into(),
            password_hash: "unused".into(),
            created_at: now,
            locked: false,
            email_verified_at: None,
        })
        .await
        .map_err(e)?;
    store
        .create_household(
            &Household {
                id: household,
                name: "Storage".into(),
                created_at: now,
            },
            account,
        )
        .await
        .map_err(e)?;
    for (id, kind) in [(sender, DeviceKind::Member), (toy, DeviceKind::Toy)] {
        store
            .create_device(&Device {
                id,
                kind,
                account_id: (kind == DeviceKind::Member).then_some(account),
                household_id: (kind == DeviceKind::Toy).then_some(household),
                identity: vec![1; 81],
                label: "storage".into(),
                created_at: now,
            })
            .await
            .map_err(e)?;
    }
    let envelope = Arc::new(vec![0xa5u8; args.envelope_bytes]);
    // As the server does with its default settings.
    let in_row = args.envelope_bytes <= DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES;
    let mut rows = Vec::new();
    for &concurrency in &args.concurrency {
        let done = Arc::new(AtomicU64::new(0));
        let receipts = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + args.budget;
        let mut workers = Vec::new();
        for _ in 0..concurrency.max(1) {
            let (store, blobs, envelope) = (store.clone(), blobs.clone(), envelope.clone());
            let (done, receipts, total) = (done.clone(), receipts.clone(), args.messages);
            workers.push(tokio::spawn(async move {
                while Instant::now() < deadline && done.fetch_add(1, Ordering::Relaxed) < total {
                    let id = Uuid::now_v7();
                    let key = BlobKey::new(format!("envelopes/{household}/{id}-0"))
                        .map_err(|e| eyre!("{e:?}"))?;
                    if !in_row {
                        blobs.put(&key, &envelope).await.map_err(|e| eyre!("{e}"))?;
                    }
                    let message = Message {
                        id,
                        household_id: household,
                        sender_device: sender,
                        sender_account: Some(account),
                        media_type: 1,
                        duration_ms: 3000,
                        envelope_len: envelope.len() as u64,
                        created_at: OffsetDateTime::now_utc(),
                        blob_key: if in_row {
                            format!("{ENVELOPE_IN_ROW}{key}")
                        } else {
                            key.to_string()
                        },
                    };
                    if in_row {
                        store
                            .insert_message_with_envelope(&message, &[toy], &envelope)
                            .await
                    } else {
                        store.insert_message(&message, &[toy]).await
                    }
                    .map_err(|e| eyre!("{e}"))?;
                    store
                        .set_receipt(id, toy, ReceiptState::Delivered, OffsetDateTime::now_utc())
                        .await
                        .map_err(|e| eyre!("{e}"))?;
                    receipts.fetch_add(1, Ordering::Relaxed);
                }
                Ok::<(), eyre::Report>(())
            }));
        }
        for w in workers {
            w.await??;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = receipts.load(Ordering::Relaxed);
        rows.push(json!({
            "concurrency": concurrency,
            "messages": n,
            "seconds": round2(elapsed),
            "messages_per_s": round2(n as f64 / elapsed),
        }));
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(data.parent().unwrap_or(&data));
    Ok(json!({
        "envelope_bytes": args.envelope_bytes,
        "each_message": if in_row {
            "message row with its envelope and receipt rows inserted, then the receipt marked delivered, each in a group commit shared with the other writers (SQLite, WAL), answered once the log is synced"
        } else {
            "blob written, fsynced, renamed, folder fsynced; message row and receipt rows inserted, then the receipt marked delivered, each in a group commit shared with the other writers (SQLite, WAL), answered once the log is synced"
        },
        "envelope_in_row": in_row,
        "disk_fsyncs_per_s_4kib": round2(fsyncs),
        "runs": rows,
    }))
}
