//! What the operator does from the command line: list and lock accounts, check the
//! server's health, and find (and tell) the people an incident could have reached.
use crate::audit::{record_in, AuditAction, Event, VERIFY_BATCH};
use crate::mail::{Mail, Mailer};
use pawpost_domain::{AccountId, AuditEntry, Email};
use pawpost_store::{MetadataStore, StoreResult};
use std::collections::BTreeMap;
use std::str::FromStr;
use time::OffsetDateTime;

/// Which data an incident exposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreachScope {
    /// The whole database or bucket: every account that existed during the incident.
    All,
    /// Sign-in data (sessions, passwords tried): accounts that signed in or were tried.
    SignIns,
    /// Message traffic: accounts that sent or fetched messages, and their households.
    Messages,
}

impl FromStr for BreachScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Self::All),
            "sign-ins" => Ok(Self::SignIns),
            "messages" => Ok(Self::Messages),
            other => Err(format!(
                "unknown scope {other:?}: use all, sign-ins or messages"
            )),
        }
    }
}

/// An account the incident could have reached, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affected {
    pub account: AccountId,
    /// None when the account has since been deleted.
    pub email: Option<Email>,
    pub reasons: Vec<String>,
}

async fn entries_between(
    store: &dyn MetadataStore,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> StoreResult<Vec<AuditEntry>> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let batch = store.audit_entries(after, VERIFY_BATCH).await?;
        let Some(last) = batch.last() else {
            return Ok(out);
        };
        after = last.seq;
        out.extend(
            batch
                .into_iter()
                .filter(|e| e.record.at >= since && e.record.at <= until),
        );
    }
}

/// The accounts an incident between `since` and `until` could have reached, from the
/// accounts table and the audit trail.
pub async fn breach_report(
    store: &dyn MetadataStore,
    since: OffsetDateTime,
    until: OffsetDateTime,
    scope: BreachScope,
) -> StoreResult<Vec<Affected>> {
    let mut found: BTreeMap<AccountId, Vec<String>> = BTreeMap::new();
    let mut note = |account: AccountId, reason: String| {
        let reasons = found.entry(account).or_default();
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    };
    let entries = entries_between(store, since, until).await?;
    match scope {
        BreachScope::All => {
            for account in store.accounts().await? {
                if account.created_at <= until {
                    note(
                        account.id,
                        "held in the database during the incident".into(),
                    );
                }
            }
            for e in &entries {
                if let Some(actor) = e.record.actor {
                    note(actor, format!("{} during the incident", e.record.action));
                }
            }
        }
        BreachScope::SignIns => {
            for e in &entries {
                let sign_in =
                    AuditAction::parse(&e.record.action).is_some_and(AuditAction::concerns_sign_in);
                if let (true, Some(actor)) = (sign_in, e.record.actor) {
                    note(actor, format!("{} during the incident", e.record.action));
                }
            }
        }
        BreachScope::Messages => {
            for e in &entries {
                if !AuditAction::parse(&e.record.action).is_some_and(AuditAction::concerns_messages)
                {
                    continue;
                }
                if let Some(actor) = e.record.actor {
                    note(actor, format!("{} during the incident", e.record.action));
                }
                if let Some(household) = e.record.household {
                    for m in store.members(household).await? {
                        note(
                            m.membership.account_id,
                            "member of a household whose messages were involved".into(),
                        );
                    }
                }
            }
        }
    }
    let mut affected = Vec::with_capacity(found.len());
    for (account, reasons) in found {
        let email = store.account_by_id(account).await?.map(|a| a.email);
        affected.push(Affected {
            account,
            email,
            reasons,
        });
    }
    Ok(affected)
}

/// What the operator says about the incident, for the notice.
pub struct Incident {
    pub what_happened: String,
    pub information_involved: String,
    pub contact: String,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// The "Notice of Data Breach" with the five headings California Civil Code 1798.82
/// requires, in its order.
pub fn notice(incident: &Incident) -> (String, String) {
    let day = |t: OffsetDateTime| t.date().to_string();
    let body = format!(
        "NOTICE OF DATA BREACH\n\n\
         What Happened\n{}\nThe incident took place between {} and {} (UTC).\n\n\
         What Information Was Involved\n{}\nVoice messages, photos and your child's name are end-to-end encrypted: \
         the server never held them in readable form.\n\n\
         What We Are Doing\nWe have contained the incident, are reviewing our audit trail, and have notified the \
         authorities where the law requires it.\n\n\
         What You Can Do\nChange your pawpost password, and anywhere you used the same password. Review the \
         sessions and devices on the app's security page and sign out any you do not recognise.\n\n\
         For More Information\nContact us at {}.\n",
        incident.what_happened,
        day(incident.since),
        day(incident.until),
        incident.information_involved,
        incident.contact
    );
    ("Notice of Data Breach".to_owned(), body)
}

/// Sends the notice to every affected account that still exists and records each in the
/// audit trail; returns how many were sent.
pub async fn notify(
    store: &dyn MetadataStore,
    mailer: &Mailer,
    affected: &[Affected],
    incident: &Incident,
) -> usize {
    let (subject, body) = notice(incident);
    let mut sent = 0;
    for a in affected {
        let Some(email) = &a.email else { continue };
        let mail = Mail {
            to: email.to_string(),
            subject: subject.clone(),
            body: body.clone(),
        };
        match mailer.send(mail).await {
            Ok(()) => {
                sent += 1;
                record_in(
                    store,
                    Event::new(AuditAction::BreachNoticeSent).on(a.account),
                )
                .await;
            }
            Err(error) => {
                tracing::warn!(%error, account = %a.account, "a breach notice could not be sent")
            }
        }
    }
    sent
}
