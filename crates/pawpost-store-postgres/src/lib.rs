//! The metadata store on PostgreSQL, for deployments where several server processes
//! share one database. It keeps exactly the promises of the SQLite store (the same
//! conformance suite runs against both), on native column types.
//!
//! Each concern keeps its queries in a module of its own (accounts and sessions,
//! households and invitations, devices and pairing, messages, privacy, audit); the rows
//! they read, and how those become domain values, are in `rows`; connecting and
//! migrating in `connect`, the notes between processes in `peers`.
//!
//! # Authentication
//!
//! The database that held the earlier system's accounts answered anyone who reached its
//! port. In production, connect with a password (`postgres://pawpost:SECRET@host/db`,
//! SCRAM on the server side) or a client certificate, and to a remote host with
//! `sslmode=verify-full`. Never configure `trust` authentication for anything but a
//! throwaway test database on a machine of its own. This crate does not refuse a URL
//! without a password, because peer and certificate authentication need none.
//!
//! # Schema
//!
//! Ids are `uuid`, token hashes and keys `bytea`, times `timestamptz`. Times are written
//! truncated to whole milliseconds, as the SQLite store keeps them, so both backends
//! compare and order alike. Migrations live in this crate's `migrations/` folder and are
//! applied on every [`PostgresStore::open`]; applying them again is a no-op.
//!
//! [`PostgresStore::open`] uses the server's `search_path` (usually `public`, or an
//! `options=-c search_path=...` parameter in the URL); [`PostgresStore::open_in_schema`]
//! keeps everything, the migration history included, in a schema of its own.
//!
//! # Tests
//!
//! The tests run against the server named by `PAWPOST_TEST_DATABASE_URL`, each in a
//! schema named at random and dropped afterwards; without that variable they say they
//! are skipped.
#![forbid(unsafe_code)]

mod accounts;
mod audit;
mod certificates;
mod connect;
mod devices;
mod farewells;
mod households;
mod messages;
mod notifications;
mod passkeys;
mod peers;
mod privacy;
mod releases;
mod rows;
mod toys;

use pawpost_store::stored;
use pawpost_store::{Peers, StoreError, StoreResult};
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{FromRow, PgPool, Postgres};
use std::time::Duration;

pub(crate) use connect::begin;

/// Connections in each process's pool. Several processes share one server, whose
/// default `max_connections` is 100, so each takes a bounded share.
pub const MAX_CONNECTIONS: u32 = 10;
/// How long a query waits for a free connection before failing.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest schema name PostgreSQL keeps without truncating it.
pub const MAX_SCHEMA_NAME_LEN: usize = 63;

/// The metadata store on one PostgreSQL database. Clones share one pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// The LISTEN/NOTIFY channel of the processes sharing this schema.
    channel: String,
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn unique_violation(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => backend(e),
    }
}

/// A `SELECT` whose rows are read as `R`.
type Select<'q, R> = sqlx::query::QueryAs<'q, Postgres, R, PgArguments>;

/// Runs `query` and turns every row into its domain value.
async fn fetch_all<R, T>(pool: &PgPool, query: Select<'_, R>) -> StoreResult<Vec<T>>
where
    R: for<'r> FromRow<'r, PgRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::all(query.fetch_all(pool).await.map_err(backend)?)
}

/// Runs `query` and turns the row it found, if any, into its domain value.
async fn fetch_optional<R, T>(pool: &PgPool, query: Select<'_, R>) -> StoreResult<Option<T>>
where
    R: for<'r> FromRow<'r, PgRow> + TryInto<T, Error = StoreError> + Send + Unpin,
{
    stored::one(query.fetch_optional(pool).await.map_err(backend)?)
}

/// A statement that changes rows.
type Change<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// Runs `query`; returns how many rows it changed.
async fn execute(pool: &PgPool, query: Change<'_>) -> StoreResult<u64> {
    Ok(query.execute(pool).await.map_err(backend)?.rows_affected())
}

// Each method runs the query of its concern's module on the pool; the processes
// sharing the database are each other's peers.
pawpost_store::impl_metadata_store! {
    PostgresStore, pool;
    fn peers(&self) -> Option<std::sync::Arc<dyn Peers>> {
        Some(std::sync::Arc::new(self.clone()))
    }
}
