//! The toy as one saved byte string (layout in `crate::state`), and back.

use alloc::vec::Vec;

use pawpost_crypto::{DeviceId, MessageId, SignedRoster};

use super::{Action, Household, Queued, Toy};
use crate::state::{
    Reader, StateBlob, StateError, Writer, MAX_STORED_OGG_LEN, MAX_STORED_PINS, MAX_STORED_QUEUE,
    MAX_STORED_ROSTER_LEN, MAX_STORED_SEEN, STATE_VERSION, STATE_VERSION_WITH_AUDIO,
};

impl Toy {
    /// The toy as it was saved by an [`Action::Persist`].
    pub fn restore(state: &[u8]) -> Result<Self, StateError> {
        let mut r = Reader::new(state);
        let version = r.u8()?;
        if version != STATE_VERSION && version != STATE_VERSION_WITH_AUDIO {
            return Err(StateError::UnsupportedVersion);
        }
        let mut toy = Self::with_keys(r.keys()?);
        toy.keys_created_unix_ms = r.u64()?;
        toy.pending_keys = r.optional_keys()?;
        toy.retired_keys = r.optional_keys()?;
        if r.flag()? {
            let roster = SignedRoster::decode(r.field(MAX_STORED_ROSTER_LEN)?)
                .map_err(|_| StateError::InvalidContent)?;
            let count = r.count(false, MAX_STORED_PINS)?;
            let mut pinned_owners = Vec::with_capacity(count);
            for _ in 0..count {
                pinned_owners.push(r.array()?);
            }
            toy.household = Some(Household {
                roster,
                pinned_owners,
            });
        }
        toy.seen.floor_ms = r.u64()?;
        for _ in 0..r.count(true, MAX_STORED_SEEN)? {
            let id = MessageId(r.array()?);
            let created = r.u64()?;
            toy.seen.ids.push_back((id, created));
        }
        for _ in 0..r.count(false, MAX_STORED_QUEUE)? {
            let message = Queued {
                message_id: MessageId(r.array()?),
                sender: DeviceId(r.array()?),
                created_at_ms: r.u64()?,
                held: r.flag()?,
            };
            if version == STATE_VERSION_WITH_AUDIO {
                // Moved to audio storage at the next `PowerOn`.
                let ogg = r.field(MAX_STORED_OGG_LEN)?.to_vec();
                toy.unstored.push((message.message_id, ogg));
            }
            toy.queue.push(message);
        }
        r.finish()?;
        Ok(toy)
    }

    /// The state to save now; the same bytes an [`Action::Persist`] carries.
    pub fn state_blob(&self) -> StateBlob {
        let mut w = Writer(Vec::new());
        w.u8(STATE_VERSION);
        w.keys(&self.keys);
        w.u64(self.keys_created_unix_ms);
        w.optional_keys(self.pending_keys.as_ref());
        w.optional_keys(self.retired_keys.as_ref());
        match &self.household {
            Some(h) => {
                w.u8(1);
                w.field(&h.roster.encode());
                w.count(false, h.pinned_owners.len());
                for key in &h.pinned_owners {
                    w.bytes(key);
                }
            }
            None => w.u8(0),
        }
        w.u64(self.seen.floor_ms);
        w.count(true, self.seen.ids.len());
        for (id, created) in &self.seen.ids {
            w.bytes(&id.0);
            w.u64(*created);
        }
        w.count(false, self.queue.len());
        for m in &self.queue {
            w.bytes(&m.message_id.0);
            w.bytes(&m.sender.0);
            w.u64(m.created_at_ms);
            w.u8(u8::from(m.held));
        }
        StateBlob::new(w.0)
    }

    pub(super) fn persist(&mut self, out: &mut Vec<Action>) {
        self.unsaved = false;
        out.push(Action::Persist(self.state_blob()));
    }
}
