//! Households, their members and the invitations that bring members in.
use crate::rows::{
    HouseholdMembershipRow, HouseholdRow, InvitationRow, MemberRow, MembershipRow,
    RecentInvitationsRow,
};
use crate::{backend, begin, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{
    AccountId, Household, HouseholdId, Invitation, Member, MemberStatus, Membership, Role,
};
use pawpost_store::stored::{already_there, found, invitation_spent, parse, whole_ms};
use pawpost_store::{columns, select, RecentInvitations, Redemption, StoreResult};
use sqlx::PgPool;
use time::OffsetDateTime;

pub(crate) async fn create_household(
    pool: &PgPool,
    h: &Household,
    owner: AccountId,
) -> StoreResult<()> {
    let mut tx = begin(pool).await?;
    sqlx::query("INSERT INTO households (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(h.id.0)
        .bind(&h.name)
        .bind(whole_ms(h.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    sqlx::query(concat!(
        "INSERT INTO memberships (",
        columns!(memberships),
        ") VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(h.id.0)
    .bind(owner.0)
    .bind(Role::Owner.as_str())
    .bind(MemberStatus::Approved.as_str())
    .bind(whole_ms(h.created_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)
}

pub(crate) async fn household(pool: &PgPool, id: HouseholdId) -> StoreResult<Option<Household>> {
    let query = sqlx::query_as::<_, HouseholdRow>(
        "SELECT id, name, created_at FROM households WHERE id = $1",
    )
    .bind(id.0);
    fetch_optional(pool, query).await
}

pub(crate) async fn rename_household(
    pool: &PgPool,
    id: HouseholdId,
    name: &str,
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE households SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(id.0);
    found(execute(pool, query).await?, "household")
}

pub(crate) async fn households_of(
    pool: &PgPool,
    account: AccountId,
) -> StoreResult<Vec<(Household, Membership)>> {
    let query = sqlx::query_as::<_, HouseholdMembershipRow>(
        "SELECT h.id, h.name, h.created_at, m.household_id, m.account_id, m.role, m.status, m.joined_at \
         FROM memberships m JOIN households h ON h.id = m.household_id \
         WHERE m.account_id = $1 AND NOT m.has_left ORDER BY h.created_at, h.id",
    )
    .bind(account.0);
    fetch_all(pool, query).await
}

pub(crate) async fn membership(
    pool: &PgPool,
    household: HouseholdId,
    account: AccountId,
) -> StoreResult<Option<Membership>> {
    let query = sqlx::query_as::<_, MembershipRow>(select!(
        memberships,
        "WHERE household_id = $1 AND account_id = $2"
    ))
    .bind(household.0)
    .bind(account.0);
    fetch_optional(pool, query).await
}

pub(crate) async fn members(pool: &PgPool, household: HouseholdId) -> StoreResult<Vec<Member>> {
    let query = sqlx::query_as::<_, MemberRow>(
        "SELECT m.household_id, m.account_id, m.role, m.status, m.joined_at, a.display_name, a.email \
         FROM memberships m JOIN accounts a ON a.id = m.account_id \
         WHERE m.household_id = $1 ORDER BY m.joined_at, m.account_id",
    )
    .bind(household.0);
    fetch_all(pool, query).await
}

pub(crate) async fn update_member(
    pool: &PgPool,
    household: HouseholdId,
    account: AccountId,
    role: Role,
    status: MemberStatus,
) -> StoreResult<()> {
    if status != MemberStatus::Blocked {
        let query = sqlx::query(
            "DELETE FROM memberships WHERE household_id = $1 AND account_id = $2 AND has_left",
        )
        .bind(household.0)
        .bind(account.0);
        let ended = execute(pool, query).await?;
        if ended == 1 {
            return Ok(());
        }
    }
    let query = sqlx::query(
        "UPDATE memberships SET role = $1, status = $2 WHERE household_id = $3 AND account_id = $4",
    )
    .bind(role.as_str())
    .bind(status.as_str())
    .bind(household.0)
    .bind(account.0);
    found(execute(pool, query).await?, "membership")
}

pub(crate) async fn remove_member(
    pool: &PgPool,
    household: HouseholdId,
    account: AccountId,
) -> StoreResult<()> {
    // Each statement checks the status itself, so that a block set meanwhile is never
    // deleted with the row.
    let query = sqlx::query(
        "DELETE FROM memberships WHERE household_id = $1 AND account_id = $2 AND status <> $3",
    )
    .bind(household.0)
    .bind(account.0)
    .bind(MemberStatus::Blocked.as_str());
    let done = execute(pool, query).await?;
    if done == 1 {
        return Ok(());
    }
    let query = sqlx::query(
        "UPDATE memberships SET has_left = true WHERE household_id = $1 AND account_id = $2 AND status = $3",
    )
    .bind(household.0)
    .bind(account.0)
    .bind(MemberStatus::Blocked.as_str());
    found(execute(pool, query).await?, "membership")
}

pub(crate) async fn create_invitation(pool: &PgPool, i: &Invitation) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO invitations (id, household_id, token_hash, role, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(i.id.0)
    .bind(i.household_id.0)
    .bind(i.token_hash.as_slice())
    .bind(i.role.as_str())
    .bind(i.created_by.0)
    .bind(whole_ms(i.created_at))
    .bind(whole_ms(i.expires_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "an invitation with this token"))?;
    Ok(())
}

pub(crate) async fn recent_invitations(
    pool: &PgPool,
    household: HouseholdId,
    account: AccountId,
    since: OffsetDateTime,
) -> StoreResult<RecentInvitations> {
    sqlx::query_as::<_, RecentInvitationsRow>(
        "SELECT \
           (SELECT COUNT(*) FROM invitations WHERE created_by = $1 AND created_at >= $3) AS by_account, \
           (SELECT MIN(created_at) FROM invitations WHERE created_by = $1 AND created_at >= $3) AS by_account_oldest, \
           (SELECT COUNT(*) FROM invitations WHERE household_id = $2 AND created_at >= $3) AS in_household, \
           (SELECT MIN(created_at) FROM invitations WHERE household_id = $2 AND created_at >= $3) AS in_household_oldest",
    )
    .bind(account.0)
    .bind(household.0)
    .bind(whole_ms(since))
    .fetch_one(pool)
    .await
    .map_err(backend)?
    .try_into()
}

pub(crate) async fn redeem_invitation(
    pool: &PgPool,
    token_hash: &[u8; 32],
    account: AccountId,
    now: OffsetDateTime,
) -> StoreResult<Redemption> {
    let now = whole_ms(now);
    // Every early return drops `tx`, which rolls it back: nothing is spent unless
    // the membership is written too.
    let mut tx = begin(pool).await?;
    // FOR UPDATE queues concurrent redeemers of one token behind this one; once it
    // commits, the next sees `used_at` set and gets `Spent`.
    let Some(invitation) = sqlx::query_as::<_, InvitationRow>(
        "SELECT household_id, role, expires_at, used_at FROM invitations WHERE token_hash = $1 FOR UPDATE",
    )
    .bind(token_hash.as_slice())
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?
    else {
        return Ok(Redemption::Unknown);
    };
    let household = HouseholdId(invitation.household_id);
    let role: Role = parse(&invitation.role, "role")?;
    if invitation_spent(invitation.used_at.is_some(), invitation.expires_at, now) {
        return Ok(Redemption::Spent);
    }
    let existing: Option<String> = sqlx::query_scalar(
        "SELECT status FROM memberships WHERE household_id = $1 AND account_id = $2",
    )
    .bind(household.0)
    .bind(account.0)
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    if let Some(status) = existing {
        return Ok(already_there(parse(&status, "status")?, household));
    }
    let spent = sqlx::query(
        "UPDATE invitations SET used_by = $1, used_at = $2 WHERE token_hash = $3 AND used_at IS NULL",
    )
    .bind(account.0)
    .bind(now)
    .bind(token_hash.as_slice())
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if spent.rows_affected() != 1 {
        return Ok(Redemption::Spent);
    }
    // The same account redeeming a second invitation of this household at the same
    // moment: the row lock above does not cover that, the primary key does. The
    // loser rolls back, so its invitation stays unused, as `AlreadyMember` promises.
    let inserted = sqlx::query(concat!(
        "INSERT INTO memberships (",
        columns!(memberships),
        ") VALUES ($1, $2, $3, $4, $5) ON CONFLICT (household_id, account_id) DO NOTHING"
    ))
    .bind(household.0)
    .bind(account.0)
    .bind(role.as_str())
    .bind(MemberStatus::Pending.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    if inserted.rows_affected() != 1 {
        return Ok(Redemption::AlreadyMember(household));
    }
    tx.commit().await.map_err(backend)?;
    Ok(Redemption::Joined(Membership {
        household_id: household,
        account_id: account,
        role,
        status: MemberStatus::Pending,
        joined_at: now,
    }))
}
