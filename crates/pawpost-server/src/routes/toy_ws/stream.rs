//! Protocol version 2 on the toy's WebSocket: deliveries sent in chunks as the toy asks for
//! them, and uploads received in pieces (docs/TOY-PROTOCOL.md, "Streaming"). A toy says it
//! speaks it with a `ChunkRequest` for [`STREAMING_HELLO`] before its `Auth`; a toy that
//! does not gets whole `Deliver` frames as before.
use super::{message_uuid, Session};
use crate::services::messages::MessageError;
use crate::toyhub::StartFinished;
use pawpost_crypto::EnvelopePrefix;
use pawpost_domain::DeviceId;
use pawpost_protocol::{
    Frame, MessageId, RejectReason, ServerError, MAX_CHUNK_BYTES, MAX_ENVELOPE_LEN, STREAMING_HELLO,
};
use pawpost_store::StoreResult;

/// Most chunks sent ahead of the toy's acknowledgement, whatever window it asks for: a
/// toy on a slow Bluetooth link asks for fewer.
pub const MAX_CHUNK_WINDOW: u8 = 8;

/// What a connection streams: at most one delivery and one upload at a time, each boxed
/// so that a connection streaming nothing keeps two empty pointers.
#[derive(Default)]
pub(super) struct Streams {
    /// The toy sent the hello before authenticating.
    pub(super) hello: bool,
    outgoing: Option<Box<Outgoing>>,
    upload: Option<Box<UploadParts>>,
}

/// A delivery being streamed: the stored envelope, read once.
struct Outgoing {
    message_id: MessageId,
    envelope: Vec<u8>,
    /// Where the chunks start.
    chunks_at: usize,
    count: u32,
    /// One past the last chunk sent.
    sent_to: u32,
}

impl Outgoing {
    fn chunk(&self, index: u32) -> &[u8] {
        let piece = MAX_CHUNK_BYTES;
        let start = self.chunks_at + index as usize * piece;
        let end = (start + piece).min(self.envelope.len());
        &self.envelope[start..end]
    }
}

struct UploadParts {
    message_id: MessageId,
    total_len: usize,
    bytes: Vec<u8>,
}

impl Session {
    /// The toy delivered `message_id` (`refused` `None`) or refused it: the starts held
    /// back for want of room in its window may follow (`toyhub::DELIVER_STARTS_AHEAD`).
    pub(super) async fn delivery_ended(
        &self,
        toy: DeviceId,
        message_id: MessageId,
        refused: Option<RejectReason>,
    ) -> StoreResult<()> {
        let finished = match refused {
            Some(RejectReason::QueueFull) => StartFinished::NoRoom(message_id),
            _ => StartFinished::Done(message_id),
        };
        self.send_held_starts(toy, finished).await
    }

    /// The child played a message: the toy has room to store one more.
    pub(super) async fn room_made(&self, toy: DeviceId) -> StoreResult<()> {
        self.send_held_starts(toy, StartFinished::Played).await
    }

    async fn send_held_starts(&self, toy: DeviceId, finished: StartFinished) -> StoreResult<()> {
        let Some((_, connection, _)) = &self.toy else {
            return Ok(());
        };
        if self.state.toys.start_finished(toy, *connection, finished) {
            crate::delivery::deliver_waiting(&self.state, toy).await?;
        }
        Ok(())
    }

    /// The toy holds the chunks of `message_id` before `next_index` and has room for
    /// `window` more; sends those not sent yet.
    pub(super) async fn chunk_request(
        &mut self,
        toy: DeviceId,
        message_id: MessageId,
        next_index: u32,
        window: u8,
    ) -> Result<(), MessageError> {
        if message_id == STREAMING_HELLO {
            if let Some((device, connection, _)) = &self.toy {
                self.state.toys.set_streaming(*device, *connection);
            }
            return Ok(());
        }
        let cached = self
            .streams
            .outgoing
            .as_ref()
            .is_some_and(|o| o.message_id == message_id);
        if !cached {
            self.streams.outgoing = None;
            let Some(envelope) =
                crate::delivery::envelope_of(&self.state, message_uuid(message_id)).await?
            else {
                tracing::info!(toy = %toy, "toy asked for chunks of a message that is gone");
                return Ok(());
            };
            let Ok((prefix, _)) = EnvelopePrefix::parse(&envelope) else {
                tracing::error!(message = %message_uuid(message_id), "a stored envelope does not parse");
                return Ok(());
            };
            // Only a recipient gets the chunks.
            let recipient = pawpost_crypto::DeviceId(*toy.0.as_bytes());
            if prefix.header().recipient_index(recipient).is_none() {
                tracing::info!(toy = %toy, "toy asked for chunks of a message not addressed to it");
                return Ok(());
            }
            let chunks_at = prefix.encoded_len();
            let count = prefix.header().chunk_count();
            self.streams.outgoing = Some(Box::new(Outgoing {
                message_id,
                envelope,
                chunks_at,
                count,
                sent_to: 0,
            }));
        }
        let Some(outgoing) = self.streams.outgoing.as_mut() else {
            return Ok(());
        };
        if next_index == 0 {
            // Asked from the start again: a new `DeliverStart` of the same message.
            outgoing.sent_to = 0;
        }
        let window = u32::from(window.clamp(1, MAX_CHUNK_WINDOW));
        let end = next_index.saturating_add(window).min(outgoing.count);
        let start = next_index.max(outgoing.sent_to);
        outgoing.sent_to = outgoing.sent_to.max(end);
        let done = outgoing.sent_to == outgoing.count;
        let frames: Vec<Vec<u8>> = (start..end)
            .filter_map(|index| {
                Frame::DeliverChunk {
                    message_id,
                    index,
                    chunk: outgoing.chunk(index),
                }
                .encode()
                .ok()
            })
            .collect();
        if done {
            // Every chunk is out: the envelope need not stay in memory.
            self.streams.outgoing = None;
        }
        for frame in frames {
            let _ = self.outbox.send(frame).await;
        }
        Ok(())
    }

    /// A piece of the child's recording; the envelope is checked and stored as an `Upload`
    /// once every piece arrived.
    pub(super) async fn upload_chunk(
        &mut self,
        toy: DeviceId,
        message_id: MessageId,
        offset: u32,
        total_len: u32,
        bytes: &[u8],
    ) -> Result<(), MessageError> {
        let total_len = total_len as usize;
        if total_len > MAX_ENVELOPE_LEN {
            self.streams.upload = None;
            self.fail(ServerError::UploadRefused).await;
            return Ok(());
        }
        if offset == 0 {
            self.streams.upload = Some(Box::new(UploadParts {
                message_id,
                total_len,
                bytes: Vec::with_capacity(total_len),
            }));
        }
        let Some(upload) = self
            .streams
            .upload
            .as_mut()
            .filter(|u| u.message_id == message_id && u.total_len == total_len)
        else {
            tracing::info!(toy = %toy, "toy sent a piece of an upload it did not start; ignored");
            return Ok(());
        };
        if offset as usize != upload.bytes.len() || upload.bytes.len() + bytes.len() > total_len {
            tracing::info!(toy = %toy, "toy sent an upload piece out of place; ignored");
            return Ok(());
        }
        upload.bytes.extend_from_slice(bytes);
        let next_offset = u32::try_from(upload.bytes.len()).unwrap_or(u32::MAX);
        if upload.bytes.len() < total_len {
            self.send(&Frame::UploadChunkAck {
                message_id,
                next_offset,
            })
            .await;
            return Ok(());
        }
        let Some(upload) = self.streams.upload.take() else {
            return Ok(());
        };
        self.upload(toy, &upload.bytes).await
    }
}
