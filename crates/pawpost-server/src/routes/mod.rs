//! The HTTP API, one file per resource. Each handler carries its OpenAPI description,
//! and the router and the document are built from the same list.
pub mod accounts;
pub mod households;
pub mod keys;
pub mod messages;
pub mod meta;
pub mod privacy;
pub mod sessions;
pub mod toy_ws;
pub mod toys;

use crate::error::ApiError;
use pawpost_domain::model::Account;
use serde::Serialize;
use time::OffsetDateTime;

/// Cleans a name typed by a person: trimmed, 1..=MAX_NAME_CHARS characters, no control
/// characters. Names are shown as text, never as markup.
pub fn clean_name(raw: &str, field: &'static str) -> Result<String, ApiError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > crate::config::MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!(
                "{field} must have 1 to {} characters and no control characters",
                crate::config::MAX_NAME_CHARS
            ),
        ));
    }
    Ok(name.to_owned())
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format as RFC 3339")
}

/// An account as its owner sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    #[schema(value_type = String, format = Uuid)]
    pub id: pawpost_domain::AccountId,
    pub email: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id,
            email: a.email.to_string(),
            display_name: a.display_name.clone(),
            created_at: rfc3339(a.created_at),
        }
    }
}
