//! Connecting, choosing the schema, migrating, and starting transactions.
use crate::{backend, PostgresStore, ACQUIRE_TIMEOUT, MAX_CONNECTIONS, MAX_SCHEMA_NAME_LEN};
use pawpost_store::{StoreError, StoreResult};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`) and applies
    /// pending migrations in the connection's default schema.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let pool = connect(parse_url(url)?).await?;
        Self::migrated(pool).await
    }

    /// Like [`open`](Self::open), but in `schema`, which is created if missing: every
    /// pooled connection starts with `search_path` set to it alone, so tables, the
    /// migration history and every query land there. The database role needs the
    /// CREATE privilege on the database the first time.
    ///
    /// `schema` must be lowercase ASCII letters, digits and underscores, start with a
    /// letter or underscore, not start with `pg_`, and be at most
    /// [`MAX_SCHEMA_NAME_LEN`] bytes: it is written into SQL and connection options, so
    /// anything else is refused before connecting.
    pub async fn open_in_schema(url: &str, schema: &str) -> StoreResult<Self> {
        check_schema_name(schema)?;
        let options = parse_url(url)?.options([("search_path", schema)]);
        let pool = connect(options).await?;
        create_schema(&pool, schema).await?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: PgPool) -> StoreResult<Self> {
        // sqlx holds an advisory lock while migrating, so processes starting together
        // apply each migration once.
        MIGRATOR.run(&pool).await.map_err(|e| {
            StoreError::Backend(format!("migrating the PostgreSQL database failed: {e}"))
        })?;
        let schema: String = sqlx::query_scalar("SELECT current_schema()")
            .fetch_one(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("reading the current schema failed: {e}")))?;
        Ok(Self {
            pool,
            channel: crate::peers::channel_for(&schema),
        })
    }

    /// The pool, for maintenance queries and for closing it.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Creates `schema` unless it exists. A schema is an identifier, which SQL cannot bind,
/// so this is the one statement whose text is built: only from a name that
/// [`check_schema_name`] accepted.
async fn create_schema(pool: &PgPool, schema: &str) -> StoreResult<()> {
    check_schema_name(schema)?;
    let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
        .execute(pool)
        .await;
    match created {
        Ok(_) => Ok(()),
        // Two processes creating the same schema at once: the loser sees the
        // winner's catalog row as a unique violation, and the schema exists.
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "creating schema {schema} failed: {e}"
        ))),
    }
}

/// Starts a transaction in a task of its own, so that a caller that gives up (a client
/// that hangs up, a request timeout) cannot leave the pooled connection inside a
/// transaction nobody ends: sqlx's `begin` counts the transaction only once `BEGIN` has
/// been answered, so a `begin` dropped while it waits would queue no `ROLLBACK`, and
/// whatever the connection's next user wrote would never be committed. Run to its end,
/// `begin` hands back a transaction whose drop rolls it back.
pub(crate) async fn begin(pool: &PgPool) -> StoreResult<sqlx::Transaction<'static, Postgres>> {
    let pool = pool.clone();
    tokio::spawn(async move { pool.begin().await })
        .await
        .map_err(|e| StoreError::Backend(format!("starting a transaction failed: {e}")))?
        .map_err(backend)
}

fn parse_url(url: &str) -> StoreResult<PgConnectOptions> {
    // The URL may carry a password, so it is not repeated in the error.
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Backend(format!("bad PostgreSQL URL: {e}")))
}

async fn connect(options: PgConnectOptions) -> StoreResult<PgPool> {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|e| StoreError::Backend(format!("connecting to PostgreSQL failed: {e}")))
}

fn check_schema_name(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if starts_well && rest_ok && schema.len() <= MAX_SCHEMA_NAME_LEN && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::Backend(format!(
            "schema name {schema:?} refused: use at most {MAX_SCHEMA_NAME_LEN} lowercase ASCII \
             letters, digits and underscores, starting with a letter or underscore, not pg_"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_that_could_inject_sql_are_refused() {
        for bad in [
            "",
            "Pawpost",
            "1st",
            "pg_catalog",
            "a-b",
            "a\"; DROP SCHEMA public CASCADE; --",
            "a b",
            "é",
            &"a".repeat(MAX_SCHEMA_NAME_LEN + 1),
        ] {
            assert!(
                matches!(check_schema_name(bad), Err(StoreError::Backend(_))),
                "{bad:?}"
            );
        }
        for good in [
            "pawpost",
            "_x",
            "pawpost_test_0a1b",
            &"a".repeat(MAX_SCHEMA_NAME_LEN),
        ] {
            check_schema_name(good).unwrap();
        }
    }
}
