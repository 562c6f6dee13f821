//! Protocol version 2: a delivery that arrives in chunks, and the child's recording sent in
//! pieces, so that a toy with little memory holds one chunk of a message at a time.
//!
//! A streamed delivery is opened as it arrives: `DeliverStart` carries the envelope's
//! prefix, whose header passes every check a whole envelope passes, whose sender's signature
//! over header and payload digest verifies and whose content key unwraps for this toy before
//! a single chunk is asked for. Each chunk then authenticates (AES-GCM, bound to its
//! position) and is hashed, checked as Ogg Opus and written to audio storage; only when the
//! last chunk makes the digest the sender signed, and the whole file is valid Ogg Opus of at
//! most 30 s, does the message join the queue. Any failure deletes what was stored: nothing
//! unverified ever plays.

use alloc::vec::Vec;
use core::ops::Range;

use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{DeviceId, EnvelopePrefix, MessageId, StreamOpener};
use pawpost_media::OggOpusStream;
use pawpost_protocol::{Frame, FrameType, RejectReason, MAX_CHUNK_BYTES};

use super::delivery::{open_refusal, Rejection, RECEIVE_LIMITS};
use super::{
    ignored, Action, Event, Queued, Report, Toy, MAX_QUEUED_MESSAGES, RECEIVE_WINDOW_CHUNKS,
    UPLOAD_WINDOW_CHUNKS,
};

/// The largest `UploadChunk` piece: one envelope chunk and its tag, which fits in `u32`.
#[allow(
    clippy::cast_possible_truncation,
    reason = "16 400 bytes; the assertion below proves it fits, and `u32::try_from` is not usable in a const"
)]
const UPLOAD_PIECE_LEN: u32 = MAX_CHUNK_BYTES as u32;
const _: () = assert!(MAX_CHUNK_BYTES <= u32::MAX as usize);

/// `DeliverStart`s kept while another delivery streams, and the bytes they may take (a
/// prefix for one recipient is 264 bytes, for the most recipients 6.3 KB); beyond either
/// the toy answers `queue_full` and the server delivers it at the next connection.
const MAX_WAITING_STARTS: usize = 64;
const MAX_WAITING_START_BYTES: usize = 32 * 1024;

/// Audio a `DeliverChunk` carried, decrypted where the frame lies
/// ([`Toy::handle_frame_in_place`]): `frame[range]` goes at `offset` of the message's
/// audio, as [`Action::StoreAudio`] would carry it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioInFrame {
    /// The message the audio belongs to.
    pub message_id: MessageId,
    /// Where in the message's audio it goes.
    pub offset: u64,
    /// Where in the frame it lies.
    pub range: Range<usize>,
}

/// A streamed delivery being received.
pub(super) struct Incoming {
    message_id: MessageId,
    sender: DeviceId,
    created_at_ms: u64,
    opener: StreamOpener,
    media: OggOpusStream,
    /// Plaintext bytes written to audio storage so far.
    stored: u64,
    next_index: u32,
}

impl Toy {
    pub(super) fn deliver_start(&mut self, prefix: &[u8], out: &mut Vec<Action>) {
        if self.incoming.is_some() {
            // One delivery streams at a time: the server sends a few starts ahead (it
            // paces them to the toy's room), and the next begins when this one ends.
            let held: usize = self.waiting_starts.iter().map(Vec::len).sum();
            if self.waiting_starts.len() < MAX_WAITING_STARTS
                && held + prefix.len() <= MAX_WAITING_START_BYTES
            {
                self.waiting_starts.push_back(prefix.to_vec());
            } else {
                let id = EnvelopePrefix::parse(prefix)
                    .ok()
                    .map(|(p, _)| p.header().message_id);
                self.reject(id, RejectReason::QueueFull, out);
            }
            return;
        }
        match self.open_stream(prefix) {
            Ok(incoming) => {
                let message_id = incoming.message_id;
                self.incoming = Some(incoming);
                self.request_chunks(message_id, 0, out);
            }
            Err(rejection) => self.refuse(rejection, out),
        }
    }

    /// Every check of a whole delivery that needs no chunk, in the same order, then the
    /// signature and the content key.
    fn open_stream(&self, bytes: &[u8]) -> Result<Incoming, Rejection> {
        let (prefix, rest) = EnvelopePrefix::parse(bytes)
            .map_err(|_| Rejection::new(None, RejectReason::Malformed))?;
        let header = prefix.header();
        let id = Some(header.message_id);
        let fail = |reason| Rejection::new(id, reason);
        if !rest.is_empty() {
            return Err(fail(RejectReason::Malformed));
        }
        let sender = self.check_header(header)?;
        if header.payload_len > RECEIVE_LIMITS.max_bytes as u64 {
            return Err(fail(RejectReason::BadMedia));
        }
        if self.queue.len() >= MAX_QUEUED_MESSAGES {
            return Err(fail(RejectReason::QueueFull));
        }
        let keys = self
            .roster_keys()
            .ok_or_else(|| fail(RejectReason::Undecryptable))?;
        let opener =
            StreamOpener::new(&prefix, keys, &sender).map_err(|e| fail(open_refusal(e)))?;
        Ok(Incoming {
            message_id: header.message_id,
            sender: header.sender,
            created_at_ms: header.created_at_ms,
            opener,
            media: OggOpusStream::new(&RECEIVE_LIMITS),
            stored: 0,
            next_index: 0,
        })
    }

    pub(super) fn deliver_chunk(
        &mut self,
        message_id: MessageId,
        index: u32,
        chunk: &[u8],
        out: &mut Vec<Action>,
    ) {
        if !self.chunk_expected(message_id, index, out) {
            return;
        }
        // Decrypted in a copy (see `handle_frame_in_place` for a toy without the room).
        let mut bytes = chunk.to_vec();
        let Some((offset, len)) = self.open_chunk(message_id, &mut bytes, out) else {
            return;
        };
        bytes.truncate(len);
        out.push(Action::StoreAudio {
            message_id,
            offset,
            bytes,
        });
        self.chunk_stored(message_id, out);
    }

    /// [`Toy::handle`] for a frame from the link that the toy may overwrite: a
    /// `DeliverChunk` is decrypted where it lies instead of in a copy, so that on a chip the
    /// frame's buffer is the only one a chunk takes. Returns the actions and, when the frame
    /// carried a chunk that opened, where its audio now lies in `frame`: the shell stores
    /// it before carrying out the actions, as it would an [`Action::StoreAudio`] in front
    /// of them.
    pub fn handle_frame_in_place(
        &mut self,
        frame: &mut [u8],
        rng: &mut impl CryptoRng,
    ) -> (Vec<Action>, Option<AudioInFrame>) {
        let chunk = match Frame::decode(frame) {
            Ok(Frame::DeliverChunk {
                message_id,
                index,
                chunk,
            }) => {
                let start = (chunk.as_ptr() as usize).wrapping_sub(frame.as_ptr() as usize);
                let range = start..start.wrapping_add(chunk.len());
                frame
                    .get(range.clone())
                    .is_some_and(|within| within.as_ptr() == chunk.as_ptr())
                    .then_some((message_id, index, range))
            }
            _ => None,
        };
        let Some((message_id, index, range)) = chunk else {
            return (self.handle(Event::FrameReceived(frame), rng), None);
        };
        let mut out = Vec::new();
        // As `handle` does for every frame only an authenticated toy is sent.
        if self.link.authenticated {
            self.accept_connection(&mut out);
        }
        let mut audio = None;
        if self.chunk_expected(message_id, index, &mut out) {
            if let Some((offset, len)) =
                self.open_chunk(message_id, &mut frame[range.clone()], &mut out)
            {
                audio = Some(AudioInFrame {
                    message_id,
                    offset,
                    range: range.start..range.start + len,
                });
                self.chunk_stored(message_id, &mut out);
            }
        }
        let heart = self.wanted_heart();
        if self.heart != Some(heart) {
            self.heart = Some(heart);
            out.push(Action::SetHeart(heart));
        }
        (out, audio)
    }

    /// Whether chunk `index` of `message_id` is the one the delivery under way waits for;
    /// a chunk after a missing one ends that delivery.
    fn chunk_expected(&mut self, message_id: MessageId, index: u32, out: &mut Vec<Action>) -> bool {
        let Some(incoming) = self
            .incoming
            .as_ref()
            .filter(|i| i.message_id == message_id)
        else {
            ignored(FrameType::DeliverChunk, out);
            return false;
        };
        if index < incoming.next_index {
            // A repeat of a chunk already stored.
            ignored(FrameType::DeliverChunk, out);
            return false;
        }
        if index > incoming.next_index {
            // A chunk went missing: the server delivers the message again later.
            self.interrupt_incoming(out);
            return false;
        }
        true
    }

    /// Decrypts the expected chunk in place and checks its audio; returns where the audio
    /// goes in the message's storage and how long it is (the start of `bytes`). A chunk
    /// that fails ends the delivery.
    fn open_chunk(
        &mut self,
        message_id: MessageId,
        bytes: &mut [u8],
        out: &mut Vec<Action>,
    ) -> Option<(u64, usize)> {
        let incoming = self.incoming.as_mut()?;
        let opened = match incoming.opener.open_chunk(bytes) {
            Ok(plain) => incoming
                .media
                .push(plain)
                .map(|()| plain.len())
                .map_err(|_| RejectReason::BadMedia),
            Err(e) => Err(open_refusal(e)),
        };
        match opened {
            Ok(len) => {
                let offset = incoming.stored;
                incoming.stored += len as u64;
                incoming.next_index += 1;
                Some((offset, len))
            }
            Err(reason) => {
                self.drop_incoming(Rejection::new(Some(message_id), reason), out);
                None
            }
        }
    }

    /// After a chunk's audio: asks for the next chunks, or finishes after the last.
    fn chunk_stored(&mut self, message_id: MessageId, out: &mut Vec<Action>) {
        match &self.incoming {
            Some(incoming) if incoming.opener.next_chunk_len().is_some() => {
                let next = incoming.next_index;
                self.request_chunks(message_id, next, out);
            }
            _ => self.finish_incoming(out),
        }
    }

    /// The last chunk arrived: the message joins the queue only if the chunks are the ones
    /// the sender signed and the whole file is valid.
    fn finish_incoming(&mut self, out: &mut Vec<Action>) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        let message_id = incoming.message_id;
        if let Err(e) = incoming.opener.finish() {
            self.discard_and_refuse(Rejection::new(Some(message_id), open_refusal(e)), out);
            self.start_next(out);
            return;
        }
        if incoming.media.finish().is_err() {
            // Signed by its sender, so its id is used up.
            let rejection = Rejection {
                message_id: Some(message_id),
                reason: RejectReason::BadMedia,
                authentic_at: Some(incoming.created_at_ms),
            };
            self.discard_and_refuse(rejection, out);
            self.start_next(out);
            return;
        }
        if self.queue.len() >= MAX_QUEUED_MESSAGES {
            let rejection = Rejection::new(Some(message_id), RejectReason::QueueFull);
            self.discard_and_refuse(rejection, out);
            self.start_next(out);
            return;
        }
        let held = self
            .household
            .as_ref()
            .is_some_and(|h| h.roster().settings.parent_approves_before_play);
        self.seen.insert(message_id, incoming.created_at_ms);
        self.queue.push(Queued {
            message_id,
            sender: incoming.sender,
            created_at_ms: incoming.created_at_ms,
            held,
        });
        // Saved before the ack, so that an ack never outlives a lost message.
        self.persist(out);
        self.send_or_queue(&Frame::Delivered { message_id }, out);
        self.start_next(out);
    }

    fn drop_incoming(&mut self, rejection: Rejection, out: &mut Vec<Action>) {
        self.incoming = None;
        self.discard_and_refuse(rejection, out);
        self.start_next(out);
    }

    /// Starts the delivery whose `DeliverStart` waited, if any.
    fn start_next(&mut self, out: &mut Vec<Action>) {
        while self.incoming.is_none() {
            let Some(prefix) = self.waiting_starts.pop_front() else {
                return;
            };
            self.deliver_start(&prefix, out);
        }
    }

    fn discard_and_refuse(&mut self, rejection: Rejection, out: &mut Vec<Action>) {
        if let Some(message_id) = rejection.message_id {
            out.push(Action::DiscardAudio { message_id });
        }
        self.refuse(rejection, out);
    }

    /// Stops the streamed delivery under way, if any, and deletes what it stored.
    pub(super) fn interrupt_incoming(&mut self, out: &mut Vec<Action>) {
        if let Some(incoming) = self.incoming.take() {
            let message_id = incoming.message_id;
            out.push(Action::DiscardAudio { message_id });
            out.push(Action::Report(Report::DeliveryInterrupted { message_id }));
        }
        self.start_next(out);
    }

    fn request_chunks(&self, message_id: MessageId, next_index: u32, out: &mut Vec<Action>) {
        self.send_now(
            &Frame::ChunkRequest {
                message_id,
                next_index,
                window: RECEIVE_WINDOW_CHUNKS,
            },
            out,
        );
    }

    /// Sends the oldest pending upload again from its start (a new connection, or the one
    /// before it was answered).
    pub(super) fn restart_uploads(&mut self, out: &mut Vec<Action>) {
        self.upload_sent = 0;
        self.upload_acked = 0;
        self.send_upload_pieces(out);
    }

    /// Sends the oldest pending upload's pieces that the window allows.
    fn send_upload_pieces(&mut self, out: &mut Vec<Action>) {
        if !self.link.authenticated {
            return;
        }
        let Some((message_id, envelope)) = self.pending_uploads.first() else {
            return;
        };
        // Envelopes the toy seals fit in a frame, far below 4 GiB.
        let Ok(total_len) = u32::try_from(envelope.len()) else {
            return;
        };
        let piece = UPLOAD_PIECE_LEN;
        let limit = self
            .upload_acked
            .saturating_add(UPLOAD_WINDOW_CHUNKS * piece);
        let mut sent = self.upload_sent;
        while sent < total_len && sent < limit {
            let end = sent.saturating_add(piece).min(total_len);
            let frame = Frame::UploadChunk {
                message_id: *message_id,
                offset: sent,
                total_len,
                bytes: &envelope[sent as usize..end as usize],
            };
            if let Ok(bytes) = frame.encode() {
                out.push(Action::SendFrame(bytes));
            }
            sent = end;
        }
        self.upload_sent = sent;
    }

    pub(super) fn upload_chunk_acked(
        &mut self,
        message_id: MessageId,
        next_offset: u32,
        out: &mut Vec<Action>,
    ) {
        let current = self
            .pending_uploads
            .first()
            .is_some_and(|(id, _)| *id == message_id);
        if !current || next_offset < self.upload_acked || next_offset > self.upload_sent {
            ignored(FrameType::UploadChunkAck, out);
            return;
        }
        self.upload_acked = next_offset;
        self.send_upload_pieces(out);
    }
}
