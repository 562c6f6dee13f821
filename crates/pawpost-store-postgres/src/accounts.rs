//! Accounts, their sessions, their links to choose a new password, and their links to
//! confirm their email address.
use crate::rows::{AccountRow, EmailVerificationRow, PasswordResetRow, SessionRow};
use crate::{backend, begin, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{Account, AccountId, Email, Session};
use pawpost_store::stored::{found, whole_ms};
use pawpost_store::{columns, select, EmailVerification, PasswordReset, StoreResult};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

pub(crate) async fn create_account(pool: &PgPool, a: &Account) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO accounts (",
        columns!(accounts),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(a.id.0)
    .bind(a.email.as_str())
    .bind(&a.display_name)
    .bind(&a.password_hash)
    .bind(whole_ms(a.created_at))
    .bind(a.locked)
    .bind(a.email_verified_at.map(whole_ms))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "an account with this email address"))?;
    Ok(())
}

pub(crate) async fn account_by_email(pool: &PgPool, email: &Email) -> StoreResult<Option<Account>> {
    let query =
        sqlx::query_as::<_, AccountRow>(select!(accounts, "WHERE email = $1")).bind(email.as_str());
    fetch_optional(pool, query).await
}

pub(crate) async fn accounts(pool: &PgPool) -> StoreResult<Vec<Account>> {
    let query = sqlx::query_as::<_, AccountRow>(select!(accounts, "ORDER BY created_at, id"));
    fetch_all(pool, query).await
}

pub(crate) async fn account_by_id(pool: &PgPool, id: AccountId) -> StoreResult<Option<Account>> {
    let query = sqlx::query_as::<_, AccountRow>(select!(accounts, "WHERE id = $1")).bind(id.0);
    fetch_optional(pool, query).await
}

pub(crate) async fn set_password_hash(
    pool: &PgPool,
    id: AccountId,
    password_hash: &str,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(id.0);
    found(execute(pool, query).await?, "account")
}

pub(crate) async fn set_account_locked(
    pool: &PgPool,
    id: AccountId,
    locked: bool,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE accounts SET locked = $1 WHERE id = $2")
        .bind(locked)
        .bind(id.0);
    found(execute(pool, query).await?, "account")
}

pub(crate) async fn create_session(pool: &PgPool, s: &Session) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO sessions (",
        columns!(sessions),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    ))
    .bind(s.id)
    .bind(s.account_id.0)
    .bind(s.token_hash.as_slice())
    .bind(&s.csrf_token)
    .bind(whole_ms(s.created_at))
    .bind(whole_ms(s.expires_at))
    .bind(&s.client_address)
    .bind(&s.user_agent)
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a session with this token"))?;
    Ok(())
}

pub(crate) async fn session_by_token_hash(
    pool: &PgPool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<Session>> {
    let query = sqlx::query_as::<_, SessionRow>(select!(
        sessions,
        "WHERE token_hash = $1 AND expires_at > $2"
    ))
    .bind(token_hash.as_slice())
    .bind(whole_ms(now));
    fetch_optional(pool, query).await
}

pub(crate) async fn account_by_session(
    pool: &PgPool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<Account>> {
    let query = sqlx::query_as::<_, AccountRow>(select!(
        accounts,
        "WHERE id = (SELECT account_id FROM sessions WHERE token_hash = $1 AND expires_at > $2)"
    ))
    .bind(token_hash.as_slice())
    .bind(whole_ms(now));
    fetch_optional(pool, query).await
}

pub(crate) async fn sessions_of(
    pool: &PgPool,
    account: AccountId,
    now: OffsetDateTime,
) -> StoreResult<Vec<Session>> {
    let query = sqlx::query_as::<_, SessionRow>(select!(
        sessions,
        "WHERE account_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id DESC"
    ))
    .bind(account.0)
    .bind(whole_ms(now));
    fetch_all(pool, query).await
}

pub(crate) async fn delete_session(pool: &PgPool, id: Uuid) -> StoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn delete_other_sessions(
    pool: &PgPool,
    account: AccountId,
    keep: Uuid,
) -> StoreResult<u64> {
    let query = sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id <> $2")
        .bind(account.0)
        .bind(keep);
    execute(pool, query).await
}

pub(crate) async fn delete_expired_sessions(
    pool: &PgPool,
    now: OffsetDateTime,
) -> StoreResult<u64> {
    let query = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(whole_ms(now));
    execute(pool, query).await
}

pub(crate) async fn create_password_reset(pool: &PgPool, r: &PasswordReset) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO password_resets (",
        columns!(password_resets),
        ") VALUES ($1, $2, $3, $4)"
    ))
    .bind(r.token_hash.as_slice())
    .bind(r.account_id.0)
    .bind(whole_ms(r.created_at))
    .bind(whole_ms(r.expires_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a password reset with this token"))?;
    Ok(())
}

pub(crate) async fn password_reset(
    pool: &PgPool,
    token_hash: &[u8; 32],
) -> StoreResult<Option<PasswordReset>> {
    let query =
        sqlx::query_as::<_, PasswordResetRow>(select!(password_resets, "WHERE token_hash = $1"))
            .bind(token_hash.as_slice());
    fetch_optional(pool, query).await
}

pub(crate) async fn take_password_reset(
    pool: &PgPool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<AccountId>> {
    // One statement: of two takes at once, the second waits for the first's row lock
    // and then finds the row gone.
    let account: Option<Uuid> = sqlx::query_scalar(
        "DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 RETURNING account_id",
    )
    .bind(token_hash.as_slice())
    .bind(whole_ms(now))
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(account.map(AccountId))
}

pub(crate) async fn delete_password_resets_of(
    pool: &PgPool,
    account: AccountId,
) -> StoreResult<u64> {
    let query = sqlx::query("DELETE FROM password_resets WHERE account_id = $1").bind(account.0);
    execute(pool, query).await
}

pub(crate) async fn delete_expired_password_resets(
    pool: &PgPool,
    cutoff: OffsetDateTime,
) -> StoreResult<u64> {
    let query =
        sqlx::query("DELETE FROM password_resets WHERE expires_at <= $1").bind(whole_ms(cutoff));
    execute(pool, query).await
}

pub(crate) async fn create_email_verification(
    pool: &PgPool,
    link: &EmailVerification,
    most: u32,
    since: OffsetDateTime,
) -> StoreResult<Option<OffsetDateTime>> {
    let account = link.account_id.0;
    let since = whole_ms(since);
    // Every early return drops `tx`, which rolls it back.
    let mut tx = begin(pool).await?;
    // The account's row lock queues other processes' links for the same account behind
    // this one, so that the count below stays true until the insert.
    sqlx::query("SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE")
        .bind(account)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query("DELETE FROM email_verifications WHERE account_id = $1 AND expires_at < $2")
        .bind(account)
        .bind(since)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let (count, oldest): (i64, Option<OffsetDateTime>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(created_at) FROM email_verifications WHERE account_id = $1 AND created_at >= $2",
    )
    .bind(account)
    .bind(since)
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    if count >= i64::from(most) {
        return Ok(oldest);
    }
    sqlx::query(concat!(
        "INSERT INTO email_verifications (",
        columns!(email_verifications),
        ") VALUES ($1, $2, $3, $4)"
    ))
    .bind(link.token_hash.as_slice())
    .bind(account)
    .bind(whole_ms(link.created_at))
    .bind(whole_ms(link.expires_at))
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, "an email verification with this token"))?;
    tx.commit().await.map_err(backend)?;
    Ok(None)
}

pub(crate) async fn email_verification(
    pool: &PgPool,
    token_hash: &[u8; 32],
) -> StoreResult<Option<EmailVerification>> {
    let query = sqlx::query_as::<_, EmailVerificationRow>(select!(
        email_verifications,
        "WHERE token_hash = $1"
    ))
    .bind(token_hash.as_slice());
    fetch_optional(pool, query).await
}

pub(crate) async fn confirm_email_verification(
    pool: &PgPool,
    token_hash: &[u8; 32],
    now: OffsetDateTime,
) -> StoreResult<Option<AccountId>> {
    let now = whole_ms(now);
    let mut tx = begin(pool).await?;
    // Of two uses at once, the second waits for the first's row lock and then finds the
    // row gone.
    let account: Option<Uuid> = sqlx::query_scalar(
        "DELETE FROM email_verifications WHERE token_hash = $1 AND expires_at > $2 RETURNING account_id",
    )
    .bind(token_hash.as_slice())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    let Some(account) = account else {
        return Ok(None);
    };
    mark_verified(&mut tx, account, now).await?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(AccountId(account)))
}

/// Sets the account's `email_verified_at` unless it is set, and deletes its links;
/// returns whether it was unset.
async fn mark_verified(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    account: Uuid,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let marked = sqlx::query(
        "UPDATE accounts SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL",
    )
    .bind(whole_ms(at))
    .bind(account)
    .execute(&mut **tx)
    .await
    .map_err(backend)?
    .rows_affected();
    sqlx::query("DELETE FROM email_verifications WHERE account_id = $1")
        .bind(account)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(marked == 1)
}

pub(crate) async fn set_email_verified(
    pool: &PgPool,
    account: AccountId,
    at: OffsetDateTime,
) -> StoreResult<bool> {
    let mut tx = begin(pool).await?;
    let marked = mark_verified(&mut tx, account.0, at).await?;
    tx.commit().await.map_err(backend)?;
    Ok(marked)
}
