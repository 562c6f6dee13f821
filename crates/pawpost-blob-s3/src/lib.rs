//! Blobs as objects in an S3-compatible bucket, under an optional key prefix, so that
//! several server processes can share one store. A `put` returns only after the store
//! answered the upload with success, which S3 gives once the object is stored durably.
//!
//! `--blob-url s3://BUCKET/PREFIX?endpoint=URL&region=NAME`: see [`S3Settings`] for
//! what is read from the URL and what from the environment.
#![forbid(unsafe_code)]

mod config;

pub use config::{
    ConfigError, Credentials, Endpoint, S3Settings, DEFAULT_REGION, ENV_ACCESS_KEY_ID,
    ENV_DEFAULT_REGION, ENV_ENDPOINT_URL, ENV_REGION, ENV_SECRET_ACCESS_KEY, ENV_SESSION_TOKEN,
};

use async_trait::async_trait;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};
use pawpost_store::{
    BlobCursor, BlobKey, BlobPage, BlobStore, StoreError, StoreResult, BLOB_LIST_PAGE_SIZE,
};
use std::time::Duration;

/// Longest wait for a connection to the store.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one request, upload or download included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Retries of a request that failed on the way or with a server error.
pub const MAX_RETRIES: usize = 3;
/// No retry starts later than this after the first attempt.
pub const RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause before a retry; each later pause is `RETRY_BACKOFF_FACTOR` times
/// longer, up to `MAX_RETRY_BACKOFF`.
pub const INITIAL_RETRY_BACKOFF: Duration = Duration::from_millis(100);
pub const RETRY_BACKOFF_FACTOR: f64 = 2.0;
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(2);
/// Longest store answer repeated in an error message.
pub const MAX_ERROR_DETAIL_CHARS: usize = 600;

const REDACTED: &str = "[redacted]";

/// Why the bucket could not be opened. Messages name the bucket and endpoint, never a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot set up the S3 client for bucket {bucket} at {endpoint}: {detail}; check the blob URL")]
    Client {
        bucket: String,
        endpoint: String,
        detail: String,
    },
    #[error(
        "the bucket {bucket} does not exist at {endpoint}: create it (pawpost does not create \
         buckets), or correct the bucket name, endpoint= or region= of --blob-url"
    )]
    NoSuchBucket { bucket: String, endpoint: String },
    #[error(
        "the bucket {bucket} at {endpoint} refused access: check AWS_ACCESS_KEY_ID, \
         AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) and that they may list, read, write \
         and delete objects under the prefix {prefix:?} ({detail})"
    )]
    AccessDenied {
        bucket: String,
        endpoint: String,
        prefix: String,
        detail: String,
    },
    #[error(
        "cannot reach the bucket {bucket} at {endpoint}: {detail}; check the endpoint and \
         region in --blob-url or AWS_ENDPOINT_URL/AWS_REGION, and that the store is up and \
         reachable from this machine"
    )]
    Unreachable {
        bucket: String,
        endpoint: String,
        detail: String,
    },
}

pub struct S3BlobStore {
    store: AmazonS3,
    bucket: String,
    prefix: String,
    endpoint: String,
    /// Credential values, scrubbed from every message.
    secrets: Vec<String>,
}

impl S3BlobStore {
    /// Opens the bucket named by `url`, with credentials from the process environment,
    /// and checks that the prefix can be listed.
    pub async fn open(url: &str) -> Result<Self, OpenError> {
        Self::open_with_env(url, &|name| std::env::var(name).ok()).await
    }

    /// As [`S3BlobStore::open`], reading the `AWS_*` variables through `env`.
    pub async fn open_with_env(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, OpenError> {
        let settings = S3Settings::parse(url, env)?;
        let store = Self::connect(&settings)?;
        store.check_reachable().await?;
        Ok(store)
    }

    /// Builds the client without any request.
    fn connect(settings: &S3Settings) -> Result<Self, OpenError> {
        let endpoint = settings.endpoint_label();
        let secrets = settings.credentials.values();
        let options = ClientOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_timeout(REQUEST_TIMEOUT)
            .with_allow_http(settings.endpoint.as_ref().is_some_and(|e| e.plain_http));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: INITIAL_RETRY_BACKOFF,
                max_backoff: MAX_RETRY_BACKOFF,
                base: RETRY_BACKOFF_FACTOR,
            },
            max_retries: MAX_RETRIES,
            retry_timeout: RETRY_TIMEOUT,
        };
        let credentials = &settings.credentials;
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&credentials.access_key_id)
            .with_secret_access_key(&credentials.secret_access_key)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(token) = &credentials.session_token {
            builder = builder.with_token(token);
        }
        builder = match &settings.endpoint {
            // Other S3-compatible stores are addressed path-style: ENDPOINT/BUCKET/KEY.
            Some(custom) => builder
                .with_endpoint(&custom.url)
                .with_virtual_hosted_style_request(false),
            // AWS's own: BUCKET.s3.REGION.amazonaws.com, except for a bucket with dots in
            // its name, which the wildcard certificate does not cover.
            None => builder.with_virtual_hosted_style_request(!settings.bucket.contains('.')),
        };
        let store = builder.build().map_err(|e| OpenError::Client {
            bucket: settings.bucket.clone(),
            endpoint: endpoint.clone(),
            detail: scrub(&e.to_string(), &secrets),
        })?;
        Ok(Self {
            store,
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            endpoint,
            secrets,
        })
    }

    /// Lists the top level under the prefix: the bucket exists, the endpoint answers
    /// and the credentials are accepted.
    async fn check_reachable(&self) -> Result<(), OpenError> {
        let prefix = (!self.prefix.is_empty()).then(|| Path::from(self.prefix.as_str()));
        let Err(e) = self.store.list_with_delimiter(prefix.as_ref()).await else {
            return Ok(());
        };
        let detail = self.detail(&e);
        let bucket = self.bucket.clone();
        let endpoint = self.endpoint.clone();
        Err(if detail.contains("NoSuchBucket") {
            OpenError::NoSuchBucket { bucket, endpoint }
        } else if matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        ) || [
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
            "InvalidToken",
            "403 Forbidden",
            "401 Unauthorized",
        ]
        .iter()
        .any(|code| detail.contains(code))
        {
            OpenError::AccessDenied {
                bucket,
                endpoint,
                prefix: self.prefix.clone(),
                detail,
            }
        } else if matches!(e, object_store::Error::NotFound { .. }) {
            OpenError::NoSuchBucket { bucket, endpoint }
        } else {
            OpenError::Unreachable {
                bucket,
                endpoint,
                detail,
            }
        })
    }

    /// Where the blobs are, for messages: `s3://BUCKET/PREFIX at ENDPOINT` (never a
    /// credential; the URL's query is left out).
    pub fn location(&self) -> String {
        format!("s3://{}/{} at {}", self.bucket, self.prefix, self.endpoint)
    }

    /// What every object name of this store starts with: `PREFIX/`, or nothing.
    fn name_prefix(&self) -> String {
        if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        }
    }

    /// The object's path: the prefix, then the key.
    fn path_of(&self, key: &BlobKey) -> Path {
        // BlobKey admits only [a-z0-9-] segments, and the prefix was checked the same
        // way, so every segment is a plain object path segment.
        if self.prefix.is_empty() {
            Path::from(key.as_str())
        } else {
            Path::from(format!("{}/{}", self.prefix, key.as_str()))
        }
    }

    /// The store's error and its causes, with every credential scrubbed, cut to a
    /// readable length.
    fn detail(&self, e: &object_store::Error) -> String {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text = format!("{text}: {cause_text}");
            }
            source = cause.source();
        }
        let text = scrub(&text, &self.secrets);
        match text.char_indices().nth(MAX_ERROR_DETAIL_CHARS) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        }
    }

    fn list_failed(&self, detail: &str) -> StoreError {
        StoreError::Backend(format!(
            "cannot list the blobs under {}: {detail}; check that the store is up and the \
             credentials may still list the prefix",
            self.location()
        ))
    }

    fn failed(&self, what: &str, key: &BlobKey, e: &object_store::Error) -> StoreError {
        StoreError::Backend(format!(
            "cannot {what} blob {key} in bucket {} at {}: {}; check that the store is up and \
             the credentials are still valid",
            self.bucket,
            self.endpoint,
            self.detail(e)
        ))
    }
}

/// Credential values shorter than this are not scrubbed: they protect nothing, and
/// replacing every occurrence of a letter or two would garble the message (and hide the
/// storage service's error codes).
const MIN_SCRUBBED_CHARS: usize = 4;

/// `text` with every credential value replaced.
fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| s.chars().count() >= MIN_SCRUBBED_CHARS)
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), REDACTED)
        })
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: &[u8]) -> StoreResult<()> {
        self.store
            .put(&self.path_of(key), bytes.to_vec().into())
            .await
            .map(|_| ())
            .map_err(|e| self.failed("store", key, &e))
    }

    async fn get(&self, key: &BlobKey) -> StoreResult<Option<Vec<u8>>> {
        let found = match self.store.get(&self.path_of(key)).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.failed("read", key, &e)),
        };
        match found.bytes().await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.failed("read", key, &e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> StoreResult<()> {
        match self.store.delete(&self.path_of(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.failed("delete", key, &e)),
        }
    }

    /// One ListObjectsV2 request of at most `limit` objects, starting after the cursor
    /// (`start-after` is the object name, so pages follow S3's byte order of names).
    async fn list_page(&self, cursor: Option<&BlobCursor>, limit: usize) -> StoreResult<BlobPage> {
        let limit = limit.clamp(1, BLOB_LIST_PAGE_SIZE);
        // The prefix ends in `/`, so a sibling prefix (`live-old` beside `live`) is not
        // listed.
        let prefix = self.name_prefix();
        let options = PaginatedListOptions {
            offset: cursor.map(|c| format!("{prefix}{}", c.as_str())),
            max_keys: Some(limit),
            ..PaginatedListOptions::default()
        };
        let listed = self
            .store
            .list_paginated((!prefix.is_empty()).then_some(prefix.as_str()), options)
            .await
            .map_err(|e| self.list_failed(&self.detail(&e)))?;
        let mut keys = Vec::with_capacity(listed.result.objects.len());
        let mut last = None;
        for object in &listed.result.objects {
            let Some(name) = object.location.as_ref().strip_prefix(prefix.as_str()) else {
                continue;
            };
            if last.is_none_or(|l: &str| name > l) {
                last = Some(name);
            }
            // Anything else under the prefix was not written by a blob store.
            if let Ok(key) = BlobKey::new(name) {
                keys.push(key);
            }
        }
        keys.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        let next = match (listed.page_token, last) {
            (None, _) => None,
            (Some(_), Some(last)) => Some(BlobCursor::new(last)),
            (Some(_), None) => {
                return Err(self.list_failed(
                    "the store said the listing goes on but named no object to go on after",
                ))
            }
        };
        Ok(BlobPage { keys, next })
    }
}

#[cfg(test)]
mod tests;
