//! Devices (members' browsers and toys), the households' signed rosters, and pairing a
//! toy with a household.
use crate::rows::{ArrivalRow, DeviceRow, PairingRow, RosterRow};
use crate::{backend, begin, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{
    AccountId, Device, DeviceId, HouseholdId, MemberStatus, PairingClaim, PairingClaimant,
    PairingCreated, PendingPairing, StoredRoster,
};
use pawpost_store::stored::{
    bound, claim_step, found, one, to_integer, unsigned, whole_ms, ClaimStep,
};
use pawpost_store::{columns, select, Arrival, StoreResult};
use sqlx::{PgPool, Postgres};
use time::OffsetDateTime;

pub(crate) async fn create_device(pool: &PgPool, d: &Device) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO devices (",
        columns!(devices),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7)"
    ))
    .bind(d.id.0)
    .bind(d.kind.as_str())
    .bind(d.account_id.map(|a| a.0))
    .bind(d.household_id.map(|h| h.0))
    .bind(&d.identity)
    .bind(&d.label)
    .bind(whole_ms(d.created_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a device with this id"))?;
    Ok(())
}

pub(crate) async fn device(pool: &PgPool, id: DeviceId) -> StoreResult<Option<Device>> {
    let query = sqlx::query_as::<_, DeviceRow>(select!(devices, "WHERE id = $1")).bind(id.0);
    fetch_optional(pool, query).await
}

/// The device with what it may have to catch up on, and its household's rosters after
/// `held_roster`, in one statement: one row per such roster (at least one row).
pub(crate) async fn arrival(
    pool: &PgPool,
    id: DeviceId,
    held_roster: u64,
) -> StoreResult<Option<Arrival>> {
    let rows = sqlx::query_as::<_, ArrivalRow>(concat!(
        "SELECT d.*, ro.version AS roster_version, ro.signed AS roster_signed, \
         ro.created_at AS roster_created_at FROM (SELECT ",
        columns!(devices),
        ", (SELECT MAX(version) FROM rosters WHERE rosters.household_id = devices.household_id) \
         AS newest_roster, \
         EXISTS (SELECT 1 FROM receipts WHERE receipts.device_id = devices.id \
         AND receipts.delivered_at IS NULL) AS undelivered, \
         EXISTS (SELECT 1 FROM approvals a JOIN receipts r ON r.message_id = a.message_id \
         WHERE r.device_id = devices.id AND r.played_at IS NULL AND r.refused_at IS NULL) \
         AS approvals_pending, \
         (SELECT names_envelope FROM toy_profiles WHERE toy_device_id = devices.id) \
         AS names_envelope \
         FROM devices WHERE id = $1) AS d \
         LEFT JOIN rosters ro ON ro.household_id = d.household_id AND ro.version > $2 \
         ORDER BY ro.version"
    ))
    .bind(id.0)
    .bind(bound(held_roster))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    crate::rows::arrival(rows)
}

pub(crate) async fn devices_of_account(
    pool: &PgPool,
    account: AccountId,
) -> StoreResult<Vec<Device>> {
    let query = sqlx::query_as::<_, DeviceRow>(select!(
        devices,
        "WHERE account_id = $1 ORDER BY created_at, id"
    ))
    .bind(account.0);
    fetch_all(pool, query).await
}

pub(crate) async fn delete_member_device(
    pool: &PgPool,
    account: AccountId,
    id: DeviceId,
) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM devices WHERE id = $1 AND account_id = $2 AND kind = 'member'")
            .bind(id.0)
            .bind(account.0)
            .execute(pool)
            .await
            .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn devices_of_household(
    pool: &PgPool,
    household: HouseholdId,
) -> StoreResult<Vec<Device>> {
    let query = sqlx::query_as::<_, DeviceRow>(select!(
        devices,
        "WHERE household_id = $1 \
         OR account_id IN (SELECT account_id FROM memberships WHERE household_id = $1 AND status = $2) \
         ORDER BY created_at, id"
    ))
    .bind(household.0)
    .bind(MemberStatus::Approved.as_str());
    fetch_all(pool, query).await
}

pub(crate) async fn update_device_identity(
    pool: &PgPool,
    id: DeviceId,
    identity: &[u8],
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE devices SET identity = $1 WHERE id = $2")
        .bind(identity)
        .bind(id.0);
    found(execute(pool, query).await?, "device")
}

fn roster(household: HouseholdId, r: RosterRow) -> StoreResult<StoredRoster> {
    Ok(StoredRoster {
        household_id: household,
        version: unsigned(r.version, "version")?,
        signed: r.signed,
        created_at: r.created_at,
    })
}

pub(crate) async fn latest_roster(
    pool: &PgPool,
    household: HouseholdId,
) -> StoreResult<Option<StoredRoster>> {
    sqlx::query_as::<_, RosterRow>(
        "SELECT version, signed, created_at FROM rosters WHERE household_id = $1 ORDER BY version DESC LIMIT 1",
    )
    .bind(household.0)
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .map(|r| roster(household, r))
    .transpose()
}

pub(crate) async fn rosters_since(
    pool: &PgPool,
    household: HouseholdId,
    version: u64,
) -> StoreResult<Vec<StoredRoster>> {
    sqlx::query_as::<_, RosterRow>(
        "SELECT version, signed, created_at FROM rosters WHERE household_id = $1 AND version > $2 ORDER BY version",
    )
    .bind(household.0)
    .bind(bound(version))
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .into_iter()
    .map(|r| roster(household, r))
    .collect()
}

pub(crate) async fn insert_roster(pool: &PgPool, r: &StoredRoster) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rosters (household_id, version, signed, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(r.household_id.0)
    .bind(to_integer(r.version, "roster version")?)
    .bind(&r.signed)
    .bind(whole_ms(r.created_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a roster with this version"))?;
    Ok(())
}

/// Serialises pairing writes across processes, as SQLite's single writer does: a
/// creator's live-code check cannot interleave with another creator's insert, and the
/// statements that count a wrong try against every live pairing cannot deadlock with each
/// other or with the clean-up. SHARE ROW EXCLUSIVE conflicts with itself and with other
/// writers, not with readers; pairings are rare and brief, so the queue stays short.
async fn lock_pairings(tx: &mut sqlx::Transaction<'_, Postgres>) -> StoreResult<()> {
    sqlx::query("LOCK TABLE pairings IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

pub(crate) async fn create_pairing(
    pool: &PgPool,
    p: &PendingPairing,
) -> StoreResult<PairingCreated> {
    let created_at = whole_ms(p.created_at);
    let mut tx = begin(pool).await?;
    lock_pairings(&mut tx).await?;
    // Expired pairings are of no further use; going first also clears an expired
    // pairing with this code out of the unique index.
    sqlx::query("DELETE FROM pairings WHERE expires_at <= $1")
        .bind(created_at)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let same_device: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT identity FROM pairings WHERE device_id = $1")
            .bind(p.device_id.0)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
    if same_device.iter().any(|identity| *identity != p.identity) {
        return Ok(PairingCreated::DeviceTaken);
    }
    sqlx::query("DELETE FROM pairings WHERE device_id = $1")
        .bind(p.device_id.0)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let taken = sqlx::query("SELECT 1 FROM pairings WHERE code = $1")
        .bind(&p.code)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    if taken.is_some() {
        return Ok(PairingCreated::CodeTaken);
    }
    sqlx::query(
        "INSERT INTO pairings (code, device_id, identity, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&p.code)
    .bind(p.device_id.0)
    .bind(&p.identity)
    .bind(created_at)
    .bind(whole_ms(p.expires_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(PairingCreated::Created)
}

pub(crate) async fn claim_pairing(
    pool: &PgPool,
    code: &str,
    claimant: &PairingClaimant,
    now: OffsetDateTime,
) -> StoreResult<PairingClaim> {
    let mut tx = begin(pool).await?;
    lock_pairings(&mut tx).await?;
    let row =
        sqlx::query_as::<_, PairingRow>(select!(pairings, "WHERE code = $1 AND expires_at > $2"))
            .bind(code)
            .bind(whole_ms(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let Some(mut pairing) = one::<_, PendingPairing>(row)? else {
        return Ok(PairingClaim::NoMatch);
    };
    let result = match claim_step(&pairing, claimant) {
        ClaimStep::Repeat => PairingClaim::Claimed(pairing),
        ClaimStep::Contest => {
            sqlx::query("DELETE FROM pairings WHERE code = $1")
                .bind(code)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            PairingClaim::Contested(pairing)
        }
        ClaimStep::Record => {
            let confirm_by = whole_ms(claimant.confirm_by);
            sqlx::query(
                "UPDATE pairings SET household_id = $1, claimed_by = $2, confirmation = $3, confirm_by = $4 \
                 WHERE code = $5",
            )
            .bind(claimant.household_id.0)
            .bind(claimant.account_id.0)
            .bind(&claimant.confirmation)
            .bind(confirm_by)
            .bind(code)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            pairing.claim = Some(PairingClaimant {
                confirm_by,
                ..claimant.clone()
            });
            PairingClaim::Claimed(pairing)
        }
    };
    tx.commit().await.map_err(backend)?;
    Ok(result)
}

pub(crate) async fn pairing_of_device(
    pool: &PgPool,
    device: DeviceId,
    now: OffsetDateTime,
) -> StoreResult<Option<PendingPairing>> {
    let query = sqlx::query_as::<_, PairingRow>(select!(
        pairings,
        "WHERE device_id = $1 AND expires_at > $2"
    ))
    .bind(device.0)
    .bind(whole_ms(now));
    fetch_optional(pool, query).await
}

pub(crate) async fn end_pairing(pool: &PgPool, device: DeviceId, code: &str) -> StoreResult<bool> {
    let query = sqlx::query("DELETE FROM pairings WHERE device_id = $1 AND code = $2")
        .bind(device.0)
        .bind(code);
    let done = execute(pool, query).await?;
    Ok(done > 0)
}

pub(crate) async fn set_pairing_number(
    pool: &PgPool,
    device: DeviceId,
    code: &str,
    number: &str,
) -> StoreResult<bool> {
    let query =
        sqlx::query("UPDATE pairings SET channel_number = $1 WHERE device_id = $2 AND code = $3")
            .bind(number)
            .bind(device.0)
            .bind(code);
    let done = execute(pool, query).await?;
    Ok(done > 0)
}

pub(crate) async fn pairing_number(
    pool: &PgPool,
    code: &str,
    now: OffsetDateTime,
) -> StoreResult<Option<String>> {
    let number: Option<Option<String>> = sqlx::query_scalar(
        "SELECT channel_number FROM pairings WHERE code = $1 AND expires_at > $2",
    )
    .bind(code)
    .bind(whole_ms(now))
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(number.flatten())
}
