//! Recording: the microphone (started only by a physical press), sealing the child's
//! recording for the household's approved members, and its upload until acknowledged.

use alloc::vec::Vec;

use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{seal, MediaType, MessageId, MessageParams, PublicIdentity, Role};
use pawpost_media::{validate_ogg_opus, Limits};
use pawpost_protocol::FrameType;

use super::{
    ignored, Action, Prompt, Recording, RecordingProblem, Report, Toy, MAX_PENDING_UPLOADS,
    MAX_RECORDING_BYTES, MAX_RECORDING_MS,
};

/// Limits on the child's recordings before they are sealed.
const RECORDING_LIMITS: Limits = Limits {
    max_duration_ms: MAX_RECORDING_MS,
    max_bytes: MAX_RECORDING_BYTES,
    max_packets: Limits::DEFAULT.max_packets,
};

impl Toy {
    /// A short paw press with nothing to hear records a message back. This is the only place
    /// the microphone is ever started, and a physical press (`paw_pressed`) the only caller.
    pub(super) fn start_recording(&mut self, out: &mut Vec<Action>) {
        if self.pending_uploads.len() >= MAX_PENDING_UPLOADS {
            out.push(Action::Speak(Prompt::TryLater));
            return;
        }
        out.push(Action::Speak(Prompt::NoMessages));
        out.push(Action::Speak(Prompt::Recording));
        out.push(Action::StartRecording {
            max_ms: MAX_RECORDING_MS,
        });
        self.recording = Some(Recording {
            since_ms: self.clock.now_ms,
            stop_sent: false,
        });
    }

    pub(super) fn recording_finished(
        &mut self,
        ogg: &[u8],
        rng: &mut impl CryptoRng,
        out: &mut Vec<Action>,
    ) {
        if self.recording.take().is_none() {
            out.push(Action::Report(Report::RecordingDiscarded {
                reason: RecordingProblem::NotRequested,
            }));
            return;
        }
        match self.seal_recording(ogg, rng) {
            Ok((message_id, envelope)) => {
                self.pending_uploads.push((message_id, envelope));
                if self.pending_uploads.len() == 1 {
                    // Sent in pieces (`UploadChunk`), one upload at a time.
                    self.restart_uploads(out);
                }
            }
            Err(reason) => {
                out.push(Action::Speak(Prompt::RecordingFailed));
                out.push(Action::Report(Report::RecordingDiscarded { reason }));
            }
        }
    }

    fn seal_recording(
        &self,
        ogg: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<(MessageId, Vec<u8>), RecordingProblem> {
        let info = validate_ogg_opus(ogg, &RECORDING_LIMITS).map_err(RecordingProblem::BadMedia)?;
        let household = self
            .household
            .as_ref()
            .ok_or(RecordingProblem::NoRecipients)?;
        let roster = household.roster();
        let keys = self.roster_keys().ok_or(RecordingProblem::NoRosterKeys)?;
        // Every approved person in the household hears the child; blocked members and toys
        // do not.
        let recipients: Vec<PublicIdentity> = roster
            .members
            .iter()
            .filter(|m| m.is_approved() && m.role != Role::Toy)
            .map(|m| m.public_identity())
            .collect();
        if recipients.is_empty() {
            return Err(RecordingProblem::NoRecipients);
        }
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let message_id = MessageId(id);
        let params = MessageParams {
            message_id,
            household_id: roster.household_id,
            created_at_ms: self.clock.wall_ms().unwrap_or(0),
            media_type: MediaType::OggOpus,
            duration_ms: info.duration_ms,
            recipients: &recipients,
        };
        let envelope = seal(rng, keys, &params, ogg).map_err(RecordingProblem::Seal)?;
        Ok((message_id, envelope))
    }

    /// The server stored a recording: it need not be sent again.
    pub(super) fn upload_acked(&mut self, message_id: MessageId, out: &mut Vec<Action>) {
        match self
            .pending_uploads
            .iter()
            .position(|(id, _)| *id == message_id)
        {
            Some(index) => {
                self.pending_uploads.remove(index);
                out.push(Action::Speak(Prompt::Sent));
                if index == 0 {
                    self.restart_uploads(out);
                }
            }
            None => ignored(FrameType::UploadAck, out),
        }
    }
}
