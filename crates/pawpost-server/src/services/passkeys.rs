//! Passkeys (WebAuthn, with webauthn-rs): adding one to an account, signing up with one
//! instead of a password, signing in with one (the browser offers the passkeys it holds
//! for this site: no email address is typed), removing one, and the recovery material a
//! browser keeps with one.
//!
//! The relying party is the server's public address (`--public-url`): its host is the
//! RP id and its origin the only origin accepted. Browsers refuse an IP address as RP
//! id, so a loopback address (`http://127.0.0.1:PORT`, the default when no public URL
//! is set) stands for `localhost` on the same port, and any other bare IP address turns
//! passkeys off with a message saying so.
//!
//! Each ceremony is two requests. What the server expects of the browser's answer (the
//! challenge among it) is kept in the store under a random ceremony id sent with the
//! options, for [`CEREMONY_TTL`], so that the answer may reach any process sharing the
//! store; the answer uses it up.
//!
//! An account made with a passkey has no password: its stored hash is
//! [`NO_PASSWORD_PREFIX`] and random text, which is no PHC string, so no password ever
//! matches it, until a link sent by email sets one. Its last passkey cannot be removed.
//!
//! Recovery material is an opaque blob of at most [`MAX_RECOVERY_MATERIAL_BYTES`] that
//! the browser encrypted with a key derived from the passkey's PRF output, which never
//! leaves the browser: the server keeps ciphertext it cannot open.
use super::accounts::{open_session, send_verification_link, AccountError, SignedIn};
use super::{clean_name, NameError};
use crate::audit::{record, AuditAction, Event};
use crate::ratelimit::{address_key, KeyHash, LimitName};
use crate::relay::{self, Note};
use crate::state::AppState;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use pawpost_domain::{Account, AccountId, Email, EmailError};
use pawpost_store::{PasskeyCeremony, StoreError, StoredPasskey};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, Passkey, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Url, Webauthn,
    WebauthnBuilder,
};

/// How long the browser has to answer the options of a ceremony (the person finds
/// their phone, touches the sensor).
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);
/// Passkey ceremonies one client address may start within [`CEREMONY_WINDOW`] (each
/// keeps a row in the store until it is answered or expires).
pub const CEREMONIES_PER_ADDRESS: u32 = 60;
/// The window of [`CEREMONIES_PER_ADDRESS`].
pub const CEREMONY_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Largest recovery material kept with one passkey, in bytes (after base64).
pub const MAX_RECOVERY_MATERIAL_BYTES: usize = 4096;
/// Most passkeys one account may have.
pub const MAX_PASSKEYS_PER_ACCOUNT: usize = 20;
/// Longest name of a passkey, in characters.
pub const MAX_LABEL_CHARS: usize = 60;
/// The name of a passkey added without one.
pub const DEFAULT_LABEL: &str = "Passkey";
/// How the stored password hash of an account without a password begins.
pub const NO_PASSWORD_PREFIX: &str = "!no-password!";
/// The relying party's name browsers show.
const RP_NAME: &str = "pawpost";

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need this server to be reached by a name, not a bare IP address: its operator sets --public-url to an address with a name (http://localhost works on this computer)")]
    Unavailable,
    #[error("this passkey step is unknown or was already used: start again")]
    UnknownCeremony,
    #[error("this passkey step took more than {} minutes: start again", CEREMONY_TTL.as_secs() / 60)]
    CeremonyExpired,
    /// The detail (webauthn-rs's reason) is for the log.
    #[error(
        "the browser's answer was not accepted: start again, and use a passkey made for this site"
    )]
    Refused(String),
    #[error(
        "this passkey was not accepted: try again, or sign in with your email address and password"
    )]
    WrongPasskey,
    #[error("too many passkey sign-ins that failed from your address; wait before trying again")]
    Throttled(Duration),
    #[error("too many passkey steps were started from your address; wait before trying again")]
    TooManyCeremonies(Duration),
    #[error("this account has {MAX_PASSKEYS_PER_ACCOUNT} passkeys already: remove one you no longer use first")]
    TooMany,
    #[error("this passkey is the only way to sign in to this account: set a password (ask for a link on the sign-in page) or add another passkey before removing it")]
    LastSignInMethod,
    #[error("passkey not found: it may have been removed already")]
    NotFound,
    #[error("recovery material must have 1 to {MAX_RECOVERY_MATERIAL_BYTES} bytes")]
    MaterialSize,
    #[error("recovery material must be base64")]
    MaterialEncoding,
    #[error(transparent)]
    InvalidEmail(#[from] EmailError),
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Account(#[from] AccountError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type PasskeyResult<T> = Result<T, PasskeyError>;

/// What a ceremony is for; stored as its purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    SignUp,
    SignIn,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Register => "register",
            Purpose::SignUp => "sign_up",
            Purpose::SignIn => "sign_in",
        }
    }
}

/// What the server keeps of a ceremony between its two requests.
#[derive(Serialize, Deserialize)]
enum CeremonyState {
    Register {
        registration: PasskeyRegistration,
        label: String,
    },
    SignUp {
        registration: PasskeyRegistration,
        account_id: Uuid,
        email: String,
        display_name: String,
    },
    SignIn {
        authentication: DiscoverableAuthentication,
    },
}

/// The relying party for this server's public address.
pub fn relying_party(public_url: &str) -> PasskeyResult<Webauthn> {
    let mut origin = Url::parse(public_url).map_err(|_| PasskeyError::Unavailable)?;
    let loopback = match origin.host() {
        Some(url::Host::Domain(_)) => false,
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(PasskeyError::Unavailable),
    };
    if loopback {
        origin
            .set_host(Some("localhost"))
            .map_err(|_| PasskeyError::Unavailable)?;
    } else if origin.domain().is_none() {
        return Err(PasskeyError::Unavailable);
    }
    origin.set_path("");
    let rp_id = origin.domain().ok_or(PasskeyError::Unavailable)?.to_owned();
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name(RP_NAME).timeout(CEREMONY_TTL).build())
        .map_err(|_| PasskeyError::Unavailable)
}

/// Whether the account has no password (it was made with a passkey and no link has set
/// one since).
pub fn has_no_password(account: &Account) -> bool {
    account.password_hash.starts_with(NO_PASSWORD_PREFIX)
}

fn no_password_hash() -> String {
    let random: [u8; 32] = rand::random();
    format!("{NO_PASSWORD_PREFIX}{}", URL_SAFE_NO_PAD.encode(random))
}

fn clean_label(label: Option<&str>) -> PasskeyResult<String> {
    match label.map(str::trim).filter(|l| !l.is_empty()) {
        None => Ok(DEFAULT_LABEL.to_owned()),
        Some(l) if l.chars().count() > MAX_LABEL_CHARS => Err(NameError::Length {
            field: "label",
            max: MAX_LABEL_CHARS,
        }
        .into()),
        Some(l) => Ok(clean_name(l, "label")?),
    }
}

/// A registration that asks for a discoverable credential (a passkey the browser
/// offers without being told whose it is), verified by the person. The options are
/// JSON for `navigator.credentials.create`.
fn start_passkey_registration(
    webauthn: &Webauthn,
    user: Uuid,
    email: &str,
    display_name: &str,
    exclude: Option<Vec<Vec<u8>>>,
) -> PasskeyResult<(serde_json::Value, PasskeyRegistration)> {
    let (options, registration) = webauthn
        .start_passkey_registration(user, email, display_name, exclude)
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    Ok((discoverable(&options)?, registration))
}

/// `options` asking for a credential the authenticator keeps (a "resident key"), so that
/// signing in needs no email address.
fn discoverable(options: &CreationChallengeResponse) -> PasskeyResult<serde_json::Value> {
    let mut json = serde_json::to_value(options)
        .map_err(|e| StoreError::Backend(format!("passkey options did not serialise: {e}")))?;
    let selection = json
        .get_mut("publicKey")
        .and_then(|p| p.get_mut("authenticatorSelection"))
        .and_then(serde_json::Value::as_object_mut)
        .ok_or_else(|| PasskeyError::Refused("passkey options without a selection".into()))?;
    selection.insert("residentKey".into(), "required".into());
    selection.insert("requireResidentKey".into(), true.into());
    Ok(json)
}

async fn keep_ceremony(
    state: &AppState,
    purpose: Purpose,
    account: Option<AccountId>,
    ceremony: &CeremonyState,
    client: IpAddr,
) -> PasskeyResult<Uuid> {
    state
        .limits
        .passkey_ceremonies_per_address
        .reserve(&address_key(client))
        .map_err(PasskeyError::TooManyCeremonies)?;
    let now = OffsetDateTime::now_utc();
    // Answers that never came are swept here, a little after their time, so that a late
    // answer is still told it came too late.
    state
        .store
        .delete_expired_passkey_ceremonies(now - CEREMONY_TTL)
        .await?;
    let id = Uuid::new_v4();
    let state_json = serde_json::to_string(ceremony)
        .map_err(|e| StoreError::Backend(format!("a passkey ceremony did not serialise: {e}")))?;
    state
        .store
        .create_passkey_ceremony(&PasskeyCeremony {
            id,
            purpose: purpose.as_str().to_owned(),
            account_id: account,
            state: state_json,
            expires_at: now + CEREMONY_TTL,
        })
        .await?;
    Ok(id)
}

/// Uses up the ceremony `id`, which must be for `purpose` (and `account`, when one
/// started it).
async fn take_ceremony(
    state: &AppState,
    id: Uuid,
    purpose: Purpose,
    account: Option<AccountId>,
) -> PasskeyResult<CeremonyState> {
    let ceremony = state
        .store
        .take_passkey_ceremony(id)
        .await?
        .ok_or(PasskeyError::UnknownCeremony)?;
    if ceremony.purpose != purpose.as_str() || ceremony.account_id != account {
        return Err(PasskeyError::UnknownCeremony);
    }
    if ceremony.expires_at <= OffsetDateTime::now_utc() {
        return Err(PasskeyError::CeremonyExpired);
    }
    serde_json::from_str(&ceremony.state).map_err(|_| PasskeyError::UnknownCeremony)
}

fn stored_passkey(
    account: AccountId,
    label: String,
    passkey: &Passkey,
) -> PasskeyResult<StoredPasskey> {
    Ok(StoredPasskey {
        id: Uuid::now_v7(),
        account_id: account,
        credential_id: passkey.cred_id().to_vec(),
        label,
        credential: serde_json::to_string(passkey)
            .map_err(|e| StoreError::Backend(format!("a passkey did not serialise: {e}")))?,
        created_at: OffsetDateTime::now_utc(),
        last_used_at: None,
        has_recovery_material: false,
    })
}

async fn keep_passkey(
    state: &AppState,
    passkey: &StoredPasskey,
    client: IpAddr,
) -> PasskeyResult<()> {
    match state.store.add_passkey(passkey).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(PasskeyError::Refused(
                "this passkey is registered already".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    }
    record(
        state,
        Event::new(AuditAction::PasskeyAdded)
            .by(passkey.account_id)
            .on(passkey.id)
            .from(client),
    )
    .await;
    Ok(())
}

/// Options to add a passkey to a signed-in account, with the ceremony's id.
pub async fn start_registration(
    state: &AppState,
    account: &Account,
    label: Option<&str>,
    client: IpAddr,
) -> PasskeyResult<(Uuid, serde_json::Value)> {
    let webauthn = relying_party(&state.public_url)?;
    let label = clean_label(label)?;
    let existing = state.store.passkeys_of(account.id).await?;
    if existing.len() >= MAX_PASSKEYS_PER_ACCOUNT {
        return Err(PasskeyError::TooMany);
    }
    let exclude = existing.into_iter().map(|p| p.credential_id).collect();
    let (options, registration) = start_passkey_registration(
        &webauthn,
        account.id.0,
        account.email.as_str(),
        &account.display_name,
        Some(exclude),
    )?;
    let ceremony = CeremonyState::Register {
        registration,
        label,
    };
    let id = keep_ceremony(
        state,
        Purpose::Register,
        Some(account.id),
        &ceremony,
        client,
    )
    .await?;
    Ok((id, options))
}

/// Checks the browser's answer and keeps the new passkey.
pub async fn finish_registration(
    state: &AppState,
    account: &Account,
    ceremony: Uuid,
    credential: &RegisterPublicKeyCredential,
    client: IpAddr,
) -> PasskeyResult<StoredPasskey> {
    let webauthn = relying_party(&state.public_url)?;
    let CeremonyState::Register {
        registration,
        label,
    } = take_ceremony(state, ceremony, Purpose::Register, Some(account.id)).await?
    else {
        return Err(PasskeyError::UnknownCeremony);
    };
    let passkey = webauthn
        .finish_passkey_registration(credential, &registration)
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    if state.store.passkeys_of(account.id).await?.len() >= MAX_PASSKEYS_PER_ACCOUNT {
        return Err(PasskeyError::TooMany);
    }
    let stored = stored_passkey(account.id, label, &passkey)?;
    keep_passkey(state, &stored, client).await?;
    tracing::info!(account = %account.id, passkey = %stored.id, "passkey added");
    Ok(stored)
}

/// Options to make an account with a passkey and no password, with the ceremony's id.
pub async fn start_sign_up(
    state: &AppState,
    email: &str,
    display_name: &str,
    client: IpAddr,
) -> PasskeyResult<(Uuid, serde_json::Value)> {
    let webauthn = relying_party(&state.public_url)?;
    let email = Email::parse(email)?;
    let display_name = clean_name(display_name, "display_name")?;
    if state.store.account_by_email(&email).await?.is_some() {
        return Err(AccountError::EmailTaken.into());
    }
    let account_id = AccountId::new();
    let (options, registration) =
        start_passkey_registration(&webauthn, account_id.0, email.as_str(), &display_name, None)?;
    let ceremony = CeremonyState::SignUp {
        registration,
        account_id: account_id.0,
        email: email.to_string(),
        display_name,
    };
    let id = keep_ceremony(state, Purpose::SignUp, None, &ceremony, client).await?;
    Ok((id, options))
}

/// A new session with the passkey that opened it.
pub struct PasskeySignedIn {
    pub signed_in: SignedIn,
    pub passkey: StoredPasskey,
}

/// Checks the browser's answer, makes the account (no password) with its first passkey,
/// counted against the sign-ups from `client`'s address, and signs it in.
pub async fn finish_sign_up(
    state: &AppState,
    ceremony: Uuid,
    credential: &RegisterPublicKeyCredential,
    client: IpAddr,
    user_agent: &str,
) -> PasskeyResult<PasskeySignedIn> {
    let webauthn = relying_party(&state.public_url)?;
    let CeremonyState::SignUp {
        registration,
        account_id,
        email,
        display_name,
    } = take_ceremony(state, ceremony, Purpose::SignUp, None).await?
    else {
        return Err(PasskeyError::UnknownCeremony);
    };
    let passkey = webauthn
        .finish_passkey_registration(credential, &registration)
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    let addr_key = address_key(client);
    state
        .limits
        .signup_per_address
        .reserve(&addr_key)
        .map_err(AccountError::SignupsThrottled)?;
    relay::announce(
        state,
        Note::Attempt {
            limit: LimitName::SignupPerAddress,
            key: KeyHash::of(&addr_key),
        },
    )
    .await;
    let account = Account {
        id: AccountId(account_id),
        email: Email::parse(&email)?,
        display_name,
        password_hash: no_password_hash(),
        created_at: OffsetDateTime::now_utc(),
        locked: false,
        email_verified_at: None,
    };
    match state.store.create_account(&account).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Err(AccountError::EmailTaken.into()),
        Err(e) => return Err(e.into()),
    }
    let stored = stored_passkey(account.id, DEFAULT_LABEL.to_owned(), &passkey)?;
    if let Err(e) = keep_passkey(state, &stored, client).await {
        // An account nobody can sign in to is not kept.
        state.store.delete_account(account.id).await?;
        return Err(e);
    }
    record(
        state,
        Event::new(AuditAction::AccountCreated)
            .by(account.id)
            .from(client),
    )
    .await;
    tracing::info!(account = %account.id, "account created with a passkey");
    // As at a password sign-up: the account works without it, and asks again from the app.
    if let Err(e) = send_verification_link(state, &account, account.created_at).await {
        tracing::warn!(account = %account.id, error = %e, "no link to confirm the email address was sent at sign-up");
    }
    let signed_in = open_session(state, account, client, user_agent).await?;
    Ok(PasskeySignedIn {
        signed_in,
        passkey: stored,
    })
}

/// Options to sign in with any passkey the browser holds for this site, with the
/// ceremony's id.
pub async fn start_sign_in(
    state: &AppState,
    client: IpAddr,
) -> PasskeyResult<(Uuid, RequestChallengeResponse)> {
    let webauthn = relying_party(&state.public_url)?;
    let (mut options, authentication) = webauthn
        .start_discoverable_authentication()
        .map_err(|e| PasskeyError::Refused(e.to_string()))?;
    // Asked for with a button, not offered in a form field's autofill.
    options.mediation = None;
    let ceremony = CeremonyState::SignIn { authentication };
    let id = keep_ceremony(state, Purpose::SignIn, None, &ceremony, client).await?;
    Ok((id, options))
}

/// Checks the browser's answer and signs in the passkey's account. Every attempt is
/// counted against the client's address before it is checked (the limit of failed
/// password sign-ins, [`LimitName::LoginPerAddress`]); one that succeeds is handed back.
pub async fn finish_sign_in(
    state: &AppState,
    ceremony: Uuid,
    credential: &PublicKeyCredential,
    client: IpAddr,
    user_agent: &str,
) -> PasskeyResult<PasskeySignedIn> {
    let webauthn = relying_party(&state.public_url)?;
    let limiter = state.limits.get(LimitName::LoginPerAddress);
    let key = address_key(client);
    limiter.reserve(&key).map_err(PasskeyError::Throttled)?;
    match check_sign_in(state, &webauthn, ceremony, credential).await {
        Ok((account, passkey)) => {
            limiter.refund(&key);
            if account.locked {
                return Err(AccountError::Locked.into());
            }
            let signed_in = open_session(state, account, client, user_agent).await?;
            Ok(PasskeySignedIn { signed_in, passkey })
        }
        Err((e, account)) => {
            relay::announce(
                state,
                Note::Attempt {
                    limit: LimitName::LoginPerAddress,
                    key: KeyHash::of(&key),
                },
            )
            .await;
            tracing::info!(%client, "failed passkey sign-in");
            let mut event = Event::new(AuditAction::SignInFailed).from(client);
            if let Some(account) = account {
                event = event.by(account);
            }
            record(state, event).await;
            Err(e)
        }
    }
}

/// The account and passkey that answered, or why not (with the account the answer
/// named, if any).
async fn check_sign_in(
    state: &AppState,
    webauthn: &Webauthn,
    ceremony: Uuid,
    credential: &PublicKeyCredential,
) -> Result<(Account, StoredPasskey), (PasskeyError, Option<AccountId>)> {
    let CeremonyState::SignIn { authentication } =
        take_ceremony(state, ceremony, Purpose::SignIn, None)
            .await
            .map_err(|e| (e, None))?
    else {
        return Err((PasskeyError::UnknownCeremony, None));
    };
    let (user, credential_id) = webauthn
        .identify_discoverable_authentication(credential)
        .map_err(|_| (PasskeyError::WrongPasskey, None))?;
    let mut stored = state
        .store
        .passkey_by_credential_id(credential_id)
        .await
        .map_err(|e| (e.into(), None))?
        .filter(|p| p.account_id.0 == user)
        .ok_or((PasskeyError::WrongPasskey, None))?;
    let account = Some(stored.account_id);
    let mut passkey: Passkey = serde_json::from_str(&stored.credential).map_err(|e| {
        (
            StoreError::Backend(format!("a stored passkey did not parse: {e}")).into(),
            account,
        )
    })?;
    let result = webauthn
        .finish_discoverable_authentication_v2(credential, authentication, &passkey)
        .map_err(|_| (PasskeyError::WrongPasskey, account))?;
    passkey.update_credential(&result);
    let now = OffsetDateTime::now_utc();
    stored.credential = serde_json::to_string(&passkey).map_err(|e| {
        (
            StoreError::Backend(format!("a passkey did not serialise: {e}")).into(),
            account,
        )
    })?;
    stored.last_used_at = Some(now);
    state
        .store
        .record_passkey_use(stored.id, &stored.credential, now)
        .await
        .map_err(|e| (e.into(), account))?;
    let owner = state
        .store
        .account_by_id(stored.account_id)
        .await
        .map_err(|e| (e.into(), account))?
        .ok_or((PasskeyError::WrongPasskey, account))?;
    Ok((owner, stored))
}

/// The account's passkeys, oldest first.
pub async fn list(state: &AppState, account: AccountId) -> PasskeyResult<Vec<StoredPasskey>> {
    Ok(state.store.passkeys_of(account).await?)
}

/// Removes one of the account's passkeys with its recovery material; not the last one
/// of an account without a password.
pub async fn remove(
    state: &AppState,
    account: &Account,
    id: Uuid,
    client: IpAddr,
) -> PasskeyResult<()> {
    let keep_one = has_no_password(account);
    if !state.store.delete_passkey(account.id, id, keep_one).await? {
        let exists = state
            .store
            .passkeys_of(account.id)
            .await?
            .iter()
            .any(|p| p.id == id);
        return Err(if exists {
            PasskeyError::LastSignInMethod
        } else {
            PasskeyError::NotFound
        });
    }
    record(
        state,
        Event::new(AuditAction::PasskeyRemoved)
            .by(account.id)
            .on(id)
            .from(client),
    )
    .await;
    Ok(())
}

/// Replaces the recovery material kept with the account's passkey `id` (base64).
pub async fn set_recovery_material(
    state: &AppState,
    account: AccountId,
    id: Uuid,
    material_base64: &str,
) -> PasskeyResult<()> {
    // Four base64 characters carry three bytes: anything longer cannot fit.
    if material_base64.len() > MAX_RECOVERY_MATERIAL_BYTES.div_ceil(3) * 4 {
        return Err(PasskeyError::MaterialSize);
    }
    let material = base64::engine::general_purpose::STANDARD
        .decode(material_base64)
        .map_err(|_| PasskeyError::MaterialEncoding)?;
    if material.is_empty() || material.len() > MAX_RECOVERY_MATERIAL_BYTES {
        return Err(PasskeyError::MaterialSize);
    }
    if !state
        .store
        .set_passkey_recovery_material(account, id, &material)
        .await?
    {
        return Err(PasskeyError::NotFound);
    }
    Ok(())
}

/// The recovery material kept with the account's passkey `id`, if any.
pub async fn recovery_material(
    state: &AppState,
    account: AccountId,
    id: Uuid,
) -> PasskeyResult<Option<Vec<u8>>> {
    if !state
        .store
        .passkeys_of(account)
        .await?
        .iter()
        .any(|p| p.id == id)
    {
        return Err(PasskeyError::NotFound);
    }
    Ok(state.store.passkey_recovery_material(account, id).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_public_address_and_loopback_stands_for_localhost() {
        for url in [
            "https://pawpost.example.org",
            "http://localhost:8080",
            "http://127.0.0.1:8080",
            "http://[::1]:8080",
        ] {
            let rp = relying_party(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let origin = &rp.get_allowed_origins()[0];
            assert!(origin.domain().is_some(), "{url}: {origin}");
            assert_eq!(origin.port(), Url::parse(url).unwrap().port(), "{url}");
        }
        for url in ["http://192.0.2.7:8080", "not a url"] {
            assert!(matches!(relying_party(url), Err(PasskeyError::Unavailable)));
        }
    }

    #[test]
    fn an_account_without_a_password_matches_no_password() {
        let hash = no_password_hash();
        assert!(hash.starts_with(NO_PASSWORD_PREFIX));
        assert_ne!(hash, no_password_hash(), "random for each account");
        assert!(argon2::password_hash::PasswordHash::new(&hash).is_err());
    }
}
