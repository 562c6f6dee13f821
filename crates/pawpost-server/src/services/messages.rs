//! Message envelopes: ciphertext in, ciphertext out. The service checks who may send (an
//! approved, unblocked member's registered device, or a paired toy, listed in the roster,
//! with a valid signature) and who may fetch (the sender and the recipients), stores the
//! envelope durably before it answers, and hands it to [`crate::delivery`] for the toys
//! connected here and to [`crate::relay`] for the others.
use super::households::active_membership;
use super::keys::domain_device_id;
use super::MembershipError;
use crate::audit::{record, AuditAction, Event};
use crate::events::{publish as live, Change};
use crate::relay::{self, Note};
use crate::state::AppState;
use pawpost_crypto::{Envelope, MediaType, PublicIdentity, Role, SignedRoster};
use pawpost_domain::{
    AccountId, Approval, DeviceId, DeviceKind, HouseholdId, Message, Receipt, ReceiptState,
    ENVELOPE_IN_ROW,
};
use pawpost_protocol::RejectReason;
use pawpost_store::{BlobKey, StoreError, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    InvalidBase64(#[from] super::InvalidBase64),
    #[error("the body is not a valid envelope ({0}); seal it with pawpost's crypto module")]
    InvalidEnvelope(String),
    #[error("the envelope is sealed for another household")]
    WrongHousehold,
    #[error("the envelope's sender is not a registered device")]
    UnregisteredSender,
    #[error("the envelope's sender is not one of your registered devices")]
    NotYourDevice,
    #[error("a toy uploads only its own recordings")]
    NotTheToysOwn,
    #[error("the envelope's signature does not verify with the sender device's key")]
    BadSignature,
    #[error("the envelope's payload does not match its signed digest")]
    BadPayload,
    #[error("this household has no roster yet: an owner must publish one first")]
    NoRoster,
    #[error("the sender device is not an approved member of the household's roster; ask a parent to add it")]
    NotInRoster,
    #[error("recipient {0} is not in the household's roster")]
    UnknownRecipient(DeviceId),
    #[error("recipient {0} is a toy, and a toy plays only voice messages (Ogg Opus): seal pictures, names and other media for the family's devices only")]
    ToyPlaysOnlyVoice(DeviceId),
    #[error("a message with this id was already sent")]
    Duplicate,
    /// `message`, `device` or `recipient`.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("only an owner or guardian approves messages for the toy")]
    NotAParent,
    #[error("an approval signature is 64 bytes")]
    InvalidApprovalSignature,
    #[error("the approval's signature does not verify with your device's key")]
    BadApprovalSignature,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl MessageError {
    /// The server failed, not the sender.
    pub fn is_server_fault(&self) -> bool {
        matches!(
            self,
            MessageError::Store(StoreError::Backend(_))
                | MessageError::Membership(MembershipError::Store(StoreError::Backend(_)))
        )
    }
}

pub type MessageResult<T> = Result<T, MessageError>;

/// Who uploads an envelope: the account behind one of its member devices, or a toy
/// speaking for itself.
#[derive(Debug, Clone, Copy)]
pub enum Uploader {
    Member(AccountId),
    Toy(DeviceId),
}

/// A message and what became of it on each recipient.
pub struct MessageWithReceipts {
    pub message: Message,
    pub receipts: Vec<Receipt>,
}

/// `message` with its receipts.
pub async fn with_receipts(
    state: &AppState,
    message: Message,
) -> MessageResult<MessageWithReceipts> {
    let receipts = state.store.receipts(message.id).await?;
    Ok(MessageWithReceipts { message, receipts })
}

fn stored_roster_broken(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored roster does not decode: {e}"))
}

/// Checks an envelope from a member's device or a toy and stores it durably; then hands
/// it to every recipient toy, here and on the other processes.
pub async fn accept(
    state: &AppState,
    household_id: HouseholdId,
    bytes: Vec<u8>,
    uploader: Uploader,
) -> MessageResult<Message> {
    // A member's membership is read beside the envelope's sender and roster and checked
    // before anything else: a blocked or pending member's upload is refused whatever it
    // holds.
    let admitted = async {
        match uploader {
            Uploader::Member(account) => {
                super::households::active_membership(state, household_id, account)
                    .await
                    .map(drop)
            }
            Uploader::Toy(_) => Ok(()),
        }
    };
    let envelope = match Envelope::parse(&bytes) {
        Ok(envelope) if envelope.header().household_id.0 == *household_id.0.as_bytes() => envelope,
        parsed => {
            admitted.await?;
            return Err(match parsed {
                Ok(_) => MessageError::WrongHousehold,
                Err(e) => MessageError::InvalidEnvelope(e.to_string()),
            });
        }
    };
    let header = envelope.header();
    let sender_device = domain_device_id(header.sender);
    // The reads at once (each waits for a connection's thread) and, meanwhile, the
    // payload's digest on this one; checked in order.
    let (admitted, device, stored, payload) = tokio::join!(
        admitted,
        state.store.device(sender_device),
        state.store.latest_roster(household_id),
        async {
            let mut digest = envelope.prefix().payload_verifier();
            digest
                .update(envelope.ciphertext())
                .and_then(|()| digest.finish())
        }
    );
    admitted?;
    let device = device?.ok_or(MessageError::UnregisteredSender)?;
    match uploader {
        Uploader::Member(account)
            if device.kind == DeviceKind::Member && device.account_id == Some(account) => {}
        Uploader::Member(_) => return Err(MessageError::NotYourDevice),
        Uploader::Toy(toy) if device.id == toy => {}
        Uploader::Toy(_) => return Err(MessageError::NotTheToysOwn),
    }
    let identity = PublicIdentity::decode(&device.identity)
        .map_err(|e| StoreError::Backend(format!("stored identity does not decode: {e}")))?;
    envelope
        .prefix()
        .verify_sender(&identity)
        .map_err(|_| MessageError::BadSignature)?;
    payload.map_err(|_| MessageError::BadPayload)?;
    let stored = stored?.ok_or(MessageError::NoRoster)?;
    let roster = SignedRoster::decode(&stored.signed).map_err(stored_roster_broken)?;
    let roster = roster.unverified_roster();
    if !roster.is_approved_sender(header.sender) {
        return Err(MessageError::NotInRoster);
    }
    if let Some(stranger) = header
        .recipients
        .iter()
        .find(|r| roster.member(**r).is_none())
    {
        return Err(MessageError::UnknownRecipient(domain_device_id(*stranger)));
    }
    // A toy plays voice and refuses anything else for good; refused here, such an envelope
    // would take a place in the toy's queue and be pushed to it on every connection.
    if header.media_type != MediaType::OggOpus {
        if let Some(toy) = header
            .recipients
            .iter()
            .find(|r| roster.member(**r).is_some_and(|m| m.role == Role::Toy))
        {
            return Err(MessageError::ToyPlaysOnlyVoice(domain_device_id(*toy)));
        }
    }
    let message_id = Uuid::from_bytes(header.message_id.0);
    let in_row = bytes.len() <= state.config.envelope_in_row_max_bytes;
    // An envelope kept in its row needs no look first: its insert refuses a replayed id.
    // One stored as a blob is looked for first, so that a replay writes no blob.
    if !in_row && state.store.message(message_id).await?.is_some() {
        return Err(MessageError::Duplicate);
    }
    // A random suffix keeps a racing duplicate from overwriting the first envelope.
    let blob_key = BlobKey::new(format!(
        "envelopes/{household_id}/{message_id}-{:016x}",
        rand::random::<u64>()
    ))
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    if !in_row {
        state.blobs.put(&blob_key, &bytes).await?;
    }
    let message = Message {
        id: message_id,
        household_id,
        sender_device,
        sender_account: device.account_id,
        media_type: header.media_type as u8,
        duration_ms: header.duration_ms,
        envelope_len: bytes.len() as u64,
        created_at: OffsetDateTime::now_utc(),
        blob_key: if in_row {
            format!("{ENVELOPE_IN_ROW}{blob_key}")
        } else {
            blob_key.to_string()
        },
    };
    let recipients: Vec<DeviceId> = header
        .recipients
        .iter()
        .map(|r| domain_device_id(*r))
        .collect();
    let inserted = if in_row {
        state
            .store
            .insert_message_with_envelope(&message, &recipients, &bytes)
            .await
    } else {
        state.store.insert_message(&message, &recipients).await
    };
    if let Err(e) = inserted {
        if !in_row {
            let _ = state.blobs.delete(&blob_key).await;
        }
        return Err(match e {
            StoreError::Conflict(_) => MessageError::Duplicate,
            other => other.into(),
        });
    }
    tracing::info!(household = %household_id, message = %message_id, bytes = bytes.len(), "message stored");
    // Durable now: the toys hear of it first, here and on the other processes, before
    // the audit trail's commit and the pages' news (neither changes what they receive).
    crate::delivery::deliver(state, &bytes, &recipients);
    relay::announce(
        state,
        Note::Message {
            id: message.id,
            devices: recipients.clone(),
        },
    )
    .await;
    let mut event = Event::new(AuditAction::MessageUploaded)
        .in_household(household_id)
        .on(message_id);
    if let Some(account) = device.account_id {
        event = event.by(account);
    }
    record(state, event).await;
    if matches!(uploader, Uploader::Toy(_)) {
        crate::notify::child_replied(state, household_id, recipients);
    }
    live(state, Change::message(household_id, message.id)).await;
    Ok(message)
}

/// Records a toy's `Rejected` frame. `replayed`: the toy holds (or held) the message, so
/// it counts as delivered. `queue_full`: nothing is recorded, so that the message is
/// delivered again at the toy's next connection. Any other reason: the toy will never
/// play it, and the sender's list says so.
pub async fn toy_rejected(
    state: &AppState,
    toy: DeviceId,
    message: Uuid,
    reason: RejectReason,
) -> MessageResult<()> {
    let now = OffsetDateTime::now_utc();
    let recorded = match reason {
        RejectReason::Replayed => {
            state
                .store
                .set_receipt(message, toy, ReceiptState::Delivered, now)
                .await
        }
        RejectReason::QueueFull => Ok(()),
        RejectReason::SenderBlocked | RejectReason::UnknownSender => {
            // A parent blocked or removed the sender while the message waited: expected.
            tracing::info!(toy = %toy, %message, reason = reason.code(), "the toy dropped a message its sender may no longer send");
            state
                .store
                .refuse_receipt(message, toy, reason.code(), now)
                .await
        }
        other => {
            tracing::warn!(toy = %toy, %message, reason = other.code(), "toy refused a message");
            state
                .store
                .refuse_receipt(message, toy, other.code(), now)
                .await
        }
    };
    // A sender a parent blocked or removed meanwhile is not asked by mail to record again.
    let sender_told = !matches!(
        reason,
        RejectReason::Replayed
            | RejectReason::QueueFull
            | RejectReason::SenderBlocked
            | RejectReason::UnknownSender
    );
    if recorded.is_ok() && sender_told {
        crate::notify::message_not_played(state, message);
    }
    if recorded.is_ok() && reason != RejectReason::QueueFull {
        receipt_changed(state, message).await;
    }
    match recorded {
        // A message deleted meanwhile, or an envelope too broken to name one.
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Records that `toy` received or played `message`; a message deleted meanwhile is no
/// error.
pub async fn toy_receipt(
    state: &AppState,
    toy: DeviceId,
    message: Uuid,
    receipt: ReceiptState,
) -> MessageResult<()> {
    match state
        .store
        .set_receipt(message, toy, receipt, OffsetDateTime::now_utc())
        .await
    {
        Ok(()) => {
            receipt_changed(state, message).await;
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Tells the open pages that `message`'s receipts changed.
async fn receipt_changed(state: &AppState, message: Uuid) {
    match state.store.message(message).await {
        Ok(Some(m)) => live(state, Change::receipt(m.household_id, message)).await,
        Ok(None) => {}
        Err(error) => {
            tracing::warn!(%error, "a receipt's message could not be read for the live update")
        }
    }
}

/// The household's messages, oldest first, with receipts: for parents every message
/// (they see who sent what to the toy, never the content); for others those they sent
/// or can open.
pub async fn list(
    state: &AppState,
    account: AccountId,
    household_id: HouseholdId,
) -> MessageResult<Vec<MessageWithReceipts>> {
    let me = active_membership(state, household_id, account).await?;
    let messages = if me.manages() {
        state.store.messages_of_household(household_id).await?
    } else {
        state
            .store
            .messages_for_account(household_id, account)
            .await?
    };
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        out.push(with_receipts(state, m).await?);
    }
    Ok(out)
}

/// The household's quiet hours, while they hold.
pub struct QuietHold {
    /// When they end.
    pub until: OffsetDateTime,
    /// The toys of the roster in force: they play nothing before `until`.
    pub toys: Vec<DeviceId>,
}

/// Whether the household's quiet hours hold at `now`, and until when. The toy decides the
/// same way from the same inputs: the quiet hours and time zone of the roster it holds
/// (signed by an owner, stored here), and the wall clock the server gives it in every
/// `Challenge` (docs/TOY-PROTOCOL.md). A toy with a clock of its own may differ by as
/// much as its clock does.
pub async fn quiet_hold(
    state: &AppState,
    household: HouseholdId,
    now: OffsetDateTime,
) -> MessageResult<Option<QuietHold>> {
    let Some(stored) = state.store.latest_roster(household).await? else {
        return Ok(None);
    };
    let signed = SignedRoster::decode(&stored.signed).map_err(stored_roster_broken)?;
    let roster = signed.unverified_roster();
    let Some(until) = quiet_until(&roster.settings, now) else {
        return Ok(None);
    };
    let toys = roster
        .members
        .iter()
        .filter(|m| m.role == Role::Toy)
        .map(|m| domain_device_id(m.device_id))
        .collect();
    Ok(Some(QuietHold { until, toys }))
}

const MINUTES_PER_DAY: i64 = 24 * 60;

/// When the quiet hours of `settings` end, if they hold at `now` (the toy's rule: local
/// minutes from the start included to the end excluded, over midnight when the end comes
/// first).
pub fn quiet_until(
    settings: &pawpost_crypto::HouseholdSettings,
    now: OffsetDateTime,
) -> Option<OffsetDateTime> {
    let quiet = settings.quiet_hours?;
    let unix_minutes = now.unix_timestamp().div_euclid(60);
    let minute =
        (unix_minutes + i64::from(settings.timezone_offset_minutes)).rem_euclid(MINUTES_PER_DAY);
    let (start, end) = (i64::from(quiet.start_minute), i64::from(quiet.end_minute));
    let inside = if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    };
    if !inside {
        return None;
    }
    let left = (end - minute).rem_euclid(MINUTES_PER_DAY);
    OffsetDateTime::from_unix_timestamp((unix_minutes + left) * 60).ok()
}

/// A message the caller may see: an active member who sent it or whose device receives
/// it, or a parent of its household. Any other message is not found.
async fn visible_message(
    state: &AppState,
    account: AccountId,
    message_id: Uuid,
) -> MessageResult<Message> {
    let message = state
        .store
        .message(message_id)
        .await?
        .ok_or(MessageError::NotFound("message"))?;
    let me = active_membership(state, message.household_id, account)
        .await
        .map_err(|e| match e {
            MembershipError::NotAMember => MessageError::NotFound("message"),
            other => other.into(),
        })?;
    // Parents see every message of their household (never its content).
    if me.manages() || message.sender_account == Some(account) {
        return Ok(message);
    }
    let mine = state.store.devices_of_account(account).await?;
    let receipts = state.store.receipts(message_id).await?;
    if receipts
        .iter()
        .any(|r| mine.iter().any(|d| d.id == r.device_id))
    {
        Ok(message)
    } else {
        Err(MessageError::NotFound("message"))
    }
}

/// The envelope of a message the caller may see, to open on their device.
pub async fn download(
    state: &AppState,
    account: AccountId,
    message_id: Uuid,
) -> MessageResult<Vec<u8>> {
    let message = visible_message(state, account, message_id).await?;
    record(
        state,
        Event::new(AuditAction::MessageDownloaded)
            .by(account)
            .in_household(message.household_id)
            .on(message_id),
    )
    .await;
    let bytes = stored_envelope(state, &message).await?.ok_or_else(|| {
        StoreError::Backend(format!("the envelope of message {message_id} is missing"))
    })?;
    Ok(bytes)
}

/// The stored envelope of `message`, from its row or from the blob store; `None` when it
/// is gone (deleted meanwhile).
pub async fn stored_envelope(state: &AppState, message: &Message) -> StoreResult<Option<Vec<u8>>> {
    if message.envelope_in_row() {
        return state.store.message_envelope(message.id).await;
    }
    let key =
        BlobKey::new(message.blob_key.clone()).map_err(|e| StoreError::Backend(e.to_string()))?;
    state.blobs.get(&key).await
}

/// Records that one of the caller's devices received or played (opened) a message.
pub async fn receipt(
    state: &AppState,
    account: AccountId,
    message_id: Uuid,
    device_id: DeviceId,
    receipt: ReceiptState,
) -> MessageResult<()> {
    visible_message(state, account, message_id).await?;
    let device = state.store.device(device_id).await?;
    if device.and_then(|d| d.account_id) != Some(account) {
        return Err(MessageError::NotFound("device"));
    }
    state
        .store
        .set_receipt(message_id, device_id, receipt, OffsetDateTime::now_utc())
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => MessageError::NotFound("recipient"),
            other => other.into(),
        })?;
    receipt_changed(state, message_id).await;
    Ok(())
}

/// Releases a held message to the household's toys (owner or guardian), with the
/// signature (unpadded base64url) of one of the caller's devices over the toy protocol's
/// approval input. The
/// server relays the signature; the toy checks it against its roster.
pub async fn approve(
    state: &AppState,
    account: AccountId,
    message_id: Uuid,
    device_id: DeviceId,
    signature: &str,
) -> MessageResult<()> {
    let message = visible_message(state, account, message_id).await?;
    let me = active_membership(state, message.household_id, account).await?;
    if !me.manages() {
        return Err(MessageError::NotAParent);
    }
    let device = state
        .store
        .device(device_id)
        .await?
        .filter(|d| d.account_id == Some(account))
        .ok_or(MessageError::NotFound("device"))?;
    let identity = PublicIdentity::decode(&device.identity)
        .map_err(|e| StoreError::Backend(format!("stored identity does not decode: {e}")))?;
    let signature: [u8; 64] = super::decode_b64("signature", signature)?
        .try_into()
        .map_err(|_| MessageError::InvalidApprovalSignature)?;
    let household = pawpost_crypto::HouseholdId(*message.household_id.0.as_bytes());
    let id = pawpost_protocol::MessageId(*message_id.as_bytes());
    if !pawpost_protocol::signing::verify_approval(
        &identity.ed25519_pub,
        household,
        id,
        identity.device_id,
        &signature,
    ) {
        return Err(MessageError::BadApprovalSignature);
    }
    let approval = Approval {
        message_id,
        approver: device_id,
        signature: signature.to_vec(),
        created_at: OffsetDateTime::now_utc(),
    };
    state.store.insert_approval(&approval).await?;
    let devices: Vec<DeviceId> = state
        .store
        .receipts(message_id)
        .await?
        .into_iter()
        .map(|r| r.device_id)
        .collect();
    crate::delivery::approve(state, &approval, &devices);
    relay::announce(
        state,
        Note::Approval {
            id: message_id,
            devices,
        },
    )
    .await;
    tracing::info!(message = %message_id, by = %account, "message approved for the toy");
    live(state, Change::message(message.household_id, message_id)).await;
    record(
        state,
        Event::new(AuditAction::MessageApproved)
            .by(account)
            .in_household(message.household_id)
            .on(message_id),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pawpost_crypto::{HouseholdSettings, QuietHours};

    fn settings(start: u16, end: u16, offset: i16) -> HouseholdSettings {
        HouseholdSettings {
            quiet_hours: Some(QuietHours {
                start_minute: start,
                end_minute: end,
            }),
            timezone_offset_minutes: offset,
            parent_approves_before_play: false,
            retention_days: 30,
        }
    }

    fn at(text: &str) -> OffsetDateTime {
        OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn quiet_hours_hold_as_the_toy_counts_them() {
        // 19:00 to 07:00, two hours ahead of UTC.
        let night = settings(19 * 60, 7 * 60, 120);
        assert_eq!(
            quiet_until(&night, at("2026-12-04T20:30:10Z")),
            Some(at("2026-12-05T05:00:00Z")),
            "22:30 local: quiet until 07:00 local"
        );
        assert_eq!(
            quiet_until(&night, at("2026-12-04T04:59:59Z")),
            Some(at("2026-12-04T05:00:00Z"))
        );
        assert_eq!(quiet_until(&night, at("2026-12-04T05:00:00Z")), None);
        assert_eq!(
            quiet_until(&night, at("2026-12-04T17:00:00Z")),
            Some(at("2026-12-05T05:00:00Z")),
            "the first quiet minute"
        );
        assert_eq!(quiet_until(&night, at("2026-12-04T16:59:00Z")), None);
        // A window within one day, and no quiet hours at all.
        let nap = settings(13 * 60, 15 * 60, 0);
        assert_eq!(
            quiet_until(&nap, at("2026-12-04T14:00:00Z")),
            Some(at("2026-12-04T15:00:00Z"))
        );
        assert_eq!(quiet_until(&nap, at("2026-12-04T15:00:00Z")), None);
        let none = HouseholdSettings {
            quiet_hours: None,
            ..nap
        };
        assert_eq!(quiet_until(&none, at("2026-12-04T14:00:00Z")), None);
    }
}
