//! Live updates for the web app while it is open (`GET /api/v1/events`, Server-Sent
//! Events): a parent approved or blocked someone, a message arrived, a toy delivered or
//! played one, a toy went on- or offline. An event names only what changed (a kind and
//! ids, never content); the app fetches the rest through the usual API, with the usual
//! checks.
//!
//! Whatever changes goes through [`publish`]: the streams open on this process hear of it
//! at once, and the other processes sharing the store through a [`Note::Live`] (their
//! [`crate::relay::run`] calls [`fan_out`]). Each process works out from its own store
//! who may hear of a change, and only when someone has a stream open there:
//!
//! - a change of someone's membership: that person (whatever their standing, so that a
//!   pending page turns into the household and a blocked one into the notice) and the
//!   household's approved members;
//! - a message or its receipts: its sender, the accounts of its recipients' devices and
//!   the household's parents, as for the message list;
//! - anything else in a household: its approved members.
//!
//! Like a note between processes, an event is only a hint: a stream that missed some
//! (its buffer was full, it reconnected) loses nothing, since the app refetches from the
//! store whenever its stream (re)opens.
use crate::relay::{self, Note};
use crate::state::AppState;
use pawpost_domain::{AccountId, DeviceId, HouseholdId, MemberStatus, Role};
use pawpost_store::StoreResult;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// How often an open stream gets a comment line when nothing happens, so that proxies and
/// browsers keep it open; the session behind it is checked again at the same pace.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(20);
/// Streams one account may hold open on one process (a few tabs and devices).
pub const MAX_STREAMS_PER_ACCOUNT: usize = 8;
/// Events waiting to be written on one stream; past that, new ones are dropped (the app
/// refetches everything when its stream reopens).
pub const STREAM_BUFFER: usize = 64;
/// How long a browser waits before reconnecting a stream that broke (the `retry:` field).
pub const RECONNECT_AFTER: Duration = Duration::from_secs(3);

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Someone joined, was approved, blocked, unblocked, removed or given another role
    /// (`account` names them).
    Member,
    /// A message was stored, or a parent approved one for the toy (`message`).
    Message,
    /// A device received, played or refused a message (`message`).
    Receipt,
    /// A toy came online, went offline or left the household (`device`).
    Toy,
    /// The household's roster (its keys and settings) has a new version.
    Roster,
    /// The household was renamed.
    Household,
}

impl Kind {
    /// The SSE `event:` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Member => "member",
            Kind::Message => "message",
            Kind::Receipt => "receipt",
            Kind::Toy => "toy",
            Kind::Roster => "roster",
            Kind::Household => "household",
        }
    }
}

/// One change, as a stream carries it (the `data:` of an event, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    pub kind: Kind,
    #[schema(value_type = String, format = Uuid)]
    pub household: HouseholdId,
    /// The member concerned (`member`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub account: Option<AccountId>,
    /// The message concerned (`message`, `receipt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Uuid>,
    /// The toy concerned (`toy`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub device: Option<DeviceId>,
}

impl Change {
    fn new(kind: Kind, household: HouseholdId) -> Self {
        Self {
            kind,
            household,
            account: None,
            message: None,
            device: None,
        }
    }

    pub fn member(household: HouseholdId, account: AccountId) -> Self {
        Self {
            account: Some(account),
            ..Self::new(Kind::Member, household)
        }
    }

    pub fn message(household: HouseholdId, message: Uuid) -> Self {
        Self {
            message: Some(message),
            ..Self::new(Kind::Message, household)
        }
    }

    pub fn receipt(household: HouseholdId, message: Uuid) -> Self {
        Self {
            message: Some(message),
            ..Self::new(Kind::Receipt, household)
        }
    }

    pub fn toy(household: HouseholdId, device: DeviceId) -> Self {
        Self {
            device: Some(device),
            ..Self::new(Kind::Toy, household)
        }
    }

    pub fn roster(household: HouseholdId) -> Self {
        Self::new(Kind::Roster, household)
    }

    pub fn household(household: HouseholdId) -> Self {
        Self::new(Kind::Household, household)
    }
}

/// Too many streams are open for one account here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyStreams;

struct Stream {
    id: u64,
    tx: mpsc::Sender<Change>,
}

/// The streams open on this process, by account.
pub struct EventHub {
    streams: Arc<Mutex<HashMap<AccountId, Vec<Stream>>>>,
    next_id: AtomicU64,
    /// Turns true when the server stops: every stream ends, so that the graceful
    /// shutdown does not wait for them.
    closing: watch::Sender<bool>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self {
            streams: Arc::default(),
            next_id: AtomicU64::new(0),
            closing: watch::channel(false).0,
        }
    }
}

/// One open stream; dropping it closes it.
pub struct Subscription {
    pub changes: mpsc::Receiver<Change>,
    /// Changes to true when the server stops.
    pub closing: watch::Receiver<bool>,
    streams: Arc<Mutex<HashMap<AccountId, Vec<Stream>>>>,
    account: AccountId,
    id: u64,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = streams.get_mut(&self.account) {
            open.retain(|s| s.id != self.id);
            if open.is_empty() {
                streams.remove(&self.account);
            }
        }
    }
}

impl EventHub {
    /// Opens a stream for `account`, unless [`MAX_STREAMS_PER_ACCOUNT`] are open already.
    pub fn subscribe(&self, account: AccountId) -> Result<Subscription, TooManyStreams> {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let open = streams.entry(account).or_default();
        if open.len() >= MAX_STREAMS_PER_ACCOUNT {
            return Err(TooManyStreams);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, changes) = mpsc::channel(STREAM_BUFFER);
        open.push(Stream { id, tx });
        Ok(Subscription {
            changes,
            closing: self.closing.subscribe(),
            streams: self.streams.clone(),
            account,
            id,
        })
    }

    /// Ends every stream (the server stops).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// The accounts with a stream open here.
    fn listening(&self) -> HashSet<AccountId> {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn send(&self, account: AccountId, change: &Change) {
        let streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        for stream in streams.get(&account).into_iter().flatten() {
            // A full buffer: the app catches up when its stream reopens.
            let _ = stream.tx.try_send(change.clone());
        }
    }

    /// Streams open here (for tests and the health of the process).
    pub fn open_streams(&self) -> usize {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

/// Tells the streams here and on the other processes about `change`. A failure is
/// logged: a live update must never fail what caused it.
pub async fn publish(state: &AppState, change: Change) {
    if let Err(error) = fan_out(state, &change).await {
        tracing::warn!(%error, kind = change.kind.as_str(), "a live update could not be sent; open pages catch up when they reconnect");
    }
    relay::announce(state, Note::Live { change }).await;
}

/// A change whose audience is taken before it happens: once a household is deleted, the
/// store no longer knows who belonged to it.
pub struct Announcement {
    change: Change,
    who: HashSet<AccountId>,
}

impl Announcement {
    /// Takes now who may hear of `change`; [`Announcement::send`] tells them once it happened.
    pub async fn prepare(state: &AppState, change: Change) -> Self {
        let who = audience(state, &change).await.unwrap_or_else(|error| {
            tracing::warn!(%error, kind = change.kind.as_str(), "the audience of a live update could not be read; open pages catch up on their next refresh");
            HashSet::new()
        });
        Self { change, who }
    }

    /// Tells the streams open here. Another process cannot know the audience any more,
    /// so its open pages notice at their next refresh.
    pub fn send(self, state: &AppState) {
        let listening = state.events.listening();
        for account in &self.who {
            if listening.contains(account) {
                state.events.send(*account, &self.change);
            }
        }
    }
}

/// Hands `change` to the streams open here of those who may hear of it.
pub async fn fan_out(state: &AppState, change: &Change) -> StoreResult<()> {
    let listening = state.events.listening();
    if listening.is_empty() {
        return Ok(());
    }
    for account in audience(state, change).await? {
        if listening.contains(&account) {
            state.events.send(account, change);
        }
    }
    Ok(())
}

/// Who may hear of `change` (see the module's documentation).
async fn audience(state: &AppState, change: &Change) -> StoreResult<HashSet<AccountId>> {
    let members = state.store.members(change.household).await?;
    let approved = || {
        members
            .iter()
            .filter(|m| m.membership.status == MemberStatus::Approved)
    };
    let mut who = HashSet::new();
    match (change.kind, change.message) {
        (Kind::Message | Kind::Receipt, Some(id)) => {
            let Some(message) = state.store.message(id).await? else {
                return Ok(who);
            };
            if message.household_id != change.household {
                return Ok(who);
            }
            who.extend(
                approved()
                    .filter(|m| matches!(m.membership.role, Role::Owner | Role::Guardian))
                    .map(|m| m.membership.account_id),
            );
            let mut concerned: HashSet<AccountId> = message.sender_account.into_iter().collect();
            for receipt in state.store.receipts(id).await? {
                if let Some(account) = state
                    .store
                    .device(receipt.device_id)
                    .await?
                    .and_then(|d| d.account_id)
                {
                    concerned.insert(account);
                }
            }
            // Only those still approved here.
            who.extend(
                approved()
                    .map(|m| m.membership.account_id)
                    .filter(|a| concerned.contains(a)),
            );
        }
        _ => {
            who.extend(approved().map(|m| m.membership.account_id));
            if let (Kind::Member, Some(account)) = (change.kind, change.account) {
                who.insert(account);
            }
        }
    }
    Ok(who)
}
