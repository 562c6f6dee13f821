//! The toy's audio storage: queued messages' audio in a region of flash of its own, apart
//! from the small state saved on every change (so saving the state never rewrites audio,
//! and a delivery is written chunk by chunk as it is decrypted, never held whole in RAM).
//!
//! The region is cut into [`AUDIO_SLOTS`] equal slots, one per message: the toy's queue
//! and the one delivery it may be receiving. A board hands its region to [`SlotStore`].

use pawpost_toy::{MessageId, MAX_QUEUED_MESSAGES};

/// Messages the storage holds at once: a full queue and one being received.
pub const AUDIO_SLOTS: usize = MAX_QUEUED_MESSAGES + 1;

/// Audio files in equal slots of a byte region.
pub struct SlotStore<'a> {
    region: &'a mut [u8],
    slot_len: usize,
    /// Which message each slot holds, and how many bytes of it.
    slots: [Option<(MessageId, usize)>; AUDIO_SLOTS],
}

impl<'a> SlotStore<'a> {
    /// A store over `region` (its previous contents are not read: an empty store).
    pub fn new(region: &'a mut [u8]) -> Self {
        let slot_len = region.len() / AUDIO_SLOTS;
        Self {
            region,
            slot_len,
            slots: [None; AUDIO_SLOTS],
        }
    }

    /// The most bytes one message's audio may take.
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Writes `bytes` at `offset` of `message`'s audio; offset 0 starts it afresh.
    pub fn write(
        &mut self,
        message: MessageId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), &'static str> {
        let offset = usize::try_from(offset).map_err(|_| "audio offset out of range")?;
        let index = match self.find(message) {
            Some(index) => index,
            None if offset == 0 => self
                .slots
                .iter()
                .position(Option::is_none)
                .ok_or("the audio storage is full")?,
            None => return Err("audio written for a message that was not started"),
        };
        let end = offset
            .checked_add(bytes.len())
            .filter(|end| *end <= self.slot_len)
            .ok_or("a message is larger than an audio slot")?;
        let held = if offset == 0 {
            0
        } else {
            self.slots[index].map_or(0, |(_, len)| len)
        };
        if offset > held {
            return Err("audio written with a gap");
        }
        let start = index * self.slot_len;
        self.region[start + offset..start + end].copy_from_slice(bytes);
        self.slots[index] = Some((message, held.max(end)));
        Ok(())
    }

    /// Reads `message`'s audio from `offset` into `buf`; returns the bytes read (0 at its
    /// end, or for a message it does not hold).
    pub fn read(&self, message: MessageId, offset: usize, buf: &mut [u8]) -> usize {
        let Some(index) = self.find(message) else {
            return 0;
        };
        let len = self.slots[index].map_or(0, |(_, len)| len);
        let n = len.saturating_sub(offset).min(buf.len());
        let start = index * self.slot_len + offset;
        buf[..n].copy_from_slice(&self.region[start..start + n]);
        n
    }

    /// Forgets `message`'s audio.
    pub fn discard(&mut self, message: MessageId) {
        if let Some(index) = self.find(message) {
            self.slots[index] = None;
        }
    }

    fn find(&self, message: MessageId) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.is_some_and(|(id, _)| id == message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn audio_is_written_in_pieces_read_back_and_forgotten() {
        let mut region = vec![0u8; AUDIO_SLOTS * 100];
        let mut store = SlotStore::new(&mut region);
        let a = MessageId([1; 16]);
        store.write(a, 0, b"hello ").unwrap();
        store.write(a, 6, b"grandma").unwrap();
        let mut buf = [0u8; 64];
        let n = store.read(a, 0, &mut buf);
        assert_eq!(&buf[..n], b"hello grandma");
        assert_eq!(store.read(a, 6, &mut buf[..3]), 3);
        assert_eq!(&buf[..3], b"gra");
        assert_eq!(
            store.write(a, 20, b"x"),
            Err("audio written with a gap"),
            "never a hole"
        );
        assert_eq!(
            store.write(MessageId([2; 16]), 5, b"x"),
            Err("audio written for a message that was not started")
        );
        assert_eq!(
            store.write(MessageId([3; 16]), 0, &[0; 101]),
            Err("a message is larger than an audio slot")
        );
        store.discard(a);
        assert_eq!(store.read(a, 0, &mut buf), 0);
        for n in 0..AUDIO_SLOTS {
            store
                .write(MessageId([u8::try_from(n).unwrap() + 10; 16]), 0, b"x")
                .unwrap();
        }
        assert_eq!(
            store.write(MessageId([99; 16]), 0, b"x"),
            Err("the audio storage is full")
        );
    }
}
