use super::AccountView;
use crate::auth::{device_cookie, password_client, Auth, ClientAddr};
use crate::error::{ApiResult, ErrorBody, Json};
use crate::services::accounts::{self, NewAccount as NewAccountInput};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use serde::{Deserialize, Serialize};

pub const TAG: &str = "accounts";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    pub email: String,
    /// At least 15 characters (server setting), no composition rules; common, breached
    /// and personal passwords are refused.
    pub password: String,
    pub display_name: String,
}

/// Create an account.
#[utoipa::path(post, path = "/api/v1/accounts", tag = TAG, request_body = NewAccount,
    responses(
        (status = 201, description = "Account created; sign in next", body = AccountView),
        (status = 409, description = "The email address already has an account", body = ErrorBody),
        (status = 422, description = "A rule was broken (the message names it)", body = ErrorBody),
        (status = 429, description = "Too many new accounts from this address", body = ErrorBody),
    ))]
pub async fn create_account(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<NewAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    let account = accounts::create(
        &state,
        NewAccountInput {
            email: &body.email,
            password: &body.password,
            display_name: &body.display_name,
        },
        addr,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
}

/// The signed-in account.
#[utoipa::path(get, path = "/api/v1/accounts/me", tag = TAG,
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody)))]
pub async fn me(auth: Auth) -> Json<AccountView> {
    Json(AccountView::from(&auth.account))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Change the password; every other session of the account ends, and every other
/// browser's device cookie stops counting (they are known again once they sign in).
#[utoipa::path(put, path = "/api/v1/accounts/me/password", tag = TAG, request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; other sessions were signed out; this browser's device cookie is renewed; the account is told by email"),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
        (status = 422, description = "The new password breaks a rule", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords for this account (the same limit as signing in), or a check is already under way; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many password checks at once; see Retry-After", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    auth: Auth,
    Json(body): Json<PasswordChange>,
) -> ApiResult<impl IntoResponse> {
    let changed = accounts::change_password(
        &state,
        auth.account,
        auth.session.id,
        &body.current_password,
        &body.new_password,
        &password_client(addr, &headers),
    )
    .await?;
    // The old password keyed every device cookie; this browser gets one for the new.
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, device_cookie(&state, &changed))]),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordResetRequest {
    /// The email address of the account.
    pub email: String,
}

/// The answer to a request for a password reset link, the same for every address.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordResetRequested {
    pub message: String,
}

/// Ask for a link to choose a new password. The answer is the same whether or not an
/// account uses the address; an account that exists gets an email with a link that works
/// once, for 30 minutes (`PASSWORD_RESET_TTL`). Requests are limited per email address
/// and per client address (`PASSWORD_RESETS_PER_ACCOUNT`, `PASSWORD_RESETS_PER_ADDRESS`
/// an hour).
#[utoipa::path(post, path = "/api/v1/password-resets", tag = TAG, request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "If an account uses the address, a link is on its way", body = PasswordResetRequested),
        (status = 422, description = "This is not an email address", body = ErrorBody),
        (status = 429, description = "Too many links asked for this email address or from this client address; see Retry-After", body = ErrorBody),
    ))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<PasswordResetRequest>,
) -> ApiResult<(StatusCode, Json<PasswordResetRequested>)> {
    accounts::request_password_reset(&state, &body.email, addr).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PasswordResetRequested {
            message: accounts::RESET_REQUESTED.to_owned(),
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasswordResetConfirm {
    /// The token from the emailed link (what follows `#` in `/reset#TOKEN`).
    pub token: String,
    /// The same rules as at sign-up.
    pub new_password: String,
}

/// Choose a new password with the token of an emailed link. Every session of the account
/// ends (sign in again), and the account is told by email.
#[utoipa::path(post, path = "/api/v1/password-resets/confirm", tag = TAG, request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "The new password is set; every session of the account ended"),
        (status = 400, description = "The link was already used, is incomplete or forged, or the password changed since it was sent: ask for a new one", body = ErrorBody),
        (status = 403, description = "The account is locked", body = ErrorBody),
        (status = 409, description = "A new password is being set for this account at this moment", body = ErrorBody),
        (status = 410, description = "The link is more than 30 minutes old: ask for a new one", body = ErrorBody),
        (status = 422, description = "The new password breaks a rule", body = ErrorBody),
        (status = 503, description = "Too many password hashes at once; see Retry-After", body = ErrorBody),
    ))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<PasswordResetConfirm>,
) -> ApiResult<StatusCode> {
    accounts::confirm_password_reset(&state, &body.token, &body.new_password, addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a new link to confirm the signed-in account's email address (one is sent at
/// sign-up). The link works once, for 7 days (`EMAIL_VERIFICATION_TTL`); an account is
/// sent at most `EMAIL_VERIFICATIONS_PER_DAY` links a day, the one at sign-up included.
#[utoipa::path(post, path = "/api/v1/email-verifications", tag = TAG,
    responses(
        (status = 202, description = "A new link is on its way to the account's email address"),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The address is confirmed already", body = ErrorBody),
        (status = 429, description = "Too many links sent to this account today; see Retry-After", body = ErrorBody),
    ))]
pub async fn resend_email_verification(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<StatusCode> {
    accounts::resend_email_verification(&state, &auth.account).await?;
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EmailVerificationConfirm {
    /// The token from the emailed link (what follows `#` in `/verify-email#TOKEN`).
    pub token: String,
}

/// Confirm an account's email address with the token of an emailed link; no session is
/// needed. The link is used up, and the account's other links end.
#[utoipa::path(post, path = "/api/v1/email-verifications/confirm", tag = TAG, request_body = EmailVerificationConfirm,
    responses(
        (status = 204, description = "The address is confirmed"),
        (status = 400, description = "The link was already used, or is incomplete or forged: sign in and ask for a new one", body = ErrorBody),
        (status = 410, description = "The link is more than 7 days old: sign in and ask for a new one", body = ErrorBody),
    ))]
pub async fn confirm_email_verification(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<EmailVerificationConfirm>,
) -> ApiResult<StatusCode> {
    accounts::confirm_email_verification(&state, &body.token, addr).await?;
    Ok(StatusCode::NO_CONTENT)
}
