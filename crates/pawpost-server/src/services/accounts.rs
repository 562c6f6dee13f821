//! Accounts and sessions: signing up, in and out, confirming the email address with a
//! link sent to it, changing the password, setting a new one with a link sent by email,
//! deleting the account, and what the account's owner may see of it. Every password check goes through [`crate::credentials::check_password`],
//! with its limits.
use super::{clean_name, NameError};
use crate::audit::{record, AuditAction, Event};
use crate::config::{
    EMAIL_VERIFICATIONS_PER_DAY, EMAIL_VERIFICATION_TTL, EMAIL_VERIFICATION_WINDOW,
    PASSWORD_RESET_TTL,
};
use crate::credentials::{check_password, Client, PasswordCheckError};
use crate::passwords::HashError;
use crate::ratelimit::{KeyHash, LimitName};
use crate::relay::{self, Note};
use crate::state::AppState;
use crate::tokens::{new_token, token_hash};
use pawpost_domain::{
    Account, AccountId, AuditEntry, Email, EmailError, MemberStatus, PasswordRejection, Role,
    Session,
};
use pawpost_store::{EmailVerification, PasswordReset, StoreError};
use std::net::IpAddr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// Longest User-Agent kept with a session (shown on the security page).
pub const MAX_USER_AGENT_CHARS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    PasswordRejected(#[from] PasswordRejection),
    #[error("too many new accounts from your address; try again later")]
    SignupsThrottled(Duration),
    #[error("an account with this email address exists: sign in instead")]
    EmailTaken,
    #[error("wrong email address or password; check both and try again")]
    WrongCredentials,
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    #[error("the password is wrong; nothing was deleted")]
    WrongPasswordNothingDeleted,
    #[error(
        "too many wrong passwords for this account or from your address; wait before trying again"
    )]
    PasswordsThrottled(Duration),
    /// No password check was made: the server or this account has too many under way.
    #[error(transparent)]
    Busy(#[from] HashError),
    #[error("this account is locked; contact the operator of this server")]
    Locked,
    #[error(
        "you are the last owner of {0:?}: make another member owner, or delete the household first"
    )]
    LastOwner(String),
    #[error("too many links to choose a new password were asked for this address or from your address; wait before asking again")]
    ResetsThrottled(Duration),
    #[error("this link to choose a new password was already used, is not complete, or the password was changed since it was sent; ask for a new link on the sign-in page")]
    ResetLinkInvalid,
    #[error("this link to choose a new password is more than {} minutes old; ask for a new link on the sign-in page", PASSWORD_RESET_TTL.as_secs() / 60)]
    ResetLinkExpired,
    #[error("a new password is being set for this account already; wait a moment, then sign in")]
    ResetUnderWay,
    #[error("this link to confirm your email address was already used or is not complete; if your address is not confirmed yet, sign in and ask for a new link on the households page")]
    VerificationLinkInvalid,
    #[error("this link to confirm your email address is more than {} days old; sign in and ask for a new link on the households page", EMAIL_VERIFICATION_TTL.as_secs() / 86_400)]
    VerificationLinkExpired,
    #[error("your email address is confirmed already; there is nothing more to do")]
    EmailAlreadyVerified,
    #[error("several links to confirm your email address were sent today already; use the newest one in your email, or wait before asking again")]
    VerificationsThrottled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type AccountResult<T> = Result<T, AccountError>;

impl AccountError {
    /// The error for a failed password check; `wrong` is this action's wrong password.
    fn from_check(e: PasswordCheckError, wrong: AccountError) -> Self {
        match e {
            PasswordCheckError::Wrong => wrong,
            PasswordCheckError::Throttled(retry) => AccountError::PasswordsThrottled(retry),
            PasswordCheckError::Busy(e) => AccountError::Busy(e),
        }
    }
}

/// What a new account is made of.
pub struct NewAccount<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub display_name: &'a str,
}

/// Creates an account, counted against the signups from `client`'s address.
pub async fn create(
    state: &AppState,
    new: NewAccount<'_>,
    client: IpAddr,
) -> AccountResult<Account> {
    let email = Email::parse(new.email)?;
    let display_name = clean_name(new.display_name, "display_name")?;
    state.password_policy().check(
        new.password,
        &[email.as_str(), email.local_part(), &display_name],
    )?;
    let addr_key = crate::ratelimit::address_key(client);
    state
        .limits
        .signup_per_address
        .reserve(&addr_key)
        .map_err(AccountError::SignupsThrottled)?;
    // Counted here by the reservation; the other processes count it now.
    relay::announce(
        state,
        Note::Attempt {
            limit: LimitName::SignupPerAddress,
            key: KeyHash::of(&addr_key),
        },
    )
    .await;
    let password_hash = state
        .hasher
        .hash(pawpost_domain::password::normalise(new.password))
        .await?;
    let account = Account {
        id: AccountId::new(),
        email,
        display_name,
        password_hash,
        created_at: OffsetDateTime::now_utc(),
        locked: false,
        email_verified_at: None,
    };
    match state.store.create_account(&account).await {
        Ok(()) => {
            record(
                state,
                Event::new(AuditAction::AccountCreated)
                    .by(account.id)
                    .from(client),
            )
            .await;
            // The account works without it; a link that could not be made is asked for
            // again from the app.
            if let Err(e) = send_verification_link(state, &account, account.created_at).await {
                tracing::warn!(account = %account.id, error = %e, "no link to confirm the email address was sent at sign-up");
            }
            Ok(account)
        }
        Err(StoreError::Conflict(_)) => Err(AccountError::EmailTaken),
        Err(e) => Err(e.into()),
    }
}

/// A new session, with the token shown once.
pub struct SignedIn {
    pub account: Account,
    pub session: Session,
    pub token: String,
}

/// Signs in with an email address and a password. An unparsable address cannot have an
/// account, but it is checked like any other so that the answer and its timing say
/// nothing.
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    client: &Client<'_>,
    user_agent: &str,
) -> AccountResult<SignedIn> {
    let addr = client.address;
    let parsed = Email::parse(email).ok();
    let account_key = parsed
        .as_ref()
        .map_or_else(|| email.trim().to_lowercase(), |e| e.to_string());
    let account = match &parsed {
        Some(e) => state.store.account_by_email(e).await?,
        None => None,
    };
    let checked = check_password(state, &account_key, account.as_ref(), password, client).await;
    let account = match (checked, account) {
        (Ok(()), Some(a)) => a,
        // An account that does not exist never matches; the arm is for the compiler.
        (Ok(()) | Err(PasswordCheckError::Wrong), account) => {
            tracing::info!(client = %addr, "failed sign-in");
            let mut event = Event::new(AuditAction::SignInFailed).from(addr);
            if let Some(a) = &account {
                event = event.by(a.id);
            }
            record(state, event).await;
            return Err(AccountError::WrongCredentials);
        }
        (Err(e), _) => return Err(AccountError::from_check(e, AccountError::WrongCredentials)),
    };
    if account.locked {
        return Err(AccountError::Locked);
    }
    open_session(state, account, addr, user_agent).await
}

/// Opens a session for `account`, which just proved who it is (by password or passkey),
/// records it and tells the account by email.
pub(crate) async fn open_session(
    state: &AppState,
    account: Account,
    addr: IpAddr,
    user_agent: &str,
) -> AccountResult<SignedIn> {
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    let session = Session {
        id: Uuid::now_v7(),
        account_id: account.id,
        token_hash: token_hash(&token),
        csrf_token: new_token(),
        created_at: now,
        expires_at: now + state.config.session_ttl,
        client_address: addr.to_string(),
        user_agent: user_agent.chars().take(MAX_USER_AGENT_CHARS).collect(),
    };
    state.store.create_session(&session).await?;
    tracing::info!(account = %account.id, client = %addr, "signed in");
    record(
        state,
        Event::new(AuditAction::SignIn)
            .by(account.id)
            .on(session.id)
            .from(addr),
    )
    .await;
    crate::mail::send_later(
        &state.mailer,
        crate::mail::Mail {
            to: account.email.to_string(),
            subject: "New sign-in to your pawpost account".into(),
            body: format!(
                "Hello {},\n\nSomeone signed in to your pawpost account at {} (UTC) from {} using {:?}.\n\n\
                 If this was you, there is nothing to do. If it was not, change your password now: that signs \
                 out every other session. The security page of the app lists your active sessions.\n",
                account.display_name,
                super::rfc3339(now),
                addr,
                session.user_agent
            ),
        },
    );
    Ok(SignedIn {
        account,
        session,
        token,
    })
}

/// Ends `session`.
pub async fn sign_out(state: &AppState, account: AccountId, session: Uuid) -> AccountResult<()> {
    state.store.delete_session(session).await?;
    record(
        state,
        Event::new(AuditAction::SignOut).by(account).on(session),
    )
    .await;
    Ok(())
}

/// Ends every session of the account except `keep` (the one asking): "sign out
/// everywhere else" for a lost phone or a shared computer. Returns how many ended.
pub async fn sign_out_others(
    state: &AppState,
    account: AccountId,
    keep: Uuid,
) -> AccountResult<u64> {
    let ended = state.store.delete_other_sessions(account, keep).await?;
    tracing::info!(account = %account, ended, "other sessions ended");
    record(
        state,
        Event::new(AuditAction::OtherSessionsEnded)
            .by(account)
            .on(ended),
    )
    .await;
    Ok(ended)
}

/// The account's active sessions.
pub async fn sessions(state: &AppState, account: AccountId) -> AccountResult<Vec<Session>> {
    Ok(state
        .store
        .sessions_of(account, OffsetDateTime::now_utc())
        .await?)
}

/// The account's own recent activity, newest first.
pub async fn activity(state: &AppState, account: AccountId) -> AccountResult<Vec<AuditEntry>> {
    Ok(state
        .store
        .account_audit(account, crate::audit::TRAIL_LIMIT)
        .await?)
}

/// Changes the password after checking the current one; every other session of the
/// account ends. Returns the account with its new password hash.
pub async fn change_password(
    state: &AppState,
    account: Account,
    session: Uuid,
    current: &str,
    new: &str,
    client: &Client<'_>,
) -> AccountResult<Account> {
    check_password(
        state,
        &account.email.to_string(),
        Some(&account),
        current,
        client,
    )
    .await
    .map_err(|e| AccountError::from_check(e, AccountError::WrongCurrentPassword))?;
    let email = &account.email;
    state.password_policy().check(
        new,
        &[email.as_str(), email.local_part(), &account.display_name],
    )?;
    let hash = state
        .hasher
        .hash(pawpost_domain::password::normalise(new))
        .await?;
    state.store.set_password_hash(account.id, &hash).await?;
    // A link asked for before the change must not undo it.
    state.store.delete_password_resets_of(account.id).await?;
    let ended = state
        .store
        .delete_other_sessions(account.id, session)
        .await?;
    tracing::info!(account = %account.id, ended, "password changed; other sessions ended");
    record(
        state,
        Event::new(AuditAction::PasswordChanged).by(account.id),
    )
    .await;
    crate::mail::send_later(
        &state.mailer,
        crate::mail::Mail {
            to: account.email.to_string(),
            subject: "Your pawpost password was changed".into(),
            body: format!(
                "Hello {},\n\nThe password of your pawpost account was changed at {} (UTC) from {}. \
                 Every other browser and app that was signed in to your account has been signed out.\n\n\
                 If this was you, there is nothing to do. If it was not, someone knows your password: \
                 open the sign-in page, choose \"Forgot password?\" to set a new one with a link sent \
                 to this address, then check the security page of the app for devices you do not know.\n",
                account.display_name,
                super::rfc3339(OffsetDateTime::now_utc()),
                client.address,
            ),
        },
    );
    Ok(Account {
        password_hash: hash,
        ..account
    })
}

/// What a request for a password reset link is answered, whether or not an account uses
/// the address, so that the answer says nothing.
pub const RESET_REQUESTED: &str = "If an account uses this email address, a link to choose a new password is on its way to it. Open it within 30 minutes; it works once.";
const _: () = assert!(
    PASSWORD_RESET_TTL.as_secs() == 30 * 60,
    "RESET_REQUESTED names the lifetime"
);

/// Accounts with a new password being set in this process: a second use of a link while
/// the first is still hashing is answered at once. (The store's
/// `take_password_reset` is what makes a link single use, across processes too.)
static RESETS_UNDER_WAY: std::sync::Mutex<Vec<AccountId>> = std::sync::Mutex::new(Vec::new());

/// Holds an account's place in [`RESETS_UNDER_WAY`] until dropped.
struct ResetGuard(AccountId);

impl ResetGuard {
    fn take(account: AccountId) -> Option<Self> {
        let mut under_way = RESETS_UNDER_WAY.lock().expect("resets lock");
        if under_way.contains(&account) {
            return None;
        }
        under_way.push(account);
        Some(Self(account))
    }
}

impl Drop for ResetGuard {
    fn drop(&mut self) {
        let mut under_way = RESETS_UNDER_WAY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        under_way.retain(|a| *a != self.0);
    }
}

/// Bytes of the token of a link sent by email (to choose a new password, or to confirm
/// the address).
const LINK_TOKEN_BYTES: usize = 32;

/// The token of a link sent by email: [`LINK_TOKEN_BYTES`] bytes straight from the
/// operating system's generator, base64url.
fn new_link_token() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; LINK_TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Sends a link to choose a new password to the account using `email`, if there is one
/// and it is not locked. Requests are counted per email address (whether or not it has
/// an account) and per client address; past either limit the answer is
/// [`AccountError::ResetsThrottled`]. Otherwise the outcome is the same for every
/// address: the caller answers [`RESET_REQUESTED`].
///
/// The link's token is random ([`new_link_token`]); the store keeps only
/// its SHA-256, with the account and the expiry ([`PasswordReset`]), so whoever reads
/// the database or a backup cannot make a link.
pub async fn request_password_reset(
    state: &AppState,
    email: &str,
    client: IpAddr,
) -> AccountResult<()> {
    let email = Email::parse(email)?;
    let account_key = email.to_string();
    let addr_key = crate::ratelimit::address_key(client);
    let limits = [
        (LimitName::PasswordResetsPerAddress, addr_key),
        (LimitName::PasswordResetsPerAccount, account_key),
    ];
    for (i, (name, key)) in limits.iter().enumerate() {
        if let Err(retry) = state.limits.get(*name).reserve(key) {
            for (name, key) in &limits[..i] {
                state.limits.get(*name).refund(key);
            }
            return Err(AccountError::ResetsThrottled(retry));
        }
    }
    // Counted here by the reservations; the other processes count them now.
    for (name, key) in &limits {
        let key = KeyHash::of(key);
        relay::announce(state, Note::Attempt { limit: *name, key }).await;
    }
    let Some(account) = state.store.account_by_email(&email).await? else {
        tracing::info!(client = %client, "password reset asked for an address with no account");
        return Ok(());
    };
    if account.locked {
        tracing::info!(account = %account.id, "password reset asked for a locked account; no link sent");
        return Ok(());
    }
    let now = OffsetDateTime::now_utc();
    let token = new_link_token();
    state
        .store
        .create_password_reset(&PasswordReset {
            token_hash: token_hash(&token),
            account_id: account.id,
            created_at: now,
            expires_at: now + PASSWORD_RESET_TTL,
        })
        .await?;
    tracing::info!(account = %account.id, client = %client, "password reset link sent");
    record(
        state,
        Event::new(AuditAction::PasswordResetRequested)
            .by(account.id)
            .from(client),
    )
    .await;
    crate::mail::send_later(
        &state.mailer,
        crate::mail::Mail {
            to: account.email.to_string(),
            subject: "Choose a new pawpost password".into(),
            body: format!(
                "Hello {},\n\nSomeone (we hope you) asked at {} (UTC), from {}, for a link to choose a new \
                 password for your pawpost account. Open this link within {} minutes; it works once:\n\n\
                 {}/reset#{}\n\n\
                 Choosing a new password signs out every browser and app signed in to your account.\n\n\
                 If you did not ask for this, ignore this email: your password stays as it is, and the link \
                 stops working by itself. Nobody from pawpost will ever ask you for this link.\n",
                account.display_name,
                super::rfc3339(now),
                client,
                PASSWORD_RESET_TTL.as_secs() / 60,
                &*state.public_url,
                token,
            ),
        },
    );
    Ok(())
}

/// Sets a new password with a link's token (see [`request_password_reset`]): finds the
/// link by the token's hash, checks the new password against the rules, uses the link
/// up (atomically, so of two uses only one sets a password), sets the password, ends
/// every other link and every session of the account, forgets the account's failed
/// sign-ins, and tells the account by email. An expired link, or a new password the
/// rules refuse, leaves the link as it was.
pub async fn confirm_password_reset(
    state: &AppState,
    token: &str,
    new: &str,
    client: IpAddr,
) -> AccountResult<()> {
    confirm_password_reset_at(state, token, new, client, OffsetDateTime::now_utc()).await
}

/// [`confirm_password_reset`] as if it were `now`.
pub async fn confirm_password_reset_at(
    state: &AppState,
    token: &str,
    new: &str,
    client: IpAddr,
    now: OffsetDateTime,
) -> AccountResult<()> {
    let hash = token_hash(token.trim());
    let reset = state
        .store
        .password_reset(&hash)
        .await?
        .ok_or(AccountError::ResetLinkInvalid)?;
    if reset.expires_at <= now {
        return Err(AccountError::ResetLinkExpired);
    }
    let _guard = ResetGuard::take(reset.account_id).ok_or(AccountError::ResetUnderWay)?;
    let account = state
        .store
        .account_by_id(reset.account_id)
        .await?
        .ok_or(AccountError::ResetLinkInvalid)?;
    if account.locked {
        return Err(AccountError::Locked);
    }
    let email = &account.email;
    state.password_policy().check(
        new,
        &[email.as_str(), email.local_part(), &account.display_name],
    )?;
    let password_hash = state
        .hasher
        .hash(pawpost_domain::password::normalise(new))
        .await?;
    // Used up here, after the checks that leave it usable and before the password
    // changes: another process may be holding the same link.
    match state.store.take_password_reset(&hash, now).await? {
        Some(id) if id == account.id => {}
        Some(_) => return Err(AccountError::ResetLinkInvalid),
        // Used meanwhile, or expired while the password was being hashed.
        None => {
            return Err(match state.store.password_reset(&hash).await? {
                Some(r) if r.expires_at <= now => AccountError::ResetLinkExpired,
                _ => AccountError::ResetLinkInvalid,
            })
        }
    }
    state
        .store
        .set_password_hash(account.id, &password_hash)
        .await?;
    state.store.delete_password_resets_of(account.id).await?;
    // The link came through the mailbox, which proves the address as well.
    if state.store.set_email_verified(account.id, now).await? {
        record(
            state,
            Event::new(AuditAction::EmailVerified)
                .by(account.id)
                .from(client),
        )
        .await;
    }
    // No session is kept: whoever holds one may be the reason for the reset.
    let ended = state
        .store
        .delete_other_sessions(account.id, Uuid::nil())
        .await?;
    relay::forgive(
        state,
        LimitName::LoginPerAccount,
        &account.email.to_string(),
    )
    .await;
    tracing::info!(account = %account.id, ended, client = %client, "password reset with a link; every session ended");
    record(
        state,
        Event::new(AuditAction::PasswordReset)
            .by(account.id)
            .from(client),
    )
    .await;
    crate::mail::send_later(
        &state.mailer,
        crate::mail::Mail {
            to: account.email.to_string(),
            subject: "Your pawpost password was reset".into(),
            body: format!(
                "Hello {},\n\nA new password was chosen for your pawpost account at {} (UTC) from {}, with a \
                 link sent to this address. Every browser and app that was signed in to your account has been \
                 signed out; sign in again with the new password.\n\n\
                 If this was you, there is nothing to do. If it was not, someone can read your email: secure \
                 your email account first, then open the pawpost sign-in page, choose \"Forgot password?\" to \
                 set a new password, and check the security page of the app for devices you do not know.\n",
                account.display_name,
                super::rfc3339(OffsetDateTime::now_utc()),
                client,
            ),
        },
    );
    Ok(())
}

/// The address a link to confirm an email address opens: the app's `/verify-email` page,
/// the token after `#` (so that it never reaches a server in a URL).
pub fn verification_link(state: &AppState, token: &str) -> String {
    format!("{}/verify-email#{token}", &*state.public_url)
}

/// Sends `account` a link to confirm its email address, unless it was sent
/// [`EMAIL_VERIFICATIONS_PER_DAY`] within [`EMAIL_VERIFICATION_WINDOW`] before `now`:
/// then [`AccountError::VerificationsThrottled`]. The link's token is random; the store
/// keeps only its SHA-256 ([`EmailVerification`]). The email holds the link and plain
/// instructions only: nothing the person signing up typed (such as a name) goes to an
/// address that may not be theirs.
pub(crate) async fn send_verification_link(
    state: &AppState,
    account: &Account,
    now: OffsetDateTime,
) -> AccountResult<()> {
    let token = new_link_token();
    let link = EmailVerification {
        token_hash: token_hash(&token),
        account_id: account.id,
        created_at: now,
        expires_at: now + EMAIL_VERIFICATION_TTL,
    };
    let refused = state
        .store
        .create_email_verification(
            &link,
            EMAIL_VERIFICATIONS_PER_DAY,
            now - EMAIL_VERIFICATION_WINDOW,
        )
        .await?;
    if let Some(oldest) = refused {
        let next = oldest + EMAIL_VERIFICATION_WINDOW - now;
        let retry = Duration::try_from(next)
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_secs(1));
        return Err(AccountError::VerificationsThrottled(retry));
    }
    tracing::info!(account = %account.id, "link to confirm the email address sent");
    crate::mail::send_later(
        &state.mailer,
        crate::mail::Mail {
            to: account.email.to_string(),
            subject: "Confirm your email address for pawpost".into(),
            body: format!(
                "Hello,\n\nPlease confirm that this email address belongs to your pawpost account: open \
                 this link within {} days. It works once:\n\n\
                 {}\n\n\
                 If you did not create a pawpost account, ignore this email: nothing more happens, and the \
                 link stops working by itself. Nobody from pawpost will ever ask you for this link.\n",
                EMAIL_VERIFICATION_TTL.as_secs() / 86_400,
                verification_link(state, &token),
            ),
        },
    );
    Ok(())
}

/// Sends the signed-in `account` a new link to confirm its email address (see
/// [`send_verification_link`]); an address confirmed already is
/// [`AccountError::EmailAlreadyVerified`].
pub async fn resend_email_verification(state: &AppState, account: &Account) -> AccountResult<()> {
    if account.email_verified_at.is_some() {
        return Err(AccountError::EmailAlreadyVerified);
    }
    send_verification_link(state, account, OffsetDateTime::now_utc()).await
}

/// Confirms the email address of the account a link was sent to, with the link's token:
/// uses the link up, marks the address verified, and ends the account's other links.
/// A used, unknown or incomplete token is [`AccountError::VerificationLinkInvalid`]; one
/// older than [`EMAIL_VERIFICATION_TTL`] is [`AccountError::VerificationLinkExpired`].
/// No session is needed: the token is the proof.
pub async fn confirm_email_verification(
    state: &AppState,
    token: &str,
    client: IpAddr,
) -> AccountResult<()> {
    confirm_email_verification_at(state, token, client, OffsetDateTime::now_utc()).await
}

/// [`confirm_email_verification`] as if it were `now`.
pub async fn confirm_email_verification_at(
    state: &AppState,
    token: &str,
    client: IpAddr,
    now: OffsetDateTime,
) -> AccountResult<()> {
    let hash = token_hash(token.trim());
    let link = state
        .store
        .email_verification(&hash)
        .await?
        .ok_or(AccountError::VerificationLinkInvalid)?;
    if link.expires_at <= now {
        return Err(AccountError::VerificationLinkExpired);
    }
    let Some(account) = state.store.confirm_email_verification(&hash, now).await? else {
        // Used meanwhile, or expired since it was read.
        return Err(match state.store.email_verification(&hash).await? {
            Some(l) if l.expires_at <= now => AccountError::VerificationLinkExpired,
            _ => AccountError::VerificationLinkInvalid,
        });
    };
    tracing::info!(account = %account, client = %client, "email address confirmed with a link");
    record(
        state,
        Event::new(AuditAction::EmailVerified)
            .by(account)
            .from(client),
    )
    .await;
    Ok(())
}

/// Deletes the account after checking its password: sessions, devices, household places,
/// and the messages it sent (rows and blobs), with the households only it belongs to. The
/// last owner of a household with other members must first make someone else owner.
pub async fn delete(
    state: &AppState,
    account: &Account,
    password: &str,
    client: &Client<'_>,
) -> AccountResult<()> {
    check_password(
        state,
        &account.email.to_string(),
        Some(account),
        password,
        client,
    )
    .await
    .map_err(|e| AccountError::from_check(e, AccountError::WrongPasswordNothingDeleted))?;
    let mut solely_owned = Vec::new();
    for (household, membership) in state.store.households_of(account.id).await? {
        if membership.role != Role::Owner || membership.status != MemberStatus::Approved {
            continue;
        }
        let members = state.store.members(household.id).await?;
        let other_owner = members.iter().any(|m| {
            m.membership.account_id != account.id
                && m.membership.role == Role::Owner
                && m.membership.status == MemberStatus::Approved
        });
        if other_owner {
            continue;
        }
        if members.len() > 1 {
            return Err(AccountError::LastOwner(household.name));
        }
        solely_owned.push(household.id);
    }
    // Households only this account belongs to go with it.
    for household in solely_owned {
        let keys = state.store.delete_household(household).await?;
        crate::retention::delete_blobs(state, &keys).await;
    }
    let keys = state.store.delete_account(account.id).await?;
    state.mailer.forget(account.email.as_str()).await;
    crate::retention::delete_blobs(state, &keys).await;
    tracing::info!(account = %account.id, messages = keys.len(), "account deleted");
    record(
        state,
        Event::new(AuditAction::AccountDeleted).by(account.id),
    )
    .await;
    Ok(())
}

/// One household in an account's export.
pub struct ExportedHousehold {
    pub household: pawpost_domain::Household,
    pub membership: pawpost_domain::Membership,
    /// The current signed roster, for approved members.
    pub roster: Option<pawpost_domain::StoredRoster>,
    /// Every message the account sent or can open there, with its envelope.
    pub messages: Vec<(super::messages::MessageWithReceipts, Vec<u8>)>,
}

/// Everything the server holds about an account, besides the account itself.
pub struct Export {
    pub exported_at: OffsetDateTime,
    pub sessions: Vec<Session>,
    pub devices: Vec<pawpost_domain::Device>,
    pub households: Vec<ExportedHousehold>,
}

/// Gathers everything the server holds about `account`: sessions, devices (public
/// keys), households with their rosters, and every envelope it sent or can open.
pub async fn export(state: &AppState, account: AccountId) -> AccountResult<Export> {
    let now = OffsetDateTime::now_utc();
    record(state, Event::new(AuditAction::DataExported).by(account)).await;
    let sessions = state.store.sessions_of(account, now).await?;
    let devices = state.store.devices_of_account(account).await?;
    let mut households = Vec::new();
    for (household, membership) in state.store.households_of(account).await? {
        let mut exported = ExportedHousehold {
            household,
            membership,
            roster: None,
            messages: Vec::new(),
        };
        if exported.membership.status == MemberStatus::Approved {
            let id = exported.household.id;
            exported.roster = state.store.latest_roster(id).await?;
            for message in state.store.messages_for_account(id, account).await? {
                let Some(bytes) = super::messages::stored_envelope(state, &message).await? else {
                    continue;
                };
                let receipts = state.store.receipts(message.id).await?;
                exported.messages.push((
                    super::messages::MessageWithReceipts { message, receipts },
                    bytes,
                ));
            }
        }
        households.push(exported);
    }
    Ok(Export {
        exported_at: now,
        sessions,
        devices,
        households,
    })
}
