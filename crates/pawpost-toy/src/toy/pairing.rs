//! Pairing: a long paw press starts it, the toy speaks the server's code, a short press
//! confirms the number the parent's app shows, and the first roster is checked and the
//! roster signers it lists pinned.

use alloc::vec::Vec;

use pawpost_crypto::{HouseholdId, PublicIdentity, Role, Roster, SignedRoster};
use pawpost_protocol::signing::sign_pair_request;
use pawpost_protocol::{ConfirmationNumber, Frame, FrameType, PairingCode, RosterRefusal};

use super::rotation::roster_refusal;
use super::{ignored, Action, Household, Pairing, Prompt, Toy};

impl Toy {
    pub(super) fn long_press(&mut self, out: &mut Vec<Action>) {
        if self.household.is_some() {
            // Moving a toy to another household takes a reset, not a press: a press would let
            // a compromised server take over a paired toy that a child presses by accident.
            out.push(Action::Speak(Prompt::AlreadyPaired));
            out.push(Action::Speak(Prompt::SafetyNumber(self.safety_number())));
            return;
        }
        self.pairing = Some(Pairing {
            since_ms: self.clock.now_ms,
            code: None,
            requested: false,
            confirm: None,
        });
        out.push(Action::Speak(Prompt::PairingStarted));
        self.request_pairing(out);
    }

    /// The server's pairing code for this toy, which it speaks for the parent to type.
    pub(super) fn pair_code(&mut self, code: PairingCode, out: &mut Vec<Action>) {
        match &mut self.pairing {
            Some(pairing) => {
                pairing.code = Some(code);
                pairing.confirm = None;
                out.push(Action::Speak(Prompt::PairingCode(code)));
            }
            None => ignored(FrameType::PairCode, out),
        }
    }

    /// A parent entered the code: the toy speaks the number the app shows, and a short
    /// press confirms the claim.
    pub(super) fn confirm_pairing(&mut self, number: ConfirmationNumber, out: &mut Vec<Action>) {
        match &mut self.pairing {
            Some(pairing) if pairing.code.is_some() => {
                pairing.confirm = Some(number);
                out.push(Action::Speak(Prompt::ConfirmPairing(number)));
            }
            _ => ignored(FrameType::ConfirmPairing, out),
        }
    }

    pub(super) fn request_pairing(&mut self, out: &mut Vec<Action>) {
        let (Some(pairing), Some(nonce)) = (&mut self.pairing, self.link.nonce) else {
            return;
        };
        if pairing.requested {
            return;
        }
        pairing.requested = true;
        let identity = self.keys.public();
        let signature = sign_pair_request(&self.keys, &nonce);
        self.send_now(
            &Frame::PairRequest {
                identity,
                signature,
            },
            out,
        );
    }

    pub(super) fn paired(
        &mut self,
        household_id: HouseholdId,
        bytes: &[u8],
        out: &mut Vec<Action>,
    ) {
        if self.pairing.is_none() || self.household.is_some() {
            self.refuse_roster(None, RosterRefusal::Unexpected, out);
            return;
        }
        match self.verify_pairing_roster(household_id, bytes) {
            Ok(household) => {
                self.household = Some(household);
                self.pairing = None;
                self.persist(out);
                out.push(Action::Speak(Prompt::Paired));
                out.push(Action::Speak(Prompt::SafetyNumber(self.safety_number())));
            }
            Err((version, reason)) => {
                self.refuse_roster(version, reason, out);
                out.push(Action::Speak(Prompt::PairingFailed));
            }
        }
    }

    /// The first roster a toy sees: signed by an approved owner listed in that same roster
    /// (the chain before it cannot be checked, so the parent typing the spoken code is what
    /// vouches for it), for the household the server named, listing this toy with exactly
    /// its keys. The keys of the roster's signers (its approved owners and recovery key)
    /// are pinned.
    fn verify_pairing_roster(
        &self,
        household_id: HouseholdId,
        bytes: &[u8],
    ) -> Result<Household, (Option<u64>, RosterRefusal)> {
        let signed = SignedRoster::decode(bytes).map_err(|_| (None, RosterRefusal::Malformed))?;
        let roster = signed.unverified_roster();
        let version = Some(roster.version);
        if roster.household_id != household_id {
            return Err((version, RosterRefusal::HouseholdMismatch));
        }
        let signer = roster
            .member(signed.signer())
            .filter(|m| m.is_approved_owner())
            .ok_or((version, RosterRefusal::SignerNotOwner))?;
        let verified = if roster.version == 1 {
            signed.verify_genesis()
        } else {
            signed.verify_signed_by(&signer.ed25519_pub)
        };
        verified.map_err(|e| (version, roster_refusal(e)))?;
        let me = self.keys.public();
        if !lists_toy(roster, &me) {
            return Err((version, RosterRefusal::ToyKeyMismatch));
        }
        // The signer vouches for every roster signer it lists (the other owners' devices
        // and the household's recovery key), exactly as a later update does: so a second
        // parent or the recovery code can sign the next version without waiting for this
        // signer to sign one first.
        let pinned_owners = roster
            .members
            .iter()
            .filter(|m| m.may_sign_rosters())
            .map(|m| m.ed25519_pub)
            .collect();
        Ok(Household {
            roster: signed,
            pinned_owners,
        })
    }
}

fn lists_toy(roster: &Roster, identity: &PublicIdentity) -> bool {
    roster
        .approved_member(identity.device_id)
        .is_some_and(|m| m.role == Role::Toy && m.public_identity() == *identity)
}
