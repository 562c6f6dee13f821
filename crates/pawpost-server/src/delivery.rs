//! The one path by which anything reaches a toy connected to this process: the roster
//! versions it lacks (all of them, in order, so that it can check the chain), messages,
//! parents' approvals, the number it must speak to confirm a pairing and an owner's signed
//! word that it leaves its household. A toy that just
//! authenticated, a message just stored, a roster just published, a note from another
//! process and a process catching its toys up after it may have missed notes all come
//! through here; telling the other processes is [`crate::relay`]'s part.
use crate::state::AppState;
use crate::toyhub::{StartWanted, ToyMode};
use pawpost_crypto::{PublicIdentity, SignedRoster};
use pawpost_domain::{Approval, DeviceId, DeviceKind, HouseholdId, PendingPairing, StoredRoster};
use pawpost_protocol::{ConfirmationNumber, Frame, MessageId, ServerError};
use pawpost_store::{Arrival, Farewell, StoreResult};
use uuid::Uuid;

/// Brings `device`, connected here and authenticated, up to date with the store. A toy
/// refuses what it already holds, so repeating is harmless.
pub async fn catch_up(state: &AppState, device: DeviceId) -> StoreResult<()> {
    let Some(household) = state
        .store
        .device(device)
        .await?
        .and_then(|d| d.household_id)
    else {
        return Ok(());
    };
    catch_up_in(state, device, household).await
}

/// [`catch_up`] for a toy of `household` whose row was just read (it authenticated).
pub async fn catch_up_in(
    state: &AppState,
    device: DeviceId,
    household: HouseholdId,
) -> StoreResult<()> {
    push_rosters(state, device, household).await?;
    crate::services::toy_profiles::send_names(state, device, household).await?;
    deliver_waiting(state, device).await?;
    send_pending_approvals(state, device).await
}

/// [`catch_up`] for a toy that just authenticated: only what its arrival says waits is
/// read, so that a toy with nothing new costs no query here.
pub async fn catch_up_arrived(state: &AppState, arrival: &Arrival) -> StoreResult<()> {
    let device = arrival.device.id;
    if arrival.device.household_id.is_none() {
        return Ok(());
    }
    // The rosters it lacks were read with the arrival.
    send_rosters(state, device, &arrival.rosters);
    crate::services::toy_profiles::send_names_of(state, arrival);
    if arrival.undelivered {
        deliver_waiting(state, device).await?;
    }
    if arrival.approvals_pending {
        send_pending_approvals(state, device).await?;
    }
    Ok(())
}

/// Sends `device` the messages not yet delivered to it, oldest first: every one, or to a
/// toy that takes deliveries in chunks as many starts as its window has room for (the
/// rest follow as deliveries finish, `routes::toy_ws`).
pub async fn deliver_waiting(state: &AppState, device: DeviceId) -> StoreResult<()> {
    for message in state.store.undelivered_for(device).await? {
        match state
            .toys
            .start_wanted(device, MessageId(*message.id.as_bytes()))
        {
            StartWanted::Send => {}
            StartWanted::Ahead => continue,
            StartWanted::Full => break,
        }
        match envelope_of(state, message.id).await? {
            Some(envelope) => deliver(state, &envelope, &[device]),
            None => tracing::error!(message = %message.id, "envelope blob missing"),
        }
    }
    Ok(())
}

async fn send_pending_approvals(state: &AppState, device: DeviceId) -> StoreResult<()> {
    for approval in state.store.approvals_pending_for(device).await? {
        send_approval(state, device, &approval);
    }
    Ok(())
}

/// Sends `device` every roster version of `household` after the newest one it holds, in
/// order. A toy that missed several versions (its process lost the database for a
/// while) can only accept the newest after the ones before it.
pub async fn push_rosters(
    state: &AppState,
    device: DeviceId,
    household: HouseholdId,
) -> StoreResult<()> {
    let Some(held) = state.toys.roster_version(device) else {
        return Ok(());
    };
    send_rosters(
        state,
        device,
        &state.store.rosters_since(household, held).await?,
    );
    Ok(())
}

/// Sends `device` those of `rosters` (one household's, oldest first) newer than the
/// version it holds, in order.
fn send_rosters(state: &AppState, device: DeviceId, rosters: &[StoredRoster]) {
    let Some(held) = state.toys.roster_version(device) else {
        return;
    };
    for roster in rosters.iter().filter(|r| r.version > held) {
        let sent = state.toys.send(
            device,
            ToyMode::Authenticated,
            &Frame::RosterUpdate {
                signed_roster: &roster.signed,
            },
        );
        if !sent {
            // Not reading: it catches up when it reconnects.
            break;
        }
        state.toys.roster_sent(device, roster.version);
    }
}

/// Gives a new roster to the household's toys connected here: a toy waiting to be paired
/// gets it as `Paired` (once the roster lists it with the keys its connection proved), a
/// connected toy every version it lacks as `RosterUpdate`s. Offline toys catch up when
/// they next authenticate. Returns the toys that just became paired, for the other
/// processes to hear of.
pub async fn hand_roster(
    state: &AppState,
    household: HouseholdId,
    signed: &SignedRoster,
) -> StoreResult<Vec<DeviceId>> {
    let bytes = signed.encode();
    let roster = signed.unverified_roster();
    let mut paired_here = Vec::new();
    for toy in state.store.devices_of_household(household).await? {
        if toy.kind != DeviceKind::Toy || toy.household_id != Some(household) {
            continue;
        }
        let toy_id = toy.id;
        let Some(member) = roster.member(pawpost_crypto::DeviceId(*toy_id.0.as_bytes())) else {
            continue;
        };
        match state.toys.mode(toy_id) {
            Some(ToyMode::Pairing) => {
                // The toy refuses a first roster that lists other keys for it.
                let keys_listed = PublicIdentity::decode(&toy.identity).is_ok_and(|id| {
                    id.x25519_pub == member.x25519_pub && id.ed25519_pub == member.ed25519_pub
                });
                if !keys_listed {
                    continue;
                }
                let paired = Frame::Paired {
                    household_id: roster.household_id,
                    signed_roster: &bytes,
                };
                // Only to the connection that proved the keys the parent paired.
                if state
                    .toys
                    .promote(toy_id, &toy.identity, roster.version, &paired)
                {
                    paired_here.push(toy_id);
                }
            }
            Some(ToyMode::Authenticated) => push_rosters(state, toy_id, household).await?,
            None => {}
        }
    }
    Ok(paired_here)
}

/// Pushes a message just stored to those of `devices` connected here: whole, or to a toy
/// that takes deliveries in chunks its envelope's prefix (`DeliverStart`), after which the
/// toy asks for the chunks (`routes::toy_ws`).
pub fn deliver(state: &AppState, envelope: &[u8], devices: &[DeviceId]) {
    let prefix = pawpost_crypto::EnvelopePrefix::parse(envelope)
        .ok()
        .map(|(prefix, _)| {
            (
                &envelope[..prefix.encoded_len()],
                prefix.header().message_id,
            )
        });
    for device in devices {
        match prefix {
            Some((prefix, message)) if state.toys.streams(*device) => {
                // Paced to the toy's window (`toyhub::DELIVER_STARTS_AHEAD`).
                state
                    .toys
                    .send_start(*device, message, &Frame::DeliverStart { prefix });
            }
            _ => {
                state.toys.send(
                    *device,
                    ToyMode::Authenticated,
                    &Frame::Deliver { envelope },
                );
            }
        }
    }
}

/// Pushes the stored message `id` to those of `devices` connected here (another process
/// stored it).
pub async fn deliver_stored(state: &AppState, id: Uuid, devices: &[DeviceId]) -> StoreResult<()> {
    let here = connected_here(state, devices);
    if here.is_empty() {
        return Ok(());
    }
    if let Some(envelope) = envelope_of(state, id).await? {
        deliver(state, &envelope, &here);
    }
    Ok(())
}

/// Sends the approvals of message `id` that those of `devices` connected here wait for
/// (a parent approved it, here or on another process).
pub async fn approval_stored(state: &AppState, id: Uuid, devices: &[DeviceId]) -> StoreResult<()> {
    for device in connected_here(state, devices) {
        for approval in state.store.approvals_pending_for(device).await? {
            if approval.message_id == id {
                send_approval(state, device, &approval);
            }
        }
    }
    Ok(())
}

/// The devices of `devices` that are connected here and authenticated.
fn connected_here(state: &AppState, devices: &[DeviceId]) -> Vec<DeviceId> {
    devices
        .iter()
        .copied()
        .filter(|d| state.toys.mode(*d) == Some(ToyMode::Authenticated))
        .collect()
}

/// The stored envelope of message `id`; `None` when it is gone (deleted meanwhile).
pub async fn envelope_of(state: &AppState, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
    let Some(message) = state.store.message(id).await? else {
        return Ok(None);
    };
    crate::services::messages::stored_envelope(state, &message).await
}

/// Sends a parent's signed approval to `device`, if it is connected here.
pub fn send_approval(state: &AppState, device: DeviceId, approval: &Approval) {
    let Ok(signature) = <[u8; 64]>::try_from(approval.signature.as_slice()) else {
        return;
    };
    state.toys.send(
        device,
        ToyMode::Authenticated,
        &Frame::Approval {
            message_id: MessageId(*approval.message_id.as_bytes()),
            approver: pawpost_protocol::DeviceId(*approval.approver.0.as_bytes()),
            signature,
        },
    );
}

/// Sends the claim's number to the toy if it waits here with the keys that asked for the
/// code; returns whether it did.
pub fn ask_the_toy_here(state: &AppState, pairing: &PendingPairing) -> bool {
    let Some(number) = pairing
        .claim
        .as_ref()
        .and_then(|c| confirmation_digits(&c.confirmation))
    else {
        return false;
    };
    state.toys.send_if_keys(
        pairing.device_id,
        ToyMode::Pairing,
        &pairing.identity,
        &Frame::ConfirmPairing { number },
    )
}

/// Tells the toy waiting here with the keys that asked for the code that its pairing
/// ended (two households entered its code): it asks for a new one.
pub fn pairing_contested(state: &AppState, pairing: &PendingPairing) {
    state.toys.send_if_keys(
        pairing.device_id,
        ToyMode::Pairing,
        &pairing.identity,
        &Frame::Error {
            code: ServerError::PairingExpired,
        },
    );
}

fn confirmation_digits(text: &str) -> Option<ConfirmationNumber> {
    let digits: Vec<u8> = text.bytes().map(|b| b.wrapping_sub(b'0')).collect();
    ConfirmationNumber::new(digits.try_into().ok()?)
}

/// The `Leave` frame that carries `farewell` to its toy.
pub fn leave_frame(farewell: &Farewell) -> Frame<'static> {
    Frame::Leave {
        household_id: pawpost_protocol::HouseholdId(*farewell.household_id.0.as_bytes()),
        signer: pawpost_protocol::DeviceId(*farewell.signer_device_id.0.as_bytes()),
        signature: farewell.signature,
    }
}

/// Sends the toy its farewell if it is connected here, authenticated with the keys the
/// farewell names; returns whether it was.
pub fn farewell(state: &AppState, farewell: &Farewell) -> bool {
    state.toys.send_if_keys(
        farewell.toy_device_id,
        ToyMode::Authenticated,
        &farewell.identity,
        &leave_frame(farewell),
    )
}

/// Sends `device` its stored farewell if it is connected here (another process removed
/// it).
pub async fn farewell_stored(state: &AppState, device: DeviceId) -> StoreResult<()> {
    if let Some(stored) = state.store.farewell(device).await? {
        farewell(state, &stored);
    }
    Ok(())
}

/// Sends a parent's approval just stored to those of `devices` connected here.
pub fn approve(state: &AppState, approval: &Approval, devices: &[DeviceId]) {
    for device in devices {
        send_approval(state, *device, approval);
    }
}
