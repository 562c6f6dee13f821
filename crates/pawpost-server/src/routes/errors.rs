//! How the services' typed errors are answered. The status codes and `error` codes are
//! the API's contract (clients and the web app match the codes); the services word the
//! sentences.
use crate::error::ApiError;
use axum::http::StatusCode;

impl From<crate::services::NameError> for ApiError {
    fn from(e: crate::services::NameError) -> Self {
        ApiError::unprocessable("invalid_name", e.to_string())
    }
}

impl From<crate::services::MembershipError> for ApiError {
    fn from(e: crate::services::MembershipError) -> Self {
        use crate::services::MembershipError as E;
        match e {
            E::NotAMember => ApiError::not_found("household"),
            E::Pending => ApiError::forbidden("pending_approval", e.to_string()),
            E::Blocked => ApiError::forbidden("blocked", e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::services::households::HouseholdError> for ApiError {
    fn from(e: crate::services::households::HouseholdError) -> Self {
        use crate::services::households::HouseholdError as E;
        match e {
            E::Membership(e) => e.into(),
            E::Name(e) => e.into(),
            E::InvalidEmail(e) => ApiError::unprocessable("invalid_email", e.to_string()),
            E::NotFound(what) => ApiError::not_found(what),
            E::NotAParent => ApiError::forbidden("not_a_parent", e.to_string()),
            E::NotAnOwner => ApiError::forbidden("not_an_owner", e.to_string()),
            E::CannotInvite { .. } | E::CannotGrant { .. } => {
                ApiError::forbidden("role_not_grantable", e.to_string())
            }
            E::InvitationsThrottled { retry, .. } => ApiError::too_many(retry, e.to_string()),
            E::InvitationUnknown => {
                ApiError::new(StatusCode::NOT_FOUND, "invitation_unknown", e.to_string())
            }
            E::InvitationSpent => {
                ApiError::new(StatusCode::GONE, "invitation_spent", e.to_string())
            }
            E::AlreadyMember => ApiError::conflict("already_member", e.to_string()),
            E::BlockedHere => ApiError::forbidden("blocked_here", e.to_string()),
            E::OwnMembership => ApiError::conflict("self", e.to_string()),
            E::NotAllowed { .. } => ApiError::forbidden("not_allowed", e.to_string()),
            E::WrongStatus { .. } => ApiError::conflict("wrong_status", e.to_string()),
            E::LastOwner => ApiError::conflict("last_owner", e.to_string()),
            E::Leave(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::services::accounts::AccountError> for ApiError {
    fn from(e: crate::services::accounts::AccountError) -> Self {
        use crate::services::accounts::AccountError as E;
        match e {
            E::InvalidEmail(e) => ApiError::unprocessable("invalid_email", e.to_string()),
            E::Name(e) => e.into(),
            E::PasswordRejected(rule) => {
                ApiError::unprocessable("password_rejected", rule.to_string())
            }
            E::SignupsThrottled(retry) => ApiError::too_many(retry, e.to_string()),
            E::EmailTaken => ApiError::conflict("email_taken", e.to_string()),
            E::WrongCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong_credentials", e.to_string())
            }
            E::WrongCurrentPassword | E::WrongPasswordNothingDeleted => {
                ApiError::forbidden("wrong_password", e.to_string())
            }
            E::PasswordsThrottled(retry) => ApiError::too_many(retry, e.to_string()),
            E::Busy(e) => e.into(),
            E::Locked => ApiError::forbidden("account_locked", e.to_string()),
            E::LastOwner(_) => ApiError::conflict("last_owner", e.to_string()),
            E::ResetsThrottled(retry) => ApiError::too_many(retry, e.to_string()),
            E::ResetLinkInvalid => ApiError::bad_request("reset_link_invalid", e.to_string()),
            E::ResetLinkExpired => {
                ApiError::new(StatusCode::GONE, "reset_link_expired", e.to_string())
            }
            E::ResetUnderWay => ApiError::conflict("reset_under_way", e.to_string()),
            E::VerificationLinkInvalid => {
                ApiError::bad_request("verification_link_invalid", e.to_string())
            }
            E::VerificationLinkExpired => {
                ApiError::new(StatusCode::GONE, "verification_link_expired", e.to_string())
            }
            E::EmailAlreadyVerified => ApiError::conflict("email_already_verified", e.to_string()),
            E::VerificationsThrottled(retry) => ApiError::too_many(retry, e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::services::InvalidBase64> for ApiError {
    fn from(e: crate::services::InvalidBase64) -> Self {
        ApiError::unprocessable("invalid_base64", e.to_string())
    }
}

impl From<crate::services::keys::KeyError> for ApiError {
    fn from(e: crate::services::keys::KeyError) -> Self {
        use crate::services::keys::KeyError as E;
        match e {
            E::Membership(e) => e.into(),
            E::InvalidBase64(e) => e.into(),
            E::Name(e) => e.into(),
            E::InvalidIdentity(_) => ApiError::unprocessable("invalid_identity", e.to_string()),
            E::DeviceExists => ApiError::conflict("device_exists", e.to_string()),
            E::NoRoster => ApiError::new(StatusCode::NOT_FOUND, "no_roster", e.to_string()),
            E::NotAnOwner => ApiError::forbidden("not_an_owner", e.to_string()),
            E::RosterRefused(_) => ApiError::unprocessable("roster_refused", e.to_string()),
            E::NotYourDevice => ApiError::forbidden("not_your_device", e.to_string()),
            E::RosterVersionTaken => ApiError::conflict("roster_version_taken", e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::services::messages::MessageError> for ApiError {
    fn from(e: crate::services::messages::MessageError) -> Self {
        use crate::services::messages::MessageError as E;
        match e {
            E::Membership(e) => e.into(),
            E::InvalidBase64(e) => e.into(),
            E::InvalidEnvelope(_) => ApiError::bad_request("invalid_envelope", e.to_string()),
            E::WrongHousehold => ApiError::unprocessable("wrong_household", e.to_string()),
            E::UnregisteredSender | E::NotYourDevice | E::NotTheToysOwn => {
                ApiError::forbidden("not_your_device", e.to_string())
            }
            E::BadSignature | E::BadApprovalSignature => {
                ApiError::unprocessable("bad_signature", e.to_string())
            }
            E::BadPayload => ApiError::unprocessable("bad_payload", e.to_string()),
            E::NoRoster => ApiError::conflict("no_roster", e.to_string()),
            E::NotInRoster => ApiError::forbidden("not_in_roster", e.to_string()),
            E::UnknownRecipient(_) => ApiError::unprocessable("unknown_recipient", e.to_string()),
            E::ToyPlaysOnlyVoice(_) => {
                ApiError::unprocessable("toy_plays_only_voice", e.to_string())
            }
            E::Duplicate => ApiError::conflict("duplicate_message", e.to_string()),
            E::NotFound(what) => ApiError::not_found(what),
            E::NotAParent => ApiError::forbidden("not_a_parent", e.to_string()),
            E::InvalidApprovalSignature => {
                ApiError::unprocessable("invalid_signature", e.to_string())
            }
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::services::toy_profiles::ToyProfileError> for ApiError {
    fn from(e: crate::services::toy_profiles::ToyProfileError) -> Self {
        use crate::services::toy_profiles::ToyProfileError as E;
        match e {
            E::Membership(e) => e.into(),
            E::NotAParent => ApiError::forbidden("not_a_parent", e.to_string()),
            E::ToyNotFound => ApiError::new(StatusCode::NOT_FOUND, "toy_not_found", e.to_string()),
            E::InvalidBase64(e) => e.into(),
            E::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "names_too_large",
                e.to_string(),
            ),
            E::NotANamesRecord => ApiError::unprocessable("invalid_names", e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::services::toys::ToyError> for ApiError {
    fn from(e: crate::services::toys::ToyError) -> Self {
        use crate::services::toys::ToyError as E;
        match e {
            E::Membership(e) => e.into(),
            E::NotAParent => ApiError::forbidden("not_a_parent", e.to_string()),
            E::InvalidCode => ApiError::unprocessable("invalid_code", e.to_string()),
            E::WrongCodesThrottled(retry) => ApiError::too_many(retry, e.to_string()),
            E::CodeUnknown => {
                ApiError::new(StatusCode::NOT_FOUND, "pairing_code_unknown", e.to_string())
            }
            E::CodeContested => ApiError::conflict("pairing_code_contested", e.to_string()),
            E::NotAParentToRemove => ApiError::forbidden("not_a_parent", e.to_string()),
            E::ToyNotFound => ApiError::new(StatusCode::NOT_FOUND, "toy_not_found", e.to_string()),
            E::InvalidBase64(e) => e.into(),
            E::InvalidLeaveSignature => ApiError::unprocessable("invalid_signature", e.to_string()),
            E::SignerNotOwner => ApiError::unprocessable("signer_not_owner", e.to_string()),
            E::BadLeaveSignature => ApiError::unprocessable("bad_signature", e.to_string()),
            E::Store(e) => e.into(),
        }
    }
}
