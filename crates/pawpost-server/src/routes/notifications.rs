//! Which notification mails a person gets, and the one-click link in each that switches
//! its kind off without signing in.
use crate::auth::{Auth, ClientAddr};
use crate::error::{ApiResult, ErrorBody, Json};
use crate::notify::{self, Kind, UnsubscribeError};
use crate::state::AppState;
use axum::extract::{rejection::QueryRejection, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use serde::{Deserialize, Serialize};

pub const TAG: &str = "notifications";

/// One kind of notification mail and whether it is sent.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationSetting {
    /// `child_replied` (the toy sent a message in a household you are in),
    /// `approval_waiting` (someone joined a household you manage and waits for your
    /// approval), `approved` (a parent approved you), `message_not_played` (a toy refused
    /// a message you sent), `invitation` (someone invited your address).
    pub kind: Kind,
    pub enabled: bool,
}

/// Every kind of notification mail, in a fixed order; all are on until switched off.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct NotificationSettings {
    pub settings: Vec<NotificationSetting>,
}

async fn current(state: &AppState, auth: &Auth) -> ApiResult<Json<NotificationSettings>> {
    let settings = notify::settings(state, auth.account.id)
        .await?
        .into_iter()
        .map(|(kind, enabled)| NotificationSetting { kind, enabled })
        .collect();
    Ok(Json(NotificationSettings { settings }))
}

/// The notification mails the account gets.
#[utoipa::path(get, path = "/api/v1/accounts/me/notifications", tag = TAG,
    responses(
        (status = 200, description = "Every kind, on or off", body = NotificationSettings),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn get_settings(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<NotificationSettings>> {
    current(&state, &auth).await
}

/// Switch kinds of notification mail on or off; kinds not listed stay as they are.
/// Every change is recorded in the account's activity (`notifications_changed`).
#[utoipa::path(put, path = "/api/v1/accounts/me/notifications", tag = TAG,
    request_body = NotificationSettings,
    responses(
        (status = 200, description = "Saved; every kind, on or off", body = NotificationSettings),
        (status = 400, description = "Not a list of known kinds with true or false", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    ))]
pub async fn put_settings(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    auth: Auth,
    Json(body): Json<NotificationSettings>,
) -> ApiResult<Json<NotificationSettings>> {
    for setting in &body.settings {
        notify::set(
            &state,
            auth.account.id,
            setting.kind,
            setting.enabled,
            Some(addr),
        )
        .await?;
    }
    current(&state, &auth).await
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UnsubscribeQuery {
    /// The token of the link in the mail.
    pub token: String,
}

fn page(title: &str, text: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · pawpost</title></head>\
         <body><main><h1>{title}</h1><p>{text}</p>\
         <p>You can switch each kind of email on or off on the \
         <a href=\"/security\">Security page</a> after signing in.</p></main></body></html>\n"
    )
}

async fn unsubscribe(
    state: &AppState,
    query: Result<Query<UnsubscribeQuery>, QueryRejection>,
) -> (StatusCode, Html<String>) {
    let refused = |status, text: &str| (status, Html(page("This link did not work", text)));
    let Ok(Query(query)) = query else {
        return refused(
            StatusCode::BAD_REQUEST,
            &UnsubscribeError::BadToken.to_string(),
        );
    };
    match notify::unsubscribe(state, &query.token).await {
        Ok(kind) => (
            StatusCode::OK,
            Html(page(
                "Emails switched off",
                &format!("You will no longer get an email when {}.", kind.words()),
            )),
        ),
        Err(e @ UnsubscribeError::BadToken) => refused(StatusCode::BAD_REQUEST, &e.to_string()),
        Err(UnsubscribeError::Store(error)) => {
            tracing::error!(%error, "an unsubscribe link could not be followed");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "The server could not save this just now; open the link again in a few minutes.",
            )
        }
    }
}

/// Switch off one kind of notification mail with the link in such a mail; no session is
/// needed. Answers a plain page.
#[utoipa::path(get, path = "/api/v1/notifications/unsubscribe", tag = TAG, params(UnsubscribeQuery),
    responses(
        (status = 200, description = "Switched off; a page says which emails stop", content_type = "text/html", body = String),
        (status = 400, description = "The link is incomplete or forged; a page says what to do", content_type = "text/html", body = String),
    ))]
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    query: Result<Query<UnsubscribeQuery>, QueryRejection>,
) -> (StatusCode, Html<String>) {
    unsubscribe(&state, query).await
}

/// RFC 8058's one-click unsubscribe (`List-Unsubscribe=One-Click`, sent by mail
/// programs): the same as the GET, without a session.
#[utoipa::path(post, path = "/api/v1/notifications/unsubscribe", tag = TAG, params(UnsubscribeQuery),
    responses(
        (status = 200, description = "Switched off", content_type = "text/html", body = String),
        (status = 400, description = "The link is incomplete or forged", content_type = "text/html", body = String),
    ))]
pub async fn unsubscribe_one_click(
    State(state): State<AppState>,
    query: Result<Query<UnsubscribeQuery>, QueryRejection>,
) -> (StatusCode, Html<String>) {
    unsubscribe(&state, query).await
}
