use super::{rfc3339, AccountView};
use crate::auth::{device_cookie, password_client, set_cookie, Auth, ClientAddr, SESSION_COOKIE};
use crate::error::{ApiResult, ErrorBody, Json};
use crate::services::accounts;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use pawpost_domain::Session;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const TAG: &str = "sessions";
/// Longest User-Agent kept with a session (shown on the security page).
pub use crate::services::accounts::MAX_USER_AGENT_CHARS;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// Bearer token for API clients (`Authorization: Bearer <token>`). Browsers use the
    /// HttpOnly cookie set alongside instead.
    pub token: String,
    /// Echo in the `X-CSRF-Token` header on every state-changing cookie request.
    pub csrf_token: String,
    /// RFC 3339.
    pub expires_at: String,
    pub account: AccountView,
}

fn session_cookie(state: &AppState, token: &str, max_age_secs: u64) -> HeaderValue {
    set_cookie(
        SESSION_COOKIE,
        token,
        max_age_secs,
        state.config.insecure_cookies,
    )
}

/// Sign in. A browser that signed in to this account before, and sends the device
/// cookie it was given then, is counted on its own: strangers' wrong passwords do not
/// lock it out.
#[utoipa::path(post, path = "/api/v1/sessions", tag = TAG, request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the session cookie and the browser's device cookie are set", body = SignedIn),
        (status = 401, description = "Wrong email address or password (the same answer for both)", body = ErrorBody),
        (status = 429, description = "Too many wrong passwords for this account (from clients it does not know, or from this browser) or from this address, or a check for this account is already under way; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many sign-ins at once; see Retry-After", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> ApiResult<impl IntoResponse> {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let signed_in = accounts::sign_in(
        &state,
        &body.email,
        &body.password,
        &password_client(addr, &headers),
        user_agent,
    )
    .await?;
    let cookie = session_cookie(&state, &signed_in.token, state.config.session_ttl.as_secs());
    let device = device_cookie(&state, &signed_in.account);
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie), (header::SET_COOKIE, device)]),
        Json(SignedIn {
            token: signed_in.token,
            csrf_token: signed_in.session.csrf_token,
            expires_at: rfc3339(signed_in.session.expires_at),
            account: AccountView::from(&signed_in.account),
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CurrentSession {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub csrf_token: String,
    pub expires_at: String,
    pub account: AccountView,
}

/// The session this request uses, with its CSRF token (for a reloaded web app).
#[utoipa::path(get, path = "/api/v1/sessions/current", tag = TAG,
    responses((status = 200, body = CurrentSession), (status = 401, body = ErrorBody)))]
pub async fn current(auth: Auth) -> Json<CurrentSession> {
    Json(CurrentSession {
        id: auth.session.id,
        csrf_token: auth.session.csrf_token.clone(),
        expires_at: rfc3339(auth.session.expires_at),
        account: AccountView::from(&auth.account),
    })
}

/// Sign out: ends this session and clears the cookie.
#[utoipa::path(delete, path = "/api/v1/sessions/current", tag = TAG,
    responses((status = 204, description = "Signed out"), (status = 401, body = ErrorBody)))]
pub async fn sign_out(State(state): State<AppState>, auth: Auth) -> ApiResult<impl IntoResponse> {
    accounts::sign_out(&state, auth.account.id, auth.session.id).await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, session_cookie(&state, "", 0))]),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OthersEnded {
    /// How many other sessions were ended (0 when there were none).
    pub ended: u64,
}

/// Sign out everywhere else: ends every session of the account except the one making
/// this request (for a lost phone or a shared computer). Passkeys, devices and the
/// password stay as they are.
#[utoipa::path(post, path = "/api/v1/sessions/end-others", tag = TAG,
    responses(
        (status = 200, description = "Every other session ended; this one stays", body = OthersEnded),
        (status = 401, body = ErrorBody),
    ))]
pub async fn end_others(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<OthersEnded>> {
    let ended = accounts::sign_out_others(&state, auth.account.id, auth.session.id).await?;
    Ok(Json(OthersEnded { ended }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub created_at: String,
    pub expires_at: String,
    pub client_address: String,
    pub user_agent: String,
    /// The session making this request.
    pub current: bool,
}

/// The account's active sessions (for the security page).
#[utoipa::path(get, path = "/api/v1/sessions", tag = TAG,
    responses((status = 200, body = [SessionView]), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<SessionView>>> {
    let sessions = accounts::sessions(&state, auth.account.id).await?;
    Ok(Json(session_views(sessions, auth.session.id)))
}

/// Sessions as their owner sees them; `current` marks the one making the request.
pub fn session_views(sessions: Vec<Session>, current: Uuid) -> Vec<SessionView> {
    sessions
        .into_iter()
        .map(|s| SessionView {
            current: s.id == current,
            id: s.id,
            created_at: rfc3339(s.created_at),
            expires_at: rfc3339(s.expires_at),
            client_address: s.client_address,
            user_agent: s.user_agent,
        })
        .collect()
}
