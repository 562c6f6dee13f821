//! Device public keys and the household's signed roster. The service checks the roster's
//! signature chain so that no one can slip in a forged or stale version, but it never
//! needs to trust what a roster says.
use super::households::active_membership;
use super::{clean_name, InvalidBase64, MembershipError, NameError};
use crate::audit::{record, AuditAction, Event};
use crate::relay::{self, Note};
use crate::state::AppState;
use pawpost_crypto::{PublicIdentity, SignedRoster};
use pawpost_domain::{AccountId, Device, DeviceId, DeviceKind, HouseholdId, Role, StoredRoster};
use pawpost_store::StoreError;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    InvalidBase64(#[from] InvalidBase64),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("identity is not a valid public identity: {0}")]
    InvalidIdentity(String),
    #[error("a device with this id is registered; generate new keys with a fresh device id")]
    DeviceExists,
    #[error(
        "this household has no roster yet: an owner publishes the first one from their device"
    )]
    NoRoster,
    #[error("only an owner of the household signs its roster")]
    NotAnOwner,
    #[error("the roster was refused: {0}")]
    RosterRefused(String),
    #[error("the roster must be signed by one of your registered devices")]
    NotYourDevice,
    #[error("another owner published this version first; fetch the roster and build on it")]
    RosterVersionTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type KeyResult<T> = Result<T, KeyError>;

/// The domain's id of the device a protocol id names (the same 16 bytes).
pub fn domain_device_id(id: pawpost_crypto::DeviceId) -> DeviceId {
    DeviceId(Uuid::from_bytes(id.0))
}

/// Registers one of `account`'s devices by its encoded public identity (unpadded
/// base64url); the device id inside it is the device's id.
pub async fn register_device(
    state: &AppState,
    account: AccountId,
    identity: &str,
    label: &str,
) -> KeyResult<Device> {
    let bytes = super::decode_b64("identity", identity)?;
    let identity =
        PublicIdentity::decode(&bytes).map_err(|e| KeyError::InvalidIdentity(e.to_string()))?;
    let device = Device {
        id: domain_device_id(identity.device_id),
        kind: DeviceKind::Member,
        account_id: Some(account),
        household_id: None,
        identity: bytes,
        label: clean_name(label, "label")?,
        created_at: OffsetDateTime::now_utc(),
    };
    match state.store.create_device(&device).await {
        Ok(()) => {
            record(
                state,
                Event::new(AuditAction::DeviceRegistered)
                    .by(account)
                    .on(device.id),
            )
            .await;
            Ok(device)
        }
        Err(StoreError::Conflict(_)) => Err(KeyError::DeviceExists),
        Err(e) => Err(e.into()),
    }
}

/// `account`'s own devices.
pub async fn devices_of_account(state: &AppState, account: AccountId) -> KeyResult<Vec<Device>> {
    Ok(state.store.devices_of_account(account).await?)
}

/// The devices of the household's approved members and its toys (approved members).
pub async fn devices_of_household(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
) -> KeyResult<Vec<Device>> {
    active_membership(state, household, account).await?;
    Ok(state.store.devices_of_household(household).await?)
}

/// The household's current signed roster (approved members).
pub async fn latest_roster(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
) -> KeyResult<StoredRoster> {
    active_membership(state, household, account).await?;
    state
        .store
        .latest_roster(household)
        .await?
        .ok_or(KeyError::NoRoster)
}

fn refused(detail: impl std::fmt::Display) -> KeyError {
    KeyError::RosterRefused(detail.to_string())
}

/// Publishes a new roster version (unpadded base64url), signed by one of `account`'s
/// devices (owners only). The first version must be signed by an owner listed in it;
/// each later one by an approved owner of the version before, with a higher version
/// number. The household's toys get it at once, here and on the other processes.
pub async fn publish_roster(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
    signed_roster: &str,
) -> KeyResult<StoredRoster> {
    let me = active_membership(state, household, account).await?;
    if me.role != Role::Owner {
        return Err(KeyError::NotAnOwner);
    }
    let bytes = super::decode_b64("signed_roster", signed_roster)?;
    let signed = SignedRoster::decode(&bytes).map_err(refused)?;
    let roster = signed.unverified_roster();
    if roster.household_id.0 != *household.0.as_bytes() {
        return Err(refused("it names another household"));
    }
    let signer = state
        .store
        .device(domain_device_id(signed.signer()))
        .await?;
    if signer.and_then(|d| d.account_id) != Some(account) {
        return Err(KeyError::NotYourDevice);
    }
    let previous = state.store.latest_roster(household).await?;
    match &previous {
        None => signed.verify_genesis().map(drop),
        Some(prev) => {
            let prev = SignedRoster::decode(&prev.signed)
                .map_err(|e| StoreError::Backend(format!("stored roster does not decode: {e}")))?;
            signed.verify_successor(&prev).map(drop)
        }
    }
    .map_err(refused)?;
    let stored = StoredRoster {
        household_id: household,
        version: signed.unverified_roster().version,
        signed: bytes,
        created_at: OffsetDateTime::now_utc(),
    };
    match state.store.insert_roster(&stored).await {
        Ok(()) => {
            let paired = crate::delivery::hand_roster(state, household, &signed).await?;
            relay::toys_online(state, paired).await;
            relay::announce(state, Note::Roster { household }).await;
            record(
                state,
                Event::new(AuditAction::RosterPublished)
                    .by(account)
                    .in_household(household)
                    .on(stored.version),
            )
            .await;
            Ok(stored)
        }
        Err(StoreError::Conflict(_)) => Err(KeyError::RosterVersionTaken),
        Err(e) => Err(e.into()),
    }
}
