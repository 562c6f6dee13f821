//! Passkeys without a browser: a software authenticator (ES256, `none` attestation, a
//! discoverable credential) answers the server's options as a synced passkey would.
//! Signing up makes an account without a password, which a password never opens
//! until a link sent by email sets one;
//! signing in needs no email address; answers for another site, a forged signature,
//! an unknown, used, expired or mismatched ceremony and garbage are plain 4xx, never
//! 500; failed sign-ins are limited per address; recovery material has a size limit
//! and belongs to its passkey's account only; the last passkey of an account without a
//! password stays.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{Client, TestServer, GOOD_PASSWORD};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use pawpost_server::config::RateLimit;
use pawpost_server::services::passkeys::{
    CEREMONIES_PER_ADDRESS, CEREMONY_TTL, MAX_RECOVERY_MATERIAL_BYTES,
};
use pawpost_store::PasskeyCeremony;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Flags of the authenticator data: user present, user verified, backup eligible and
/// backed up (a synced passkey), attested credential data included.
const UP: u8 = 0x01;
const UV: u8 = 0x04;
const BE: u8 = 0x08;
const BS: u8 = 0x10;
const AT: u8 = 0x40;

/// A CBOR item head (RFC 8949): major type and argument.
fn cbor_head(major: u8, n: u64) -> Vec<u8> {
    let m = major << 5;
    match n {
        0..=23 => vec![m | u8::try_from(n).unwrap()],
        24..=0xff => vec![m | 24, u8::try_from(n).unwrap()],
        0x100..=0xffff => [
            vec![m | 25],
            u16::try_from(n).unwrap().to_be_bytes().to_vec(),
        ]
        .concat(),
        _ => [
            vec![m | 26],
            u32::try_from(n).unwrap().to_be_bytes().to_vec(),
        ]
        .concat(),
    }
}

fn cbor_int(v: i64) -> Vec<u8> {
    if v >= 0 {
        cbor_head(0, v.unsigned_abs())
    } else {
        cbor_head(1, (-1 - v).unsigned_abs())
    }
}

fn cbor_bytes(b: &[u8]) -> Vec<u8> {
    [cbor_head(2, b.len() as u64), b.to_vec()].concat()
}

fn cbor_text(s: &str) -> Vec<u8> {
    [cbor_head(3, s.len() as u64), s.as_bytes().to_vec()].concat()
}

fn b64url(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

fn sha256(b: &[u8]) -> Vec<u8> {
    Sha256::digest(b).to_vec()
}

/// One passkey held by a software authenticator.
#[derive(Clone)]
struct SoftPasskey {
    key: SigningKey,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    rp_id: String,
}

impl SoftPasskey {
    /// Answers creation options (`{ publicKey: ... }`) from `origin`.
    fn create(options: &Value, origin: &str) -> (Self, Value) {
        let public_key = &options["publicKey"];
        let rp_id = public_key["rp"]["id"].as_str().unwrap().to_owned();
        let user_handle = URL_SAFE_NO_PAD
            .decode(public_key["user"]["id"].as_str().unwrap())
            .unwrap();
        let key = loop {
            if let Ok(key) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
                break key;
            }
        };
        let passkey = SoftPasskey {
            key,
            credential_id: rand::random::<[u8; 16]>().to_vec(),
            user_handle,
            rp_id,
        };
        let point = passkey.key.verifying_key().to_sec1_point(false);
        let cose_key = [
            cbor_head(5, 5),
            cbor_int(1),
            cbor_int(2), // kty: EC2
            cbor_int(3),
            cbor_int(-7), // alg: ES256
            cbor_int(-1),
            cbor_int(1), // crv: P-256
            cbor_int(-2),
            cbor_bytes(point.x().unwrap()),
            cbor_int(-3),
            cbor_bytes(point.y().unwrap()),
        ]
        .concat();
        let auth_data = [
            sha256(passkey.rp_id.as_bytes()),
            vec![UP | UV | BE | BS | AT],
            0u32.to_be_bytes().to_vec(),
            vec![0; 16], // AAGUID
            u16::try_from(passkey.credential_id.len())
                .unwrap()
                .to_be_bytes()
                .to_vec(),
            passkey.credential_id.clone(),
            cose_key,
        ]
        .concat();
        let attestation_object = [
            cbor_head(5, 3),
            cbor_text("fmt"),
            cbor_text("none"),
            cbor_text("attStmt"),
            cbor_head(5, 0),
            cbor_text("authData"),
            cbor_bytes(&auth_data),
        ]
        .concat();
        let client_data = json!({
            "type": "webauthn.create",
            "challenge": public_key["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let credential = json!({
            "id": b64url(&passkey.credential_id),
            "rawId": b64url(&passkey.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": b64url(&attestation_object),
                "clientDataJSON": b64url(client_data.as_bytes()),
            },
            "extensions": {},
        });
        (passkey, credential)
    }

    /// Answers request options (`{ publicKey: ... }`) from `origin`.
    fn get(&self, options: &Value, origin: &str) -> Value {
        let client_data = json!({
            "type": "webauthn.get",
            "challenge": options["publicKey"]["challenge"],
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string();
        let auth_data = [
            sha256(self.rp_id.as_bytes()),
            vec![UP | UV | BE | BS],
            0u32.to_be_bytes().to_vec(),
        ]
        .concat();
        let signed = [auth_data.clone(), sha256(client_data.as_bytes())].concat();
        let signature: Signature = self.key.sign(&signed);
        json!({
            "id": b64url(&self.credential_id),
            "rawId": b64url(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": b64url(&auth_data),
                "clientDataJSON": b64url(client_data.as_bytes()),
                "signature": b64url(signature.to_der().as_bytes()),
                "userHandle": b64url(&self.user_handle),
            },
            "extensions": {},
        })
    }
}

/// Waits until the server's outbox holds a mail to `to` with `subject`; returns its body,
/// decoded from quoted-printable.
async fn wait_for_mail(server: &TestServer, to: &str, subject: &str) -> String {
    let outbox = server.data.path().join("data/outbox");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let found = std::fs::read_dir(&outbox)
            .into_iter()
            .flatten()
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .find(|text| {
                text.contains(&format!("To: {to}\r\n"))
                    && text.contains(&format!("Subject: {subject}\r\n"))
            });
        if let Some(mail) = found {
            let (_, raw) = mail.split_once("\r\n\r\n").unwrap_or((&mail, ""));
            let body = quoted_printable::decode(raw, quoted_printable::ParseMode::Robust).unwrap();
            return String::from_utf8_lossy(&body).into_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail {subject:?} to {to} in {}",
            outbox.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The origin browsers use for a server on a loopback address: `localhost`, same port.
fn origin_of(server: &TestServer) -> String {
    server.base.replace("127.0.0.1", "localhost")
}

/// Signs up with a new soft passkey; returns the signed-in client, the passkey and the
/// answer.
async fn sign_up(server: &TestServer, email: &str) -> (Client, SoftPasskey, Value) {
    let anon = server.anonymous();
    let (status, start) = anon
        .post(
            "/api/v1/accounts/passkey",
            json!({"email": email, "display_name": "Rose"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let (passkey, credential) = SoftPasskey::create(&start["options"], &origin_of(server));
    let ceremony = start["ceremony"].as_str().unwrap();
    let (status, done) = anon
        .post(
            &format!("/api/v1/accounts/passkey/{ceremony}"),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{done}");
    let client = Client {
        token: Some(done["token"].as_str().unwrap().to_owned()),
        ..anon
    };
    (client, passkey, done)
}

async fn sign_in(server: &TestServer, passkey: &SoftPasskey) -> (StatusCode, Value) {
    let anon = server.anonymous();
    let (status, start) = anon.post("/api/v1/sessions/passkey", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let ceremony = start["ceremony"].as_str().unwrap();
    anon.post(
        &format!("/api/v1/sessions/passkey/{ceremony}"),
        json!({ "credential": passkey.get(&start["options"], &origin_of(server)) }),
    )
    .await
}

#[tokio::test]
async fn the_options_ask_for_a_verified_discoverable_passkey_for_this_site() {
    let server = TestServer::start().await;
    let anon = server.anonymous();
    let (status, start) = anon
        .post(
            "/api/v1/accounts/passkey",
            json!({"email": "shape@example.org", "name": "Shape"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{start}");
    assert!(uuid::Uuid::parse_str(start["ceremony"].as_str().unwrap()).is_ok());
    let options = &start["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost", "{options}");
    assert_eq!(options["user"]["name"], "shape@example.org");
    assert_eq!(options["user"]["displayName"], "Shape");
    let challenge = URL_SAFE_NO_PAD
        .decode(options["challenge"].as_str().unwrap())
        .unwrap();
    assert!(challenge.len() >= 16, "{options}");
    let selection = &options["authenticatorSelection"];
    assert_eq!(selection["residentKey"], "required", "{options}");
    assert_eq!(selection["userVerification"], "required", "{options}");
    assert!(options["pubKeyCredParams"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["alg"] == -7));

    let (status, start) = anon.post("/api/v1/sessions/passkey", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let options = &start["options"]["publicKey"];
    assert_eq!(options["rpId"], "localhost", "{options}");
    assert_eq!(options["userVerification"], "required");
    assert!(options["allowCredentials"]
        .as_array()
        .is_none_or(|a| a.is_empty()));
    assert!(
        start["options"]["mediation"].is_null(),
        "asked for with a button"
    );

    // An address the account has already: as a password sign-up says.
    server.person("taken@example.org", "Taken").await;
    let (status, body) = anon
        .post(
            "/api/v1/accounts/passkey",
            json!({"email": "taken@example.org", "display_name": "Again"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "email_taken");
    let (status, body) = anon
        .post(
            "/api/v1/accounts/passkey",
            json!({"email": "not an address", "display_name": "X"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn an_account_made_with_a_passkey_signs_in_with_it_and_never_with_a_password() {
    let server = TestServer::start().await;
    // The raw answer: the cookies a password sign-in sets.
    let anon = server.anonymous();
    let (_, start) = anon
        .post(
            "/api/v1/accounts/passkey",
            json!({"email": "rose@example.org", "display_name": "Rose"}),
        )
        .await;
    let (passkey, credential) = SoftPasskey::create(&start["options"], &origin_of(&server));
    let response = server
        .http_client()
        .post(server.url(&format!(
            "/api/v1/accounts/passkey/{}",
            start["ceremony"].as_str().unwrap()
        )))
        .json(&json!({ "credential": credential }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cookies: Vec<String> = response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("pawpost_session=")),
        "{cookies:?}"
    );
    assert_eq!(cookies.len(), 2, "session and device cookies: {cookies:?}");
    let done: Value = response.json().await.unwrap();
    assert_eq!(done["account"]["email"], "rose@example.org");
    assert!(done["csrf_token"].is_string());
    let passkey_id = done["passkey"]["id"].as_str().unwrap().to_owned();
    let rose = Client {
        token: Some(done["token"].as_str().unwrap().to_owned()),
        ..anon.clone()
    };
    let (status, me) = rose.get("/api/v1/accounts/me").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["has_password"], false, "{me}");
    // The mails a password sign-up and sign-in send.
    wait_for_mail(
        &server,
        "rose@example.org",
        "Confirm your email address for pawpost",
    )
    .await;
    wait_for_mail(
        &server,
        "rose@example.org",
        "New sign-in to your pawpost account",
    )
    .await;

    // Signing in: no email address, the passkey names the account.
    let (status, signed_in) = sign_in(&server, &passkey).await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    assert_eq!(signed_in["account"]["email"], "rose@example.org");
    assert_eq!(signed_in["passkey"]["id"], passkey_id);
    assert!(signed_in["passkey"]["last_used_at"].is_string());

    // No password opens it, not even the empty one or the stored marker.
    for password in [GOOD_PASSWORD, "", "!no-password!"] {
        let (status, body) = anon
            .post(
                "/api/v1/sessions",
                json!({"email": "rose@example.org", "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "wrong_credentials");
    }

    // Its only passkey stays; with a second one, either may go.
    let (status, body) = rose
        .call(
            Method::DELETE,
            &format!("/api/v1/passkeys/{passkey_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "last_sign_in_method");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("only way to sign in"));
    let (status, start) = rose
        .post("/api/v1/passkeys/registrations", json!({"label": "Laptop"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let excluded = start["options"]["publicKey"]["excludeCredentials"]
        .as_array()
        .unwrap();
    assert_eq!(excluded.len(), 1, "the passkey it has already is excluded");
    let (laptop, credential) = SoftPasskey::create(&start["options"], &origin_of(&server));
    let (status, added) = rose
        .post(
            &format!(
                "/api/v1/passkeys/registrations/{}",
                start["ceremony"].as_str().unwrap()
            ),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["label"], "Laptop");
    let (status, list) = rose.get("/api/v1/passkeys").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    let (status, _) = rose
        .call(
            Method::DELETE,
            &format!("/api/v1/passkeys/{passkey_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = sign_in(&server, &passkey).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a removed passkey: {body}"
    );
    assert_eq!(body["error"], "wrong_passkey");
    let (status, body) = sign_in(&server, &laptop).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The trail has the account, its passkeys and its sign-ins.
    let (_, activity) = rose.get("/api/v1/accounts/me/activity").await;
    let actions: Vec<&str> = activity
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for action in [
        "account_created",
        "passkey_added",
        "passkey_removed",
        "sign_in",
    ] {
        assert!(actions.contains(&action), "{action} in {activity}");
    }

    // A link sent by email sets a password; then the password opens it too.
    let (status, _) = anon
        .post(
            "/api/v1/password-resets",
            json!({"email": "rose@example.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let mail = wait_for_mail(&server, "rose@example.org", "Choose a new pawpost password").await;
    let (_, rest) = mail.split_once("/reset#").expect("a link in the mail");
    let token = rest.split_whitespace().next().unwrap();
    let (status, body) = anon
        .post(
            "/api/v1/password-resets/confirm",
            json!({"token": token, "new_password": GOOD_PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let with_password = server.sign_in("rose@example.org", GOOD_PASSWORD).await;
    let (_, me) = with_password.get("/api/v1/accounts/me").await;
    assert_eq!(me["has_password"], true, "{me}");
    let (status, body) = sign_in(&server, &laptop).await;
    assert_eq!(status, StatusCode::OK, "the passkey still works: {body}");
}

#[tokio::test]
async fn a_password_account_adds_and_removes_a_passkey() {
    let server = TestServer::start().await;
    let (ann, _) = server.person("ann@example.org", "Ann").await;
    let (status, start) = ann.post("/api/v1/passkeys/registrations", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{start}");
    let (passkey, credential) = SoftPasskey::create(&start["options"], &origin_of(&server));
    let ceremony = start["ceremony"].as_str().unwrap().to_owned();
    let (status, added) = ann
        .post(
            &format!("/api/v1/passkeys/registrations/{ceremony}"),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["label"], "Passkey");
    // The ceremony is used up.
    let (status, body) = ann
        .post(
            &format!("/api/v1/passkeys/registrations/{ceremony}"),
            json!({ "credential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "ceremony_unknown");

    let (status, body) = sign_in(&server, &passkey).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["account"]["email"], "ann@example.org");
    // An account with a password may remove its last passkey.
    let id = added["id"].as_str().unwrap();
    let (status, _) = ann
        .call(Method::DELETE, &format!("/api/v1/passkeys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = ann
        .call(Method::DELETE, &format!("/api/v1/passkeys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Someone else's session cannot start adding one to Ann's account.
    let (status, _) = server
        .anonymous()
        .post("/api/v1/passkeys/registrations", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_foreign_stale_and_unknown_answers_are_refused_plainly() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_address = RateLimit {
            max: 100,
            window: Duration::from_secs(600),
        };
    })
    .await;
    let anon = server.anonymous();
    let state = &server.server.as_ref().unwrap().state;

    // An answer made for another site.
    let (_, start) = anon
        .post(
            "/api/v1/accounts/passkey",
            json!({"email": "eve@example.org", "display_name": "Eve"}),
        )
        .await;
    let (_, foreign) = SoftPasskey::create(&start["options"], "https://evil.example");
    let (status, body) = anon
        .post(
            &format!(
                "/api/v1/accounts/passkey/{}",
                start["ceremony"].as_str().unwrap()
            ),
            json!({ "credential": foreign }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "passkey_refused");
    assert!(body["message"].as_str().unwrap().contains("start again"));

    // An unknown ceremony, a ceremony of another kind, an expired one.
    let (_, passkey, _) = sign_up(&server, "rose@example.org").await;
    let unknown = uuid::Uuid::new_v4();
    let (status, body) = anon
        .post(
            &format!("/api/v1/sessions/passkey/{unknown}"),
            json!({ "credential": passkey.get(&json!({"publicKey": {"challenge": "AAAA"}}), &origin_of(&server)) }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"], "ceremony_unknown");
    let (_, start) = anon.post("/api/v1/sessions/passkey", json!({})).await;
    let (_, other_kind) = SoftPasskey::create(
        &json!({"publicKey": {"rp": {"id": "localhost"}, "user": {"id": "AAAA"}, "challenge": start["options"]["publicKey"]["challenge"]}}),
        &origin_of(&server),
    );
    let (status, body) = anon
        .post(
            &format!(
                "/api/v1/accounts/passkey/{}",
                start["ceremony"].as_str().unwrap()
            ),
            json!({ "credential": other_kind }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let expired = uuid::Uuid::new_v4();
    state
        .store
        .create_passkey_ceremony(&PasskeyCeremony {
            id: expired,
            purpose: "sign_in".into(),
            account_id: None,
            state: "{}".into(),
            expires_at: time::OffsetDateTime::now_utc() - time::Duration::seconds(1),
        })
        .await
        .unwrap();
    let (status, body) = anon
        .post(
            &format!("/api/v1/sessions/passkey/{expired}"),
            json!({ "credential": passkey.get(&json!({"publicKey": {"challenge": "AAAA"}}), &origin_of(&server)) }),
        )
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"], "ceremony_expired");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains(&format!("{} minutes", CEREMONY_TTL.as_secs() / 60)));

    // A forged signature, another site's answer, a stranger's passkey.
    let (_, start) = anon.post("/api/v1/sessions/passkey", json!({})).await;
    let mut forged = passkey.get(&start["options"], &origin_of(&server));
    let other = SoftPasskey::create(
        &json!({"publicKey": {"rp": {"id": "localhost"}, "user": {"id": b64url(&passkey.user_handle)}, "challenge": "AAAA"}}),
        "x",
    )
    .0;
    forged["response"]["signature"] =
        other.get(&start["options"], &origin_of(&server))["response"]["signature"].clone();
    let (status, body) = anon
        .post(
            &format!(
                "/api/v1/sessions/passkey/{}",
                start["ceremony"].as_str().unwrap()
            ),
            json!({ "credential": forged }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "wrong_passkey");
    let (_, start) = anon.post("/api/v1/sessions/passkey", json!({})).await;
    let (status, body) = anon
        .post(
            &format!(
                "/api/v1/sessions/passkey/{}",
                start["ceremony"].as_str().unwrap()
            ),
            json!({ "credential": passkey.get(&start["options"], "https://evil.example") }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = sign_in(&server, &other).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Garbage: a clear 4xx.
    let (_, start) = anon.post("/api/v1/sessions/passkey", json!({})).await;
    let ceremony = start["ceremony"].as_str().unwrap();
    for junk in [
        json!({}),
        json!({"credential": {"id": "x"}}),
        json!({"credential": {"id": "x", "rawId": "!!", "type": "public-key", "response": {}}}),
    ] {
        let (status, body) = anon
            .post(
                &format!("/api/v1/sessions/passkey/{ceremony}"),
                junk.clone(),
            )
            .await;
        assert!(status.is_client_error(), "{junk}: {status} {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, body) = anon
        .post("/api/v1/sessions/passkey/not-a-uuid", json!({}))
        .await;
    assert!(status.is_client_error(), "{status} {body}");

    // Every failure above was counted, and the sign-in still works.
    let (status, body) = sign_in(&server, &passkey).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn failed_passkey_sign_ins_are_limited_per_address() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_address = RateLimit {
            max: 3,
            window: Duration::from_secs(600),
        };
    })
    .await;
    let (_, passkey, _) = sign_up(&server, "rose@example.org").await;
    let stranger = SoftPasskey {
        credential_id: vec![9; 16],
        ..passkey.clone()
    };
    for _ in 0..3 {
        let (status, body) = sign_in(&server, &stranger).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, body) = sign_in(&server, &passkey).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["message"].as_str().unwrap().contains("wait"));
}

#[tokio::test]
async fn ceremonies_started_from_one_address_are_limited() {
    let server = TestServer::start().await;
    let anon = server.anonymous();
    for _ in 0..CEREMONIES_PER_ADDRESS {
        let (status, body) = anon.post("/api/v1/sessions/passkey", json!({})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    for (path, body) in [
        ("/api/v1/sessions/passkey", json!({})),
        (
            "/api/v1/accounts/passkey",
            json!({"email": "late@example.org", "display_name": "Late"}),
        ),
    ] {
        let (status, body) = anon.post(path, body).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains("wait"));
    }
}

#[tokio::test]
async fn recovery_material_has_a_limit_and_belongs_to_its_passkeys_account() {
    let server = TestServer::start().await;
    let (rose, _, done) = sign_up(&server, "rose@example.org").await;
    let id = done["passkey"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/passkeys/{id}/recovery-material");
    let (status, body) = rose.get(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["material"].is_null());

    let largest = vec![7u8; MAX_RECOVERY_MATERIAL_BYTES];
    let (status, body) = rose
        .call(
            Method::PUT,
            &path,
            Some(json!({"material": STANDARD.encode(&largest)})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, body) = rose.get(&path).await;
    assert_eq!(
        STANDARD.decode(body["material"].as_str().unwrap()).unwrap(),
        largest
    );
    let (_, list) = rose.get("/api/v1/passkeys").await;
    assert_eq!(list[0]["has_recovery_material"], true);
    // The account's export has its passkeys and the sealed material.
    let (status, export) = rose.get("/api/v1/accounts/me/export").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        export["passkeys"][0]["id"],
        id.as_str(),
        "{}",
        export["passkeys"]
    );
    assert_eq!(
        export["passkeys"][0]["recovery_material"],
        STANDARD.encode(&largest)
    );

    let too_large = vec![7u8; MAX_RECOVERY_MATERIAL_BYTES + 1];
    for bad in [
        json!({"material": STANDARD.encode(&too_large)}),
        json!({"material": ""}),
        json!({"material": null}),
    ] {
        let (status, body) = rose.call(Method::PUT, &path, Some(bad)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["error"], "recovery_material_size");
    }
    let (status, body) = rose
        .call(Method::PUT, &path, Some(json!({"material": "not base64!"})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Another account sees and changes nothing of it.
    let (ann, _) = server.person("ann@example.org", "Ann").await;
    let (status, _) = ann.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ann
        .call(
            Method::PUT,
            &path,
            Some(json!({"material": STANDARD.encode(b"mine")})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ann
        .call(Method::DELETE, &format!("/api/v1/passkeys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = rose.get(&path).await;
    assert_eq!(
        STANDARD.decode(body["material"].as_str().unwrap()).unwrap(),
        largest
    );
    let (status, _) = server.anonymous().get(&path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn passkeys_are_off_when_the_server_is_reached_by_a_bare_ip_address() {
    let server = TestServer::start_with(|c| {
        c.public_url = Some("http://192.0.2.7:8080".into());
    })
    .await;
    let (status, body) = server
        .anonymous()
        .post("/api/v1/sessions/passkey", json!({}))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "passkeys_unavailable");
    assert!(body["message"].as_str().unwrap().contains("--public-url"));
}
