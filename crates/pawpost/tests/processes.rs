//! Two real `pawpost serve` processes on one PostgreSQL schema and one bucket (a moto
//! S3 server when one is installed, else one shared blob folder), as behind a load
//! balancer. A toy connected to one hears at once what arrives through the other; killed
//! with `kill -9`, the process it was on loses nothing: the toy moves to the other one and
//! gets what was sent meanwhile, and a restarted process pushes to it again. Runs when
//! `PAWPOST_TEST_DATABASE_URL` is set; without it, it is recorded as skipped (and fails
//! in CI).
use pawpost_testkit::server as common;
mod procs;

use common::family::{family_on, VOICE};
use common::toys::{pair, play, send_voice, start_toy, through, wait_for_receipt, wait_online};
use common::TestServer;
use pawpost_testkit::moto::{MotoServer, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use procs::{PgSchema, Serve};

/// The bucket both processes keep their envelopes in, on the moto server.
const BUCKET: &str = "pawpost-processes";

/// How both processes are started: the same schema, the same blobs, each its own data
/// folder (for nothing but its outbox).
fn serve(data: &std::path::Path, schema: &PgSchema, blob_url: &str) -> Serve {
    Serve::new(data)
        .on(Some(schema))
        .args(["--blob-url", blob_url])
        .env("AWS_ACCESS_KEY_ID", TEST_ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", TEST_SECRET_ACCESS_KEY)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_database_and_bucket_and_a_killed_one_loses_nothing() {
    let Some(schema) = PgSchema::from_env("pawpost_processes") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let blob_url = match MotoServer::shared() {
        Some(moto) => {
            moto.create_bucket(BUCKET);
            moto.blob_url(BUCKET, &uuid::Uuid::new_v4().simple().to_string())
        }
        None => format!("file://{}", work.path().join("shared-blobs").display()),
    };
    let a = serve(&work.path().join("a"), &schema, &blob_url).start();
    let b_serve = serve(&work.path().join("b"), &schema, &blob_url);
    let b = b_serve.start();
    let (at_a, at_b) = (TestServer::at(a.base()), TestServer::at(b.base()));

    // The family uses A; the toy connects to B and pairs with the code mum types into A.
    let f = family_on(at_a).await;
    let toy_dir = work.path().join("toy");
    let toy = start_toy(&at_b, &toy_dir).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f, &at_b).await;
    wait_online(&f, &f.server).await;

    // Gran uploads through A; the toy on B has it without reconnecting.
    let first = send_voice(&f, &f.gran, &toy_identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![first]);
    let toy_uuid = uuid::Uuid::from_bytes(toy_identity.device_id.0);
    wait_for_receipt(&f.mum, &f.home, first, toy_uuid, "played_at").await;

    // B dies with kill -9. Messages sent through A meanwhile wait in the database and the
    // bucket; the toy, moved to A, gets them.
    b.kill();
    toy.stop().await;
    let while_moving = [
        send_voice(&f, &f.gran, &toy_identity, VOICE).await,
        send_voice(&f, &f.gran, &toy_identity, VOICE).await,
    ];
    let toy = start_toy(&f.server, &toy_dir).await;
    assert_eq!(play(&toy, 2).await, while_moving.to_vec());

    // B comes back (another port, the same database and bucket): what arrives through it
    // reaches the toy on A at once.
    let b = b_serve.start();
    let at_b = TestServer::at(b.base());
    let through_b = send_voice(&f, &through(&f.gran, &at_b), &toy_identity, VOICE).await;
    assert_eq!(play(&toy, 1).await, vec![through_b]);
    wait_online(&f, &at_b).await;

    // Each message was stored once, and played once on the toy.
    for id in [while_moving[0], while_moving[1], through_b] {
        wait_for_receipt(&f.mum, &f.home, id, toy_uuid, "played_at").await;
    }
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    let toy_id = toy_uuid.to_string();
    for message in listed {
        let receipts: Vec<_> = message["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["device_id"] == toy_id.as_str())
            .collect();
        assert_eq!(receipts.len(), 1, "{message}");
    }
    toy.stop().await;
    drop((a, b));
}
