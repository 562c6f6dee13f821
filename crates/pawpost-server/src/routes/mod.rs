//! The HTTP API, one file per resource. Each handler carries its OpenAPI description,
//! and the router and the document are built from the same list.
pub mod accounts;
mod errors;
pub mod events;
pub mod households;
pub mod keys;
pub mod messages;
pub mod meta;
pub mod notifications;
pub mod passkeys;
pub mod privacy;
pub mod sessions;
pub mod toy_ws;
pub mod toys;

use crate::error::ApiError;
use pawpost_domain::model::Account;
use serde::Serialize;

/// Cleans a name typed by a person (see [`crate::services::clean_name`]).
pub fn clean_name(raw: &str, field: &'static str) -> Result<String, ApiError> {
    Ok(crate::services::clean_name(raw, field)?)
}

pub use crate::services::rfc3339;

/// An account as its owner sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    #[schema(value_type = String, format = Uuid)]
    pub id: pawpost_domain::AccountId,
    pub email: String,
    pub display_name: String,
    /// RFC 3339.
    pub created_at: String,
    /// Whether a link sent to the address was opened (see
    /// `POST /api/v1/email-verifications`); an unverified account works all the same.
    pub email_verified: bool,
    /// False for an account made with a passkey, until a link sent by email sets a
    /// password.
    pub has_password: bool,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        Self {
            id: a.id,
            email: a.email.to_string(),
            display_name: a.display_name.clone(),
            created_at: rfc3339(a.created_at),
            email_verified: a.email_verified_at.is_some(),
            has_password: !crate::services::passkeys::has_no_password(a),
        }
    }
}
