//! Households, their members and the invitations that bring members in.
use crate::rows::{
    HouseholdMembershipRow, HouseholdRow, InvitationCountRow, InvitationRow, MemberRow,
    MembershipRow,
};
use crate::write::to_the_end;
use crate::{backend, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{
    AccountId, Household, HouseholdId, Invitation, Member, MemberStatus, Membership, Role,
};
use pawpost_store::stored::{self, already_there, found, invitation_spent, parse, to_ms};
use pawpost_store::{columns, select, RecentInvitations, Redemption, StoreResult};
use sqlx::SqlitePool;
use time::OffsetDateTime;

/// Runs [`create_household_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn create_household(
    pool: &SqlitePool,
    h: &Household,
    owner: AccountId,
) -> StoreResult<()> {
    let pool = pool.clone();
    let h = h.clone();
    to_the_end(async move { create_household_now(&pool, &h, owner).await }).await
}

async fn create_household_now(
    pool: &SqlitePool,
    h: &Household,
    owner: AccountId,
) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    sqlx::query("INSERT INTO households (id, name, created_at) VALUES (?, ?, ?)")
        .bind(h.id.to_string())
        .bind(&h.name)
        .bind(to_ms(h.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query(concat!(
        "INSERT INTO memberships (",
        columns!(memberships),
        ") VALUES (?, ?, 'owner', 'approved', ?)"
    ))
    .bind(h.id.to_string())
    .bind(owner.to_string())
    .bind(to_ms(h.created_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn household(
    pool: &SqlitePool,
    id: HouseholdId,
) -> StoreResult<Option<Household>> {
    let query = sqlx::query_as::<_, HouseholdRow>(
        "SELECT id, name, created_at FROM households WHERE id = ?",
    )
    .bind(id.to_string());
    fetch_optional(pool, query).await
}

pub(crate) async fn rename_household(
    pool: &SqlitePool,
    id: HouseholdId,
    name: &str,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE households SET name = ? WHERE id = ?")
        .bind(name)
        .bind(id.to_string());
    found(execute(pool, query).await?, "household")
}

pub(crate) async fn households_of(
    pool: &SqlitePool,
    account: AccountId,
) -> StoreResult<Vec<(Household, Membership)>> {
    let query = sqlx::query_as::<_, HouseholdMembershipRow>(
        "SELECT h.id, h.name, h.created_at, m.household_id, m.account_id, m.role, m.status, m.joined_at \
         FROM memberships m JOIN households h ON h.id = m.household_id \
         WHERE m.account_id = ? AND m.has_left = 0 ORDER BY h.created_at",
    )
    .bind(account.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn membership(
    pool: &SqlitePool,
    household: HouseholdId,
    account: AccountId,
) -> StoreResult<Option<Membership>> {
    let query = sqlx::query_as::<_, MembershipRow>(select!(
        memberships,
        "WHERE household_id = ? AND account_id = ?"
    ))
    .bind(household.to_string())
    .bind(account.to_string());
    fetch_optional(pool, query).await
}

pub(crate) async fn members(pool: &SqlitePool, household: HouseholdId) -> StoreResult<Vec<Member>> {
    let query = sqlx::query_as::<_, MemberRow>(
        "SELECT m.household_id, m.account_id, m.role, m.status, m.joined_at, a.display_name, a.email \
         FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.household_id = ? ORDER BY m.joined_at",
    )
    .bind(household.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn update_member(
    pool: &SqlitePool,
    household: HouseholdId,
    account: AccountId,
    role: Role,
    status: MemberStatus,
) -> StoreResult<()> {
    if status != MemberStatus::Blocked {
        let query = sqlx::query(
            "DELETE FROM memberships WHERE household_id = ? AND account_id = ? AND has_left = 1",
        )
        .bind(household.to_string())
        .bind(account.to_string());
        let ended = execute(pool, query).await?;
        if ended == 1 {
            return Ok(());
        }
    }
    let query = sqlx::query(
        "UPDATE memberships SET role = ?, status = ? WHERE household_id = ? AND account_id = ?",
    )
    .bind(role.as_str())
    .bind(status.as_str())
    .bind(household.to_string())
    .bind(account.to_string());
    found(execute(pool, query).await?, "membership")
}

pub(crate) async fn remove_member(
    pool: &SqlitePool,
    household: HouseholdId,
    account: AccountId,
) -> StoreResult<()> {
    // Each statement checks the status itself, so that a block set meanwhile is never
    // deleted with the row.
    let query = sqlx::query(
        "DELETE FROM memberships WHERE household_id = ? AND account_id = ? AND status <> 'blocked'",
    )
    .bind(household.to_string())
    .bind(account.to_string());
    let done = execute(pool, query).await?;
    if done == 1 {
        return Ok(());
    }
    let query = sqlx::query(
        "UPDATE memberships SET has_left = 1 WHERE household_id = ? AND account_id = ? AND status = 'blocked'",
    )
    .bind(household.to_string())
    .bind(account.to_string());
    found(execute(pool, query).await?, "membership")
}

pub(crate) async fn create_invitation(pool: &SqlitePool, i: &Invitation) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO invitations (id, household_id, token_hash, role, created_by, created_at, expires_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(i.id.to_string())
    .bind(i.household_id.to_string())
    .bind(i.token_hash.as_slice())
    .bind(i.role.as_str())
    .bind(i.created_by.to_string())
    .bind(to_ms(i.created_at))
    .bind(to_ms(i.expires_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "an invitation with this token"))?;
    Ok(())
}

pub(crate) async fn recent_invitations(
    pool: &SqlitePool,
    household: HouseholdId,
    account: AccountId,
    since: OffsetDateTime,
) -> StoreResult<RecentInvitations> {
    let by_account = sqlx::query_as::<_, InvitationCountRow>(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM invitations \
         WHERE created_by = ? AND created_at >= ?",
    )
    .bind(account.to_string())
    .bind(to_ms(since))
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    let in_household = sqlx::query_as::<_, InvitationCountRow>(
        "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM invitations \
         WHERE household_id = ? AND created_at >= ?",
    )
    .bind(household.to_string())
    .bind(to_ms(since))
    .fetch_one(pool)
    .await
    .map_err(backend)?;
    Ok(RecentInvitations {
        by_account: by_account.try_into()?,
        in_household: in_household.try_into()?,
    })
}

/// Runs [`redeem_invitation_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn redeem_invitation(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    account: AccountId,
    now: OffsetDateTime,
) -> StoreResult<Redemption> {
    let pool = pool.clone();
    let token_hash = *token_hash;
    to_the_end(async move { redeem_invitation_now(&pool, &token_hash, account, now).await }).await
}

async fn redeem_invitation_now(
    pool: &SqlitePool,
    token_hash: &[u8; 32],
    account: AccountId,
    now: OffsetDateTime,
) -> StoreResult<Redemption> {
    // The write lock is taken first (BEGIN IMMEDIATE); the conditional UPDATE below is the guard too:
    // only one redeemer can flip `used_at` from NULL.
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let Some(invitation) = sqlx::query_as::<_, InvitationRow>(
        "SELECT household_id, role, expires_at, used_at FROM invitations WHERE token_hash = ?",
    )
    .bind(token_hash.as_slice())
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?
    else {
        return Ok(Redemption::Unknown);
    };
    let household = HouseholdId(stored::uuid(&invitation.household_id, "household_id")?);
    let role: Role = parse(&invitation.role, "role")?;
    let expires_at = stored::from_ms(invitation.expires_at)?;
    if invitation_spent(
        invitation.used_at.is_some(),
        expires_at,
        stored::whole_ms(now),
    ) {
        return Ok(Redemption::Spent);
    }
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT status FROM memberships WHERE household_id = ? AND account_id = ?",
    )
    .bind(household.to_string())
    .bind(account.to_string())
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    if let Some(status) = existing {
        return Ok(already_there(parse(&status, "status")?, household));
    }
    let spent = sqlx::query(
        "UPDATE invitations SET used_by = ?, used_at = ? WHERE token_hash = ? AND used_at IS NULL",
    )
    .bind(account.to_string())
    .bind(to_ms(now))
    .bind(token_hash.as_slice())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if spent.rows_affected() != 1 {
        return Ok(Redemption::Spent);
    }
    sqlx::query(concat!(
        "INSERT INTO memberships (",
        columns!(memberships),
        ") VALUES (?, ?, ?, 'pending', ?)"
    ))
    .bind(household.to_string())
    .bind(account.to_string())
    .bind(role.as_str())
    .bind(to_ms(now))
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, "a membership in this household"))?;
    tx.commit().await.map_err(backend)?;
    Ok(Redemption::Joined(Membership {
        household_id: household,
        account_id: account,
        role,
        status: MemberStatus::Pending,
        joined_at: now,
    }))
}
