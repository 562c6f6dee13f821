//! Recording events in the audit trail. A failure to record is logged, never shown to
//! the person acting: the trail must not become a way to deny service.
use crate::state::AppState;
use pawpost_domain::{AccountId, AuditRecord, HouseholdId};
use std::net::IpAddr;
use time::OffsetDateTime;

/// Entries shown at most on a household's trail or an account's own activity.
pub const TRAIL_LIMIT: u32 = 200;
/// Entries read at a time when verifying the whole chain.
pub const VERIFY_BATCH: u32 = 1000;

/// One event: who (if known), which household (if any), what, to what, from where.
pub struct Event<'a> {
    pub actor: Option<AccountId>,
    pub household: Option<HouseholdId>,
    pub action: &'a str,
    pub target: Option<String>,
    pub client: Option<IpAddr>,
}

impl<'a> Event<'a> {
    pub fn new(action: &'a str) -> Self {
        Self {
            actor: None,
            household: None,
            action,
            target: None,
            client: None,
        }
    }

    pub fn by(mut self, actor: AccountId) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn in_household(mut self, household: HouseholdId) -> Self {
        self.household = Some(household);
        self
    }

    pub fn on(mut self, target: impl ToString) -> Self {
        self.target = Some(target.to_string());
        self
    }

    pub fn from(mut self, client: IpAddr) -> Self {
        self.client = Some(client);
        self
    }
}

pub async fn record(state: &AppState, event: Event<'_>) {
    record_in(state.store.as_ref(), event).await;
}

/// Records an event in a store directly (for commands that run without a server).
pub async fn record_in(store: &dyn pawpost_store::MetadataStore, event: Event<'_>) {
    let record = AuditRecord {
        at: OffsetDateTime::now_utc(),
        actor: event.actor,
        household: event.household,
        action: event.action.to_owned(),
        target: event.target,
        client: event.client.map(|c| c.to_string()),
    };
    if let Err(error) = store.append_audit(&record).await {
        tracing::error!(%error, action = event.action, "could not record an audit event");
    }
}

/// Why `verify` failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the audit trail is broken: {0}")]
    Broken(#[from] pawpost_domain::audit::ChainBreak),
    #[error("cannot read the audit trail: {0}")]
    Store(#[from] pawpost_store::StoreError),
}

/// Checks the whole chain; returns how many entries it holds.
pub async fn verify(store: &dyn pawpost_store::MetadataStore) -> Result<u64, VerifyError> {
    let (mut seq, mut hash) = (0u64, [0u8; 32]);
    loop {
        let batch = store.audit_entries(seq, VERIFY_BATCH).await?;
        if batch.is_empty() {
            return Ok(seq);
        }
        (seq, hash) = pawpost_domain::audit::verify_chain(seq, hash, &batch)?;
    }
}
