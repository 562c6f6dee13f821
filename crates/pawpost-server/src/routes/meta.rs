use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use time::Duration;

pub const TAG: &str = "meta";
/// security.txt must say when it stops being valid; RFC 9116 advises under a year.
pub const SECURITY_TXT_VALIDITY: Duration = Duration::days(180);
/// The disclosure policy, served at /security-policy.
pub const SECURITY_POLICY: &str = include_str!("../../../../SECURITY.md");

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// Liveness: 200 while the server answers.
#[utoipa::path(get, path = "/healthz", tag = TAG, responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// RFC 9116 security contact.
#[utoipa::path(get, path = "/.well-known/security.txt", tag = TAG,
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn security_txt(State(state): State<AppState>) -> impl IntoResponse {
    let base = &*state.public_url;
    let expires = super::rfc3339(state.started_at + SECURITY_TXT_VALIDITY);
    let body = format!(
        "Contact: {contact}\nExpires: {expires}\nPolicy: {base}/security-policy\nPreferred-Languages: en\nCanonical: {base}/.well-known/security.txt\n",
        contact = state.config.security_contact,
    );
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

/// The vulnerability disclosure policy.
#[utoipa::path(get, path = "/security-policy", tag = TAG,
    responses((status = 200, content_type = "text/markdown", body = String)))]
pub async fn security_policy() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        SECURITY_POLICY,
    )
}
