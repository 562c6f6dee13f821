//! Devices (members' browsers and toys), the households' signed rosters, and pairing a
//! toy with a household.
use crate::rows::{ArrivalRow, DeviceRow, PairingRow, RosterRow};
use crate::write::to_the_end;
use crate::{backend, execute, fetch_all, fetch_optional, unique_violation};
use pawpost_domain::{
    AccountId, Device, DeviceId, HouseholdId, PairingClaim, PairingClaimant, PairingCreated,
    PendingPairing, StoredRoster,
};
use pawpost_store::stored::{
    bound, claim_step, found, from_ms, one, to_integer, to_ms, unsigned, ClaimStep,
};
use pawpost_store::{columns, select, Arrival, StoreResult};
use sqlx::SqlitePool;
use time::OffsetDateTime;

pub(crate) async fn create_device(pool: &SqlitePool, d: &Device) -> StoreResult<()> {
    sqlx::query(concat!(
        "INSERT INTO devices (",
        columns!(devices),
        ") VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(d.id.to_string())
    .bind(d.kind.as_str())
    .bind(d.account_id.map(|a| a.to_string()))
    .bind(d.household_id.map(|h| h.to_string()))
    .bind(&d.identity)
    .bind(&d.label)
    .bind(to_ms(d.created_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a device with this id"))?;
    Ok(())
}

pub(crate) async fn device(pool: &SqlitePool, id: DeviceId) -> StoreResult<Option<Device>> {
    let query =
        sqlx::query_as::<_, DeviceRow>(select!(devices, "WHERE id = ?")).bind(id.to_string());
    fetch_optional(pool, query).await
}

/// The device with what it may have to catch up on, and its household's rosters after
/// `held_roster`, in one statement: one row per such roster (at least one row).
pub(crate) async fn arrival(
    pool: &SqlitePool,
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
         FROM devices WHERE id = ?) AS d \
         LEFT JOIN rosters ro ON ro.household_id = d.household_id AND ro.version > ? \
         ORDER BY ro.version"
    ))
    .bind(id.to_string())
    .bind(bound(held_roster))
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    crate::rows::arrival(rows)
}

pub(crate) async fn devices_of_account(
    pool: &SqlitePool,
    account: AccountId,
) -> StoreResult<Vec<Device>> {
    let query = sqlx::query_as::<_, DeviceRow>(select!(
        devices,
        "WHERE account_id = ? ORDER BY created_at"
    ))
    .bind(account.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn delete_member_device(
    pool: &SqlitePool,
    account: AccountId,
    id: DeviceId,
) -> StoreResult<bool> {
    let done =
        sqlx::query("DELETE FROM devices WHERE id = ? AND account_id = ? AND kind = 'member'")
            .bind(id.to_string())
            .bind(account.to_string())
            .execute(pool)
            .await
            .map_err(backend)?;
    Ok(done.rows_affected() > 0)
}

pub(crate) async fn devices_of_household(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Vec<Device>> {
    let query = sqlx::query_as::<_, DeviceRow>(select!(
        devices,
        "WHERE household_id = ?1 \
         OR account_id IN (SELECT account_id FROM memberships WHERE household_id = ?1 AND status = 'approved') \
         ORDER BY created_at"
    ))
    .bind(household.to_string());
    fetch_all(pool, query).await
}

pub(crate) async fn update_device_identity(
    pool: &SqlitePool,
    id: DeviceId,
    identity: &[u8],
) -> StoreResult<()> {
    let query = sqlx::query("UPDATE devices SET identity = ? WHERE id = ?")
        .bind(identity)
        .bind(id.to_string());
    found(execute(pool, query).await?, "device")
}

fn roster(household: HouseholdId, r: RosterRow) -> StoreResult<StoredRoster> {
    Ok(StoredRoster {
        household_id: household,
        version: unsigned(r.version, "version")?,
        signed: r.signed,
        created_at: from_ms(r.created_at)?,
    })
}

pub(crate) async fn latest_roster(
    pool: &SqlitePool,
    household: HouseholdId,
) -> StoreResult<Option<StoredRoster>> {
    sqlx::query_as::<_, RosterRow>(
        "SELECT version, signed, created_at FROM rosters WHERE household_id = ? ORDER BY version DESC LIMIT 1",
    )
    .bind(household.to_string())
    .fetch_optional(pool)
    .await
    .map_err(backend)?
    .map(|r| roster(household, r))
    .transpose()
}

pub(crate) async fn rosters_since(
    pool: &SqlitePool,
    household: HouseholdId,
    version: u64,
) -> StoreResult<Vec<StoredRoster>> {
    sqlx::query_as::<_, RosterRow>(
        "SELECT version, signed, created_at FROM rosters WHERE household_id = ? AND version > ? ORDER BY version",
    )
    .bind(household.to_string())
    .bind(bound(version))
    .fetch_all(pool)
    .await
    .map_err(backend)?
    .into_iter()
    .map(|r| roster(household, r))
    .collect()
}

pub(crate) async fn insert_roster(pool: &SqlitePool, r: &StoredRoster) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rosters (household_id, version, signed, created_at) VALUES (?, ?, ?, ?)",
    )
    .bind(r.household_id.to_string())
    .bind(to_integer(r.version, "roster version")?)
    .bind(&r.signed)
    .bind(to_ms(r.created_at))
    .execute(pool)
    .await
    .map_err(|e| unique_violation(e, "a roster with this version"))?;
    Ok(())
}

/// Runs [`create_pairing_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn create_pairing(
    pool: &SqlitePool,
    p: &PendingPairing,
) -> StoreResult<PairingCreated> {
    let pool = pool.clone();
    let p = p.clone();
    to_the_end(async move { create_pairing_now(&pool, &p).await }).await
}

async fn create_pairing_now(pool: &SqlitePool, p: &PendingPairing) -> StoreResult<PairingCreated> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    // Expired pairings are of no further use.
    sqlx::query("DELETE FROM pairings WHERE expires_at <= ?")
        .bind(to_ms(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let same_device: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT identity FROM pairings WHERE device_id = ?")
            .bind(p.device_id.to_string())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
    if same_device.iter().any(|identity| *identity != p.identity) {
        return Ok(PairingCreated::DeviceTaken);
    }
    sqlx::query("DELETE FROM pairings WHERE device_id = ?")
        .bind(p.device_id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let taken = sqlx::query("SELECT 1 FROM pairings WHERE code = ?")
        .bind(&p.code)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
    if taken.is_some() {
        return Ok(PairingCreated::CodeTaken);
    }
    sqlx::query(
        "INSERT INTO pairings (code, device_id, identity, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&p.code)
    .bind(p.device_id.to_string())
    .bind(&p.identity)
    .bind(to_ms(p.created_at))
    .bind(to_ms(p.expires_at))
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(PairingCreated::Created)
}

/// Runs [`claim_pairing_now`] to its end in a task of its own, its write lock taken first
/// (see [`crate::write::to_the_end`]).
pub(crate) async fn claim_pairing(
    pool: &SqlitePool,
    code: &str,
    claimant: &PairingClaimant,
    now: OffsetDateTime,
) -> StoreResult<PairingClaim> {
    let pool = pool.clone();
    let code = code.to_owned();
    let claimant = claimant.clone();
    to_the_end(async move { claim_pairing_now(&pool, &code, &claimant, now).await }).await
}

async fn claim_pairing_now(
    pool: &SqlitePool,
    code: &str,
    claimant: &PairingClaimant,
    now: OffsetDateTime,
) -> StoreResult<PairingClaim> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(backend)?;
    let row =
        sqlx::query_as::<_, PairingRow>(select!(pairings, "WHERE code = ? AND expires_at > ?"))
            .bind(code)
            .bind(to_ms(now))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    let Some(mut pairing) = one::<_, PendingPairing>(row)? else {
        return Ok(PairingClaim::NoMatch);
    };
    let result = match claim_step(&pairing, claimant) {
        ClaimStep::Repeat => PairingClaim::Claimed(pairing),
        ClaimStep::Contest => {
            sqlx::query("DELETE FROM pairings WHERE code = ?")
                .bind(code)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            PairingClaim::Contested(pairing)
        }
        ClaimStep::Record => {
            sqlx::query(
                "UPDATE pairings SET household_id = ?, claimed_by = ?, confirmation = ?, confirm_by = ? \
                 WHERE code = ?",
            )
            .bind(claimant.household_id.to_string())
            .bind(claimant.account_id.to_string())
            .bind(&claimant.confirmation)
            .bind(to_ms(claimant.confirm_by))
            .bind(code)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            pairing.claim = Some(claimant.clone());
            PairingClaim::Claimed(pairing)
        }
    };
    tx.commit().await.map_err(backend)?;
    Ok(result)
}

pub(crate) async fn pairing_of_device(
    pool: &SqlitePool,
    device: DeviceId,
    now: OffsetDateTime,
) -> StoreResult<Option<PendingPairing>> {
    let query = sqlx::query_as::<_, PairingRow>(select!(
        pairings,
        "WHERE device_id = ? AND expires_at > ?"
    ))
    .bind(device.to_string())
    .bind(to_ms(now));
    fetch_optional(pool, query).await
}

pub(crate) async fn end_pairing(
    pool: &SqlitePool,
    device: DeviceId,
    code: &str,
) -> StoreResult<bool> {
    let query = sqlx::query("DELETE FROM pairings WHERE device_id = ? AND code = ?")
        .bind(device.to_string())
        .bind(code);
    let done = execute(pool, query).await?;
    Ok(done > 0)
}

pub(crate) async fn set_pairing_number(
    pool: &SqlitePool,
    device: DeviceId,
    code: &str,
    number: &str,
) -> StoreResult<bool> {
    let query =
        sqlx::query("UPDATE pairings SET channel_number = ? WHERE device_id = ? AND code = ?")
            .bind(number)
            .bind(device.to_string())
            .bind(code);
    let done = execute(pool, query).await?;
    Ok(done > 0)
}

pub(crate) async fn pairing_number(
    pool: &SqlitePool,
    code: &str,
    now: OffsetDateTime,
) -> StoreResult<Option<String>> {
    let number: Option<Option<String>> =
        sqlx::query_scalar("SELECT channel_number FROM pairings WHERE code = ? AND expires_at > ?")
            .bind(code)
            .bind(to_ms(now))
            .fetch_optional(pool)
            .await
            .map_err(backend)?;
    Ok(number.flatten())
}
