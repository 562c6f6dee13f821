//! What parents keep about a paired toy besides its keys: the names record (the toy's own
//! name and who it says a message is from), sealed by a parent's device for the toy and
//! the household's devices, which the server stores and relays unread; the parents'
//! confirmation that the toy speaks the safety number their app shows; and when the toy
//! was last connected.
use super::households::active_membership;
use super::keys::domain_device_id;
use super::toys::{toy_of, ToyError};
use super::MembershipError;
use crate::audit::{record, AuditAction, Event};
use crate::state::AppState;
use crate::toyhub::ToyMode;
use pawpost_crypto::{Envelope, MediaType};
use pawpost_domain::{AccountId, DeviceId, HouseholdId};
use pawpost_protocol::{Frame, MAX_NAMES_ENVELOPE_LEN};
use pawpost_store::{StoreError, StoreResult, ToyProfile};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum ToyProfileError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error("Only a parent (an owner or guardian) can name the toy or check its safety number.")]
    NotAParent,
    #[error("This toy is not in the household: reload the page to see its toys.")]
    ToyNotFound,
    #[error(transparent)]
    InvalidBase64(#[from] super::InvalidBase64),
    #[error("There are too many names, or they are too long: keep each name short and try again.")]
    TooLarge,
    #[error("The names must be sealed on this device for the toy: reload the page and try again.")]
    NotANamesRecord,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ToyError> for ToyProfileError {
    fn from(e: ToyError) -> Self {
        match e {
            ToyError::Membership(e) => Self::Membership(e),
            ToyError::Store(e) => Self::Store(e),
            _ => Self::ToyNotFound,
        }
    }
}

pub type ToyProfileResult<T> = Result<T, ToyProfileError>;

async fn parent_and_toy(
    state: &AppState,
    account: AccountId,
    household: HouseholdId,
    toy: DeviceId,
) -> ToyProfileResult<()> {
    if !active_membership(state, household, account)
        .await?
        .manages()
    {
        return Err(ToyProfileError::NotAParent);
    }
    toy_of(state, household, toy).await?;
    Ok(())
}

/// Keeps a new names record for `toy` (a parent, with an envelope sealed by one of their
/// own devices for this household, addressed to the toy, as text) and hands it to the
/// toy now if it is connected to this process; otherwise the toy gets it at its next
/// connection. The server checks only what it can see: the header, never the names.
pub async fn set_names(
    state: &AppState,
    account: AccountId,
    household: HouseholdId,
    toy: DeviceId,
    envelope: &[u8],
) -> ToyProfileResult<()> {
    parent_and_toy(state, account, household, toy).await?;
    if envelope.len() > MAX_NAMES_ENVELOPE_LEN {
        return Err(ToyProfileError::TooLarge);
    }
    let parsed = Envelope::parse(envelope).map_err(|_| ToyProfileError::NotANamesRecord)?;
    let header = parsed.header();
    let sender = state.store.device(domain_device_id(header.sender)).await?;
    let toy_bytes = pawpost_crypto::DeviceId(*toy.0.as_bytes());
    if header.household_id.0 != *household.0.as_bytes()
        || header.media_type != MediaType::Text
        || header.recipient_index(toy_bytes).is_none()
        || sender.and_then(|d| d.account_id) != Some(account)
    {
        return Err(ToyProfileError::NotANamesRecord);
    }
    if !state
        .store
        .set_toy_names(toy, envelope, OffsetDateTime::now_utc())
        .await?
    {
        return Err(ToyProfileError::ToyNotFound);
    }
    record(
        state,
        Event::new(AuditAction::ToyNamesChanged)
            .by(account)
            .in_household(household)
            .on(toy),
    )
    .await;
    state
        .toys
        .send(toy, ToyMode::Authenticated, &Frame::Names { envelope });
    Ok(())
}

/// Records that a parent heard the toy speak the safety number their app shows.
pub async fn safety_checked(
    state: &AppState,
    account: AccountId,
    household: HouseholdId,
    toy: DeviceId,
) -> ToyProfileResult<()> {
    parent_and_toy(state, account, household, toy).await?;
    if !state
        .store
        .set_toy_safety_checked(toy, account, OffsetDateTime::now_utc())
        .await?
    {
        return Err(ToyProfileError::ToyNotFound);
    }
    record(
        state,
        Event::new(AuditAction::ToySafetyNumberChecked)
            .by(account)
            .in_household(household)
            .on(toy),
    )
    .await;
    Ok(())
}

/// The profiles of the household's toys.
pub async fn profiles(state: &AppState, household: HouseholdId) -> StoreResult<Vec<ToyProfile>> {
    state.store.toy_profiles(household).await
}

/// Sends a toy that just authenticated here the names record its arrival brought.
pub fn send_names_of(state: &AppState, arrival: &pawpost_store::Arrival) {
    if let Some(envelope) = arrival.names_envelope.as_deref() {
        state.toys.send(
            arrival.device.id,
            ToyMode::Authenticated,
            &Frame::Names { envelope },
        );
    }
}

/// Sends a toy that just authenticated here its names record, if a parent made one.
pub async fn send_names(
    state: &AppState,
    device: DeviceId,
    household: HouseholdId,
) -> StoreResult<()> {
    let profiles = state.store.toy_profiles(household).await?;
    if let Some(envelope) = profiles
        .iter()
        .find(|p| p.toy_device_id == device)
        .and_then(|p| p.names_envelope.as_deref())
    {
        state
            .toys
            .send(device, ToyMode::Authenticated, &Frame::Names { envelope });
    }
    Ok(())
}

/// Notes when a toy was last connected; a failure only makes "last seen" older.
pub async fn seen(state: &AppState, device: DeviceId) {
    let at = OffsetDateTime::now_utc();
    state
        .writes
        .submit(crate::batch::Write::Seen(device, at))
        .await;
}
