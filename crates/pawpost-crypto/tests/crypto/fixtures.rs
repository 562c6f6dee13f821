//! A household to tell the stories with: deterministic keys so that every run (and the
//! committed vectors) sees the same bytes.

use pawpost_crypto::rand_core::SeedableRng;
use pawpost_crypto::{
    AccountId, DeviceId, DeviceKeys, HouseholdId, HouseholdSettings, Member, MemberStatus,
    QuietHours, Role, Roster,
};
use rand_chacha::ChaCha20Rng;

/// A seeded generator: the same seed always gives the same keys and envelopes.
pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

fn id(kind: u8, n: u8) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[0] = kind;
    bytes[6] = 0x40; // UUID version 4 nibble, so the ids look like real ones
    bytes[8] = 0x80; // RFC 4122 variant
    bytes[15] = n;
    bytes
}

pub fn device_id(n: u8) -> DeviceId {
    DeviceId(id(0xd0, n))
}

pub fn account_id(n: u8) -> AccountId {
    AccountId(id(0xac, n))
}

pub fn household_id() -> HouseholdId {
    HouseholdId(id(0x40, 1))
}

pub fn other_household_id() -> HouseholdId {
    HouseholdId(id(0x40, 2))
}

/// The devices in the stories, each with its own seed.
pub struct Household {
    /// Owner: the parent who created the household.
    pub mum: DeviceKeys,
    /// Guardian: the second parent.
    pub dad: DeviceKeys,
    /// Family: an approved relative far away.
    pub grandma: DeviceKeys,
    /// Family: a relative who gets blocked in version 3.
    pub uncle: DeviceKeys,
    /// The plush toy.
    pub toy: DeviceKeys,
    /// Someone who was never let in.
    pub outsider: DeviceKeys,
}

impl Household {
    pub fn new() -> Self {
        let make = |n: u8| DeviceKeys::generate(&mut rng(n), device_id(n));
        Self {
            mum: make(1),
            dad: make(2),
            grandma: make(3),
            uncle: make(4),
            toy: make(5),
            outsider: make(6),
        }
    }

    pub fn by_name(&self, name: &str) -> &DeviceKeys {
        match name {
            "mum" => &self.mum,
            "dad" => &self.dad,
            "grandma" => &self.grandma,
            "uncle" => &self.uncle,
            "toy" => &self.toy,
            "outsider" => &self.outsider,
            other => panic!("no device called {other}"),
        }
    }

    pub fn settings() -> HouseholdSettings {
        HouseholdSettings {
            quiet_hours: Some(QuietHours {
                start_minute: 19 * 60 + 30,
                end_minute: 7 * 60,
            }),
            timezone_offset_minutes: 60,
            parent_approves_before_play: true,
            retention_days: 30,
        }
    }

    fn member(&self, name: &str, account: u8, role: Role, status: MemberStatus) -> Member {
        Member::new(
            &self.by_name(name).public(),
            account_id(account),
            role,
            status,
        )
    }

    /// Version 1: mum (owner), dad (guardian) and the toy.
    pub fn genesis(&self) -> Roster {
        Roster::genesis(
            household_id(),
            Self::settings(),
            vec![
                self.member("mum", 1, Role::Owner, MemberStatus::Approved),
                self.member("dad", 2, Role::Guardian, MemberStatus::Approved),
                self.member("toy", 1, Role::Toy, MemberStatus::Approved),
            ],
        )
    }

    /// Version 2: grandma and the uncle join.
    pub fn with_relatives(&self, prev: &Roster) -> Roster {
        let mut next = prev.next_version();
        next.members
            .push(self.member("grandma", 3, Role::Family, MemberStatus::Approved));
        next.members
            .push(self.member("uncle", 4, Role::Family, MemberStatus::Approved));
        next
    }

    /// Version 3: the uncle is blocked and quiet hours are turned off.
    pub fn uncle_blocked(&self, prev: &Roster) -> Roster {
        let mut next = prev.next_version();
        for m in &mut next.members {
            if m.device_id == self.uncle.device_id() {
                m.status = MemberStatus::Blocked;
            }
        }
        next.settings.quiet_hours = None;
        next
    }
}
