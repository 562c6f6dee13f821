//! The factory reset: holding the paw for [`FACTORY_RESET_HOLD_MS`] makes the toy a new,
//! unpaired one. Only the physical button can do it (`Event::PawHeld`); no frame can.

use alloc::vec::Vec;

use pawpost_crypto::rand_core::CryptoRng;

#[cfg(doc)]
use super::FACTORY_RESET_HOLD_MS;
use super::{Action, Link, Prompt, ReconnectReason, Toy};

impl Toy {
    /// Forgets the keys (current, pending and retired), the household and its pinned
    /// owners, the queue, the seen message ids, pairing, pending uploads and frames
    /// waiting to be sent; makes new keys and a new device id from `rng`; saves that; says
    /// so; and asks for a new connection, on which the server meets a toy it never saw.
    pub(super) fn factory_reset(&mut self, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        if self.recording.as_ref().is_some_and(|r| !r.stop_sent) {
            out.push(Action::StopRecording);
        }
        let was_connected = self.link.connected;
        let mut fresh = Self::first_start(rng);
        // The clock and the heart light are the device's, not the old toy's.
        fresh.clock = core::mem::take(&mut self.clock);
        fresh.heart = self.heart;
        // So are the software it runs and the release keys it trusts.
        fresh.updates = core::mem::take(&mut self.updates);
        fresh.link = Link::default();
        // The old keys are zeroed as they drop.
        *self = fresh;
        self.note_key_birth();
        self.persist(out);
        out.push(Action::Speak(Prompt::Forgotten));
        if was_connected {
            out.push(Action::Reconnect(ReconnectReason::FactoryReset));
        }
    }
}
