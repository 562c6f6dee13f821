//! Delivery and playback: every check a message passes before it may play, parents'
//! approvals, playing on a paw press, quiet hours and the heart light.

use alloc::vec::Vec;

use pawpost_crypto::{
    open, DeviceId, Envelope, EnvelopeHeader, MediaType, MessageId, OpenError, PublicIdentity, Role,
};
use pawpost_media::{validate_ogg_opus, Limits};
use pawpost_protocol::signing::verify_approval;
use pawpost_protocol::{Frame, RejectReason, MAX_ENVELOPE_LEN};

use super::{
    Action, ApprovalRefusal, Heart, Queued, Report, Toy, MAX_MESSAGE_MS, MAX_QUEUED_MESSAGES,
};

const MINUTES_PER_DAY: i64 = 24 * 60;
const MS_PER_MINUTE: u64 = 60_000;

/// Limits on messages the toy plays: 30 s, and never more bytes than a frame carries.
pub(super) const RECEIVE_LIMITS: Limits = Limits {
    max_duration_ms: MAX_MESSAGE_MS,
    max_bytes: MAX_ENVELOPE_LEN,
    max_packets: Limits::DEFAULT.max_packets,
};

impl Toy {
    pub(super) fn deliver(&mut self, envelope: &[u8], out: &mut Vec<Action>) {
        match self.check_envelope(envelope) {
            Ok((message, ogg)) => {
                let message_id = message.message_id;
                out.push(Action::StoreAudio {
                    message_id,
                    offset: 0,
                    bytes: ogg,
                });
                self.seen.insert(message_id, message.created_at_ms);
                self.queue.push(message);
                // Saved before the ack, so that an ack never outlives a lost message.
                self.persist(out);
                self.send_or_queue(&Frame::Delivered { message_id }, out);
            }
            Err(rejection) => self.refuse(rejection, out),
        }
    }

    pub(super) fn refuse(&mut self, rejection: Rejection, out: &mut Vec<Action>) {
        if let (Some(id), Some(created)) = (rejection.message_id, rejection.authentic_at) {
            // Authentic but unplayable: never accept this id again.
            self.seen.insert(id, created);
            self.persist(out);
        }
        self.reject(rejection.message_id, rejection.reason, out);
    }

    pub(super) fn reject(
        &mut self,
        message_id: Option<MessageId>,
        reason: RejectReason,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Report(Report::MessageDropped {
            message_id,
            reason,
        }));
        self.send_or_queue(
            &Frame::Rejected {
                message_id: message_id.unwrap_or_default(),
                reason,
            },
            out,
        );
    }

    /// Every check a message passes before it may ever play, cheapest first; returns it
    /// with its audio.
    fn check_envelope(&self, bytes: &[u8]) -> Result<(Queued, Vec<u8>), Rejection> {
        let envelope =
            Envelope::parse(bytes).map_err(|_| Rejection::new(None, RejectReason::Malformed))?;
        let header = envelope.header();
        let id = Some(header.message_id);
        let fail = |reason| Rejection::new(id, reason);
        let sender = self.check_header(header)?;
        let keys = self
            .roster_keys()
            .ok_or_else(|| fail(RejectReason::Undecryptable))?;
        let opened = open(bytes, keys, &sender).map_err(|e| fail(open_refusal(e)))?;
        let created_at_ms = opened.header.created_at_ms;
        if validate_ogg_opus(&opened.payload, &RECEIVE_LIMITS).is_err() {
            return Err(Rejection {
                message_id: id,
                reason: RejectReason::BadMedia,
                authentic_at: Some(created_at_ms),
            });
        }
        if self.queue.len() >= MAX_QUEUED_MESSAGES {
            return Err(fail(RejectReason::QueueFull));
        }
        let held = self
            .household
            .as_ref()
            .is_some_and(|h| h.roster().settings.parent_approves_before_play);
        Ok((
            Queued {
                message_id: opened.header.message_id,
                sender: opened.header.sender,
                created_at_ms,
                held,
            },
            opened.payload,
        ))
    }

    /// The checks of a message's header, before any cryptography; returns the sender whose
    /// signature must verify. Shared by whole and streamed deliveries.
    pub(super) fn check_header(
        &self,
        header: &EnvelopeHeader,
    ) -> Result<PublicIdentity, Rejection> {
        let id = Some(header.message_id);
        let fail = |reason| Rejection::new(id, reason);
        let household = self
            .household
            .as_ref()
            .ok_or_else(|| fail(RejectReason::NotPaired))?;
        let roster = household.roster();
        if header.household_id != roster.household_id {
            return Err(fail(RejectReason::WrongHousehold));
        }
        let sender = match roster.member(header.sender) {
            None => return Err(fail(RejectReason::UnknownSender)),
            Some(m) if !m.is_approved() => return Err(fail(RejectReason::SenderBlocked)),
            // The household's recovery key signs rosters only: it never sends.
            Some(m) if !m.may_send() => return Err(fail(RejectReason::UnknownSender)),
            Some(m) => m.public_identity(),
        };
        if header.recipient_index(self.device_id()).is_none() {
            return Err(fail(RejectReason::NotARecipient));
        }
        if self.seen.refuses(header.message_id, header.created_at_ms)
            || self.queue.iter().any(|m| m.message_id == header.message_id)
        {
            return Err(fail(RejectReason::Replayed));
        }
        if header.media_type != MediaType::OggOpus {
            return Err(fail(RejectReason::WrongMediaType));
        }
        Ok(sender)
    }

    pub(super) fn approval(
        &mut self,
        message_id: MessageId,
        approver: DeviceId,
        signature: &[u8; 64],
        out: &mut Vec<Action>,
    ) {
        let refused = |reason| Action::Report(Report::ApprovalRefused { message_id, reason });
        let Some(household) = &self.household else {
            out.push(refused(ApprovalRefusal::NotPaired));
            return;
        };
        let roster = household.roster();
        let Some(index) = self
            .queue
            .iter()
            .position(|m| m.message_id == message_id && m.held)
        else {
            out.push(refused(ApprovalRefusal::UnknownMessage));
            return;
        };
        let Some(member) = roster
            .approved_member(approver)
            .filter(|m| matches!(m.role, Role::Owner | Role::Guardian))
        else {
            out.push(refused(ApprovalRefusal::NotApprover));
            return;
        };
        if !verify_approval(
            &member.ed25519_pub,
            roster.household_id,
            message_id,
            approver,
            signature,
        ) {
            out.push(refused(ApprovalRefusal::BadSignature));
            return;
        }
        self.queue[index].held = false;
        self.persist(out);
    }

    pub(super) fn play(&mut self, index: usize, out: &mut Vec<Action>) {
        let message = self.queue.remove(index);
        let message_id = message.message_id;
        if let Some(who) = self.announcement(message.sender) {
            out.push(Action::Speak(who));
        }
        out.push(Action::PlayAudio { message_id });
        self.persist(out);
        out.push(Action::DiscardAudio { message_id });
        self.send_or_queue(&Frame::Played { message_id }, out);
    }

    pub(super) fn wanted_heart(&self) -> Heart {
        if self.recording.is_some() || self.pairing.is_some() {
            Heart::On
        } else if self.queue.iter().any(|m| !m.held) && !self.in_quiet_hours() {
            Heart::Blink
        } else {
            Heart::Off
        }
    }

    /// Whether the household's quiet hours hold now, in its own time zone. Without a wall
    /// clock the toy cannot tell and does not hold messages back.
    pub(super) fn in_quiet_hours(&self) -> bool {
        let Some(household) = &self.household else {
            return false;
        };
        let settings = household.roster().settings;
        let (Some(quiet), Some(wall)) = (settings.quiet_hours, self.clock.wall_ms()) else {
            return false;
        };
        let minutes = i64::try_from(wall / MS_PER_MINUTE).unwrap_or(i64::MAX)
            + i64::from(settings.timezone_offset_minutes);
        // rem_euclid of a day is within 0..1440, so it fits in u16.
        let minute = u16::try_from(minutes.rem_euclid(MINUTES_PER_DAY)).unwrap_or(0);
        if quiet.start_minute < quiet.end_minute {
            (quiet.start_minute..quiet.end_minute).contains(&minute)
        } else {
            minute >= quiet.start_minute || minute < quiet.end_minute
        }
    }
}

/// What the toy tells the server when opening failed.
pub(super) fn open_refusal(error: OpenError) -> RejectReason {
    match error {
        OpenError::Malformed(_) => RejectReason::Malformed,
        OpenError::WrongSender | OpenError::BadSignature => RejectReason::BadSignature,
        OpenError::NotARecipient => RejectReason::NotARecipient,
        OpenError::WrongHousehold => RejectReason::WrongHousehold,
        OpenError::SenderNotApproved => RejectReason::UnknownSender,
        _ => RejectReason::Undecryptable,
    }
}

pub(super) struct Rejection {
    pub(super) message_id: Option<MessageId>,
    pub(super) reason: RejectReason,
    /// Set when the message was proven authentic (its id is then used up).
    pub(super) authentic_at: Option<u64>,
}

impl Rejection {
    pub(super) fn new(message_id: Option<MessageId>, reason: RejectReason) -> Self {
        Self {
            message_id,
            reason,
            authentic_at: None,
        }
    }
}
