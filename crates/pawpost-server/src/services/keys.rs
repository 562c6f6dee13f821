//! Device public keys and the household's signed roster. The service checks the roster's
//! signature chain so that no one can slip in a forged or stale version, but it never
//! needs to trust what a roster says.
use super::households::active_membership;
use super::{clean_name, InvalidBase64, MembershipError, NameError};
use crate::audit::{record, AuditAction, Event};
use crate::relay::{self, Note};
use crate::state::AppState;
use pawpost_crypto::{PublicIdentity, SignedRoster, CERTIFICATE_SIGNATURE_LEN};
use pawpost_domain::{AccountId, Device, DeviceId, DeviceKind, HouseholdId, Role, StoredRoster};
use pawpost_store::{DeviceCertificate, StoreError};
use std::collections::HashMap;
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

/// Most roster versions one answer of [`rosters_after`] holds; a client asks again after
/// the last one it got.
pub const ROSTER_PAGE_SIZE: usize = 200;

/// Why a device certificate was not kept.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// Either device is not one of the caller's: the same answer as for no device at all.
    #[error("device not found")]
    NotFound,
    #[error(
        "a device cannot vouch for itself: confirm the new device from another of your devices"
    )]
    SameDevice,
    #[error(transparent)]
    InvalidBase64(#[from] InvalidBase64),
    #[error("the confirmation does not match this device's keys; show the link code again on the new device and confirm it from an existing one")]
    BadCertificate,
    #[error("this device has already been confirmed by another of your devices")]
    AlreadyCertified,
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// Deletes one of `account`'s own devices (a lost phone, a browser no longer used): the
/// server stops listing it, so no parent's device is asked to trust it again. A roster
/// that lists it keeps doing so until an owner signs the next one; the web app takes it
/// out in that same step. False if the account has no such device.
pub async fn remove_device(state: &AppState, account: AccountId, id: DeviceId) -> KeyResult<bool> {
    let removed = state.store.delete_member_device(account, id).await?;
    if removed {
        record(
            state,
            Event::new(AuditAction::DeviceRemoved).by(account).on(id),
        )
        .await;
    }
    Ok(removed)
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
    let previous = match state.store.latest_roster(household).await? {
        None => None,
        Some(prev) => Some(
            SignedRoster::decode(&prev.signed)
                .map_err(|e| StoreError::Backend(format!("stored roster does not decode: {e}")))?,
        ),
    };
    let signer = state
        .store
        .device(domain_device_id(signed.signer()))
        .await?;
    let yours = match signer {
        Some(device) => device.account_id == Some(account),
        // The household's recovery key is no registered device: it is the caller's when
        // the version before lists it with the caller's account.
        None => previous
            .as_ref()
            .and_then(|prev| prev.unverified_roster().member(signed.signer()))
            .is_some_and(|m| {
                m.role == pawpost_crypto::Role::Recovery && m.account_id.0 == *account.0.as_bytes()
            }),
    };
    if !yours {
        return Err(KeyError::NotYourDevice);
    }
    match &previous {
        None => signed.verify_genesis().map(drop),
        Some(prev) => signed.verify_successor(prev).map(drop),
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
            crate::events::publish(state, crate::events::Change::roster(household)).await;
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

/// The household's signed roster versions after `after`, oldest first, at most
/// [`ROSTER_PAGE_SIZE`]: a new device checks the chain from version 1.
pub async fn rosters_after(
    state: &AppState,
    household: HouseholdId,
    account: AccountId,
    after: u64,
) -> KeyResult<Vec<StoredRoster>> {
    active_membership(state, household, account).await?;
    let mut rosters = state.store.rosters_since(household, after).await?;
    rosters.truncate(ROSTER_PAGE_SIZE);
    Ok(rosters)
}

/// The certificates of those of `devices` that have one, by device.
pub async fn certificates_of(
    state: &AppState,
    devices: &[Device],
) -> KeyResult<HashMap<DeviceId, DeviceCertificate>> {
    let ids: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
    Ok(state
        .store
        .device_certificates(&ids)
        .await?
        .into_iter()
        .map(|c| (c.device_id, c))
        .collect())
}

/// The device of `account` with this id; any other answer is "not found".
async fn own_device(
    state: &AppState,
    account: AccountId,
    id: DeviceId,
) -> Result<(Device, PublicIdentity), CertificateError> {
    let device = state
        .store
        .device(id)
        .await?
        .filter(|d| d.account_id == Some(account))
        .ok_or(CertificateError::NotFound)?;
    let identity = PublicIdentity::decode(&device.identity)
        .map_err(|e| StoreError::Backend(format!("stored identity does not decode: {e}")))?;
    Ok((device, identity))
}

/// Keeps the certificate by which `certifier`, one of `account`'s devices, vouches for
/// `device`, another of them (docs/ENVELOPE.md, "Device certificates"), once its
/// signature verifies against the certifier's registered identity. One per device.
pub async fn certify_device(
    state: &AppState,
    account: AccountId,
    device: DeviceId,
    certifier: DeviceId,
    signature: &str,
) -> Result<(Device, DeviceCertificate), CertificateError> {
    let (certified_device, certified) = own_device(state, account, device).await?;
    let (_, signer) = own_device(state, account, certifier).await?;
    if device == certifier {
        return Err(CertificateError::SameDevice);
    }
    let signature: [u8; CERTIFICATE_SIGNATURE_LEN] = super::decode_b64("signature", signature)?
        .try_into()
        .map_err(|_| CertificateError::BadCertificate)?;
    let account_id = pawpost_crypto::AccountId(*account.0.as_bytes());
    if !pawpost_crypto::verify_certificate(&signer, account_id, &certified, &signature) {
        return Err(CertificateError::BadCertificate);
    }
    let certificate = DeviceCertificate {
        device_id: device,
        certifier_device_id: certifier,
        signature,
        created_at: OffsetDateTime::now_utc(),
    };
    match state.store.add_device_certificate(&certificate).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(CertificateError::AlreadyCertified),
        Err(StoreError::NotFound(_)) => return Err(CertificateError::NotFound),
        Err(e) => return Err(e.into()),
    }
    record(
        state,
        Event::new(AuditAction::DeviceLinked).by(account).on(device),
    )
    .await;
    Ok((certified_device, certificate))
}
