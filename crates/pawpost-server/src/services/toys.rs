//! Toys: a parent pairs one by the code it speaks, and the toy itself asks for a code,
//! proves who it is, confirms a pairing with a press of its paw and renews its key. The
//! toy WebSocket (`crate::routes::toy_ws`) keeps the connection and its frames; what they
//! mean to the family lives here.
use super::households::active_membership;
use super::keys::domain_device_id;
use super::MembershipError;
use crate::audit::{record, record_soon, AuditAction, Event};
use crate::config::{PAIRING_CODE_TTL, PAIRING_CONFIRM_TTL, TOY_AUTH_FAILURES_PER_ADDRESS};
use crate::ratelimit::{address_key, LimitName};
use crate::relay::{self, Note};
use crate::state::AppState;
use pawpost_crypto::PublicIdentity;
use pawpost_domain::Role;
use pawpost_domain::{
    AccountId, Device, DeviceId, DeviceKind, HouseholdId, PairingClaim, PairingClaimant,
    PairingCreated, PendingPairing,
};
use pawpost_protocol::signing::{verify_auth, verify_leave, verify_rotation};
use pawpost_protocol::{ConfirmationNumber, PairingCode, NONCE_LEN};
use pawpost_store::{Farewell, StoreError, StoreResult};
use std::net::IpAddr;
use std::time::Duration;
use time::OffsetDateTime;

/// Name a toy gets when it is paired; parents see it next to its fingerprint.
pub const DEFAULT_TOY_LABEL: &str = "Toy";
/// Draws of a fresh pairing code before giving up (a clash with a live code is rare).
const PAIRING_CODE_DRAWS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ToyError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("Only a parent (an owner or guardian) can add a toy.")]
    NotAParent,
    #[error("A pairing code is six digits: hold the toy's paw until it speaks them.")]
    InvalidCode,
    #[error("Too many wrong pairing codes. Wait a few minutes, then ask the toy for a new code.")]
    WrongCodesThrottled(Duration),
    #[error("No toy is waiting with this code. Check the six digits the toy spoke, or hold its paw for a new code.")]
    CodeUnknown,
    #[error("Someone else entered this code too, so it no longer works. Hold the toy's paw to get a new code.")]
    CodeContested,
    #[error("Only a parent (an owner or guardian) can remove a toy.")]
    NotAParentToRemove,
    #[error("This toy is not in the household: reload the page to see its toys.")]
    ToyNotFound,
    #[error(transparent)]
    InvalidBase64(#[from] super::InvalidBase64),
    #[error("The toy's goodbye must be signed on this device: a signature is 64 bytes.")]
    InvalidLeaveSignature,
    #[error("Only an owner's device can sign a toy out of the household: ask an owner to do it on their device.")]
    SignerNotOwner,
    #[error("The signature for the toy's goodbye does not match the signing device's keys: reload the page and try again on an owner's device.")]
    BadLeaveSignature,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An owner device's signature that a toy leaves the household, as the API takes it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
pub struct ToyLeave {
    /// The toy.
    #[schema(value_type = String, format = Uuid)]
    pub toy_device_id: DeviceId,
    /// The owner's device that signed.
    #[schema(value_type = String, format = Uuid)]
    pub signer_device_id: DeviceId,
    /// Ed25519 over `"pawpost/v1/toy-leave" || household_id || toy_device_id ||
    /// signer_device_id` (16 bytes each), unpadded base64url.
    pub signature: String,
}

pub type ToyResult<T> = Result<T, ToyError>;

/// A parent's claim of the toy that spoke the code: it completes when someone presses
/// the toy's paw while it speaks the claim's confirmation number.
pub struct Claimed {
    pub pairing: PendingPairing,
    pub claim: PairingClaimant,
}

/// Claims the toy that speaks `code` for the household (owner or guardian). The toy then
/// speaks a three-digit number; a press of its paw while it speaks it pairs the toy. A
/// wrong code counts only against the account that typed it.
pub async fn claim(
    state: &AppState,
    account: AccountId,
    household_id: HouseholdId,
    code: &str,
) -> ToyResult<Claimed> {
    let me = active_membership(state, household_id, account).await?;
    if !me.manages() {
        return Err(ToyError::NotAParent);
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ToyError::InvalidCode);
    }
    let key = account.to_string();
    state
        .limits
        .wrong_pairing_codes_per_account
        .check(&key)
        .map_err(ToyError::WrongCodesThrottled)?;
    let now = OffsetDateTime::now_utc();
    // A version 3 toy's pairing carries the number its channel's handshake gave the
    // server's side: the toy speaks the number its own side computed, and the two agree
    // only if nobody sat between them. A version 2 toy speaks the number drawn here.
    let confirmation = match state.store.pairing_number(&code, now).await? {
        Some(number) => number,
        None => ConfirmationNumber::from_number(rand::random::<u16>() % 1000)
            .expect("below a thousand")
            .to_string(),
    };
    let claimant = PairingClaimant {
        household_id,
        account_id: account,
        confirmation,
        confirm_by: now + PAIRING_CONFIRM_TTL,
    };
    let pairing = match state.store.claim_pairing(&code, &claimant, now).await? {
        PairingClaim::Claimed(p) => p,
        PairingClaim::NoMatch => {
            relay::attempt(state, LimitName::WrongPairingCodesPerAccount, &key).await;
            return Err(ToyError::CodeUnknown);
        }
        PairingClaim::Contested(p) => {
            crate::delivery::pairing_contested(state, &p);
            record(
                state,
                Event::new(AuditAction::ToyPairingContested)
                    .by(account)
                    .in_household(household_id)
                    .on(p.device_id),
            )
            .await;
            return Err(ToyError::CodeContested);
        }
    };
    let claim = pairing
        .claim
        .clone()
        .expect("a claimed pairing has its claim");
    ask_the_toy(state, &pairing).await;
    tracing::info!(household = %household_id, toy = %pairing.device_id, by = %account, "pairing code claimed; waiting for the paw");
    record(
        state,
        Event::new(AuditAction::ToyPairingClaimed)
            .by(account)
            .in_household(household_id)
            .on(pairing.device_id),
    )
    .await;
    Ok(Claimed { pairing, claim })
}

/// Has the toy speak the claim's number, here or through the process it is connected to.
async fn ask_the_toy(state: &AppState, pairing: &PendingPairing) {
    if !crate::delivery::ask_the_toy_here(state, pairing) {
        relay::announce(
            state,
            Note::Claim {
                device: pairing.device_id,
            },
        )
        .await;
    }
}

/// The household's toys, and whether each is online (here or on another process).
pub async fn list(
    state: &AppState,
    account: AccountId,
    household_id: HouseholdId,
) -> ToyResult<Vec<(Device, bool)>> {
    active_membership(state, household_id, account).await?;
    let devices = state.store.devices_of_household(household_id).await?;
    Ok(devices
        .into_iter()
        .filter(|d| d.kind == DeviceKind::Toy && d.household_id == Some(household_id))
        .map(|d| {
            let online = relay::online(state, d.id);
            (d, online)
        })
        .collect())
}

// What the toy itself asks for, over its connection.

/// What became of a toy's request for a pairing code.
pub enum CodeRequest {
    /// Too many requests from its address, or the device is paired already.
    Refused,
    /// Other keys asked to pair this device id first (or no free code was found).
    Taken,
    /// The code to speak.
    Code(PairingCode),
}

/// A fresh pairing code for the toy `identity` (whose signature over the connection's
/// challenge was checked), asking from `addr`.
pub async fn request_code(
    state: &AppState,
    addr: IpAddr,
    identity: &PublicIdentity,
) -> StoreResult<CodeRequest> {
    let addr_key = address_key(addr);
    let device = domain_device_id(identity.device_id);
    let limiter = &state.limits.pairing_per_address;
    if limiter.check(&addr_key).is_err() || state.store.device(device).await?.is_some() {
        return Ok(CodeRequest::Refused);
    }
    relay::attempt(state, LimitName::PairingPerAddress, &addr_key).await;
    let now = OffsetDateTime::now_utc();
    let encoded = identity.encode().to_vec();
    for _ in 0..PAIRING_CODE_DRAWS {
        let candidate =
            PairingCode::from_number(rand::random::<u32>() % 1_000_000).expect("below a million");
        let pairing = PendingPairing {
            code: candidate.to_string(),
            device_id: device,
            identity: encoded.clone(),
            created_at: now,
            expires_at: now + PAIRING_CODE_TTL,
            claim: None,
        };
        match state.store.create_pairing(&pairing).await? {
            PairingCreated::Created => return Ok(CodeRequest::Code(candidate)),
            PairingCreated::CodeTaken => continue,
            // Other keys asked to pair this device id first: it stays theirs until
            // their code expires.
            PairingCreated::DeviceTaken => break,
        }
    }
    Ok(CodeRequest::Taken)
}

/// Records that the toy `device` was given a pairing code.
pub async fn code_given(state: &AppState, device: DeviceId, addr: IpAddr) {
    tracing::info!(toy = %device, client = %addr, "toy asked for a pairing code");
    record(
        state,
        Event::new(AuditAction::ToyPairingRequested)
            .on(device)
            .from(addr),
    )
    .await;
}

/// What became of a toy's authentication.
pub enum Authentication {
    /// Too many failures from its address: refused before any work or audit entry
    /// (failures from this address are already on record with their count).
    Throttled,
    /// Not a paired toy, or a signature that does not verify.
    Failed,
    /// The paired toy, which proved its stored keys.
    Verified(Device),
    /// A toy an owner signed out while it was off, which proved the keys it had then: it
    /// gets its `Leave` frame.
    SignedOut(Farewell),
}

/// Checks a toy's signature over the connection's challenge `nonce` and its roster
/// version with the keys stored for `id`.
pub async fn authenticate(
    state: &AppState,
    addr: IpAddr,
    id: DeviceId,
    nonce: &[u8; NONCE_LEN],
    roster_version: u64,
    signature: &[u8; 64],
) -> StoreResult<Authentication> {
    let limiter = &state.limits.toy_auth_failures_per_address;
    if limiter.check(&address_key(addr)).is_err() {
        return Ok(Authentication::Throttled);
    }
    let Some(device) = state.store.device(id).await? else {
        // Its device is gone: removed from its household, or the household deleted.
        let farewell = state.store.farewell(id).await?.filter(|f| {
            PublicIdentity::decode(&f.identity)
                .is_ok_and(|identity| verify_auth(&identity, nonce, roster_version, signature))
        });
        return Ok(farewell.map_or(Authentication::Failed, Authentication::SignedOut));
    };
    let toy = Some(device).filter(|d| d.kind == DeviceKind::Toy);
    let verified = toy.and_then(|toy| {
        let identity = PublicIdentity::decode(&toy.identity).ok()?;
        verify_auth(&identity, nonce, roster_version, signature).then_some(toy)
    });
    Ok(verified.map_or(Authentication::Failed, Authentication::Verified))
}

/// Counts a failed authentication against `addr`. Only the first failure of an address
/// in a window, and the one that reaches its limit (with the count), become audit
/// entries: anyone may connect, and failures must not grow the trail without bound.
pub async fn authentication_failed(state: &AppState, addr: IpAddr, id: DeviceId) {
    let addr_key = address_key(addr);
    relay::attempt(state, LimitName::ToyAuthFailuresPerAddress, &addr_key).await;
    tracing::info!(client = %addr, "toy authentication failed");
    let count = state.limits.toy_auth_failures_per_address.count(&addr_key);
    let event = if count == 1 {
        Some(Event::new(AuditAction::ToyAuthFailed).on(id))
    } else if count == TOY_AUTH_FAILURES_PER_ADDRESS {
        Some(Event::new(AuditAction::ToyAuthFailuresThrottled).on(format!("{count} failures")))
    } else {
        None
    };
    if let Some(event) = event {
        record(state, event.from(addr)).await;
    }
}

/// The toy `toy`, authenticated, joined this process from `addr`: it is recorded, the
/// other processes hear of it, and it is caught up with the store.
///
/// Its audit entry and "last seen" time go to the next commit, shared with the other
/// toys arriving meanwhile, and the toy does not wait for it: nothing it is told depends
/// on them, and a storm of reconnecting toys is then not paced by the disk's syncs. The
/// trail keeps the order: whatever the toy does next is recorded after its arrival.
pub async fn connected(state: &AppState, toy: &Device, addr: IpAddr) -> StoreResult<()> {
    let mut event = Event::new(AuditAction::ToyConnected).on(toy.id).from(addr);
    if let Some(household) = toy.household_id {
        event = event.in_household(household);
    }
    record_soon(state, event).await;
    state
        .writes
        .enqueue(crate::batch::Write::Seen(toy.id, OffsetDateTime::now_utc()))
        .await;
    relay::toy_online(state, toy.id).await;
    if let Some(household) = toy.household_id {
        crate::events::publish(state, crate::events::Change::toy(household, toy.id)).await;
    }
    // Read once the hub routes to this connection: what is stored from now on is sent
    // to it directly, what was stored before is in the arrival, with the rosters newer
    // than the one it holds (none to read when it is no longer connected here).
    let held = state.toys.roster_version(toy.id).unwrap_or(u64::MAX);
    match state.store.arrival(toy.id, held).await? {
        Some(arrival) => crate::delivery::catch_up_arrived(state, &arrival).await,
        None => Ok(()),
    }
}

/// The toy `device` left this process.
pub async fn disconnected(state: &AppState, device: DeviceId) {
    relay::toy_offline(state, device).await;
    super::toy_profiles::seen(state, device).await;
    match state.store.device(device).await {
        Ok(Some(toy)) => {
            if let Some(household) = toy.household_id {
                crate::events::publish(state, crate::events::Change::toy(household, device)).await;
            }
        }
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "a toy's household could not be read for the live update")
        }
    }
}

/// What became of a press of the paw.
pub enum Confirmation {
    /// No current claim with this number for these keys.
    Expired,
    /// Paired meanwhile, or the household is gone.
    Refused,
    /// The toy belongs to the claiming household; it joins once an owner's roster lists
    /// it.
    Paired(HouseholdId),
}

/// Someone pressed the paw while the toy `device`, which asked for its code with the
/// keys `identity`, spoke `number`: the pairing a parent claimed completes.
pub async fn confirm_pairing(
    state: &AppState,
    device: DeviceId,
    identity: &[u8],
    number: ConfirmationNumber,
    addr: IpAddr,
) -> StoreResult<Confirmation> {
    let now = OffsetDateTime::now_utc();
    let pairing = state.store.pairing_of_device(device, now).await?;
    let confirmed = pairing.filter(|p| {
        p.identity == identity
            && p.claim
                .as_ref()
                .is_some_and(|c| c.confirmation == number.to_string() && c.confirm_by > now)
    });
    let Some(pairing) = confirmed else {
        return Ok(Confirmation::Expired);
    };
    if !state.store.end_pairing(device, &pairing.code).await? {
        return Ok(Confirmation::Expired);
    }
    let claim = pairing.claim.expect("checked above");
    let toy = Device {
        id: device,
        kind: DeviceKind::Toy,
        account_id: None,
        household_id: Some(claim.household_id),
        identity: pairing.identity,
        label: DEFAULT_TOY_LABEL.into(),
        created_at: now,
    };
    match state.store.create_device(&toy).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => return Ok(Confirmation::Refused),
        Err(e) => return Err(e),
    }
    // A toy that left a household pairs again with the same id: its goodbye is done.
    state.store.delete_farewell(device).await?;
    tracing::info!(household = %claim.household_id, toy = %device, "pairing confirmed on the toy; waiting for a roster that lists it");
    record(
        state,
        Event::new(AuditAction::ToyPaired)
            .by(claim.account_id)
            .in_household(claim.household_id)
            .on(device)
            .from(addr),
    )
    .await;
    Ok(Confirmation::Paired(claim.household_id))
}

/// The farewell of `toy`, a toy of `household`, when `leave` is a valid signature by a
/// registered device of an approved owner of the household (whose role signs rosters, so
/// that the toy takes it): checked here before it is kept or relayed, and again by the
/// toy against its roster and pinned keys.
pub async fn verified_farewell(
    state: &AppState,
    household: HouseholdId,
    toy: &Device,
    leave: &ToyLeave,
) -> ToyResult<Farewell> {
    let signature: [u8; 64] = super::decode_b64("signature", &leave.signature)?
        .try_into()
        .map_err(|_| ToyError::InvalidLeaveSignature)?;
    let signer = state
        .store
        .device(leave.signer_device_id)
        .await?
        .filter(|d| d.kind == DeviceKind::Member)
        .ok_or(ToyError::SignerNotOwner)?;
    let signer_account = signer.account_id.ok_or(ToyError::SignerNotOwner)?;
    let owner = match state.store.membership(household, signer_account).await? {
        Some(m) => m.is_active() && m.role == Role::Owner,
        None => false,
    };
    if !owner {
        return Err(ToyError::SignerNotOwner);
    }
    let identity = PublicIdentity::decode(&signer.identity)
        .map_err(|e| StoreError::Backend(format!("stored identity does not decode: {e}")))?;
    if !verify_leave(
        &identity.ed25519_pub,
        pawpost_crypto::HouseholdId(*household.0.as_bytes()),
        pawpost_crypto::DeviceId(*toy.id.0.as_bytes()),
        identity.device_id,
        &signature,
    ) {
        return Err(ToyError::BadLeaveSignature);
    }
    Ok(Farewell {
        toy_device_id: toy.id,
        identity: toy.identity.clone(),
        household_id: household,
        signer_device_id: signer.id,
        signature,
        created_at: OffsetDateTime::now_utc(),
    })
}

/// The toy `toy_id` of `household`, if it is one.
pub async fn toy_of(
    state: &AppState,
    household: HouseholdId,
    toy_id: DeviceId,
) -> ToyResult<Device> {
    state
        .store
        .device(toy_id)
        .await?
        .filter(|d| d.kind == DeviceKind::Toy && d.household_id == Some(household))
        .ok_or(ToyError::ToyNotFound)
}

/// Removes a toy from the household (owner or guardian, with an owner device's signature
/// that the toy leaves): the toy gets the `Leave` frame now if it is connected, or when it
/// next authenticates, forgets the household and can be paired again; its device goes
/// from the household, with the messages it never received.
pub async fn remove(
    state: &AppState,
    account: AccountId,
    household: HouseholdId,
    toy_id: DeviceId,
    leave: &ToyLeave,
) -> ToyResult<()> {
    let me = active_membership(state, household, account).await?;
    if !me.manages() {
        return Err(ToyError::NotAParentToRemove);
    }
    let toy = toy_of(state, household, toy_id).await?;
    let farewell = verified_farewell(state, household, &toy, leave).await?;
    if !state.store.remove_toy(&farewell).await? {
        return Err(ToyError::ToyNotFound);
    }
    tracing::info!(household = %household, toy = %toy_id, by = %account, "toy removed from the household");
    record(
        state,
        Event::new(AuditAction::ToyRemoved)
            .by(account)
            .in_household(household)
            .on(toy_id),
    )
    .await;
    said_goodbye(state, &[farewell]).await;
    crate::events::publish(state, crate::events::Change::toy(household, toy_id)).await;
    Ok(())
}

/// Hands each toy its farewell, on this process or the one it is connected to; a toy that
/// is off gets it when it next authenticates.
pub async fn said_goodbye(state: &AppState, farewells: &[Farewell]) {
    for farewell in farewells {
        if !crate::delivery::farewell(state, farewell) {
            relay::announce(
                state,
                Note::Farewell {
                    device: farewell.toy_device_id,
                },
            )
            .await;
        }
    }
}

/// Replaces the toy's key with `new` when the old key signed the change over the
/// connection's challenge `nonce`; returns the new encoded identity, or `None` when
/// refused.
pub async fn rotate_key(
    state: &AppState,
    toy: DeviceId,
    new: &PublicIdentity,
    nonce: &[u8; NONCE_LEN],
    signature: &[u8; 64],
    addr: IpAddr,
) -> StoreResult<Option<Vec<u8>>> {
    let device = state.store.device(toy).await?;
    let old = device.and_then(|d| PublicIdentity::decode(&d.identity).ok());
    match old {
        Some(old) if verify_rotation(&old, new, nonce, signature) => {
            let encoded = new.encode().to_vec();
            state.store.update_device_identity(toy, &encoded).await?;
            tracing::info!(toy = %toy, "toy rotated its key");
            record(
                state,
                Event::new(AuditAction::ToyKeyRotated).on(toy).from(addr),
            )
            .await;
            Ok(Some(encoded))
        }
        _ => Ok(None),
    }
}

/// The household of the paired toy `toy`, if it may upload an envelope of `len` bytes.
pub async fn may_upload(
    state: &AppState,
    toy: DeviceId,
    len: usize,
) -> StoreResult<Option<HouseholdId>> {
    let device = state.store.device(toy).await?;
    Ok(device
        .and_then(|d| d.household_id)
        .filter(|_| len <= state.config.max_envelope_bytes))
}
