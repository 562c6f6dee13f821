//! The toy's audio storage: queued messages' audio in a region of flash of its own, apart
//! from the small state saved on every change (so saving the state never rewrites audio,
//! and a delivery is written chunk by chunk as it is decrypted, never held whole in RAM).
//!
//! The region is cut into [`AUDIO_SLOTS`] equal slots, one per message: the toy's queue
//! and the one delivery it may be receiving. Each slot starts with a header page (which
//! message, how many bytes, a CRC-32), rewritten after the audio it describes, so that
//! after a power cut the store finds again what it held; audio is only appended, each
//! page erased when the audio first reaches it.

use pawpost_ble::crc32;
use pawpost_toy::{MessageId, MAX_QUEUED_MESSAGES};

use crate::flash::{pages, Flash, PAGE};

/// Messages the storage holds at once: a full queue and one being received.
pub const AUDIO_SLOTS: usize = MAX_QUEUED_MESSAGES + 1;

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"PPAU");
/// magic, message id, length, CRC-32 of the rest.
const HEADER_LEN: usize = 4 + 16 + 4 + 4;

/// Audio files in equal slots of a flash region.
pub struct SlotStore {
    start: usize,
    slot_len: usize,
    /// Which message each slot holds, and how many bytes of it.
    slots: [Option<(MessageId, usize)>; AUDIO_SLOTS],
}

impl SlotStore {
    /// The store in `len` bytes of `flash` from `start` (a page boundary), holding what
    /// its slot headers say.
    pub fn open(flash: &impl Flash, start: usize, len: usize) -> Self {
        let slot_len = len / AUDIO_SLOTS / PAGE * PAGE;
        let mut slots = [None; AUDIO_SLOTS];
        for (index, slot) in slots.iter_mut().enumerate() {
            let mut header = [0u8; HEADER_LEN];
            if flash.read(start + index * slot_len, &mut header).is_err() {
                continue;
            }
            *slot = decode_header(&header).filter(|(_, held)| *held <= slot_len - PAGE);
        }
        Self {
            start,
            slot_len,
            slots,
        }
    }

    /// The most bytes one message's audio may take.
    pub fn slot_len(&self) -> usize {
        self.slot_len.saturating_sub(PAGE)
    }

    /// The messages whose audio it holds.
    pub fn held(&self) -> impl Iterator<Item = MessageId> + '_ {
        self.slots.iter().flatten().map(|(id, _)| *id)
    }

    /// Writes `bytes` at `offset` of `message`'s audio; offset 0 starts it afresh, any
    /// other must be where its audio ends (flash is written once between erases).
    pub fn write(
        &mut self,
        flash: &mut impl Flash,
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
            .filter(|end| *end <= self.slot_len())
            .ok_or("a message is larger than an audio slot")?;
        let held = if offset == 0 {
            0
        } else {
            self.slots[index].map_or(0, |(_, len)| len)
        };
        if offset > held {
            return Err("audio written with a gap");
        }
        if offset < held {
            return Err("audio rewritten in place: start the message again at offset 0");
        }
        let header_at = self.start + index * self.slot_len;
        let data_at = header_at + PAGE;
        let failed = |e: crate::flash::FlashError| e.as_str();
        if offset == 0 {
            // The slot reads as empty until its header says otherwise again.
            flash.erase(header_at, PAGE).map_err(failed)?;
        }
        let (erased_to, needed_to) = (pages(held), pages(end));
        if needed_to > erased_to {
            flash
                .erase(data_at + erased_to, needed_to - erased_to)
                .map_err(failed)?;
        }
        flash.program(data_at + offset, bytes).map_err(failed)?;
        if offset != 0 {
            flash.erase(header_at, PAGE).map_err(failed)?;
        }
        flash
            .program(header_at, &encode_header(message, end))
            .map_err(failed)?;
        self.slots[index] = Some((message, end));
        Ok(())
    }

    /// Reads `message`'s audio from `offset` into `buf`; returns the bytes read (0 at its
    /// end, or for a message it does not hold).
    pub fn read(
        &self,
        flash: &impl Flash,
        message: MessageId,
        offset: usize,
        buf: &mut [u8],
    ) -> usize {
        let Some(index) = self.find(message) else {
            return 0;
        };
        let len = self.slots[index].map_or(0, |(_, len)| len);
        let n = len.saturating_sub(offset).min(buf.len());
        let at = self.start + index * self.slot_len + PAGE + offset;
        match flash.read(at, &mut buf[..n]) {
            Ok(()) => n,
            Err(_) => 0,
        }
    }

    /// Forgets `message`'s audio (its header page is erased).
    pub fn discard(&mut self, flash: &mut impl Flash, message: MessageId) {
        if let Some(index) = self.find(message) {
            self.slots[index] = None;
            // A header that could not be erased is refused at the next start by its CRC
            // only if torn; an intact one brings the audio back, which the board discards
            // again as a message the toy no longer keeps.
            let _ = flash.erase(self.start + index * self.slot_len, PAGE);
        }
    }

    fn find(&self, message: MessageId) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.is_some_and(|(id, _)| id == message))
    }
}

fn encode_header(message: MessageId, len: usize) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0..4].copy_from_slice(&HEADER_MAGIC.to_le_bytes());
    header[4..20].copy_from_slice(&message.0);
    // A slot is far below 4 GiB.
    header[20..24].copy_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
    let crc = crc32(&header[..24]);
    header[24..28].copy_from_slice(&crc.to_le_bytes());
    header
}

fn decode_header(header: &[u8; HEADER_LEN]) -> Option<(MessageId, usize)> {
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    if word(0) != HEADER_MAGIC || crc32(&header[..24]) != word(24) {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&header[4..20]);
    Some((MessageId(id), usize::try_from(word(20)).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::MemFlash;
    use alloc::vec;

    #[test]
    fn audio_is_written_in_pieces_read_back_and_forgotten() {
        let len = AUDIO_SLOTS * 3 * PAGE;
        let mut region = vec![0xffu8; len];
        let mut flash = MemFlash::new(&mut region, ());
        let mut store = SlotStore::open(&flash, 0, len);
        assert_eq!(store.slot_len(), 2 * PAGE);
        let a = MessageId([1; 16]);
        store.write(&mut flash, a, 0, b"hello ").unwrap();
        store.write(&mut flash, a, 6, b"grandma").unwrap();
        let mut buf = [0u8; 64];
        let n = store.read(&flash, a, 0, &mut buf);
        assert_eq!(&buf[..n], b"hello grandma");
        assert_eq!(store.read(&flash, a, 6, &mut buf[..3]), 3);
        assert_eq!(&buf[..3], b"gra");
        assert_eq!(
            store.write(&mut flash, a, 20, b"x"),
            Err("audio written with a gap"),
            "never a hole"
        );
        assert_eq!(
            store.write(&mut flash, MessageId([2; 16]), 5, b"x"),
            Err("audio written for a message that was not started")
        );
        assert_eq!(
            store.write(&mut flash, MessageId([3; 16]), 0, &[0; 2 * PAGE + 1]),
            Err("a message is larger than an audio slot")
        );
        // Across a page boundary, then started afresh.
        store.write(&mut flash, a, 13, &[7; PAGE]).unwrap();
        store.write(&mut flash, a, 0, b"again").unwrap();
        assert_eq!(store.read(&flash, a, 0, &mut buf), 5);
        store.discard(&mut flash, a);
        assert_eq!(store.read(&flash, a, 0, &mut buf), 0);
        for n in 0..AUDIO_SLOTS {
            store
                .write(
                    &mut flash,
                    MessageId([u8::try_from(n).unwrap() + 10; 16]),
                    0,
                    b"x",
                )
                .unwrap();
        }
        assert_eq!(
            store.write(&mut flash, MessageId([99; 16]), 0, b"x"),
            Err("the audio storage is full")
        );
    }

    #[test]
    fn what_was_stored_is_found_again_after_a_restart() {
        let len = AUDIO_SLOTS * 4 * PAGE;
        let mut region = vec![0xffu8; len];
        let (a, b) = (MessageId([1; 16]), MessageId([2; 16]));
        let voice: alloc::vec::Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        {
            let mut flash = MemFlash::new(&mut region, ());
            let mut store = SlotStore::open(&flash, 0, len);
            store.write(&mut flash, a, 0, &voice[..3000]).unwrap();
            store.write(&mut flash, a, 3000, &voice[3000..]).unwrap();
            store.write(&mut flash, b, 0, b"gone").unwrap();
            store.discard(&mut flash, b);
        }
        let flash = MemFlash::new(&mut region, ());
        let store = SlotStore::open(&flash, 0, len);
        assert_eq!(store.held().collect::<alloc::vec::Vec<_>>(), vec![a]);
        let mut buf = vec![0u8; 6000];
        let n = store.read(&flash, a, 0, &mut buf);
        assert_eq!(&buf[..n], &voice[..]);
    }
}
