//! Accounts, their sessions, their links to choose a new password, and their links to
//! confirm their email address.
use crate::rows::{AccountRow, EmailVerificationRow, PasswordResetRow, SessionRow};
use crate::write::to_the_end;
use crate::{backend, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{Account, AccountId, Email, Session};
use pawpost_store::stored::{found, from_ms, to_ms, uuid};
use pawpost_store::{columns, select, EmailVerification, PasswordReset, StoreResult};
use sqlx::SqlitePool;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn create_account(pool: &SqlitePool, a: &Account) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO accounts (",
        columns!(accounts),
        ") VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(a.id.to_string())
    .bind(a.email.as_str())
    .bind(&a.display_name)
    .bind(&a.password_hash)
    .bind(to_ms(a.created_at))
    .bind(i64::from(a.locked))
    .bind(a.email_verified_at.map(to_ms))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "an account with this email address"))?;
    Ok(())
}

pub(crate) async fn account_by_email(
    pool: &SqlitePool,
    email: &Email,
) -> StoreResult<Option<Account>> {
    let query =
        sqlx::query_as::<_, AccountRow>(select!(accounts, "WHERE email = ?")).bind(email.as_str());
    fetch_optional(pool, query).await
}

pub(crate) async fn accounts(pool: &SqlitePool) -> StoreResult<Vec<Account>> {
    let query = sqlx::query_as::<_, AccountRow>(select!(accounts, "ORDER BY created_at"));
    fetch_all(pool, query).await
}

pub(crate) async fn account_by_id(
    pool: &SqlitePool,
    id: AccountId,
) -> StoreResult<Option<Account>> {
    let query =
        sqlx::query_as::<_, AccountRow>(select!(accounts, "WHERE id = ?")).bind(id.to_string());
    fetch_optional(pool, query).await
}

pub(crate) async fn set_password_hash(
    pool: &SqlitePool,
    id: AccountId,
    password_hash: &str,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE accounts SET password_hash = ? WHERE id = ?")
        .bind(password_hash)
        .bind(id.to_string());
    found(execute(pool, query).await?, "account")
}

pub(crate) async fn set_account_locked(
    pool: &SqlitePool,
    id: AccountId,
    locked: bool,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE accounts SET locked = ? WHERE id = ?")
        .bind(i64::from(locked))
        .bind(id.to_string());
    found(execute(pool, query).await?, "account")
}

pub(crate) async fn create_session(pool: &SqlitePool, s: &Session) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO sessions (",
        columns!(sessions),
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(s.id.to_string())
    .bind(s.account_id.to_string())
    .bind(s.token_hash.as_slice())
    .bind(&s.csrf_token)
    .bind(to_ms(s.created_at))
    .bind(to_ms(s.expires_at))
    .bind(&s.client_address)
    .bind(&s.user_agent)
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a session with this token"))?;
    Ok(())
}

pub(crate) async fn session_by_token_hash(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<Session>> {
    let query = sqlx::query_as::<_, SessionRow>(select!(
        sessions,
        "WHERE token_hash = ? AND expires_at > ?"
    ))
    .bind(token_hash.as_slice())
    .bind(to_ms(now));
    fetch_optional(pool, query).await
}

pub(crate) async fn account_by_session(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<Account>> {
    let query = sqlx::query_as::<_, AccountRow>(select!(
        accounts,
        "WHERE id = (SELECT account_id FROM sessions WHERE token_hash = ? AND expires_at > ?)"
    ))
    .bind(token_hash.as_slice())
    .bind(to_ms(now));
    fetch_optional(pool, query).await
}

pub(crate) async fn sessions_of(
    pool: &SqlitePool,
    account: AccountId,
    now: OffsetDateTime,
) -> StoreResult<Vec<Session>> {
    let query = sqlx::query_as::<_, SessionRow>(select!(
        sessions,
        "WHERE account_id = ? AND expires_at > ? ORDER BY created_at DESC"
    ))
    .bind(account.to_string())
    .bind(to_ms(now));
    fetch_all(pool, query).await
}

pub(crate) async fn delete_session(pool: &SqlitePool, id: Uuid) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE id = ?")
        .bind(id.to_string())
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn delete_other_sessions(
    pool: &SqlitePool,
    account: AccountId,
    keep: Uuid,
) -> StoreResult<u64> {
    let query = sqlx::query("DELETE FROM sessions WHERE account_id = ? AND id <> ?")
        .bind(account.to_string())
        .bind(keep.to_string());
    execute(pool, query).await
}

pub(crate) async fn delete_expired_sessions(
    pool: &SqlitePool,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    let query = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?").bind(to_ms(now));
    execute(pool, query).await
}

pub(crate) async fn create_password_reset(pool: &SqlitePool, r: &PasswordReset) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO password_resets (",
        columns!(password_resets),
        ") VALUES (?, ?, ?, ?)"
    ))
    .bind(r.token_hash.as_slice())
    .bind(r.account_id.to_string())
    .bind(to_ms(r.created_at))
    .bind(to_ms(r.expires_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a password reset with this token"))?;
    Ok(())
}

pub(crate) async fn password_reset(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
) -> StoreResult<Option<PasswordReset>> {
    let query =
        sqlx::query_as::<_, PasswordResetRow>(select!(password_resets, "WHERE token_hash = ?"))
            .bind(token_hash.as_slice());
    fetch_optional(pool, query).await
}

pub(crate) async fn take_password_reset(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<AccountId>> {
    // One statement: SQLite runs it under the database's write lock, so of two takes
    // only one finds the row.
    let account: Option<String> = sqlx::query_scalar(
        "DELETE FROM password_resets WHERE token_hash = ? AND expires_at > ? RETURNING account_id",
    )
    .bind(token_hash.as_slice())
    .bind(to_ms(now))
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    account
        .map(|id| uuid(&id, "account_id").map(AccountId))
        .transpose()
}

pub(crate) async fn delete_password_resets_of(
    pool: &SqlitePool,
    account: AccountId,
) -> StoreResult<u64> {
    let query =
        sqlx::query("DELETE FROM password_resets WHERE account_id = ?").bind(account.to_string());
    execute(pool, query).await
}

pub(crate) async fn delete_expired_password_resets(
    pool: &SqlitePool,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let query =
        sqlx::query("DELETE FROM password_resets WHERE expires_at <= ?").bind(to_ms(cutoff));
    execute(pool, query).await
}

/// Runs [`create_email_verification_now`] to its end in a task of its own, its write
/// lock taken first (see [`crate::write::to_the_end`]): the count and the insert see
/// the same links.
pub(crate) async fn create_email_verification(
    pool: &SqlitePool,
    link: &EmailVerification,
    most: u32,
    since: OffsetDateTime,
) -> StoreResult<Option<OffsetDateTime>> {
    let pool = pool.clone();
    let link = link.clone();
    to_the_end(async move { create_email_verification_now(&pool, &link, most, since).await }).await
}

async fn create_email_verification_now(
    pool: &SqlitePool,
    link: &EmailVerification,
    most: u32,
    since: OffsetDateTime,
) -> StoreResult<Option<OffsetDateTime>> {
    let account = link.account_id.to_string();
    let since = to_ms(since);
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::query("DELETE FROM email_verifications WHERE account_id = ? AND expires_at < ?")
        .bind(&account)
        .bind(since)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let (count, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM email_verifications WHERE account_id = ? AND created_at >= ?",
    )
    .bind(&account)
    .bind(since)
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if count >= i64::from(most) {
        // `tx` rolls back when dropped; the deletion of old links can wait.
        return oldest.map(from_ms).transpose();
    }
    sqlx::query(concat!(
        "INSERT INTO email_verifications (",
        columns!(email_verifications),
        ") VALUES (?, ?, ?, ?)"
    ))
    .bind(link.token_hash.as_slice())
    .bind(&account)
    .bind(to_ms(link.created_at))
    .bind(to_ms(link.expires_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, "an email verification with this token"))?;
    tx.commit().await.map_err(backend)?;
    Ok(None)
}

pub(crate) async fn email_verification(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
) -> StoreResult<Option<EmailVerification>> {
    let query = sqlx::query_as::<_, EmailVerificationRow>(select!(
        email_verifications,
        "WHERE token_hash = ?"
    ))
    .bind(token_hash.as_slice());
    fetch_optional(pool, query).await
}

/// Runs [`confirm_email_verification_now`] to its end in a task of its own (see
/// [`crate::write::to_the_end`]).
pub(crate) async fn confirm_email_verification(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<AccountId>> {
    let pool = pool.clone();
    let token_hash = *token_hash;
    to_the_end(async move { confirm_email_verification_now(&pool, &token_hash, now).await }).await
}

async fn confirm_email_verification_now(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<AccountId>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let account: Option<String> = sqlx::query_scalar(
        "DELETE FROM email_verifications WHERE token_hash = ? AND expires_at > ? RETURNING account_id",
    )
    .bind(token_hash.as_slice())
    .bind(to_ms(now))
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let Some(account) = account else {
        return Ok(None);
    };
    mark_verified(&mut tx, &account, now).await?;
    tx.commit().await.map_err(backend)?;
    uuid(&account, "account_id").map(|id| Some(AccountId(id)))
}

/// Sets the account's `email_verified_at` unless it is set, and deletes its links;
/// returns whether it was unset.
async fn mark_verified(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    account: &str,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let marked = sqlx::query(
        "UPDATE accounts SET email_verified_at = ? WHERE id = ? AND email_verified_at IS NULL",
    )
    .bind(to_ms(at))
    .bind(account)
    .execute(&mut **tx)
    .await
    .map_err(backend)?
    .rows_affected();
    sqlx::query("DELETE FROM email_verifications WHERE account_id = ?")
        .bind(account)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(marked == 1)
}

/// Runs [`set_email_verified_now`] to its end in a task of its own (see
/// [`crate::write::to_the_end`]).
pub(crate) async fn set_email_verified(
    pool: &SqlitePool,
    account: AccountId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let pool = pool.clone();
    to_the_end(async move { set_email_verified_now(&pool, account, at).await }).await
}

async fn set_email_verified_now(
    pool: &SqlitePool,
    account: AccountId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let marked = mark_verified(&mut tx, &account.to_string(), at).await?;
    tx.commit().await.map_err(backend)?;
    Ok(marked)
}
