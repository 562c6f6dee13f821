//! The PostgreSQL side: `pg_dump` of pawpost's schema, and its restore with
//! `pg_restore` and `psql` in one transaction.
//!
//! The client tools read the URL the server uses, with its password moved into
//! `PGPASSWORD` so that it never appears in a process listing.
use crate::error::BackupError;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};
use std::path::Path;
use tokio::process::Command;

/// `pg_dump`'s URL and the password taken out of it.
fn tool_url(url: &str) -> Result<(String, Option<String>), BackupError> {
    // The URL may carry a password, so it is not repeated in the error.
    let mut parsed = url::Url::parse(url)
        .map_err(|e| BackupError::Postgres(format!("bad PostgreSQL URL: {e}")))?;
    let password = parsed.password().map(percent_decode);
    if password.is_some() {
        parsed
            .set_password(None)
            .map_err(|()| BackupError::Postgres("cannot separate the URL's password".into()))?;
    }
    Ok((parsed.into(), password))
}

/// The URL keeps its password percent-encoded; `PGPASSWORD` wants it plain.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tool(program: &'static str, url: &str) -> Result<Command, BackupError> {
    let (url, password) = tool_url(url)?;
    let mut command = Command::new(program);
    command.arg(format!("--dbname={url}"));
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    // psql must not pick up a user's ~/.psqlrc settings mid-restore.
    command.env("PSQLRC", "/dev/null");
    Ok(command)
}

async fn run(program: &'static str, mut command: Command) -> Result<Vec<u8>, BackupError> {
    let output = command.output().await.map_err(|e| BackupError::Tool {
        program,
        message: format!("cannot run it: {e}"),
    })?;
    if !output.status.success() {
        return Err(BackupError::Tool {
            program,
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output.stdout)
}

async fn connect(url: &str) -> Result<PgConnection, BackupError> {
    PgConnection::connect(url)
        .await
        .map_err(|e| BackupError::Postgres(format!("cannot connect: {e}")))
}

/// Schema names are written into SQL and `pg_dump` patterns, so only plain lowercase
/// identifiers (what the server itself accepts) are handled.
fn check_schema(schema: &str) -> Result<(), BackupError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    if first_ok
        && schema.len() <= 63
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(())
    } else {
        Err(BackupError::Postgres(format!(
            "schema name {schema:?} is not a plain lowercase identifier"
        )))
    }
}

/// The schema pawpost's tables live in: the configured one, or the URL's default.
pub async fn schema_of(url: &str, configured: Option<&str>) -> Result<String, BackupError> {
    let schema = match configured {
        Some(s) => s.to_owned(),
        None => {
            let mut conn = connect(url).await?;
            let row = sqlx::query("SELECT coalesce(current_schema(), 'public') AS s")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| BackupError::Postgres(e.to_string()))?;
            let _ = conn.close().await;
            row.get::<String, _>("s")
        }
    };
    check_schema(&schema)?;
    Ok(schema)
}

/// A consistent dump (pg_dump reads in one repeatable-read snapshot) of `schema`,
/// without the rows of [`crate::TABLES_LEFT_OUT`].
pub async fn dump(url: &str, schema: &str, dest: &Path) -> Result<(), BackupError> {
    check_schema(schema)?;
    // Created first so that the dump has mode 0600 whatever the umask.
    drop(crate::files::create_private_file(dest)?);
    let mut command = tool("pg_dump", url)?;
    command
        .arg("--format=custom")
        .arg(format!("--schema={schema}"))
        .arg("--no-owner")
        .arg("--no-privileges")
        .args(
            crate::TABLES_LEFT_OUT
                .iter()
                .map(|table| format!("--exclude-table-data={schema}.{table}")),
        )
        .arg(format!("--file={}", dest.display()));
    run("pg_dump", command).await?;
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .map_err(BackupError::io("cannot sync", &dest))
    })
    .await
    .map_err(|e| BackupError::Postgres(format!("sync task stopped: {e}")))?
}

/// How many relations `schema` holds, or `None` when it does not exist.
pub async fn relations_in(url: &str, schema: &str) -> Result<Option<i64>, BackupError> {
    let mut conn = connect(url).await?;
    let exists = sqlx::query("SELECT 1 FROM pg_namespace WHERE nspname = $1")
        .bind(schema)
        .fetch_optional(&mut conn)
        .await
        .map_err(|e| BackupError::Postgres(e.to_string()))?
        .is_some();
    let result = if exists {
        let row = sqlx::query(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1",
        )
        .bind(schema)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| BackupError::Postgres(e.to_string()))?;
        Some(row.get::<i64, _>("n"))
    } else {
        None
    };
    let _ = conn.close().await;
    Ok(result)
}

/// Restores the dump of schema `source` into schema `target`, in one transaction: a
/// failure or crash part-way leaves the target as it was.
///
/// The dump's own CREATE SCHEMA is left out and made here instead, because whether the
/// target exists (and, for `public`, whether the dump even says CREATE) varies. When the
/// names differ, the dump is restored under `source` and renamed, since `pg_restore`
/// cannot move objects between schemas.
pub async fn restore(
    url: &str,
    dump_file: &Path,
    source: &str,
    target: &str,
    force: bool,
) -> Result<(), BackupError> {
    check_schema(source)?;
    check_schema(target)?;
    let target_state = relations_in(url, target).await?;
    if source != target && relations_in(url, source).await?.is_some() {
        return Err(BackupError::SchemaInUse(source.to_owned()));
    }
    if matches!(target_state, Some(n) if n > 0) && !force {
        return Err(BackupError::TargetHasData(format!(
            "PostgreSQL schema {target} holds {} relations",
            target_state.unwrap_or(0)
        )));
    }

    let work = tempfile::tempdir().map_err(BackupError::io(
        "cannot create a temporary folder",
        std::env::temp_dir(),
    ))?;
    let mut list = Command::new("pg_restore");
    list.arg("--list").arg(dump_file);
    let toc = String::from_utf8_lossy(&run("pg_restore", list).await?).into_owned();
    let kept: String = toc
        .lines()
        .filter(|line| !is_schema_entry(line))
        .map(|line| format!("{line}\n"))
        .collect();
    let list_path = work.path().join("restore.list");
    std::fs::write(&list_path, kept).map_err(BackupError::io("cannot write", &list_path))?;
    let script = work.path().join("restore.sql");
    let mut render = Command::new("pg_restore");
    render
        .arg(format!("--use-list={}", list_path.display()))
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg(format!("--file={}", script.display()))
        .arg(dump_file);
    run("pg_restore", render).await?;

    let mut before = String::new();
    let keep_target = source == target && matches!(target_state, Some(0));
    if !keep_target {
        if target_state.is_some() {
            // Reached only when the schema is empty or `force` was given.
            before.push_str(&format!("DROP SCHEMA \"{target}\" CASCADE;\n"));
        }
        before.push_str(&format!("CREATE SCHEMA \"{source}\";\n"));
    }
    let after = if source == target {
        String::new()
    } else {
        format!("ALTER SCHEMA \"{source}\" RENAME TO \"{target}\";\n")
    };
    let before_path = work.path().join("before.sql");
    let after_path = work.path().join("after.sql");
    std::fs::write(&before_path, before).map_err(BackupError::io("cannot write", &before_path))?;
    std::fs::write(&after_path, after).map_err(BackupError::io("cannot write", &after_path))?;

    let mut psql = tool("psql", url)?;
    psql.args(["--no-psqlrc", "--quiet", "--single-transaction"])
        .args(["-v", "ON_ERROR_STOP=1"])
        .arg(format!("--file={}", before_path.display()))
        .arg(format!("--file={}", script.display()))
        .arg(format!("--file={}", after_path.display()));
    run("psql", psql).await?;
    Ok(())
}

/// A `pg_restore --list` line that creates or comments on a schema, such as
/// `5; 2615 16385 SCHEMA - pawpost postgres` or `3345; 0 0 COMMENT - SCHEMA public owner`.
fn is_schema_entry(line: &str) -> bool {
    if line.starts_with(';') {
        return false;
    }
    let Some((_, rest)) = line.split_once("; ") else {
        return false;
    };
    let mut words = rest.split_whitespace().skip(2);
    matches!(
        (words.next(), words.next(), words.next()),
        (Some("SCHEMA"), Some("-"), _) | (Some("COMMENT"), Some("-"), Some("SCHEMA"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url() {
        let (url, password) =
            tool_url("postgres://pawpost:s%40c+ret@db.example:5432/pp?sslmode=verify-full")
                .unwrap();
        assert_eq!(
            url,
            "postgres://pawpost@db.example:5432/pp?sslmode=verify-full"
        );
        assert_eq!(password.as_deref(), Some("s@c+ret"));
        let (url, password) = tool_url("postgres://postgres@127.0.0.1:5432/test").unwrap();
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/test");
        assert_eq!(password, None);
    }

    #[test]
    fn schema_entries_are_recognised() {
        assert!(is_schema_entry("5; 2615 16385 SCHEMA - pawpost_x postgres"));
        assert!(is_schema_entry(
            "3345; 0 0 COMMENT - SCHEMA public pg_database_owner"
        ));
        assert!(!is_schema_entry(
            "215; 1259 16390 TABLE pawpost_x accounts postgres"
        ));
        assert!(!is_schema_entry("; Archive created at 2025-01-01"));
    }

    #[test]
    fn odd_schema_names_are_refused() {
        assert!(check_schema("pawpost_story_1").is_ok());
        for bad in ["", "Pawpost", "a;drop", "a\"b", "1abc"] {
            assert!(check_schema(bad).is_err(), "{bad}");
        }
    }
}
