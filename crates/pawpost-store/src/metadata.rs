use crate::StoreResult;
use async_trait::async_trait;
use pawpost_domain::{
    Account, AccountId, Email, Household, HouseholdId, Invitation, Member, MemberStatus,
    Membership, Role, Session,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// What redeeming an invitation token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redemption {
    /// The caller is now a pending member.
    Joined(Membership),
    /// No invitation has this token.
    Unknown,
    /// The invitation was already used or has expired.
    Spent,
    /// The caller already belongs to that household; the invitation stays unused.
    AlreadyMember(HouseholdId),
}

/// Accounts, sessions, households, memberships and invitations.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Fails with `Conflict` when the email address is taken.
    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>>;
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn set_password_hash(&self, id: AccountId, password_hash: &str) -> StoreResult<()>;
    async fn set_account_locked(&self, id: AccountId, locked: bool) -> StoreResult<()>;

    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// The unexpired session with this token hash.
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> StoreResult<Option<Session>>;
    async fn sessions_of(
        &self,
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<Session>>;
    async fn delete_session(&self, id: Uuid) -> StoreResult<()>;
    /// Ends every session of `account` but `keep`; returns how many ended.
    async fn delete_other_sessions(&self, account: AccountId, keep: Uuid) -> StoreResult<u64>;
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> StoreResult<u64>;

    /// Creates the household with `owner` as its approved owner, in one transaction.
    async fn create_household(&self, household: &Household, owner: AccountId) -> StoreResult<()>;
    async fn household(&self, id: HouseholdId) -> StoreResult<Option<Household>>;
    async fn rename_household(&self, id: HouseholdId, name: &str) -> StoreResult<()>;
    /// Every household `account` belongs to, in any status, with its membership.
    async fn households_of(&self, account: AccountId) -> StoreResult<Vec<(Household, Membership)>>;
    async fn membership(
        &self,
        household: HouseholdId,
        account: AccountId,
    ) -> StoreResult<Option<Membership>>;
    async fn members(&self, household: HouseholdId) -> StoreResult<Vec<Member>>;
    async fn update_member(
        &self,
        household: HouseholdId,
        account: AccountId,
        role: Role,
        status: MemberStatus,
    ) -> StoreResult<()>;
    async fn remove_member(&self, household: HouseholdId, account: AccountId) -> StoreResult<()>;

    async fn create_invitation(&self, invitation: &Invitation) -> StoreResult<()>;
    /// Atomically spends the invitation and makes `account` a pending member.
    async fn redeem_invitation(
        &self,
        token_hash: &[u8; 32],
        account: AccountId,
        now: OffsetDateTime,
    ) -> StoreResult<Redemption>;
}
