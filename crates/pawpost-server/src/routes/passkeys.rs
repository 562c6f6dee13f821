//! Passkeys: adding one to an account, signing up and signing in with one, listing and
//! removing them, and the recovery material a browser keeps with one. Each ceremony is
//! two requests: the first answers the options for `navigator.credentials.create/get`
//! (in `options`, binary fields as unpadded base64url) with a `ceremony` id; the second
//! posts the browser's credential (binary fields as unpadded base64url, without the PRF
//! extension's results, which never leave the browser) to `.../{ceremony}`.
use super::sessions::SignedIn;
use super::{rfc3339, AccountView};
use crate::auth::{device_cookie, set_cookie, Auth, ClientAddr, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, ErrorBody, Json, Path};
use crate::services::passkeys::{self, PasskeyError, PasskeySignedIn};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use base64::Engine;
use pawpost_store::StoredPasskey;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use webauthn_rs::prelude::{
    PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse,
};

pub const TAG: &str = "passkeys";

impl From<PasskeyError> for ApiError {
    fn from(e: PasskeyError) -> Self {
        use PasskeyError as E;
        match e {
            E::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "passkeys_unavailable",
                e.to_string(),
            ),
            E::UnknownCeremony => {
                ApiError::new(StatusCode::NOT_FOUND, "ceremony_unknown", e.to_string())
            }
            E::CeremonyExpired => {
                ApiError::new(StatusCode::GONE, "ceremony_expired", e.to_string())
            }
            E::Refused(ref detail) => {
                tracing::info!(%detail, "a passkey answer was refused");
                ApiError::bad_request("passkey_refused", e.to_string())
            }
            E::WrongPasskey => {
                ApiError::new(StatusCode::UNAUTHORIZED, "wrong_passkey", e.to_string())
            }
            E::Throttled(retry) | E::TooManyCeremonies(retry) => {
                ApiError::too_many(retry, e.to_string())
            }
            E::TooMany => ApiError::conflict("too_many_passkeys", e.to_string()),
            E::LastSignInMethod => ApiError::conflict("last_sign_in_method", e.to_string()),
            E::NotFound => ApiError::new(StatusCode::NOT_FOUND, "passkey_unknown", e.to_string()),
            E::MaterialSize => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "recovery_material_size",
                e.to_string(),
            ),
            E::MaterialEncoding => ApiError::unprocessable("invalid_base64", e.to_string()),
            E::InvalidEmail(e) => ApiError::unprocessable("invalid_email", e.to_string()),
            E::Name(e) => e.into(),
            E::Account(e) => e.into(),
            E::Store(e) => e.into(),
        }
    }
}

/// Options for `navigator.credentials.create`, and the ceremony to answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreationOptions {
    #[schema(value_type = String, format = Uuid)]
    pub ceremony: Uuid,
    /// `{ "publicKey": PublicKeyCredentialCreationOptions }`, binary fields as unpadded
    /// base64url.
    #[schema(value_type = Object)]
    pub options: serde_json::Value,
}

/// Options for `navigator.credentials.get`, and the ceremony to answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RequestOptions {
    #[schema(value_type = String, format = Uuid)]
    pub ceremony: Uuid,
    /// `{ "publicKey": PublicKeyCredentialRequestOptions }`, binary fields as unpadded
    /// base64url.
    #[schema(value_type = Object)]
    pub options: RequestChallengeResponse,
}

/// The browser's new credential.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewCredential {
    /// The `PublicKeyCredential` from `navigator.credentials.create` as JSON: `id`,
    /// `rawId`, `type`, `response.attestationObject`, `response.clientDataJSON`
    /// (unpadded base64url), and the client extension results without `prf`.
    #[schema(value_type = Object)]
    pub credential: RegisterPublicKeyCredential,
}

/// The browser's assertion.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct Assertion {
    /// The `PublicKeyCredential` from `navigator.credentials.get` as JSON: `id`, `rawId`,
    /// `type`, `response.authenticatorData`, `response.clientDataJSON`,
    /// `response.signature`, `response.userHandle` (unpadded base64url), and the client
    /// extension results without `prf`.
    #[schema(value_type = Object)]
    pub credential: PublicKeyCredential,
}

/// A passkey as its owner sees it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    pub label: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; absent until it is used to sign in.
    pub last_used_at: Option<String>,
    /// Whether recovery material is kept with it.
    pub has_recovery_material: bool,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> Self {
        Self {
            id: p.id,
            label: p.label.clone(),
            created_at: rfc3339(p.created_at),
            last_used_at: p.last_used_at.map(rfc3339),
            has_recovery_material: p.has_recovery_material,
        }
    }
}

/// A session opened with a passkey: as a password sign-in, and the passkey used.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeySession {
    #[serde(flatten)]
    pub session: SignedIn,
    pub passkey: PasskeyView,
}

fn user_agent(headers: &HeaderMap) -> &str {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The answer to a sign-in or sign-up with a passkey: cookies as a password sign-in sets.
fn session_answer(state: &AppState, done: PasskeySignedIn) -> impl IntoResponse {
    let PasskeySignedIn { signed_in, passkey } = done;
    let cookie = set_cookie(
        SESSION_COOKIE,
        &signed_in.token,
        state.config.session_ttl.as_secs(),
        state.config.insecure_cookies,
    );
    let device = device_cookie(state, &signed_in.account);
    (
        AppendHeaders([(header::SET_COOKIE, cookie), (header::SET_COOKIE, device)]),
        Json(PasskeySession {
            session: SignedIn {
                token: signed_in.token,
                csrf_token: signed_in.session.csrf_token,
                expires_at: rfc3339(signed_in.session.expires_at),
                account: AccountView::from(&signed_in.account),
            },
            passkey: PasskeyView::from(&passkey),
        }),
    )
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct NewPasskey {
    /// A name to recognise it by (at most 60 characters); "Passkey" when absent.
    pub label: Option<String>,
}

/// Start adding a passkey to the signed-in account.
#[utoipa::path(post, path = "/api/v1/passkeys/registrations", tag = TAG, request_body = NewPasskey,
    responses(
        (status = 200, description = "Options for navigator.credentials.create; answer within 5 minutes", body = CreationOptions),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The account has 20 passkeys already", body = ErrorBody),
        (status = 429, description = "Too many passkey steps started from this address; see Retry-After", body = ErrorBody),
        (status = 422, description = "The label breaks a rule", body = ErrorBody),
        (status = 503, description = "Passkeys need the server's public address to be a name, not an IP address", body = ErrorBody),
    ))]
pub async fn start_registration(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    auth: Auth,
    Json(body): Json<NewPasskey>,
) -> ApiResult<Json<CreationOptions>> {
    let (ceremony, options) =
        passkeys::start_registration(&state, &auth.account, body.label.as_deref(), addr).await?;
    Ok(Json(CreationOptions { ceremony, options }))
}

/// Finish adding a passkey: the browser's new credential for the ceremony.
#[utoipa::path(post, path = "/api/v1/passkeys/registrations/{ceremony}", tag = TAG, request_body = NewCredential,
    params(("ceremony" = String, Path, format = Uuid)),
    responses(
        (status = 201, description = "The passkey is kept", body = PasskeyView),
        (status = 400, description = "The credential was not accepted (wrong site, challenge or signature)", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such ceremony, or it was used already", body = ErrorBody),
        (status = 410, description = "The ceremony is more than 5 minutes old", body = ErrorBody),
    ))]
pub async fn finish_registration(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    auth: Auth,
    Path(ceremony): Path<Uuid>,
    Json(body): Json<NewCredential>,
) -> ApiResult<(StatusCode, Json<PasskeyView>)> {
    let passkey =
        passkeys::finish_registration(&state, &auth.account, ceremony, &body.credential, addr)
            .await?;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(&passkey))))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PasskeySignUp {
    pub email: String,
    #[serde(alias = "name")]
    pub display_name: String,
}

/// Start making an account with a passkey and no password.
#[utoipa::path(post, path = "/api/v1/accounts/passkey", tag = TAG, request_body = PasskeySignUp,
    responses(
        (status = 200, description = "Options for navigator.credentials.create; answer within 5 minutes", body = CreationOptions),
        (status = 409, description = "The email address already has an account", body = ErrorBody),
        (status = 422, description = "A rule was broken (the message names it)", body = ErrorBody),
        (status = 429, description = "Too many passkey steps started from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "Passkeys need the server's public address to be a name, not an IP address", body = ErrorBody),
    ))]
pub async fn start_sign_up(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Json(body): Json<PasskeySignUp>,
) -> ApiResult<Json<CreationOptions>> {
    let (ceremony, options) =
        passkeys::start_sign_up(&state, &body.email, &body.display_name, addr).await?;
    Ok(Json(CreationOptions { ceremony, options }))
}

/// Finish making an account with a passkey: the account is made, without a password,
/// and signed in as a password sign-in is (session and device cookies).
#[utoipa::path(post, path = "/api/v1/accounts/passkey/{ceremony}", tag = TAG, request_body = NewCredential,
    params(("ceremony" = String, Path, format = Uuid)),
    responses(
        (status = 201, description = "Account made and signed in; the session cookie and the device cookie are set", body = PasskeySession),
        (status = 400, description = "The credential was not accepted (wrong site, challenge or signature)", body = ErrorBody),
        (status = 404, description = "No such ceremony, or it was used already", body = ErrorBody),
        (status = 409, description = "The email address got an account meanwhile", body = ErrorBody),
        (status = 410, description = "The ceremony is more than 5 minutes old", body = ErrorBody),
        (status = 429, description = "Too many new accounts from this address", body = ErrorBody),
    ))]
pub async fn finish_sign_up(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(ceremony): Path<Uuid>,
    Json(body): Json<NewCredential>,
) -> ApiResult<impl IntoResponse> {
    let done = passkeys::finish_sign_up(
        &state,
        ceremony,
        &body.credential,
        addr,
        user_agent(&headers),
    )
    .await?;
    Ok((StatusCode::CREATED, session_answer(&state, done)))
}

/// Start signing in with a passkey: the browser offers the passkeys it holds for this
/// site; no email address is needed.
#[utoipa::path(post, path = "/api/v1/sessions/passkey", tag = TAG,
    responses(
        (status = 200, description = "Options for navigator.credentials.get; answer within 5 minutes", body = RequestOptions),
        (status = 429, description = "Too many passkey steps started from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "Passkeys need the server's public address to be a name, not an IP address", body = ErrorBody),
    ))]
pub async fn start_sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
) -> ApiResult<Json<RequestOptions>> {
    let (ceremony, options) = passkeys::start_sign_in(&state, addr).await?;
    Ok(Json(RequestOptions { ceremony, options }))
}

/// Finish signing in with a passkey. Failed attempts count against the client's
/// address as failed password sign-ins do.
#[utoipa::path(post, path = "/api/v1/sessions/passkey/{ceremony}", tag = TAG, request_body = Assertion,
    params(("ceremony" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "Signed in; the session cookie and the device cookie are set", body = PasskeySession),
        (status = 401, description = "The passkey was not accepted", body = ErrorBody),
        (status = 403, description = "The account is locked", body = ErrorBody),
        (status = 404, description = "No such ceremony, or it was used already", body = ErrorBody),
        (status = 410, description = "The ceremony is more than 5 minutes old", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins from this address; see Retry-After", body = ErrorBody),
    ))]
pub async fn finish_sign_in(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(ceremony): Path<Uuid>,
    Json(body): Json<Assertion>,
) -> ApiResult<impl IntoResponse> {
    let done = passkeys::finish_sign_in(
        &state,
        ceremony,
        &body.credential,
        addr,
        user_agent(&headers),
    )
    .await?;
    Ok(session_answer(&state, done))
}

/// The signed-in account's passkeys, oldest first.
#[utoipa::path(get, path = "/api/v1/passkeys", tag = TAG,
    responses((status = 200, body = [PasskeyView]), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<Vec<PasskeyView>>> {
    let passkeys = passkeys::list(&state, auth.account.id).await?;
    Ok(Json(passkeys.iter().map(PasskeyView::from).collect()))
}

/// Remove a passkey, with its recovery material. An account without a password keeps
/// its last one.
#[utoipa::path(delete, path = "/api/v1/passkeys/{id}", tag = TAG,
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "It is the only way to sign in to this account", body = ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    passkeys::remove(&state, &auth.account, id, addr).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Recovery material kept with a passkey: ciphertext the browser made with a key only
/// the passkey gives it.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecoveryMaterial {
    /// Standard base64 of at most 4096 bytes; `null` when none is kept.
    pub material: Option<String>,
}

/// Keep recovery material with one of the account's passkeys (replacing any).
#[utoipa::path(put, path = "/api/v1/passkeys/{id}/recovery-material", tag = TAG, request_body = RecoveryMaterial,
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 204, description = "Kept"),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The account has no such passkey", body = ErrorBody),
        (status = 413, description = "Empty, or more than 4096 bytes", body = ErrorBody),
        (status = 422, description = "Not base64", body = ErrorBody),
    ))]
pub async fn put_recovery_material(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
    Json(body): Json<RecoveryMaterial>,
) -> ApiResult<StatusCode> {
    let material = body.material.ok_or(PasskeyError::MaterialSize)?;
    passkeys::set_recovery_material(&state, auth.account.id, id, &material).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The recovery material kept with one of the account's passkeys.
#[utoipa::path(get, path = "/api/v1/passkeys/{id}/recovery-material", tag = TAG,
    params(("id" = String, Path, format = Uuid)),
    responses(
        (status = 200, description = "The material, or `null`", body = RecoveryMaterial),
        (status = 401, body = ErrorBody),
        (status = 404, description = "The account has no such passkey", body = ErrorBody),
    ))]
pub async fn get_recovery_material(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<RecoveryMaterial>> {
    let material = passkeys::recovery_material(&state, auth.account.id, id).await?;
    Ok(Json(RecoveryMaterial {
        material: material.map(|m| base64::engine::general_purpose::STANDARD.encode(m)),
    }))
}
