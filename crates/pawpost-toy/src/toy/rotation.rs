//! The roster and the toy's keys: roster updates signed by a pinned owner, removal from the
//! household, and the key pair replaced every [`KEY_ROTATION_INTERVAL_MS`].

use alloc::vec::Vec;

use pawpost_crypto::rand_core::CryptoRng;
use pawpost_crypto::{DeviceKeys, Role, RosterError, SafetyNumber, SignedRoster};
use pawpost_protocol::signing::sign_rotation;
use pawpost_protocol::{Frame, FrameType, RejectReason, RosterRefusal};

use super::{ignored, Action, Household, Prompt, Report, Seen, Toy, KEY_ROTATION_INTERVAL_MS};

impl Toy {
    pub(super) fn roster_update(&mut self, bytes: &[u8], out: &mut Vec<Action>) {
        let Some(household) = &self.household else {
            self.refuse_roster(None, RosterRefusal::Unexpected, out);
            return;
        };
        let signed = match SignedRoster::decode(bytes) {
            Ok(s) => s,
            Err(_) => {
                self.refuse_roster(None, RosterRefusal::Malformed, out);
                return;
            }
        };
        let version = Some(signed.unverified_roster().version);
        if let Err(e) = signed.verify_successor(&household.roster) {
            self.refuse_roster(version, roster_refusal(e), out);
            return;
        }
        // verify_successor found the signer as an approved owner (or the recovery key) of
        // the current roster.
        let pinned = household
            .roster()
            .member(signed.signer())
            .is_some_and(|m| household.pinned_owners.contains(&m.ed25519_pub));
        if !pinned {
            self.refuse_roster(version, RosterRefusal::SignerNotPinned, out);
            return;
        }
        let roster = signed.unverified_roster();
        let me = self.device_id();
        let listed = roster
            .approved_member(me)
            .filter(|m| m.role == Role::Toy)
            .map(|m| m.public_identity());
        let Some(listed) = listed else {
            // A pinned owner took the toy out of the household (or blocked it): forget it.
            self.unpair(out);
            return;
        };
        let current = self.keys.public();
        let matches_retired = self
            .retired_keys
            .as_ref()
            .is_some_and(|k| k.public() == listed);
        if listed != current && !matches_retired {
            self.refuse_roster(version, RosterRefusal::ToyKeyMismatch, out);
            return;
        }
        if listed == current {
            // The household now encrypts to the new keys: the old ones can go.
            self.retired_keys = None;
        }
        // A pinned signer vouches for the owners and the recovery key it lists; a removed
        // one is unpinned.
        let pinned_owners = roster
            .members
            .iter()
            .filter(|m| m.may_sign_rosters())
            .map(|m| m.ed25519_pub)
            .collect();
        let approvals_needed = roster.settings.parent_approves_before_play;
        let mut dropped = Vec::new();
        self.queue.retain(|m| {
            let reason = match roster.member(m.sender) {
                None => Some(RejectReason::UnknownSender),
                Some(s) if !s.is_approved() => Some(RejectReason::SenderBlocked),
                Some(_) => None,
            };
            if let Some(reason) = reason {
                dropped.push((m.message_id, reason));
            }
            reason.is_none()
        });
        if !approvals_needed {
            for m in &mut self.queue {
                m.held = false;
            }
        }
        self.household = Some(Household {
            roster: signed,
            pinned_owners,
        });
        self.persist(out);
        for (message_id, reason) in dropped {
            self.reject(Some(message_id), reason, out);
        }
    }

    fn unpair(&mut self, out: &mut Vec<Action>) {
        self.unpair_saying(Prompt::Unpaired, out);
    }

    /// Forgets the household, its queue and seen ids (the keys stay), saves, and says
    /// `prompt`.
    pub(super) fn unpair_saying(&mut self, prompt: Prompt, out: &mut Vec<Action>) {
        self.household = None;
        self.names = None;
        self.queue.clear();
        self.seen = Seen::default();
        self.retired_keys = None;
        self.pending_keys = None;
        self.pending_uploads.clear();
        self.outbox.clear();
        self.persist(out);
        out.push(Action::Speak(prompt));
    }

    pub(super) fn refuse_roster(
        &mut self,
        version: Option<u64>,
        reason: RosterRefusal,
        out: &mut Vec<Action>,
    ) {
        out.push(Action::Report(Report::RosterRefused { version, reason }));
        let frame = Frame::RosterRejected {
            version: version.unwrap_or(0),
            reason,
        };
        if self.household.is_some() {
            self.send_or_queue(&frame, out);
        } else {
            self.send_now(&frame, out);
        }
    }

    /// Records when the current keys were made, once a wall clock is known.
    pub(super) fn note_key_birth(&mut self) -> bool {
        match self.clock.wall_ms() {
            Some(wall) if self.keys_created_unix_ms == 0 => {
                self.keys_created_unix_ms = wall;
                true
            }
            _ => false,
        }
    }

    pub(super) fn maybe_rotate(&mut self, rng: &mut impl CryptoRng, out: &mut Vec<Action>) {
        let due = self.clock.wall_ms().is_some_and(|wall| {
            self.keys_created_unix_ms != 0
                && wall.saturating_sub(self.keys_created_unix_ms) >= KEY_ROTATION_INTERVAL_MS
        });
        // One rotation at a time, and not while the roster still lists retired keys: those
        // are the only keys senders can encrypt to until a parent re-signs the roster.
        if !due
            || !self.link.authenticated
            || self.household.is_none()
            || self.pending_keys.is_some()
            || self.retired_keys.is_some()
            || self.clock.now_ms < self.rotation_not_before_ms
        {
            return;
        }
        self.pending_keys = Some(DeviceKeys::generate(rng, self.device_id()));
        // Saved before it is sent: if the server takes the new key, the toy must have it.
        self.persist(out);
        self.send_rotation(out);
    }

    pub(super) fn send_rotation(&mut self, out: &mut Vec<Action>) {
        let (Some(new), Some(nonce)) = (&self.pending_keys, self.link.nonce) else {
            return;
        };
        let new_identity = new.public();
        let signature_by_old_key = sign_rotation(&self.keys, &nonce, &new_identity);
        self.send_now(
            &Frame::RotateKey {
                new_identity,
                signature_by_old_key,
            },
            out,
        );
    }

    pub(super) fn promote_pending_keys(&mut self, out: &mut Vec<Action>) {
        let Some(new) = self.pending_keys.take() else {
            return;
        };
        let old = core::mem::replace(&mut self.keys, new);
        let roster_lists_old = self.household.as_ref().is_some_and(|h| {
            h.roster()
                .member(old.device_id())
                .is_some_and(|m| m.public_identity() == old.public())
        });
        // Senders keep encrypting to the keys in the roster until an owner signs one with
        // the new keys; until then the old ones open messages (and sign recordings).
        self.retired_keys = roster_lists_old.then_some(old);
        self.keys_created_unix_ms = self.clock.wall_ms().unwrap_or(0);
        self.persist(out);
    }

    /// The server took the new key pair.
    pub(super) fn rotate_acked(&mut self, ed25519_pub: &[u8; 32], out: &mut Vec<Action>) {
        if self
            .pending_keys
            .as_ref()
            .is_some_and(|k| k.public().ed25519_pub == *ed25519_pub)
        {
            self.promote_pending_keys(out);
        } else {
            ignored(FrameType::RotateAck, out);
        }
    }

    /// The key pair the roster lists for this toy: the one senders encrypt to and
    /// recipients check its signatures with.
    /// The safety number of the keys the household's roster lists for this toy (those a
    /// parent's app shows), or of its current keys when the roster lists none it holds.
    pub(super) fn safety_number(&self) -> SafetyNumber {
        self.roster_keys()
            .unwrap_or(&self.keys)
            .public()
            .safety_number()
    }

    pub(super) fn roster_keys(&self) -> Option<&DeviceKeys> {
        let listed = self.household.as_ref()?.roster().member(self.device_id())?;
        let listed = listed.public_identity();
        [Some(&self.keys), self.retired_keys.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.public() == listed)
    }
}

pub(super) fn roster_refusal(e: RosterError) -> RosterRefusal {
    match e {
        RosterError::NotGenesis | RosterError::SignerNotOwner => RosterRefusal::SignerNotOwner,
        RosterError::HouseholdMismatch => RosterRefusal::HouseholdMismatch,
        RosterError::StaleVersion => RosterRefusal::StaleVersion,
        RosterError::PreviousDigestMismatch => RosterRefusal::PreviousDigestMismatch,
        RosterError::BadSignature => RosterRefusal::BadSignature,
    }
}
