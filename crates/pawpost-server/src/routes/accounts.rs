use super::AccountView;
use crate::auth::{device_cookie, password_client, Auth, ClientAddr};
use crate::error::{ApiResult, ErrorBody, Json};
use crate::services::accounts::{self, NewAccount as NewAccountInput};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use serde::Deserialize;

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
        (status = 204, description = "Changed; other sessions were signed out; this browser's device cookie is renewed"),
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
