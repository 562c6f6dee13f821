use super::{clean_name, AccountView};
use crate::audit::{record, Event};
use crate::auth::{Auth, ClientAddr};
use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::passwords::HashError;
use crate::ratelimit::LimitName;
use crate::relay;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use pawpost_domain::{Account, AccountId, Email};
use pawpost_store::StoreError;
use serde::Deserialize;
use time::OffsetDateTime;

pub const TAG: &str = "accounts";

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewAccount {
    pub email: String,
    /// At least 15 characters (server setting), no composition rules; common, breached
    /// and personal passwords are refused.
    pub password: String,
    pub display_name: String,
}

impl From<HashError> for ApiError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => ApiError::busy(),
            HashError::Failed(detail) => {
                tracing::error!(%detail, "password hashing failed");
                ApiError::internal()
            }
        }
    }
}

pub fn parse_email(raw: &str) -> ApiResult<Email> {
    Email::parse(raw).map_err(|e| ApiError::unprocessable("invalid_email", e.to_string()))
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
    let email = parse_email(&body.email)?;
    let display_name = clean_name(&body.display_name, "display_name")?;
    state
        .password_policy()
        .check(
            &body.password,
            &[email.as_str(), email.local_part(), &display_name],
        )
        .map_err(|rule| ApiError::unprocessable("password_rejected", rule.to_string()))?;
    let addr_key = addr.to_string();
    state
        .limits
        .signup_per_address
        .check(&addr_key)
        .map_err(|retry| {
            ApiError::too_many(
                retry,
                "too many new accounts from your address; try again later",
            )
        })?;
    relay::attempt(&state, LimitName::SignupPerAddress, &addr_key).await;
    let password_hash = state
        .hasher
        .hash(pawpost_domain::password::normalise(&body.password))
        .await?;
    let account = Account {
        id: AccountId::new(),
        email,
        display_name,
        password_hash,
        created_at: OffsetDateTime::now_utc(),
        locked: false,
    };
    match state.store.create_account(&account).await {
        Ok(()) => {
            record(
                &state,
                Event::new("account_created").by(account.id).from(addr),
            )
            .await;
            Ok((StatusCode::CREATED, Json(AccountView::from(&account))))
        }
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict(
            "email_taken",
            "an account with this email address exists: sign in instead",
        )),
        Err(e) => Err(e.into()),
    }
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

/// Change the password; every other session of the account ends.
#[utoipa::path(put, path = "/api/v1/accounts/me/password", tag = TAG, request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed; other sessions were signed out"),
        (status = 403, description = "The current password is wrong", body = ErrorBody),
        (status = 422, description = "The new password breaks a rule", body = ErrorBody),
    ))]
pub async fn change_password(
    State(state): State<AppState>,
    auth: Auth,
    Json(body): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    let account_key = auth.account.email.to_string();
    state
        .limits
        .login_per_account
        .check(&account_key)
        .map_err(|retry| {
            ApiError::too_many(
                retry,
                "too many wrong passwords for this account; try again later",
            )
        })?;
    let current = pawpost_domain::password::normalise(&body.current_password);
    if !state
        .hasher
        .verify(current, Some(auth.account.password_hash.clone()))
        .await?
    {
        relay::attempt(&state, LimitName::LoginPerAccount, &account_key).await;
        return Err(ApiError::forbidden(
            "wrong_password",
            "the current password is wrong",
        ));
    }
    let email = &auth.account.email;
    state
        .password_policy()
        .check(
            &body.new_password,
            &[
                email.as_str(),
                email.local_part(),
                &auth.account.display_name,
            ],
        )
        .map_err(|rule| ApiError::unprocessable("password_rejected", rule.to_string()))?;
    let hash = state
        .hasher
        .hash(pawpost_domain::password::normalise(&body.new_password))
        .await?;
    state
        .store
        .set_password_hash(auth.account.id, &hash)
        .await?;
    let ended = state
        .store
        .delete_other_sessions(auth.account.id, auth.session.id)
        .await?;
    tracing::info!(account = %auth.account.id, ended, "password changed; other sessions ended");
    record(&state, Event::new("password_changed").by(auth.account.id)).await;
    Ok(StatusCode::NO_CONTENT)
}
