//! Who a message is from: the names a parent set for the toy to say ("a message from
//! Grandma") before it plays a message. A parent's device seals a small text record for the
//! toy (and the household's devices) and the server relays it unread in a `Names` frame, at
//! once and after every `Auth`. The toy keeps it in memory only: the server sends it again
//! at each connection, and a toy without it plays messages without announcing them.

use alloc::vec::Vec;
use core::fmt;

use pawpost_crypto::{open, AccountId, DeviceId, Envelope, MediaType, MessageId, OpenError, Role};

use super::{Action, Prompt, Report, Toy};

/// Names a record may hold.
pub const MAX_SPOKEN_NAMES: usize = 32;
/// Longest name, in UTF-8 bytes.
pub const MAX_SPOKEN_NAME_LEN: usize = 48;
/// The first line of a names record.
const NAMES_HEADER: &str = "pawpost-names/1";
/// Characters in an account id written as a UUID with dashes.
const UUID_TEXT_LEN: usize = 36;

/// A name the toy says, at most [`MAX_SPOKEN_NAME_LEN`] bytes of UTF-8 without control
/// characters; `Copy`, so that it fits in a [`Prompt`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpokenName {
    bytes: [u8; MAX_SPOKEN_NAME_LEN],
    len: u8,
}

impl SpokenName {
    /// `None` when empty, too long or holding control characters.
    pub fn new(name: &str) -> Option<Self> {
        if name.is_empty() || name.len() > MAX_SPOKEN_NAME_LEN || name.chars().any(char::is_control)
        {
            return None;
        }
        let mut bytes = [0u8; MAX_SPOKEN_NAME_LEN];
        bytes[..name.len()].copy_from_slice(name.as_bytes());
        Some(Self {
            bytes,
            len: u8::try_from(name.len()).ok()?,
        })
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Built only from a `&str` cut at its own length, so always valid UTF-8.
        core::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl fmt::Debug for SpokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SpokenName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the toy refused a `Names` frame; it keeps the names it had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamesRefusal {
    /// The toy has no household.
    NotPaired,
    /// The envelope does not parse.
    Malformed,
    /// The envelope is for another household.
    WrongHousehold,
    /// The sender is not an approved owner or guardian of the roster: only a parent names
    /// people for the toy.
    NotAParent,
    /// The toy is not among the recipients.
    NotARecipient,
    /// Not a text record.
    WrongMediaType,
    /// The sender's signature does not verify.
    BadSignature,
    /// The toy's key does not open it.
    Undecryptable,
    /// Older than the record the toy holds.
    Stale,
    /// The text is not a names record within the limits.
    BadRecord,
}

impl NamesRefusal {
    /// A stable name, for logs.
    pub const fn code(self) -> &'static str {
        match self {
            Self::NotPaired => "not_paired",
            Self::Malformed => "malformed",
            Self::WrongHousehold => "wrong_household",
            Self::NotAParent => "not_a_parent",
            Self::NotARecipient => "not_a_recipient",
            Self::WrongMediaType => "wrong_media_type",
            Self::BadSignature => "bad_signature",
            Self::Undecryptable => "undecryptable",
            Self::Stale => "stale",
            Self::BadRecord => "bad_record",
        }
    }
}

/// The names record the toy holds.
pub(super) struct Names {
    message_id: MessageId,
    created_at_ms: u64,
    entries: Vec<(AccountId, SpokenName)>,
}

impl Toy {
    pub(super) fn names(&mut self, envelope: &[u8], out: &mut Vec<Action>) {
        match self.check_names(envelope) {
            Ok(Some(names)) => self.names = Some(names),
            Ok(None) => {}
            Err(reason) => out.push(Action::Report(Report::NamesRefused { reason })),
        }
    }

    /// `Ok(None)` for the record the toy already holds (sent again at each connection).
    fn check_names(&self, bytes: &[u8]) -> Result<Option<Names>, NamesRefusal> {
        let household = self.household.as_ref().ok_or(NamesRefusal::NotPaired)?;
        let roster = household.roster();
        let envelope = Envelope::parse(bytes).map_err(|_| NamesRefusal::Malformed)?;
        let header = envelope.header();
        if header.household_id != roster.household_id {
            return Err(NamesRefusal::WrongHousehold);
        }
        let sender = roster
            .approved_member(header.sender)
            .filter(|m| matches!(m.role, Role::Owner | Role::Guardian))
            .ok_or(NamesRefusal::NotAParent)?
            .public_identity();
        if header.recipient_index(self.device_id()).is_none() {
            return Err(NamesRefusal::NotARecipient);
        }
        if header.media_type != MediaType::Text {
            return Err(NamesRefusal::WrongMediaType);
        }
        if let Some(held) = &self.names {
            if held.message_id == header.message_id {
                return Ok(None);
            }
            if header.created_at_ms <= held.created_at_ms {
                return Err(NamesRefusal::Stale);
            }
        }
        let keys = self.roster_keys().ok_or(NamesRefusal::Undecryptable)?;
        let opened = open(bytes, keys, &sender).map_err(|e| match e {
            OpenError::Malformed(_) => NamesRefusal::Malformed,
            OpenError::WrongSender | OpenError::BadSignature => NamesRefusal::BadSignature,
            OpenError::NotARecipient => NamesRefusal::NotARecipient,
            OpenError::WrongHousehold => NamesRefusal::WrongHousehold,
            OpenError::SenderNotApproved => NamesRefusal::NotAParent,
            _ => NamesRefusal::Undecryptable,
        })?;
        let text = core::str::from_utf8(&opened.payload).map_err(|_| NamesRefusal::BadRecord)?;
        Ok(Some(Names {
            message_id: opened.header.message_id,
            created_at_ms: opened.header.created_at_ms,
            entries: parse_names(text).ok_or(NamesRefusal::BadRecord)?,
        }))
    }

    /// What the toy says before playing a message from `sender`: the name a parent set for
    /// the sender's account, if any.
    pub(super) fn announcement(&self, sender: DeviceId) -> Option<Prompt> {
        let member = self.household.as_ref()?.roster().member(sender)?;
        let names = self.names.as_ref()?;
        names
            .entries
            .iter()
            .find(|(account, _)| *account == member.account_id)
            .map(|(_, name)| Prompt::MessageFrom(*name))
    }
}

/// A names record: the line `pawpost-names/1`, then one line per name, fields separated by
/// a tab: `member`, the account id as a UUID with dashes, and the name. Lines of another
/// kind (such as `toy`, the toy's own name, for the parents' app) are skipped. `None` when
/// the header is missing, a member line is malformed, or the limits are exceeded.
pub fn parse_names(text: &str) -> Option<Vec<(AccountId, SpokenName)>> {
    let mut lines = text.split('\n');
    if lines.next()? != NAMES_HEADER {
        return None;
    }
    let mut entries = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let mut fields = line.split('\t');
        if fields.next()? != "member" {
            continue;
        }
        let account = parse_uuid(fields.next()?)?;
        let name = SpokenName::new(fields.next()?)?;
        if fields.next().is_some() || entries.len() == MAX_SPOKEN_NAMES {
            return None;
        }
        entries.push((account, name));
    }
    Some(entries)
}

fn parse_uuid(text: &str) -> Option<AccountId> {
    if text.len() != UUID_TEXT_LEN {
        return None;
    }
    let mut out = [0u8; 16];
    let mut hex = text.bytes().filter(|b| *b != b'-');
    for byte in &mut out {
        let hi = char::from(hex.next()?).to_digit(16)?;
        let lo = char::from(hex.next()?).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    if hex.next().is_some() {
        return None;
    }
    Some(AccountId(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_names_members_and_skips_other_lines() {
        let text =
            "pawpost-names/1\ntoy\tBunny\nmember\t0a000000-0000-4000-8000-0000000000aa\tGrandma\n";
        let names = parse_names(text).unwrap();
        assert_eq!(names.len(), 1);
        assert_eq!(names[0].0 .0[0], 0x0a);
        assert_eq!(names[0].0 .0[15], 0xaa);
        assert_eq!(names[0].1.as_str(), "Grandma");
    }

    #[test]
    fn a_record_without_its_header_or_with_a_bad_line_is_refused() {
        assert!(parse_names("member\t0a000000-0000-4000-8000-0000000000aa\tGran").is_none());
        assert!(parse_names("pawpost-names/1\nmember\tnot-a-uuid\tGran").is_none());
        assert!(
            parse_names("pawpost-names/1\nmember\t0a000000-0000-4000-8000-0000000000aa\t")
                .is_none()
        );
        let long = "x".repeat(MAX_SPOKEN_NAME_LEN + 1);
        let line =
            alloc::format!("pawpost-names/1\nmember\t0a000000-0000-4000-8000-0000000000aa\t{long}");
        assert!(parse_names(&line).is_none());
        assert!(SpokenName::new("Gran\u{7}").is_none());
    }

    #[test]
    fn a_record_holds_at_most_the_limit_of_names() {
        let mut text = alloc::string::String::from(NAMES_HEADER);
        for _ in 0..=MAX_SPOKEN_NAMES {
            text.push_str("\nmember\t0a000000-0000-4000-8000-0000000000aa\tGran");
        }
        assert!(parse_names(&text).is_none());
    }
}
