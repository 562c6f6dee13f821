//! The ransom story: a server is backed up while it serves, its data is wiped, and a
//! restore brings back every account, household, roster and message byte for byte;
//! with its blobs in a folder or in a bucket prefix (moto). Then the ways a restore
//! must refuse.
mod common;

use common::*;
use pawpost_backup::{
    backup, restore, restore_with_options, verify, BackupError, Phase, Progress, RestoreOptions,
};
use pawpost_blob_s3::{ConfigError, OpenError, S3BlobStore};
use pawpost_server::config::{
    DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES, EMAIL_VERIFICATIONS_PER_DAY, EMAIL_VERIFICATION_TTL,
    EMAIL_VERIFICATION_WINDOW, PASSWORD_RESET_TTL,
};
use pawpost_server::tokens::{new_token, token_hash};
use pawpost_storage::{BlobUrl, StorageConfig, UrlError};
use pawpost_store::{BlobKey, BlobStore, EmailVerification, PasswordReset};
use pawpost_testkit::moto::{test_env, MotoServer};
use reqwest::StatusCode;
use std::cell::Cell;
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file under `root` is 0600 and every folder 0700.
fn assert_private(root: &Path) {
    assert_eq!(mode(root), 0o700, "{}", root.display());
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_private(&path);
        } else {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

async fn message_ids(client: &Client, home: &str) -> Vec<String> {
    client
        .get(&format!("/api/v1/households/{home}/messages"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_owned())
        .collect()
}

/// The last report of `phase`, which must have finished.
fn last_finished(phases: &[Progress], phase: Phase) -> Progress {
    let last = *phases.iter().rfind(|p| p.phase == phase).unwrap();
    assert_eq!(last.done, last.total, "{phase} finished");
    last
}

/// The ransom story on PostgreSQL when `postgres` is given (SQLite otherwise), with the
/// blobs under a fresh prefix of the test bucket when `bucket` is given (a folder
/// otherwise).
async fn ransom_story(postgres: Option<String>, bucket: Option<&MotoServer>) {
    let tmp = tempfile::tempdir().unwrap();
    let (first_schema, second_schema, third_schema) =
        (fresh_schema(), fresh_schema(), fresh_schema());
    let _cleanup = postgres.as_ref().map(|url| Schemas {
        url: url.clone(),
        names: vec![
            first_schema.clone(),
            second_schema.clone(),
            third_schema.clone(),
        ],
    });
    let pg = |schema: &str| postgres.as_deref().map(|url| (url, schema.to_owned()));
    let pg_first = pg(&first_schema);
    let pg_second = pg(&second_schema);
    let prefix = fresh_prefix();
    let blob_url = bucket.map(|moto| moto.blob_url(S3_BUCKET, &prefix));
    let with_blobs = |mut config: StorageConfig| {
        if let Some(url) = &blob_url {
            config.blobs = BlobUrl::S3(url.clone());
        }
        config
    };

    let live = with_blobs(config(
        &tmp.path().join("data"),
        pg_first.as_ref().map(|(u, s)| (*u, s.as_str())),
    ));
    let server = start(&live).await;
    let base = format!("http://{}", server.addr);
    let family = Family::create(&base).await;
    let mut sent: HashMap<String, Vec<u8>> = HashMap::new();
    // Long messages go to the blob store; short ones stay in their rows, so they travel in
    // the database snapshot.
    let mut long = Vec::new();
    for i in 0..5 {
        let mut voice = format!("voice message {i}").into_bytes();
        if i % 2 == 0 {
            voice.resize(DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES, b'.');
            long.push(i);
        }
        let (id, envelope) = family.seal_from_gran(&voice);
        assert_eq!(
            family.gran.upload(&family.home, envelope.clone()).await,
            StatusCode::CREATED
        );
        sent.insert(id, envelope);
    }
    // A live link to choose a new password, which the backup must leave out.
    let reset_token = new_token();
    let mum_account = server
        .state
        .store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.email.as_str() == "mum@example.org")
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    server
        .state
        .store
        .create_password_reset(&PasswordReset {
            token_hash: token_hash(&reset_token),
            account_id: mum_account.id,
            created_at: now,
            expires_at: now + PASSWORD_RESET_TTL,
        })
        .await
        .unwrap();
    // And a live link to confirm her email address.
    let verify_token = new_token();
    let kept = server
        .state
        .store
        .create_email_verification(
            &EmailVerification {
                token_hash: token_hash(&verify_token),
                account_id: mum_account.id,
                created_at: now,
                expires_at: now + EMAIL_VERIFICATION_TTL,
            },
            EMAIL_VERIFICATIONS_PER_DAY,
            now - EMAIL_VERIFICATION_WINDOW,
        )
        .await
        .unwrap();
    assert_eq!(kept, None);
    let before = family.visible_state(&family.mum).await;
    let listed_before = message_ids(&family.mum, &family.home).await;
    assert_eq!(listed_before.len(), 5);

    // The backup runs while gran keeps sending messages.
    let backup_dir = tmp.path().join("offsite/backup-1");
    let finished = Cell::new(false);
    let mut phases: Vec<Progress> = Vec::new();
    let backing_up = async {
        let report = backup(&live, &backup_dir, |p| phases.push(p)).await;
        finished.set(true);
        report
    };
    let sending = async {
        let mut during = Vec::new();
        let mut n = 0;
        while !finished.get() {
            let (id, envelope) =
                family.seal_from_gran(format!("sent during the backup {n}").as_bytes());
            assert_eq!(
                family.gran.upload(&family.home, envelope.clone()).await,
                StatusCode::CREATED
            );
            during.push((id, envelope));
            n += 1;
        }
        during
    };
    let (report, during) = tokio::join!(backing_up, sending);
    let report = report.unwrap();
    sent.extend(during);
    assert!(report.blobs >= long.len() as u64, "{report:?}");
    assert!(report.database_bytes > 0);
    assert_eq!(report.dir, backup_dir);
    for phase in [Phase::Database, Phase::Blobs, Phase::Manifest] {
        last_finished(&phases, phase);
    }
    let manifest = verify(&backup_dir).await.unwrap();
    assert_eq!(manifest.blobs.len() as u64, report.blobs);
    assert_eq!(manifest.blob_bytes(), report.blob_bytes);
    assert_private(&backup_dir);

    // The attack: the server goes down and its data is gone, the bucket's too.
    server.shutdown().await.unwrap();
    let wiped = bucket.map(|moto| {
        let objects = moto.objects(S3_BUCKET, &prefix);
        assert!(
            objects.len() >= manifest.blobs.len(),
            "the blobs were in the bucket"
        );
        assert_eq!(moto.delete_objects(S3_BUCKET, &prefix), objects.len());
        assert_eq!(moto.objects(S3_BUCKET, &prefix), []);
        objects
    });
    std::fs::remove_dir_all(tmp.path().join("data")).unwrap();
    if let Some(url) = &postgres {
        drop_schema(url, &first_schema);
    }

    let fresh = with_blobs(config(
        &tmp.path().join("restored"),
        pg_second.as_ref().map(|(u, s)| (*u, s.as_str())),
    ));
    let mut phases = Vec::new();
    let restored = restore(&fresh, &backup_dir, |p| phases.push(p))
        .await
        .unwrap();
    assert_eq!(restored.blobs, report.blobs);
    for phase in [Phase::Verify, Phase::RestoreBlobs, Phase::RestoreDatabase] {
        last_finished(&phases, phase);
    }
    assert_eq!(
        last_finished(&phases, Phase::RestoreBlobs).total,
        report.blobs
    );
    // With PostgreSQL and a bucket, the data folder is not needed at all.
    if bucket.is_none() || postgres.is_none() {
        assert_private(&tmp.path().join("restored"));
    }

    // A second restore over the restored data is refused.
    let again = restore(&fresh, &backup_dir, |_| {}).await.unwrap_err();
    assert!(matches!(again, BackupError::TargetHasData(_)), "{again}");

    if let (Some(moto), Some(wiped), Some(blob_url)) = (bucket, &wiped, &blob_url) {
        // Every blob of the backup is back in the prefix as it was, and nothing else.
        let objects = moto.objects(S3_BUCKET, &prefix);
        let keys: Vec<String> = manifest
            .blobs
            .iter()
            .map(|b| format!("{prefix}/{}", b.key))
            .collect();
        assert_eq!(
            objects.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            keys
        );
        for object in &objects {
            assert!(wiped.contains(object), "{} differs", object.0);
        }
        assert!(restored.blob_target.contains(&prefix), "{restored:?}");

        // An empty database beside a prefix that holds blobs: the bucket is refused.
        let elsewhere = with_blobs(config(
            &tmp.path().join("elsewhere"),
            pg(&third_schema).as_ref().map(|(u, s)| (*u, s.as_str())),
        ));
        let err = restore(&elsewhere, &backup_dir, |_| {}).await.unwrap_err();
        assert!(matches!(err, BackupError::TargetHasData(_)), "{err}");
        let message = err.to_string();
        assert!(
            message.contains("bucket") && message.contains(&prefix),
            "{message}"
        );
        assert!(message.contains("force"), "{message}");
        assert!(!message.contains(pawpost_testkit::moto::TEST_SECRET_ACCESS_KEY));
        assert!(!tmp.path().join("elsewhere/pawpost.db").exists());

        // Forced, the blobs the backup does not hold are deleted and the rest replaced.
        let store = S3BlobStore::open_with_env(blob_url, &test_env)
            .await
            .unwrap();
        let stray = BlobKey::new("envelopes/stray/not-in-the-backup").unwrap();
        store.put(&stray, b"planted later").await.unwrap();
        let mut phases = Vec::new();
        restore_with_options(&fresh, &backup_dir, RestoreOptions { force: true }, |p| {
            phases.push(p)
        })
        .await
        .unwrap();
        assert_eq!(last_finished(&phases, Phase::RemoveBlobs).total, 1);
        assert_eq!(store.get(&stray).await.unwrap(), None);
        assert_eq!(moto.objects(S3_BUCKET, &prefix), objects);
    }

    let server = start(&fresh).await;
    let base = format!("http://{}", server.addr);
    let mum = sign_in(&base, "mum@example.org").await;
    let gran = sign_in(&base, "gran@example.org").await;
    assert_eq!(
        server
            .state
            .store
            .password_reset(&token_hash(&reset_token))
            .await
            .unwrap(),
        None,
        "the backup left the reset link out"
    );
    let (status, answer) = Client::anonymous(&base)
        .call(
            reqwest::Method::POST,
            "/api/v1/password-resets/confirm",
            Some(serde_json::json!({
                "token": reset_token,
                "new_password": "marigold lantern pebble orchestra",
            })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "reset_link_invalid");
    assert_eq!(
        server
            .state
            .store
            .email_verification(&token_hash(&verify_token))
            .await
            .unwrap(),
        None,
        "the backup left the link to confirm the address out"
    );
    let (status, answer) = Client::anonymous(&base)
        .call(
            reqwest::Method::POST,
            "/api/v1/email-verifications/confirm",
            Some(serde_json::json!({ "token": verify_token })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"], "verification_link_invalid");
    assert_eq!(family.visible_state(&mum).await, before);
    let listed_after = message_ids(&gran, &family.home).await;
    for id in &listed_before {
        assert!(listed_after.contains(id), "message {id} lost");
    }
    let in_blobs = listed_after
        .iter()
        .filter(|id| sent[*id].len() > DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES)
        .count();
    assert_eq!(in_blobs, long.len());
    assert!(in_blobs as u64 <= report.blobs);
    for id in &listed_after {
        let (status, bytes) = gran.download(id).await;
        assert_eq!(status, StatusCode::OK, "message {id}");
        assert_eq!(&bytes, sent.get(id).unwrap(), "message {id} differs");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_sqlite_server_comes_back_from_its_backup() {
    ransom_story(None, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_postgres_schema_comes_back_from_its_backup() {
    let Some(url) = pawpost_testkit::require("PostgreSQL", "PAWPOST_TEST_DATABASE_URL") else {
        return;
    };
    ransom_story(Some(url), None).await;
}

/// At scale: PostgreSQL when PAWPOST_TEST_DATABASE_URL is set (SQLite otherwise), and the
/// blobs in a bucket prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_server_with_its_blobs_in_a_bucket_comes_back_from_its_backup() {
    let Some(moto) = moto() else { return };
    let postgres = postgres_url();
    if postgres.is_none() {
        let why = "ran on SQLite only: set PAWPOST_TEST_DATABASE_URL to run it on PostgreSQL";
        pawpost_testkit::skip("PostgreSQL", why, None);
    }
    ransom_story(postgres, Some(moto)).await;
}

/// A stopped SQLite server with a family and one message, long enough for its envelope
/// to be a blob, and a backup of it.
async fn backed_up(tmp: &Path) -> (std::path::PathBuf, StorageConfig) {
    let live = config(&tmp.join("data"), None);
    let server = start(&live).await;
    let family = Family::create(&format!("http://{}", server.addr)).await;
    let (_, envelope) = family.seal_from_gran(&[b'.'; DEFAULT_ENVELOPE_IN_ROW_MAX_BYTES]);
    assert_eq!(
        family.gran.upload(&family.home, envelope).await,
        StatusCode::CREATED
    );
    let dir = tmp.join("backup");
    backup(&live, &dir, |_| {}).await.unwrap();
    server.shutdown().await.unwrap();
    (dir, live)
}

fn only_blob(backup_dir: &Path) -> std::path::PathBuf {
    let mut stack = vec![backup_dir.join("blobs")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                return path;
            }
        }
    }
    panic!("no blob in the backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = backed_up(tmp.path()).await;
    let blob = only_blob(&dir);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, bytes).unwrap();

    let err = verify(&dir).await.unwrap_err();
    assert!(matches!(err, BackupError::ChecksumMismatch { .. }), "{err}");
    let target = config(&tmp.path().join("restored"), None);
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&blob.display().to_string()), "{message}");
    assert!(message.contains("damaged"), "{message}");
    assert!(
        !tmp.path().join("restored/pawpost.db").exists(),
        "nothing may be restored from a damaged backup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_without_its_manifest_is_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = backed_up(tmp.path()).await;
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let target = config(&tmp.path().join("restored"), None);
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(err, BackupError::Partial(_)), "{err}");
    assert!(err.to_string().contains("partial backup"), "{err}");
    assert!(!tmp.path().join("restored/pawpost.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_empty_target_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, live) = backed_up(tmp.path()).await;
    let err = restore(&live, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(err, BackupError::TargetHasData(_)), "{err}");
    assert!(err.to_string().contains("force"), "{err}");

    // Forced, the old data is replaced and the server starts on the backup.
    restore_with_options(&live, &dir, RestoreOptions { force: true }, |_| {})
        .await
        .unwrap();
    assert_private(&live.data_dir);
    let server = start(&live).await;
    sign_in(&format!("http://{}", server.addr), "gran@example.org").await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_extra_and_unknown_versions_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, live) = backed_up(tmp.path()).await;
    let target = config(&tmp.path().join("restored"), None);

    // Backing up into a folder that holds files would mix two backups.
    let err = backup(&live, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(err, BackupError::BackupDirNotEmpty(_)), "{err}");
    let inside = live.data_dir.join("blobs/backup");
    let err = backup(&live, &inside, |_| {}).await.unwrap_err();
    assert!(matches!(err, BackupError::BackupInsideBlobs(_)), "{err}");
    assert!(!inside.exists());

    let stray = dir.join("blobs/stray");
    std::fs::write(&stray, b"added later").unwrap();
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, BackupError::ExtraFile(ref p) if *p == stray),
        "{err}"
    );
    std::fs::remove_file(&stray).unwrap();

    let blob = only_blob(&dir);
    let kept = std::fs::read(&blob).unwrap();
    std::fs::remove_file(&blob).unwrap();
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, BackupError::MissingFile(ref p) if *p == blob),
        "{err}"
    );
    std::fs::write(&blob, kept).unwrap();

    let manifest_path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).unwrap();
    std::fs::write(
        &manifest_path,
        text.replace("\"format_version\": 1", "\"format_version\": 99"),
    )
    .unwrap();
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, BackupError::UnknownVersion { found: 99, .. }),
        "{err}"
    );
    std::fs::write(&manifest_path, &text).unwrap();

    let edited = text.replacen("\"bytes\": ", "\"bytes\": 1", 1);
    std::fs::write(&manifest_path, edited).unwrap();
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(err, BackupError::ManifestChecksum(_)), "{err}");
    std::fs::write(&manifest_path, &text).unwrap();

    assert!(!tmp.path().join("restored/pawpost.db").exists());
    restore(&target, &dir, |_| {}).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_blob_is_refused_before_anything_reaches_the_bucket() {
    let Some(moto) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = backed_up(tmp.path()).await;
    let blob = only_blob(&dir);
    let kept = std::fs::read(&blob).unwrap();
    let mut bytes = kept.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&blob, bytes).unwrap();

    let prefix = fresh_prefix();
    let mut target = config(&tmp.path().join("restored"), None);
    target.blobs = BlobUrl::S3(moto.blob_url(S3_BUCKET, &prefix));
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(matches!(err, BackupError::ChecksumMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&blob.display().to_string()),
        "{err}"
    );
    assert_eq!(
        moto.objects(S3_BUCKET, &prefix),
        [],
        "nothing reached the bucket"
    );
    assert!(!tmp.path().join("restored/pawpost.db").exists());

    // Mended, the same backup of a blob folder moves into the bucket, and is served.
    std::fs::write(&blob, &kept).unwrap();
    let report = restore(&target, &dir, |_| {}).await.unwrap();
    assert_eq!(report.blobs, 1);
    let objects = moto.objects(S3_BUCKET, &prefix);
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1, kept);
    let server = start(&target).await;
    let gran = sign_in(&format!("http://{}", server.addr), "gran@example.org").await;
    let homes = gran.get("/api/v1/households").await;
    let home = homes[0]["id"].as_str().unwrap();
    let ids = message_ids(&gran, home).await;
    assert_eq!(ids.len(), 1);
    assert_eq!(gran.download(&ids[0]).await, (StatusCode::OK, kept));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_cannot_be_opened_is_refused_before_anything_is_written() {
    let Some(moto) = moto() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (dir, live) = backed_up(tmp.path()).await;
    let missing = BlobUrl::S3(moto.blob_url("no-such-pawpost-bucket", "live"));

    let mut source = live.clone();
    source.blobs = missing.clone();
    let err = backup(&source, &tmp.path().join("backup-2"), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, BackupError::Bucket(OpenError::NoSuchBucket { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("create it"), "{err}");
    assert!(!tmp.path().join("backup-2").exists(), "nothing was written");

    let mut target = config(&tmp.path().join("restored"), None);
    target.blobs = missing;
    let err = restore(&target, &dir, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, BackupError::Bucket(OpenError::NoSuchBucket { .. })),
        "{err}"
    );
    assert!(!tmp.path().join("restored").exists(), "nothing was written");
}

#[tokio::test]
async fn blob_urls_the_server_would_refuse_are_refused_without_their_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Read once, as `pawpost backup` reads --blob-url, before anything is written.
    let err =
        StorageConfig::from_options(&data, None, None, Some("gs://user:hunter2@bucket/blobs"))
            .unwrap_err();
    assert!(matches!(err, UrlError::BlobScheme(_)), "{err}");
    assert!(err.to_string().contains("s3://BUCKET/PREFIX"), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");

    let live = StorageConfig::from_options(
        &data,
        None,
        None,
        Some("s3://AKIDEXAMPLE:verysecretvalue@bucket/p?endpoint=http://127.0.0.1:9"),
    )
    .unwrap();
    let err = backup(&live, &tmp.path().join("backup"), |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::Bucket(OpenError::Config(ConfigError::CredentialsInUrl(_)))
        ),
        "{err}"
    );
    assert!(!err.to_string().contains("verysecretvalue"), "{err}");
    assert!(!tmp.path().join("backup").exists(), "nothing was written");
}
