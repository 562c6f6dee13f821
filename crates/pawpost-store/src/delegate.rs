//! The `MetadataStore` implementation shared by the SQL stores, whose queries live in
//! modules of their own crates.

/// Implements [`MetadataStore`](crate::MetadataStore) for `$store` by handing every
/// method to the function of the same name in the invoking crate's module for its
/// concern, with `&self.$pool` first and the method's arguments after it:
///
/// - `accounts`: accounts, sessions, links to choose a new password and links to
///   confirm an email address;
/// - `households`: households, memberships and invitations;
/// - `devices`: devices, rosters and pairing;
/// - `messages`: messages, receipts and approvals;
/// - `privacy`: erasure and retention;
/// - `audit`: the audit trail;
/// - `passkeys`: passkeys, their recovery material and their ceremonies;
/// - `farewells`: the signed word that a removed toy leaves its household;
/// - `toys`: what the household keeps about a paired toy (names, safety check, last seen);
/// - `releases`: signed releases of the toy's software, and what each toy runs;
/// - `certificates`: devices vouching for new devices of the same account;
/// - `notifications`: which notification mails a person wants, and the server's keys.
///
/// Methods the trait provides a default for may follow a `;`, written out as in any
/// `impl` block:
///
/// ```ignore
/// pawpost_store::impl_metadata_store!(SqliteStore, pool);
/// pawpost_store::impl_metadata_store! {
///     PostgresStore, pool;
///     fn peers(&self) -> Option<Arc<dyn Peers>> {
///         Some(Arc::new(self.clone()))
///     }
/// }
/// ```
#[macro_export]
macro_rules! impl_metadata_store {
    ($store:ty, $pool:ident $(; $($provided:tt)*)?) => {
        $crate::impl_metadata_store! {
            @impl $store, $pool, [$($($provided)*)?],
            accounts::create_account(account: &Account) -> ();
            accounts::account_by_email(email: &Email) -> Option<Account>;
            accounts::account_by_id(id: AccountId) -> Option<Account>;
            accounts::set_password_hash(id: AccountId, password_hash: &str) -> ();
            accounts::set_account_locked(id: AccountId, locked: bool) -> ();
            accounts::accounts() -> Vec<Account>;
            accounts::create_session(session: &Session) -> ();
            accounts::session_by_token_hash(token_hash: &[u8; 32], now: OffsetDateTime) -> Option<Session>;
            accounts::account_by_session(token_hash: &[u8; 32], now: OffsetDateTime) -> Option<Account>;
            accounts::sessions_of(account: AccountId, now: OffsetDateTime) -> Vec<Session>;
            accounts::delete_session(id: Uuid) -> ();
            accounts::delete_other_sessions(account: AccountId, keep: Uuid) -> u64;
            accounts::delete_expired_sessions(now: OffsetDateTime) -> u64;
            accounts::create_password_reset(reset: &PasswordReset) -> ();
            accounts::password_reset(token_hash: &[u8; 32]) -> Option<PasswordReset>;
            accounts::take_password_reset(token_hash: &[u8; 32], now: OffsetDateTime) -> Option<AccountId>;
            accounts::delete_password_resets_of(account: AccountId) -> u64;
            accounts::delete_expired_password_resets(cutoff: OffsetDateTime) -> u64;
            accounts::create_email_verification(link: &EmailVerification, most: u32, since: OffsetDateTime) -> Option<OffsetDateTime>;
            accounts::email_verification(token_hash: &[u8; 32]) -> Option<EmailVerification>;
            accounts::confirm_email_verification(token_hash: &[u8; 32], now: OffsetDateTime) -> Option<AccountId>;
            accounts::set_email_verified(account: AccountId, at: OffsetDateTime) -> bool;

            households::create_household(household: &Household, owner: AccountId) -> ();
            households::household(id: HouseholdId) -> Option<Household>;
            households::rename_household(id: HouseholdId, name: &str) -> ();
            households::households_of(account: AccountId) -> Vec<(Household, Membership)>;
            households::membership(household: HouseholdId, account: AccountId) -> Option<Membership>;
            households::members(household: HouseholdId) -> Vec<Member>;
            households::update_member(household: HouseholdId, account: AccountId, role: Role, status: MemberStatus) -> ();
            households::remove_member(household: HouseholdId, account: AccountId) -> ();
            households::create_invitation(invitation: &Invitation) -> ();
            households::recent_invitations(household: HouseholdId, account: AccountId, since: OffsetDateTime) -> RecentInvitations;
            households::redeem_invitation(token_hash: &[u8; 32], account: AccountId, now: OffsetDateTime) -> Redemption;

            devices::create_device(device: &Device) -> ();
            devices::device(id: DeviceId) -> Option<Device>;
            devices::arrival(id: DeviceId, held_roster: u64) -> Option<$crate::Arrival>;
            devices::devices_of_account(account: AccountId) -> Vec<Device>;
            devices::delete_member_device(account: AccountId, id: DeviceId) -> bool;
            devices::devices_of_household(household: HouseholdId) -> Vec<Device>;
            devices::update_device_identity(id: DeviceId, identity: &[u8]) -> ();
            devices::latest_roster(household: HouseholdId) -> Option<StoredRoster>;
            devices::insert_roster(roster: &StoredRoster) -> ();
            devices::rosters_since(household: HouseholdId, version: u64) -> Vec<StoredRoster>;
            devices::create_pairing(pairing: &PendingPairing) -> PairingCreated;
            devices::claim_pairing(code: &str, claimant: &PairingClaimant, now: OffsetDateTime) -> PairingClaim;
            devices::pairing_of_device(device: DeviceId, now: OffsetDateTime) -> Option<PendingPairing>;
            devices::end_pairing(device: DeviceId, code: &str) -> bool;
            devices::set_pairing_number(device: DeviceId, code: &str, number: &str) -> bool;
            devices::pairing_number(code: &str, now: OffsetDateTime) -> Option<String>;

            messages::insert_message(message: &Message, recipients: &[DeviceId]) -> ();
            messages::insert_message_with_envelope(message: &Message, recipients: &[DeviceId], envelope: &[u8]) -> ();
            messages::message_envelope(id: Uuid) -> Option<Vec<u8>>;
            messages::message(id: Uuid) -> Option<Message>;
            messages::receipts(message: Uuid) -> Vec<Receipt>;
            messages::messages_for_account(household: HouseholdId, account: AccountId) -> Vec<Message>;
            messages::messages_of_household(household: HouseholdId) -> Vec<Message>;
            messages::undelivered_for(device: DeviceId) -> Vec<Message>;
            messages::set_receipt(message: Uuid, device: DeviceId, state: ReceiptState, at: OffsetDateTime) -> ();
            messages::refuse_receipt(message: Uuid, device: DeviceId, reason: &str, at: OffsetDateTime) -> ();
            messages::insert_approval(approval: &Approval) -> ();
            messages::approvals_pending_for(device: DeviceId) -> Vec<Approval>;

            privacy::delete_account(account: AccountId) -> Vec<String>;
            privacy::delete_household(household: HouseholdId) -> Vec<String>;
            privacy::households_with_messages() -> Vec<HouseholdId>;
            privacy::played_messages_before(household: HouseholdId, cutoff: OffsetDateTime) -> Vec<Message>;
            privacy::unplayed_messages_before(cutoff: OffsetDateTime) -> Vec<Message>;
            privacy::delete_messages(ids: &[Uuid]) -> ();

            audit::append_audit(record: &AuditRecord) -> AuditEntry;
            audit::append_audits(records: &[AuditRecord]) -> Vec<AuditEntry>;
            audit::audit_entries(after_seq: u64, limit: u32) -> Vec<AuditEntry>;
            audit::household_audit(household: HouseholdId, limit: u32) -> Vec<AuditEntry>;
            audit::account_audit(account: AccountId, limit: u32) -> Vec<AuditEntry>;

            passkeys::create_passkey_ceremony(ceremony: &$crate::PasskeyCeremony) -> ();
            passkeys::take_passkey_ceremony(id: Uuid) -> Option<$crate::PasskeyCeremony>;
            passkeys::delete_expired_passkey_ceremonies(cutoff: OffsetDateTime) -> u64;
            passkeys::add_passkey(passkey: &$crate::StoredPasskey) -> ();
            passkeys::passkeys_of(account: AccountId) -> Vec<$crate::StoredPasskey>;
            passkeys::passkey_by_credential_id(credential_id: &[u8]) -> Option<$crate::StoredPasskey>;
            passkeys::record_passkey_use(id: Uuid, credential: &str, at: OffsetDateTime) -> ();
            passkeys::delete_passkey(account: AccountId, id: Uuid, keep_one: bool) -> bool;
            passkeys::set_passkey_recovery_material(account: AccountId, id: Uuid, material: &[u8]) -> bool;
            passkeys::passkey_recovery_material(account: AccountId, id: Uuid) -> Option<Vec<u8>>;

            farewells::put_farewell(farewell: &$crate::Farewell) -> ();
            farewells::remove_toy(farewell: &$crate::Farewell) -> bool;
            farewells::farewell(toy: DeviceId) -> Option<$crate::Farewell>;
            farewells::delete_farewell(toy: DeviceId) -> bool;
            farewells::delete_farewells_before(cutoff: OffsetDateTime) -> u64;

            toys::toy_profiles(household: HouseholdId) -> Vec<$crate::ToyProfile>;
            toys::set_toy_names(toy: DeviceId, envelope: &[u8], at: OffsetDateTime) -> bool;
            toys::set_toy_safety_checked(toy: DeviceId, by: AccountId, at: OffsetDateTime) -> bool;
            toys::set_toy_seen(toy: DeviceId, at: OffsetDateTime) -> ();
            toys::set_toys_seen(seen: &[(DeviceId, OffsetDateTime)]) -> ();

            releases::put_release(release: &$crate::Release) -> ();
            releases::newest_release(board: &str, above: u32) -> Option<$crate::Release>;
            releases::set_toy_software(software: &$crate::ToySoftware) -> ();
            releases::toy_software(household: HouseholdId) -> Vec<$crate::ToySoftware>;

            certificates::add_device_certificate(certificate: &$crate::DeviceCertificate) -> ();
            certificates::device_certificates(devices: &[DeviceId]) -> Vec<$crate::DeviceCertificate>;

            notifications::notification_settings(account: AccountId) -> Vec<(String, bool)>;
            notifications::set_notification_setting(account: AccountId, kind: &str, enabled: bool) -> ();
            notifications::server_secret(name: &str, fresh: &[u8]) -> Vec<u8>;
        }
    };
    (
        @impl $store:ty, $pool:ident, [$($provided:tt)*],
        $($module:ident::$method:ident($($arg:ident: $arg_type:ty),*) -> $output:ty;)*
    ) => {
        // In a block of its own, so that these names do not clash with the invoking
        // module's imports.
        const _: () = {
            use $crate::__private::{
                async_trait, Account, AccountId, Approval, AuditEntry, AuditRecord, Device,
                DeviceId, Email, Household, HouseholdId, Invitation, Member, MemberStatus,
                Membership, Message, OffsetDateTime, PairingClaim, PairingClaimant,
                PairingCreated, PendingPairing, Receipt, ReceiptState, Role, Session,
                StoredRoster, Uuid,
            };
            use $crate::{
                EmailVerification, MetadataStore, PasswordReset, RecentInvitations, Redemption,
                StoreResult,
            };

            #[async_trait]
            impl MetadataStore for $store {
                $(
                    async fn $method(&self, $($arg: $arg_type),*) -> StoreResult<$output> {
                        $module::$method(&self.$pool, $($arg),*).await
                    }
                )*
                $($provided)*
            }
        };
    };
}
