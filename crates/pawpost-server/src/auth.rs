//! Who is asking: the session behind a cookie or bearer token, the client's address,
//! and the CSRF check for browsers.
use crate::credentials::{Client, DEVICE_TRUST};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method};
use pawpost_domain::{Account, Session};
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "pawpost_session";
/// Name of the cookie by which a browser that signed in before is recognised (see
/// [`crate::credentials`]).
pub const DEVICE_COOKIE: &str = "pawpost_device";
/// Header in which the web app echoes its session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

pub use crate::tokens::{new_token, token_hash};

/// The address of the client: the other end of the connection, or, when that is a
/// trusted proxy, the address it forwarded (see [`crate::proxy`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .ok_or_else(ApiError::internal)?;
        let forwarded = parts
            .headers
            .get_all(crate::proxy::FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok());
        Ok(ClientAddr(crate::proxy::client_address(
            peer.ip(),
            forwarded,
            &state.config.trusted_proxies,
        )))
    }
}

/// The signed-in account behind this request.
pub struct Auth {
    pub account: Account,
    pub session: Session,
    /// True when the browser's cookie authenticated the request (CSRF applies).
    pub via_cookie: bool,
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    cookie_in(&parts.headers, name)
}

/// The value of the cookie `name` in a request's headers.
pub fn cookie_in<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value for a cookie scripts cannot read and other sites never send;
/// `Secure` unless `insecure` (plain-http local use). Max-Age 0 deletes it.
pub fn set_cookie(
    name: &str,
    value: &str,
    max_age_secs: u64,
    insecure: bool,
) -> axum::http::HeaderValue {
    let secure = if insecure { "" } else { "; Secure" };
    axum::http::HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    ))
    .expect("cookie names, tokens and attributes are valid header text")
}

/// Who is asking for a password check: the client's address and the device cookie its
/// request carries, if any.
pub fn password_client(address: IpAddr, headers: &axum::http::HeaderMap) -> Client<'_> {
    Client {
        address,
        device_cookie: cookie_in(headers, DEVICE_COOKIE),
    }
}

/// The `Set-Cookie` value of a new device cookie for the browser that just proved it
/// knows `account`'s password (see [`crate::credentials`]).
pub fn device_cookie(state: &AppState, account: &Account) -> axum::http::HeaderValue {
    set_cookie(
        DEVICE_COOKIE,
        &crate::credentials::new_device_cookie(account),
        DEVICE_TRUST.as_secs(),
        state.config.insecure_cookies,
    )
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (token, via_cookie) = match (bearer(parts), cookie(parts, SESSION_COOKIE)) {
            (Some(t), _) => (t, false),
            (None, Some(t)) => (t, true),
            (None, None) => return Err(ApiError::unauthorized()),
        };
        let now = OffsetDateTime::now_utc();
        let hash = token_hash(token);
        // Both reads at once (each waits for a connection's thread); a session ended
        // between the two names no account, and the pair is refused below.
        let (session, account) = tokio::join!(
            state.store.session_by_token_hash(&hash, now),
            state.store.account_by_session(&hash, now)
        );
        let session = session?.ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "session_expired",
                "your session has ended or was signed out; sign in again",
            )
        })?;
        if via_cookie && changes_state(&parts.method) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !bool::from(sent.as_bytes().ct_eq(session.csrf_token.as_bytes())) {
                return Err(ApiError::forbidden(
                    "csrf",
                    format!("missing or wrong {CSRF_HEADER} header: send the csrf_token from your session with every change"),
                ));
            }
        }
        let account = account?
            .filter(|account| account.id == session.account_id)
            .ok_or_else(ApiError::unauthorized)?;
        if account.locked {
            return Err(ApiError::forbidden(
                "account_locked",
                "this account is locked; contact the operator of this server",
            ));
        }
        Ok(Auth {
            account,
            session,
            via_cookie,
        })
    }
}

/// The scheme of the server's own pages, which an `Origin` must name: `https` when
/// people reach the server over https (it serves TLS, or its public address is
/// `https://`), else `http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnScheme(&'static str);

impl OwnScheme {
    pub fn https(https: bool) -> Self {
        Self(if https { "https" } else { "http" })
    }
}

/// Refuses a state-changing request that a browser sent from another site, before any
/// session exists (sign-in, sign-up): the cross-site request forgery of a login. Another
/// site is any other origin, including this host over the other scheme (a page on
/// `http://host` is not the app on `https://host`).
pub async fn reject_cross_site(
    axum::extract::State(own): axum::extract::State<OwnScheme>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if changes_state(request.method()) {
        let headers = request.headers();
        let cross_site = headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "cross-site");
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_mismatch = headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|origin| !is_own_origin(origin, own, host));
        if cross_site || origin_mismatch {
            return ApiError::forbidden(
                "cross_site",
                "this request came from another site; use pawpost's own web app",
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// `origin` is the server's own: its scheme, and the host the request was sent to
/// (`null`, or an origin without a scheme, is nobody's).
fn is_own_origin(origin: &str, own: OwnScheme, host: Option<&str>) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(scheme, origin_host)| {
            scheme.eq_ignore_ascii_case(own.0) && Some(origin_host) == host
        })
}

/// Refuses at once a body whose declared length exceeds every limit the server has,
/// instead of holding the connection while a client trickles it.
pub async fn reject_oversized(
    axum::extract::State(max): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request bodies are limited to {max} bytes: send a smaller body"),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_only_hashed() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(token_hash(&a), token_hash(&b));
        assert_eq!(token_hash(&a), token_hash(&a));
    }
}
