//! What pawpost does, apart from how it is asked: accounts and sessions, households and
//! their members, devices and rosters, messages, and toys. Each service takes the
//! server's state and typed inputs and answers with domain types or its own typed error;
//! none knows HTTP. The routes (`crate::routes`) and the toy WebSocket translate requests
//! into these calls and the errors into answers.

pub mod accounts;
pub mod households;
pub mod keys;
pub mod messages;
pub mod passkeys;
pub mod releases;
pub mod toy_profiles;
pub mod toys;

use pawpost_store::StoreError;
use time::OffsetDateTime;

/// A time as RFC 3339, as the API and mails show it.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format as RFC 3339")
}

/// A name typed by a person that cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    #[error("{field} must have 1 to {max} characters and no control characters")]
    Length { field: &'static str, max: usize },
    #[error(
        "{field} contains an invisible or text-direction character (U+{code:04X}): \
         type the name by hand instead of pasting it"
    )]
    Hidden { field: &'static str, code: u32 },
}

/// Cleans a name typed by a person: trimmed, 1..=MAX_NAME_CHARS characters, no control
/// characters, and nothing that draws no glyph or reorders the text around it (see
/// `pawpost_domain::text`), so that a name shows what it says. Names are shown as text,
/// never as markup.
pub fn clean_name(raw: &str, field: &'static str) -> Result<String, NameError> {
    let name = raw.trim();
    let chars = name.chars().count();
    let max = crate::config::MAX_NAME_CHARS;
    if chars == 0 || chars > max || name.chars().any(char::is_control) {
        return Err(NameError::Length { field, max });
    }
    if let Some(c) = pawpost_domain::text::hidden_in_name(name) {
        return Err(NameError::Hidden {
            field,
            code: u32::from(c),
        });
    }
    Ok(name.to_owned())
}

/// A field that should hold unpadded base64url does not.
#[derive(Debug, thiserror::Error)]
#[error("{0} must be unpadded base64url")]
pub struct InvalidBase64(pub &'static str);

/// Decodes `text`, the unpadded base64url of `field`.
pub fn decode_b64(field: &'static str, text: &str) -> Result<Vec<u8>, InvalidBase64> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| InvalidBase64(field))
}

/// Why a member may not act in a household.
#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    /// Not a member (or no such household): the same answer, so that it says nothing.
    #[error("household not found")]
    NotAMember,
    #[error("a parent of this household has not approved you yet; ask them to approve you")]
    Pending,
    #[error("a parent of this household has blocked you")]
    Blocked,
    #[error(transparent)]
    Store(#[from] StoreError),
}
