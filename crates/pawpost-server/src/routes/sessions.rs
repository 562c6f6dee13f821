use super::{rfc3339, AccountView};
use crate::audit::{record, Event};
use crate::auth::{new_token, token_hash, Auth, ClientAddr, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, ErrorBody, Json};
use crate::ratelimit::LimitName;
use crate::relay;
use crate::routes::accounts::parse_email;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use pawpost_domain::Session;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

pub const TAG: &str = "sessions";
/// Longest User-Agent kept with a session (shown on the security page).
pub const MAX_USER_AGENT_CHARS: usize = 200;

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
    let secure = if state.config.insecure_cookies {
        ""
    } else {
        "; Secure"
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("token and attributes are valid header text")
}

fn wrong_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "wrong_credentials",
        "wrong email address or password; check both and try again",
    )
}

/// Sign in.
#[utoipa::path(post, path = "/api/v1/sessions", tag = TAG, request_body = Credentials,
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SignedIn),
        (status = 401, description = "Wrong email address or password (the same answer for both)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many sign-ins at once; see Retry-After", body = ErrorBody),
    ))]
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Json(body): Json<Credentials>,
) -> ApiResult<impl IntoResponse> {
    // An unparsable address cannot have an account, but it is checked like any other
    // so that the answer and its timing say nothing.
    let email = parse_email(&body.email).ok();
    let account_key = email
        .as_ref()
        .map_or_else(|| body.email.trim().to_lowercase(), |e| e.to_string());
    let addr_key = addr.to_string();
    for (limiter, key) in [
        (&state.limits.login_per_account, &account_key),
        (&state.limits.login_per_address, &addr_key),
    ] {
        limiter.check(key).map_err(|retry| {
            ApiError::too_many(retry, "too many failed sign-ins; wait before trying again")
        })?;
    }
    let account = match &email {
        Some(e) => state.store.account_by_email(e).await?,
        None => None,
    };
    let password = pawpost_domain::password::normalise(&body.password);
    let matched = state
        .hasher
        .verify(password, account.as_ref().map(|a| a.password_hash.clone()))
        .await?;
    let account = match account {
        Some(a) if matched => a,
        _ => {
            relay::attempt(&state, LimitName::LoginPerAccount, &account_key).await;
            relay::attempt(&state, LimitName::LoginPerAddress, &addr_key).await;
            tracing::info!(client = %addr, "failed sign-in");
            let mut event = Event::new("sign_in_failed").from(addr);
            if let Some(a) = &account {
                event = event.by(a.id);
            }
            record(&state, event).await;
            return Err(wrong_credentials());
        }
    };
    if account.locked {
        return Err(ApiError::forbidden(
            "account_locked",
            "this account is locked; contact the operator of this server",
        ));
    }
    relay::forgive(&state, LimitName::LoginPerAccount, &account_key).await;
    let token = new_token();
    let now = OffsetDateTime::now_utc();
    let ttl = state.config.session_ttl;
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let session = Session {
        id: Uuid::now_v7(),
        account_id: account.id,
        token_hash: token_hash(&token),
        csrf_token: new_token(),
        created_at: now,
        expires_at: now + ttl,
        client_address: addr.to_string(),
        user_agent,
    };
    state.store.create_session(&session).await?;
    tracing::info!(account = %account.id, client = %addr, "signed in");
    record(
        &state,
        Event::new("sign_in")
            .by(account.id)
            .on(session.id)
            .from(addr),
    )
    .await;
    crate::mail::send_later(
        &state.mailer,
        crate::mail::Mail {
            to: account.email.to_string(),
            subject: "New sign-in to your pawpost account".into(),
            body: format!(
                "Hello {},\n\nSomeone signed in to your pawpost account at {} (UTC) from {} using {:?}.\n\n\
                 If this was you, there is nothing to do. If it was not, change your password now: that signs \
                 out every other session. The security page of the app lists your active sessions.\n",
                account.display_name,
                rfc3339(now),
                addr,
                session.user_agent
            ),
        },
    );
    let cookie = session_cookie(&state, &token, ttl.as_secs());
    Ok((
        AppendHeaders([(header::SET_COOKIE, cookie)]),
        Json(SignedIn {
            token,
            csrf_token: session.csrf_token,
            expires_at: rfc3339(session.expires_at),
            account: AccountView::from(&account),
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
    state.store.delete_session(auth.session.id).await?;
    record(
        &state,
        Event::new("sign_out")
            .by(auth.account.id)
            .on(auth.session.id),
    )
    .await;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, session_cookie(&state, "", 0))]),
    ))
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
    let sessions = state
        .store
        .sessions_of(auth.account.id, OffsetDateTime::now_utc())
        .await?;
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
