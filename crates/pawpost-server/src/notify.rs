//! Notification mails: what a person would want to know, each of a named [`Kind`] they
//! can switch off (on the Security page, or with the one-click link every such mail
//! carries). A mail says that something happened in a household, never what: the server
//! holds no message content and no child's name, and the mail names neither.
//!
//! Mails are sent in the background, like every other mail, and at most one of a kind
//! goes to a person for a household every [`NOTIFICATION_INTERVAL`], so that a chatty
//! toy cannot flood a mailbox; the mail says that there may be more since.
//!
//! The unsubscribe link's token is an HMAC-SHA256, under a key the server keeps in its
//! database ([`SECRET_NAME`]), over the account id and the kind: no table of tokens, and
//! no session needed to use it.
use crate::audit::{record, AuditAction, Event};
use crate::mail::Mail;
use crate::state::AppState;
use hmac::{Hmac, Mac};
use pawpost_domain::{Account, AccountId, DeviceId, Email, Household, HouseholdId, MemberStatus};
use pawpost_store::{StoreError, StoreResult};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// At most one mail of a kind per household per person in this time.
pub const NOTIFICATION_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// How many (person, kind, household) sending times this process remembers; past that,
/// the ones older than [`NOTIFICATION_INTERVAL`] are forgotten.
pub const REMEMBERED_SENDINGS_MAX: usize = 100_000;
/// The name of the unsubscribe key among the server's secrets.
pub const SECRET_NAME: &str = "notification-unsubscribe-hmac";
/// Bytes of a fresh unsubscribe key.
pub const SECRET_LEN: usize = 32;
/// Where an unsubscribe link points (GET shows a page, POST is RFC 8058's one click).
pub const UNSUBSCRIBE_PATH: &str = "/api/v1/notifications/unsubscribe";
/// The longest unsubscribe token read (an account id, a kind and an HMAC in hex).
pub const TOKEN_MAX_LEN: usize = 160;

/// A kind of notification mail.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The toy sent a reply in a household you are in.
    ChildReplied,
    /// Someone joined a household you manage and waits for your approval.
    ApprovalWaiting,
    /// A parent approved you in a household.
    Approved,
    /// A toy refused a message you sent.
    MessageNotPlayed,
    /// Someone invited your address to a household.
    Invitation,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::ChildReplied,
        Kind::ApprovalWaiting,
        Kind::Approved,
        Kind::MessageNotPlayed,
        Kind::Invitation,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::ChildReplied => "child_replied",
            Kind::ApprovalWaiting => "approval_waiting",
            Kind::Approved => "approved",
            Kind::MessageNotPlayed => "message_not_played",
            Kind::Invitation => "invitation",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Plain words for "emails when …".
    pub const fn words(self) -> &'static str {
        match self {
            Kind::ChildReplied => "the toy sends a new message in one of your families",
            Kind::ApprovalWaiting => {
                "someone joined a family you look after and waits for your approval"
            }
            Kind::Approved => "a parent approved you in a family",
            Kind::MessageNotPlayed => "a message you sent could not be played by the toy",
            Kind::Invitation => "someone invites you to a family",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every kind with whether `account` wants it (on unless switched off).
pub async fn settings(state: &AppState, account: AccountId) -> StoreResult<Vec<(Kind, bool)>> {
    let stored = state.store.notification_settings(account).await?;
    Ok(Kind::ALL
        .into_iter()
        .map(|kind| {
            let on = stored
                .iter()
                .find(|(k, _)| k == kind.as_str())
                .is_none_or(|(_, on)| *on);
            (kind, on)
        })
        .collect())
}

async fn wants(state: &AppState, account: AccountId, kind: Kind) -> StoreResult<bool> {
    Ok(settings(state, account)
        .await?
        .into_iter()
        .any(|(k, on)| k == kind && on))
}

/// Switches `kind` on or off for `account`, recording a change in the audit trail.
pub async fn set(
    state: &AppState,
    account: AccountId,
    kind: Kind,
    enabled: bool,
    client: Option<IpAddr>,
) -> StoreResult<()> {
    let was = wants(state, account, kind).await?;
    state
        .store
        .set_notification_setting(account, kind.as_str(), enabled)
        .await?;
    if was != enabled {
        let mut event = Event::new(AuditAction::NotificationsChanged)
            .by(account)
            .on(format!("{kind}:{}", if enabled { "on" } else { "off" }));
        if let Some(client) = client {
            event = event.from(client);
        }
        record(state, event).await;
    }
    Ok(())
}

async fn key(state: &AppState) -> StoreResult<Vec<u8>> {
    let fresh: [u8; SECRET_LEN] = rand::random();
    state.store.server_secret(SECRET_NAME, &fresh).await
}

fn mac(key: &[u8], account: AccountId, kind: Kind) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(b"pawpost unsubscribe\0");
    mac.update(account.0.as_bytes());
    mac.update(kind.as_str().as_bytes());
    mac
}

/// The token of `account`'s unsubscribe link for `kind`: `ACCOUNT.KIND.HMAC`.
pub async fn unsubscribe_token(
    state: &AppState,
    account: AccountId,
    kind: Kind,
) -> StoreResult<String> {
    let tag = mac(&key(state).await?, account, kind)
        .finalize()
        .into_bytes();
    Ok(format!("{}.{kind}.{}", account.0, hex::encode(tag)))
}

/// The link that switches `kind` off for `account`.
pub async fn unsubscribe_url(
    state: &AppState,
    account: AccountId,
    kind: Kind,
) -> StoreResult<String> {
    let token = unsubscribe_token(state, account, kind).await?;
    Ok(format!(
        "{}{UNSUBSCRIBE_PATH}?token={token}",
        &*state.public_url
    ))
}

/// Why an unsubscribe token was refused.
#[derive(Debug, thiserror::Error)]
pub enum UnsubscribeError {
    #[error("this unsubscribe link is incomplete or was changed; copy the whole link from the mail, or switch the mails off on the Security page")]
    BadToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks an unsubscribe token and switches its kind off; returns the kind.
pub async fn unsubscribe(state: &AppState, token: &str) -> Result<Kind, UnsubscribeError> {
    if token.len() > TOKEN_MAX_LEN {
        return Err(UnsubscribeError::BadToken);
    }
    let mut parts = token.trim().splitn(3, '.');
    let (Some(account), Some(kind), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(UnsubscribeError::BadToken);
    };
    let account = Uuid::parse_str(account)
        .map(AccountId)
        .map_err(|_| UnsubscribeError::BadToken)?;
    let kind = Kind::parse(kind).ok_or(UnsubscribeError::BadToken)?;
    let tag = hex::decode(tag).map_err(|_| UnsubscribeError::BadToken)?;
    mac(&key(state).await?, account, kind)
        .verify_slice(&tag)
        .map_err(|_| UnsubscribeError::BadToken)?;
    match set(state, account, kind, false, None).await {
        // A deleted account gets no mail anyway.
        Ok(()) | Err(StoreError::NotFound(_)) => Ok(kind),
        Err(e) => Err(e.into()),
    }
}

type SendingKey = (AccountId, Kind, Option<HouseholdId>);

fn sendings() -> &'static Mutex<HashMap<SendingKey, Instant>> {
    static SENDINGS: OnceLock<Mutex<HashMap<SendingKey, Instant>>> = OnceLock::new();
    SENDINGS.get_or_init(Default::default)
}

/// Whether a mail of `kind` about `household` may go to `account` now; if so, the time
/// is taken.
fn take_turn(account: AccountId, kind: Kind, household: Option<HouseholdId>) -> bool {
    let now = Instant::now();
    let mut sent = sendings().lock().unwrap_or_else(|e| e.into_inner());
    if sent.len() >= REMEMBERED_SENDINGS_MAX {
        sent.retain(|_, at| now.duration_since(*at) < NOTIFICATION_INTERVAL);
    }
    match sent.get(&(account, kind, household)) {
        Some(at) if now.duration_since(*at) < NOTIFICATION_INTERVAL => false,
        _ => {
            sent.insert((account, kind, household), now);
            true
        }
    }
}

/// A name someone typed, quoted so that a mail never presents it as the server's words.
fn quoted(name: &str) -> String {
    format!(
        "\u{201c}{}\u{201d}",
        name.replace(['\u{201c}', '\u{201d}'], "\"")
    )
}

fn interval_words() -> String {
    format!("{} minutes", NOTIFICATION_INTERVAL.as_secs() / 60)
}

/// Sends `kind` to `to` if they want it and their turn for `household` has come, with
/// the unsubscribe link in the text and the headers.
async fn send(
    state: &AppState,
    to: &Account,
    kind: Kind,
    household: Option<HouseholdId>,
    subject: String,
    text: String,
) -> StoreResult<()> {
    if !wants(state, to.id, kind).await? {
        return Ok(());
    }
    // Invitations have limits of their own (per parent and household per day), and a
    // parent sending one again means it.
    if kind != Kind::Invitation && !take_turn(to.id, kind, household) {
        return Ok(());
    }
    let url = unsubscribe_url(state, to.id, kind).await?;
    let body = format!(
        "{text}\n\n--\nYou get this mail because it is switched on for your pawpost account. \
         To stop mails when {}, open this link:\n{url}\n\
         You can switch every kind of mail on or off on the Security page: {}/security\n",
        kind.words(),
        &*state.public_url
    );
    let mail = Mail {
        to: to.email.to_string(),
        subject,
        body,
    };
    if let Err(error) = state
        .mailer
        .send_tagged(mail, Some(&url), household.map(|h| h.0))
        .await
    {
        tracing::warn!(%error, kind = kind.as_str(), "a notification mail could not be sent");
    }
    Ok(())
}

/// Runs `work` in the background, logging a store failure: a notification must never
/// hold up or fail what caused it.
fn in_background<F>(what: &'static str, work: F)
where
    F: std::future::Future<Output = StoreResult<()>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = work.await {
            tracing::warn!(%error, kind = what, "a notification could not be prepared");
        }
    });
}

async fn household(state: &AppState, id: HouseholdId) -> StoreResult<Option<Household>> {
    state.store.household(id).await
}

/// The toy of `household` sent a message to `recipients`: their approved owners hear of
/// it (never what it says, nor the child's name).
pub fn child_replied(state: &AppState, household_id: HouseholdId, recipients: Vec<DeviceId>) {
    let state = state.clone();
    in_background(Kind::ChildReplied.as_str(), async move {
        let Some(home) = household(&state, household_id).await? else {
            return Ok(());
        };
        let mut told = Vec::new();
        for device in recipients {
            let Some(account) = state.store.device(device).await?.and_then(|d| d.account_id) else {
                continue;
            };
            if told.contains(&account) {
                continue;
            }
            told.push(account);
            let approved = state
                .store
                .membership(household_id, account)
                .await?
                .is_some_and(|m| m.status == MemberStatus::Approved);
            let Some(to) = state.store.account_by_id(account).await? else {
                continue;
            };
            if !approved {
                continue;
            }
            send(
                &state,
                &to,
                Kind::ChildReplied,
                Some(household_id),
                format!("New message from the toy in {}", quoted(&home.name)),
                format!(
                    "There is a new message from the toy in {}. Open pawpost to listen: {}/\n\n\
                     We send at most one such mail per family every {}. There may be more since.",
                    quoted(&home.name),
                    &*state.public_url,
                    interval_words()
                ),
            )
            .await?;
        }
        Ok(())
    });
}

/// `joiner` joined `household_id` with an invitation: its approved owners and guardians
/// are asked to approve them.
pub fn approval_waiting(state: &AppState, household_id: HouseholdId, joiner: AccountId) {
    let state = state.clone();
    in_background(Kind::ApprovalWaiting.as_str(), async move {
        let Some(home) = household(&state, household_id).await? else {
            return Ok(());
        };
        let members = state.store.members(household_id).await?;
        let Some(newcomer) = members.iter().find(|m| m.membership.account_id == joiner) else {
            return Ok(());
        };
        let parents = members.iter().filter(|m| {
            m.membership.account_id != joiner
                && m.membership.status == MemberStatus::Approved
                && m.membership.manages()
        });
        for parent in parents {
            let Some(to) = state
                .store
                .account_by_id(parent.membership.account_id)
                .await?
            else {
                continue;
            };
            send(
                &state,
                &to,
                Kind::ApprovalWaiting,
                Some(household_id),
                format!("Someone waits for your approval in {}", quoted(&home.name)),
                format!(
                    "The account named {} joined {} with an invitation and waits for your \
                     approval before they can send anything. Open the family page to approve \
                     or block them: {}/\n\n\
                     We send at most one such mail per family every {}. There may be more since.",
                    quoted(&newcomer.display_name),
                    quoted(&home.name),
                    &*state.public_url,
                    interval_words()
                ),
            )
            .await?;
        }
        Ok(())
    });
}

/// A parent approved `member` in `household_id`.
pub fn approved(state: &AppState, household_id: HouseholdId, member: AccountId) {
    let state = state.clone();
    in_background(Kind::Approved.as_str(), async move {
        let (Some(home), Some(to)) = (
            household(&state, household_id).await?,
            state.store.account_by_id(member).await?,
        ) else {
            return Ok(());
        };
        send(
            &state,
            &to,
            Kind::Approved,
            Some(household_id),
            format!("You were approved in {}", quoted(&home.name)),
            format!(
                "A parent approved you in {}: you can now send voice messages to the toy. \
                 Open pawpost: {}/",
                quoted(&home.name),
                &*state.public_url
            ),
        )
        .await
    });
}

/// A toy refused `message` for good: its sender hears that it was not played.
pub fn message_not_played(state: &AppState, message: Uuid) {
    let state = state.clone();
    in_background(Kind::MessageNotPlayed.as_str(), async move {
        let Some(message) = state.store.message(message).await? else {
            return Ok(());
        };
        let Some(sender) = message.sender_account else {
            return Ok(());
        };
        let (Some(home), Some(to)) = (
            household(&state, message.household_id).await?,
            state.store.account_by_id(sender).await?,
        ) else {
            return Ok(());
        };
        send(
            &state,
            &to,
            Kind::MessageNotPlayed,
            Some(message.household_id),
            format!(
                "A message you sent in {} was not played",
                quoted(&home.name)
            ),
            format!(
                "The toy in {} could not play a voice message you sent. Open pawpost to see \
                 which one and to record it again: {}/\n\n\
                 We send at most one such mail per family every {}. There may be more since.",
                quoted(&home.name),
                &*state.public_url,
                interval_words()
            ),
        )
        .await
    });
}

/// An invitation to `household_id` for `to`: when the address has an account, the mail
/// follows its switch and carries its unsubscribe link; otherwise it goes as written.
pub fn invitation(state: &AppState, household_id: HouseholdId, to: Email, mail: Mail) {
    let state = state.clone();
    in_background(Kind::Invitation.as_str(), async move {
        match state.store.account_by_email(&to).await? {
            Some(account) => {
                send(
                    &state,
                    &account,
                    Kind::Invitation,
                    Some(household_id),
                    mail.subject,
                    mail.body.trim_end().to_owned(),
                )
                .await
            }
            None => {
                let tagged = state.mailer.send_tagged(mail, None, Some(household_id.0));
                if let Err(error) = tagged.await {
                    tracing::warn!(%error, "an invitation mail could not be sent");
                }
                Ok(())
            }
        }
    });
}
