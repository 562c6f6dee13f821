//! What the shell tells the toy, and what the toy tells the shell to do.

use alloc::vec::Vec;

use pawpost_crypto::{MessageId, SafetyNumber, SealError};
use pawpost_media::MediaError;
use pawpost_protocol::{
    ConfirmationNumber, FrameError, FrameType, PairingCode, RejectReason, RosterRefusal,
    ServerError,
};

use crate::state::StateBlob;
use crate::toy::names::{NamesRefusal, SpokenName};
use crate::toy::update::UpdateRefusal;

/// Something that happened to the toy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The toy started. `now_ms` is the shell's monotonic clock; `wall_clock_unix_ms` its
    /// real-time clock if it has one (otherwise the server's time from `Challenge` is used).
    PowerOn {
        /// Monotonic milliseconds.
        now_ms: u64,
        /// Unix milliseconds, if the toy has a real-time clock.
        wall_clock_unix_ms: Option<u64>,
    },
    /// The physical paw button. Nothing else may produce this event.
    PawPressed {
        /// Held for the long-press time (the shell decides how long).
        long: bool,
    },
    /// The physical paw button was held down for `ms` milliseconds. A hold of at least
    /// [`crate::FACTORY_RESET_HOLD_MS`] is a factory reset: the toy forgets its keys, its
    /// household, its messages and any pairing, and starts over as a new, unpaired toy. A
    /// shorter hold is a long press. Nothing else may produce this event: no frame can
    /// reset the toy.
    PawHeld {
        /// How long the paw was held.
        ms: u64,
    },
    /// A complete frame from the server (WebSocket message or reassembled BLE frame).
    FrameReceived(&'a [u8]),
    /// Time passed; the shell sends this about once a second.
    Timer {
        /// Monotonic milliseconds.
        now_ms: u64,
    },
    /// The microphone stopped after [`Action::StartRecording`]; the recording as Ogg Opus.
    RecordingFinished {
        /// The recorded file.
        ogg: Vec<u8>,
    },
    /// A connection to the server is open (the server speaks first, with `Challenge`).
    Connected,
    /// The connection closed.
    Disconnected,
}

/// Something the shell must do, in the order given. In particular a `Persist` comes before
/// the `SendFrame` that depends on it having been saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this frame to the server.
    SendFrame(Vec<u8>),
    /// Play the stored audio of a verified voice message (Ogg Opus, already validated),
    /// read from the audio storage that [`Action::StoreAudio`] wrote.
    PlayAudio {
        /// Which message.
        message_id: MessageId,
    },
    /// Write `bytes` at `offset` of the message's audio in the toy's audio storage, kept
    /// apart from the state blob. Nothing stored plays until the whole message verified:
    /// the toy then queues it and says so with a `Persist`.
    StoreAudio {
        /// Which message.
        message_id: MessageId,
        /// Where the bytes go in the message's audio.
        offset: u64,
        /// Decrypted Ogg Opus bytes.
        bytes: Vec<u8>,
    },
    /// Delete the message's audio from storage (played, refused half-way, or forgotten).
    DiscardAudio {
        /// Which message.
        message_id: MessageId,
    },
    /// Start the microphone; stop by itself after `max_ms` and report
    /// [`Event::RecordingFinished`].
    StartRecording {
        /// Longest recording.
        max_ms: u32,
    },
    /// Stop the microphone now and report [`Event::RecordingFinished`].
    StopRecording,
    /// Set the heart light.
    SetHeart(Heart),
    /// Say something to the child.
    Speak(Prompt),
    /// Save this state (replacing the previous one) before carrying out the next actions.
    Persist(StateBlob),
    /// Something was refused, for the device's log.
    Report(Report),
    /// Close the connection and open a new one, for the reason given.
    Reconnect(ReconnectReason),
    /// Erase the inactive image slot, before an update is written into it (or after one was
    /// refused, so that nothing of it stays).
    EraseUpdate,
    /// Write `bytes` at `offset` of the inactive image slot; done before the next action.
    WriteUpdate {
        /// Where the bytes go in the image.
        offset: u32,
        /// The image's bytes (not trusted yet: the whole image is checked before
        /// [`Action::InstallUpdate`]).
        bytes: Vec<u8>,
    },
    /// The inactive slot holds an image whose every byte matched this signed manifest: mark
    /// it to be tried at the next boot, then restart. The running image stays in its slot
    /// until the new one confirms ([`Action::ConfirmImage`]).
    InstallUpdate {
        /// The new software version.
        version: u32,
        /// Its anti-rollback counter.
        counter: u32,
        /// The image's length in bytes.
        size: u32,
        /// The image's SHA-256.
        sha256: [u8; 32],
    },
    /// The running image works (the toy authenticated to the server after booting it): the
    /// boot stage stops counting tries, and the old slot may be overwritten later.
    ConfirmImage,
    /// The server accepted the toy on this connection (a paired toy's `Auth` stood; an
    /// unpaired toy got its `Challenge`): the next wait before reconnecting starts again
    /// from the first of [`crate::reconnect_wait_ms`]'s schedule.
    ConnectionAccepted,
}

/// Why the toy asks for a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReconnectReason {
    /// The server refused the toy's authentication (its household was deleted, say):
    /// count a failure and wait [`crate::reconnect_wait_ms`] before connecting again.
    AuthRefused,
    /// A factory reset gave the toy new keys: connect again at once, as the new toy.
    FactoryReset,
    /// An owner took the toy out of its household (`Leave`): connect again at once, as an
    /// unpaired toy that keeps its keys.
    Left,
}

/// The heart light.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Heart {
    /// Nothing to show.
    Off,
    /// Busy: recording, or pairing.
    On,
    /// A message is waiting to be heard.
    Blink,
}

/// What the toy says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// Pairing mode started ("let's find your family").
    PairingStarted,
    /// The code for a parent to type, digit by digit.
    PairingCode(PairingCode),
    /// A parent entered the code: "if your app shows this number, press my paw".
    ConfirmPairing(ConfirmationNumber),
    /// Pairing finished.
    Paired,
    /// Pairing failed or timed out.
    PairingFailed,
    /// A long press on a toy that already has a household.
    AlreadyPaired,
    /// A short press on a toy without a household.
    NotPaired,
    /// The household removed this toy.
    Unpaired,
    /// Nothing to hear (said before recording starts).
    NoMessages,
    /// The microphone is on.
    Recording,
    /// The recording could not be used.
    RecordingFailed,
    /// The server has the child's message.
    Sent,
    /// It is quiet time: messages wait until morning.
    QuietHours,
    /// Too many recordings wait to be sent; try later.
    TryLater,
    /// A factory reset: "I've forgotten everything. I'm ready to be paired again."
    Forgotten,
    /// An owner took the toy out of its household: "I left my family. I can be set up
    /// with a family again."
    LeftFamily,
    /// The toy's safety number, digit by digit, for a parent to compare with the app
    /// (after pairing, and on a long press of a paired toy).
    SafetyNumber(SafetyNumber),
    /// Said before a message plays: "a message from Grandma", with the name a parent set.
    MessageFrom(SpokenName),
}

/// Why the toy refused a `Leave` frame; it stays in its household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LeaveRefusal {
    /// The toy has no household.
    NotPaired,
    /// The frame names another household.
    WrongHousehold,
    /// The signer is not an approved member of the roster whose role may sign rosters.
    NotOwner,
    /// The signer's key is not one the toy pinned.
    SignerNotPinned,
    /// The signature does not verify for this household, this toy and this signer.
    BadSignature,
}

impl LeaveRefusal {
    /// A stable name, for logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotPaired => "not_paired",
            Self::WrongHousehold => "wrong_household",
            Self::NotOwner => "signer_not_owner",
            Self::SignerNotPinned => "signer_not_pinned",
            Self::BadSignature => "bad_signature",
        }
    }
}

/// Why the toy refused an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApprovalRefusal {
    /// No held message with that id.
    UnknownMessage,
    /// The approver is not an approved owner or guardian.
    NotApprover,
    /// The signature does not verify.
    BadSignature,
    /// The toy is not paired.
    NotPaired,
}

/// Why a recording was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordingProblem {
    /// The toy never started the microphone.
    NotRequested,
    /// The file is not valid Ogg Opus within the recording limits.
    BadMedia(MediaError),
    /// The roster lists nobody to send to.
    NoRecipients,
    /// Sealing failed.
    Seal(SealError),
    /// The roster does not list this toy's keys, so recipients could not verify it.
    NoRosterKeys,
}

/// What the toy refused, and why. Every dropped message is reported here and, with a
/// `Rejected` frame, to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// A message was dropped and will never play.
    MessageDropped {
        /// The message, if the envelope parsed far enough.
        message_id: Option<MessageId>,
        /// Why.
        reason: RejectReason,
    },
    /// A roster was refused; the toy keeps the one it had.
    RosterRefused {
        /// Its version, if it parsed.
        version: Option<u64>,
        /// Why.
        reason: RosterRefusal,
    },
    /// An approval was refused; the message stays held.
    ApprovalRefused {
        /// The message named.
        message_id: MessageId,
        /// Why.
        reason: ApprovalRefusal,
    },
    /// A `Leave` frame was refused; the toy keeps its household.
    LeaveRefused {
        /// Why.
        reason: LeaveRefusal,
    },
    /// A `Names` frame was refused; the toy keeps the names it had.
    NamesRefused {
        /// Why.
        reason: NamesRefusal,
    },
    /// A streamed delivery stopped before its end (a chunk out of order, or another
    /// delivery started); what was stored is discarded and the server delivers it again at
    /// the next connection.
    DeliveryInterrupted {
        /// The message.
        message_id: MessageId,
    },
    /// An update was refused or abandoned; the toy keeps running the version it has.
    UpdateRefused {
        /// Why.
        reason: UpdateRefusal,
    },
    /// A recording was discarded.
    RecordingDiscarded {
        /// Why.
        reason: RecordingProblem,
    },
    /// Bytes that are not a valid frame.
    FrameRefused {
        /// Why.
        error: FrameError,
    },
    /// A valid frame that means nothing in the toy's current state (or travels the other
    /// way); ignored.
    FrameIgnored {
        /// Its type.
        frame_type: FrameType,
    },
    /// The server reported an error.
    ServerError {
        /// Which.
        code: ServerError,
    },
}
