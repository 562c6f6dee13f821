//! Roles and membership states inside a household (see DESIGN.md, "Roles").
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a member may do in a household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A parent who created or co-owns the household: can do everything.
    Owner,
    /// A second parent: the same powers as an owner, except over owners.
    Guardian,
    /// An approved relative: sends to the toy and hears the child's messages.
    Family,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Guardian => "guardian",
            Role::Family => "family",
        }
    }

    /// Owners and guardians run the household: invite, approve, block, remove.
    pub const fn manages_household(self) -> bool {
        matches!(self, Role::Owner | Role::Guardian)
    }

    /// Whether a member with this role may block, remove or change the role of a member
    /// who holds `target`. Guardians cannot act on owners; family members act on no one.
    pub const fn may_act_on(self, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Guardian => !matches!(target, Role::Owner),
            Role::Family => false,
        }
    }

    /// Whether a member with this role may hand out `granted` (by invitation or role change).
    pub const fn may_grant(self, granted: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Guardian => !matches!(granted, Role::Owner),
            Role::Family => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown role {0:?}: use owner, guardian or family")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "guardian" => Ok(Role::Guardian),
            "family" => Ok(Role::Family),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

/// Where a member stands in a household.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    /// Accepted an invitation; can do nothing until an owner or guardian approves.
    Pending,
    /// Approved by an owner or guardian.
    Approved,
    /// Blocked: still listed so that parents see who it was, but can send nothing.
    Blocked,
}

impl MemberStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            MemberStatus::Pending => "pending",
            MemberStatus::Approved => "approved",
            MemberStatus::Blocked => "blocked",
        }
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown member status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for MemberStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(MemberStatus::Pending),
            "approved" => Ok(MemberStatus::Approved),
            "blocked" => Ok(MemberStatus::Blocked),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guardian_cannot_act_on_or_create_an_owner() {
        assert!(!Role::Guardian.may_act_on(Role::Owner));
        assert!(Role::Guardian.may_act_on(Role::Family));
        assert!(!Role::Guardian.may_grant(Role::Owner));
        assert!(Role::Owner.may_grant(Role::Owner));
    }

    #[test]
    fn family_members_manage_nothing() {
        assert!(!Role::Family.manages_household());
        assert!(!Role::Family.may_act_on(Role::Family));
        assert!(!Role::Family.may_grant(Role::Family));
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in [Role::Owner, Role::Guardian, Role::Family] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
