//! The audit trail: who did what, when, from where — never content, never secrets — in
//! an append-only log whose entries are hash-chained, so that changing or deleting an
//! entry breaks every hash after it.
use crate::{AccountId, HouseholdId};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// Domain separation for the chain's hashes.
const CHAIN_DOMAIN: &[u8] = b"pawpost/v1/audit";

/// An event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub at: OffsetDateTime,
    /// Who acted, when known.
    pub actor: Option<AccountId>,
    /// The household concerned, if any.
    pub household: Option<HouseholdId>,
    /// What happened, e.g. `sign_in`, `sign_in_failed`, `member_blocked`.
    pub action: String,
    /// What it was done to (an account, a device, a message id), if anything.
    pub target: Option<String>,
    /// The client's address, if the event came over the network.
    pub client: Option<String>,
}

/// A recorded event, chained to the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// 1, 2, 3, ... without gaps.
    pub seq: u64,
    pub record: AuditRecord,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// The hash of entry `seq` holding `record` after an entry whose hash is `prev`.
pub fn chain_hash(prev: &[u8; 32], seq: u64, record: &AuditRecord) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(prev);
    h.update(seq.to_be_bytes());
    // Whole milliseconds since 1970 (every audit record is later than that).
    let millis = record.at.unix_timestamp() * 1000 + i64::from(record.at.millisecond());
    h.update(millis.to_be_bytes());
    field(
        &mut h,
        record
            .actor
            .map(|a| a.0.into_bytes())
            .as_ref()
            .map_or(&[][..], |b| b),
    );
    field(
        &mut h,
        record
            .household
            .map(|a| a.0.into_bytes())
            .as_ref()
            .map_or(&[][..], |b| b),
    );
    field(&mut h, record.action.as_bytes());
    field(&mut h, record.target.as_deref().unwrap_or("").as_bytes());
    field(&mut h, record.client.as_deref().unwrap_or("").as_bytes());
    h.finalize().into()
}

/// Where a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("entry {found} follows entry {expected_after}: entries were deleted or reordered")]
    Gap { expected_after: u64, found: u64 },
    #[error("entry {0} does not point to the entry before it: an entry before it was changed or deleted")]
    Link(u64),
    #[error("entry {0} does not match its hash: it was changed")]
    Tampered(u64),
}

/// Checks entries in order (a first batch starts after `prev_seq`/`prev_hash`, zeros for
/// the start of the log); returns the last seq and hash, to continue with the next batch.
pub fn verify_chain(
    prev_seq: u64,
    prev_hash: [u8; 32],
    entries: &[AuditEntry],
) -> Result<(u64, [u8; 32]), ChainBreak> {
    let (mut seq, mut hash) = (prev_seq, prev_hash);
    for entry in entries {
        if entry.seq != seq + 1 {
            return Err(ChainBreak::Gap {
                expected_after: seq,
                found: entry.seq,
            });
        }
        if entry.prev_hash != hash {
            return Err(ChainBreak::Link(entry.seq));
        }
        if chain_hash(&entry.prev_hash, entry.seq, &entry.record) != entry.hash {
            return Err(ChainBreak::Tampered(entry.seq));
        }
        (seq, hash) = (entry.seq, entry.hash);
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditEntry> {
        let mut prev = [0u8; 32];
        (1..=n)
            .map(|seq| {
                let record = AuditRecord {
                    at: OffsetDateTime::from_unix_timestamp(
                        1_700_000_000 + i64::try_from(seq).unwrap(),
                    )
                    .unwrap(),
                    actor: Some(AccountId::new()),
                    household: None,
                    action: "sign_in".into(),
                    target: None,
                    client: Some("127.0.0.1".into()),
                };
                let hash = chain_hash(&prev, seq, &record);
                let entry = AuditEntry {
                    seq,
                    record,
                    prev_hash: prev,
                    hash,
                };
                prev = hash;
                entry
            })
            .collect()
    }

    #[test]
    fn an_untouched_log_verifies() {
        let entries = chain(5);
        assert_eq!(verify_chain(0, [0; 32], &entries).unwrap().0, 5);
        // In two batches, too.
        let (seq, hash) = verify_chain(0, [0; 32], &entries[..2]).unwrap();
        assert_eq!(verify_chain(seq, hash, &entries[2..]).unwrap().0, 5);
    }

    #[test]
    fn a_changed_deleted_or_reordered_entry_is_found() {
        let mut changed = chain(5);
        changed[2].record.action = "nothing_to_see".into();
        assert_eq!(
            verify_chain(0, [0; 32], &changed),
            Err(ChainBreak::Tampered(3))
        );

        let mut deleted = chain(5);
        deleted.remove(2);
        assert_eq!(
            verify_chain(0, [0; 32], &deleted),
            Err(ChainBreak::Gap {
                expected_after: 2,
                found: 4
            })
        );

        // Deleting an entry and renumbering the rest still breaks the links.
        let mut renumbered = chain(5);
        renumbered.remove(2);
        for (i, e) in renumbered.iter_mut().enumerate() {
            e.seq = i as u64 + 1;
        }
        assert_eq!(
            verify_chain(0, [0; 32], &renumbered),
            Err(ChainBreak::Link(3))
        );
    }
}
