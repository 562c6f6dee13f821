//! What every metadata backend does the same way, whatever its database: turning stored
//! text and integers back into domain values (refusing what does not fit rather than
//! wrapping it), keeping times to whole milliseconds, and the decisions that follow a
//! read (an invitation spent or not, the next link of the audit chain, what claiming a
//! pairing does). The backends keep only their SQL.
use crate::{Redemption, StoreError, StoreResult};
use pawpost_domain::{
    AuditEntry, AuditRecord, Email, HouseholdId, MemberStatus, PairingClaimant, PendingPairing,
};
use std::str::FromStr;
use time::{OffsetDateTime, UtcOffset};
use uuid::Uuid;

/// Nanoseconds in a millisecond, the finest time any backend keeps.
const NANOS_PER_MS: i128 = 1_000_000;

/// `t` as milliseconds since the Unix epoch, truncated toward zero.
pub fn to_ms(t: OffsetDateTime) -> i64 {
    // `OffsetDateTime` spans years ±9999, whose milliseconds fit an i64 many times over.
    i64::try_from(t.unix_timestamp_nanos() / NANOS_PER_MS)
        .expect("milliseconds of a date fit an i64")
}

/// The time `v` milliseconds after the Unix epoch, in UTC.
pub fn from_ms(v: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(v) * NANOS_PER_MS)
        .map_err(|e| StoreError::Backend(format!("bad timestamp {v}: {e}")))
}

/// `t` truncated toward zero to whole milliseconds, in UTC: what every backend keeps, so
/// that a time read back, and every comparison with it, is the same on all of them.
pub fn whole_ms(t: OffsetDateTime) -> OffsetDateTime {
    let sub_ms = t.unix_timestamp_nanos() % NANOS_PER_MS;
    let sub_ms = i64::try_from(sub_ms).expect("a remainder below a million fits an i64");
    (t - time::Duration::nanoseconds(sub_ms)).to_offset(UtcOffset::UTC)
}

/// An id kept as text.
pub fn uuid(text: &str, column: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|e| StoreError::Backend(format!("bad id in {column}: {e}")))
}

/// An id that may be missing, kept as text.
pub fn opt_uuid(text: Option<&str>, column: &str) -> StoreResult<Option<Uuid>> {
    text.map(|t| uuid(t, column)).transpose()
}

/// A time that may be missing, kept as milliseconds.
pub fn opt_from_ms(v: Option<i64>) -> StoreResult<Option<OffsetDateTime>> {
    v.map(from_ms).transpose()
}

/// An email address as it was stored (already checked when it was written).
pub fn email(text: &str) -> StoreResult<Email> {
    Email::from_stored(text).map_err(|e| StoreError::Backend(format!("bad stored email: {e}")))
}

/// A 32-byte hash kept as bytes.
pub fn hash(bytes: Vec<u8>, column: &str) -> StoreResult<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend(format!("bad hash length in {column}")))
}

/// A value kept as its stable name (a role, a status, a device kind).
pub fn parse<T: FromStr>(text: &str, column: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| StoreError::Backend(format!("bad value in {column}: {e}")))
}

/// A non-negative integer read back into the unsigned type it came from; a value that
/// does not fit is refused rather than wrapped.
pub fn unsigned<T: TryFrom<i64>>(v: i64, column: &str) -> StoreResult<T> {
    T::try_from(v).map_err(|_| StoreError::Backend(format!("bad value in {column}: {v}")))
}

/// A u64 for a signed 64-bit column; larger values are refused rather than wrapped.
pub fn to_integer(v: u64, what: &str) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} too large")))
}

/// A u64 lower bound for a signed 64-bit column: no stored value exceeds `i64::MAX`, so a
/// larger bound finds nothing, as it should.
pub fn bound(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `NotFound(what)` when a change touched no row.
pub fn found(rows: u64, what: &'static str) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

/// Stored rows turned into domain values, stopping at the first that does not convert.
pub fn all<R, T>(rows: Vec<R>) -> StoreResult<Vec<T>>
where
    R: TryInto<T, Error = StoreError>,
{
    rows.into_iter().map(TryInto::try_into).collect()
}

/// A stored row, if any, turned into its domain value.
pub fn one<R, T>(row: Option<R>) -> StoreResult<Option<T>>
where
    R: TryInto<T, Error = StoreError>,
{
    row.map(TryInto::try_into).transpose()
}

/// Whether an invitation can no longer be redeemed at `now`.
pub fn invitation_spent(used: bool, expires_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    used || expires_at <= now
}

/// What redeeming an invitation answers to an account that already has a place (in
/// `status`) in its household: the invitation stays unused either way.
pub fn already_there(status: MemberStatus, household: HouseholdId) -> Redemption {
    match status {
        MemberStatus::Blocked => Redemption::Blocked(household),
        _ => Redemption::AlreadyMember(household),
    }
}

/// The audit entry that follows `last` (the chain's end as `(seq, hash)`, `None` for an
/// empty trail) with `record`, its time kept to whole milliseconds.
pub fn next_audit_entry(last: Option<(u64, [u8; 32])>, record: &AuditRecord) -> AuditEntry {
    let (prev_seq, prev_hash) = last.unwrap_or((0, [0u8; 32]));
    let mut record = record.clone();
    record.at = whole_ms(record.at);
    let seq = prev_seq + 1;
    let hash = pawpost_domain::audit::chain_hash(&prev_hash, seq, &record);
    AuditEntry {
        seq,
        record,
        prev_hash,
        hash,
    }
}

/// What a claim on a live pairing does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimStep {
    /// The same household claims again: the first claim stands and is answered.
    Repeat,
    /// Another household claimed it first: the pairing is spent, for both.
    Contest,
    /// Nobody claimed it yet: the claimant's claim is recorded.
    Record,
}

/// Decides what `claimant`'s claim on the live `pairing` does.
pub fn claim_step(pairing: &PendingPairing, claimant: &PairingClaimant) -> ClaimStep {
    match &pairing.claim {
        Some(earlier) if earlier.household_id == claimant.household_id => ClaimStep::Repeat,
        Some(_) => ClaimStep::Contest,
        None => ClaimStep::Record,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_whole_milliseconds_in_utc() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let kept = whole_ms(t);
        assert_eq!(kept.unix_timestamp_nanos(), 1_700_000_000_123_000_000);
        assert_eq!(kept.offset(), UtcOffset::UTC);
        let local = t.to_offset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(
            whole_ms(local),
            kept,
            "the offset does not change the instant"
        );
        assert_eq!(from_ms(to_ms(t)).unwrap(), kept);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1_500_000).unwrap();
        assert_eq!(
            whole_ms(before_epoch),
            from_ms(to_ms(before_epoch)).unwrap()
        );
    }

    #[test]
    fn values_that_do_not_fit_are_refused() {
        assert!(matches!(
            unsigned::<u8>(256, "c"),
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            unsigned::<u64>(-1, "c"),
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(
            to_integer(u64::MAX, "v"),
            Err(StoreError::Backend(_))
        ));
        assert_eq!(bound(u64::MAX), i64::MAX);
        assert!(matches!(
            hash(vec![0; 31], "h"),
            Err(StoreError::Backend(_))
        ));
        assert!(matches!(uuid("nope", "id"), Err(StoreError::Backend(_))));
    }
}
