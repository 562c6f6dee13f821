//! The store against a real S3-compatible server (moto), and its refusals.
use super::*;
use pawpost_testkit::moto::{test_env, MotoServer, TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY};
use std::net::{Ipv4Addr, TcpListener};

/// The bucket every test here shares; each test takes prefixes of its own.
const BUCKET: &str = "pawpost-blob-s3-tests";

fn moto() -> Option<&'static MotoServer> {
    static BUCKET_MADE: std::sync::Once = std::sync::Once::new();
    let moto = MotoServer::shared()?;
    BUCKET_MADE.call_once(|| moto.create_bucket(BUCKET));
    Some(moto)
}

async fn open(moto: &MotoServer, prefix: &str) -> S3BlobStore {
    S3BlobStore::open_with_env(&moto.blob_url(BUCKET, prefix), &test_env)
        .await
        .unwrap_or_else(|e| panic!("opening {prefix}: {e}"))
}

#[tokio::test]
async fn a_bucket_prefix_passes_the_blob_store_suite() {
    let Some(moto) = moto() else { return };
    let store = open(moto, "suite").await;
    pawpost_store::testsuite::blob_store(&store).await;
    let keys: Vec<_> = moto
        .objects(BUCKET, "suite")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, ["suite/suite/big"], "the blobs live under the prefix");
}

#[tokio::test]
async fn the_whole_bucket_works_without_a_prefix() {
    let Some(moto) = moto() else { return };
    moto.create_bucket("pawpost-no-prefix");
    let url = format!("s3://pawpost-no-prefix?endpoint={}", moto.endpoint());
    let store = S3BlobStore::open_with_env(&url, &test_env).await.unwrap();
    pawpost_store::testsuite::blob_store(&store).await;
    let keys: Vec<_> = moto
        .objects("pawpost-no-prefix", "")
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, ["suite/big"]);
}

#[tokio::test]
async fn stores_with_different_prefixes_do_not_see_each_others_blobs() {
    let Some(moto) = moto() else { return };
    let first = open(moto, "isolation/first").await;
    let second = open(moto, "isolation/second").await;
    let key = BlobKey::new("envelopes/home/message").unwrap();

    first.put(&key, b"first's ciphertext").await.unwrap();
    assert_eq!(second.get(&key).await.unwrap(), None);

    second.put(&key, b"second's ciphertext").await.unwrap();
    assert_eq!(
        first.get(&key).await.unwrap().as_deref(),
        Some(&b"first's ciphertext"[..])
    );

    second.delete(&key).await.unwrap();
    assert_eq!(second.get(&key).await.unwrap(), None);
    assert_eq!(
        first.get(&key).await.unwrap().as_deref(),
        Some(&b"first's ciphertext"[..]),
        "deleting in one prefix left the other alone"
    );
    assert_eq!(
        moto.objects(BUCKET, "isolation"),
        [(
            "isolation/first/envelopes/home/message".to_owned(),
            b"first's ciphertext".to_vec()
        )]
    );
}

#[tokio::test]
async fn a_listing_stays_under_the_prefix_and_names_only_blobs() {
    let Some(moto) = moto() else { return };
    let live = open(moto, "listing/live").await;
    // A sibling prefix that starts with the same letters, and the parent prefix.
    let sibling = open(moto, "listing/live-old").await;
    let parent = open(moto, "listing").await;
    let key = BlobKey::new("envelopes/home/message").unwrap();
    live.put(&key, b"live").await.unwrap();
    sibling.put(&key, b"old").await.unwrap();
    // Objects under the prefix that no blob store writes: not keys.
    for name in ["listing/live/Upper/case", "listing/live/envelopes/home/x_y"] {
        live.store
            .put(&Path::from(name), b"stray".to_vec().into())
            .await
            .unwrap();
    }
    assert_eq!(live.list().await.unwrap(), std::slice::from_ref(&key));
    assert_eq!(sibling.list().await.unwrap(), std::slice::from_ref(&key));
    // The parent sees the others' objects as keys of its own, as it would serve them.
    assert_eq!(
        parent.list().await.unwrap(),
        [
            BlobKey::new("live-old/envelopes/home/message").unwrap(),
            BlobKey::new("live/envelopes/home/message").unwrap(),
        ]
    );
    // Pages of one: the strays between the blobs cost pages, not keys.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = live.list_page(cursor.as_ref(), 1).await.unwrap();
        paged.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, [key]);
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error_on_open() {
    let Some(moto) = moto() else { return };
    let url = moto.blob_url("no-such-bucket-here", "p");
    let Err(err) = S3BlobStore::open_with_env(&url, &test_env).await else {
        panic!("opened a missing bucket");
    };
    assert!(matches!(err, OpenError::NoSuchBucket { .. }), "{err:?}");
    let message = err.to_string();
    for needed in [
        "no-such-bucket-here",
        &moto.endpoint(),
        "does not exist",
        "create it",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }
}

#[tokio::test]
async fn an_endpoint_nobody_answers_is_a_clear_error_on_open_and_secrets_stay_out() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("s3://bucket/p?endpoint=http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let Err(err) = S3BlobStore::open_with_env(&url, &test_env).await else {
        panic!("opened a bucket on a closed port");
    };
    assert!(
        started.elapsed() < RETRY_TIMEOUT + REQUEST_TIMEOUT,
        "gave up in time"
    );
    assert!(matches!(err, OpenError::Unreachable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("bucket"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    assert!(message.contains("check the endpoint"), "{message}");
    assert!(!message.contains(TEST_SECRET_ACCESS_KEY), "{message}");
}

#[tokio::test]
async fn credentials_in_the_url_are_refused_before_any_request() {
    let url = "s3://AKIDEXAMPLE:verysecretvalue@bucket/p?endpoint=http://127.0.0.1:9";
    let Err(err) = S3BlobStore::open_with_env(url, &test_env).await else {
        panic!("accepted credentials in the URL");
    };
    let message = err.to_string();
    assert!(
        matches!(err, OpenError::Config(ConfigError::CredentialsInUrl(_))),
        "{message}"
    );
    assert!(
        message.contains("AWS_SECRET_ACCESS_KEY") && message.contains("environment"),
        "{message}"
    );
    assert!(!message.contains("verysecretvalue"), "{message}");
}

#[tokio::test]
async fn plain_http_to_another_machine_is_refused_before_any_request() {
    let url = "s3://bucket/p?endpoint=http://s3.example.org:9000";
    let Err(err) = S3BlobStore::open_with_env(url, &test_env).await else {
        panic!("accepted plain http to another machine");
    };
    assert!(
        matches!(err, OpenError::Config(ConfigError::PlainHttp { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("use https://"), "{err}");
}

#[test]
fn credentials_are_scrubbed_from_store_messages() {
    let secrets = vec![
        TEST_ACCESS_KEY_ID.to_owned(),
        TEST_SECRET_ACCESS_KEY.to_owned(),
    ];
    let answer = format!(
        "403 Forbidden: <Error><Code>InvalidAccessKeyId</Code><AWSAccessKeyId>{TEST_ACCESS_KEY_ID}\
         </AWSAccessKeyId><Secret>{TEST_SECRET_ACCESS_KEY}</Secret></Error>"
    );
    let scrubbed = scrub(&answer, &secrets);
    assert!(!scrubbed.contains(TEST_ACCESS_KEY_ID), "{scrubbed}");
    assert!(!scrubbed.contains(TEST_SECRET_ACCESS_KEY), "{scrubbed}");
    assert!(scrubbed.contains("InvalidAccessKeyId"), "{scrubbed}");
    // A one-letter "credential" protects nothing and must not garble the message.
    let garbled = scrub("NoSuchBucket: the bucket does not exist", &["k".to_owned()]);
    assert_eq!(garbled, "NoSuchBucket: the bucket does not exist");
}
