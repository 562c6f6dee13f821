//! Leaving the household: an owner's device signs the toy out (the toy was removed from
//! the household, or the household was deleted) and the server relays the `Leave` frame.
//! The toy checks it against its own roster and pinned keys, as it checks a roster update;
//! anything else is reported and ignored.

use alloc::vec::Vec;

use pawpost_crypto::{DeviceId, HouseholdId};
use pawpost_protocol::signing::verify_leave;
use pawpost_protocol::FRAME_SIGNATURE_LEN;

use super::{Action, LeaveRefusal, Prompt, ReconnectReason, Report, Toy};

impl Toy {
    /// Leaves the household when `signer` is an approved member of the current roster whose
    /// role may sign rosters, its key is pinned, and its signature covers this household
    /// and this toy. The toy then forgets the household as a roster that drops it would
    /// make it (keeping its keys and device id), says so, and asks for a new connection,
    /// on which it is an unpaired toy that a long press pairs again.
    pub(super) fn leave(
        &mut self,
        household_id: HouseholdId,
        signer: DeviceId,
        signature: &[u8; FRAME_SIGNATURE_LEN],
        out: &mut Vec<Action>,
    ) {
        if let Err(reason) = self.check_leave(household_id, signer, signature) {
            out.push(Action::Report(Report::LeaveRefused { reason }));
            return;
        }
        self.unpair_saying(Prompt::LeftFamily, out);
        if self.link.connected {
            out.push(Action::Reconnect(ReconnectReason::Left));
        }
    }

    fn check_leave(
        &self,
        household_id: HouseholdId,
        signer: DeviceId,
        signature: &[u8; FRAME_SIGNATURE_LEN],
    ) -> Result<(), LeaveRefusal> {
        let household = self.household.as_ref().ok_or(LeaveRefusal::NotPaired)?;
        let roster = household.roster();
        if roster.household_id != household_id {
            return Err(LeaveRefusal::WrongHousehold);
        }
        let member = roster
            .approved_member(signer)
            .filter(|m| m.may_sign_rosters())
            .ok_or(LeaveRefusal::NotOwner)?;
        if !household.pinned_owners.contains(&member.ed25519_pub) {
            return Err(LeaveRefusal::SignerNotPinned);
        }
        if !verify_leave(
            &member.ed25519_pub,
            household_id,
            self.device_id(),
            signer,
            signature,
        ) {
            return Err(LeaveRefusal::BadSignature);
        }
        Ok(())
    }
}
