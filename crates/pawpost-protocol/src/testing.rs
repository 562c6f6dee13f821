//! Frames for tests, in this crate and in the crates that speak the protocol (feature
//! `testing`; never in a build that ships).

use alloc::vec;
use alloc::vec::Vec;

use pawpost_crypto::{DeviceId, HouseholdId, MessageId, PublicIdentity};

use crate::{
    ConfirmationNumber, Frame, FrameType, PairingCode, RejectReason, RosterRefusal, ServerError,
};

/// One frame of every type, in wire order, with recognisable field values; `identity` is
/// the toy's in `PairRequest`, `Auth`, `RotateKey` and `RotateAck`.
///
/// # Panics
///
/// If a frame type is missing or out of order: add the new frame here.
pub fn one_of_each<'a>(
    identity: PublicIdentity,
    envelope: &'a [u8],
    roster: &'a [u8],
) -> Vec<Frame<'a>> {
    let id = MessageId([7; 16]);
    let frames = vec![
        Frame::PairRequest {
            identity,
            signature: [1; 64],
        },
        Frame::Auth {
            device_id: identity.device_id,
            roster_version: 3,
            signature: [2; 64],
        },
        Frame::RotateKey {
            new_identity: identity,
            signature_by_old_key: [3; 64],
        },
        Frame::Delivered { message_id: id },
        Frame::Rejected {
            message_id: id,
            reason: RejectReason::SenderBlocked,
        },
        Frame::Played { message_id: id },
        Frame::Upload { envelope },
        Frame::RosterRejected {
            version: 4,
            reason: RosterRefusal::StaleVersion,
        },
        Frame::PairConfirmed {
            number: ConfirmationNumber::from_number(47).unwrap(),
        },
        Frame::ChunkRequest {
            message_id: id,
            next_index: 5,
            window: 2,
        },
        Frame::UploadChunk {
            message_id: id,
            offset: 16_400,
            total_len: 40_000,
            bytes: &envelope[..envelope.len().min(crate::MAX_CHUNK_BYTES)],
        },
        Frame::UpdateRequest {
            offset: 8192,
            window: 2,
        },
        Frame::Version {
            board: "mps2-an386",
            version: 2,
            counter: 7,
        },
        Frame::Challenge {
            nonce: [4; 32],
            server_time_ms: 1_748_779_200_000,
        },
        Frame::PairCode {
            code: PairingCode::from_number(13_579).unwrap(),
            expires_in_s: 600,
        },
        Frame::Paired {
            household_id: HouseholdId([5; 16]),
            signed_roster: roster,
        },
        Frame::RosterUpdate {
            signed_roster: roster,
        },
        Frame::Deliver { envelope },
        Frame::Approval {
            message_id: id,
            approver: DeviceId([6; 16]),
            signature: [8; 64],
        },
        Frame::UploadAck { message_id: id },
        Frame::RotateAck {
            ed25519_pub: identity.ed25519_pub,
        },
        Frame::Error {
            code: ServerError::PairingExpired,
        },
        Frame::ConfirmPairing {
            number: ConfirmationNumber::from_number(472).unwrap(),
        },
        Frame::Leave {
            household_id: HouseholdId([5; 16]),
            signer: DeviceId([6; 16]),
            signature: [9; 64],
        },
        Frame::DeliverStart {
            prefix: &envelope[..envelope.len().min(crate::MAX_ENVELOPE_PREFIX_LEN)],
        },
        Frame::DeliverChunk {
            message_id: id,
            index: 3,
            chunk: &envelope[..envelope.len().min(crate::MAX_CHUNK_BYTES)],
        },
        Frame::UploadChunkAck {
            message_id: id,
            next_offset: 32_800,
        },
        Frame::Names { envelope },
        Frame::UpdateOffer {
            manifest: &roster[..roster.len().min(pawpost_crypto::MAX_MANIFEST_LEN)],
            signature: [10; 64],
        },
        Frame::UpdateChunk {
            offset: 4096,
            bytes: &envelope[..envelope.len().min(crate::UPDATE_CHUNK_BYTES)],
        },
    ];
    let types: Vec<FrameType> = frames.iter().map(Frame::frame_type).collect();
    assert_eq!(types, FrameType::ALL, "one frame of every type, in order");
    frames
}
