//! Every password check goes through [`check_password`]: signing in, and the password
//! asked again before changing it or deleting the account. One set of limits covers
//! them all, so a stolen session guesses no faster than a stranger at the sign-in form.
//!
//! Attempts are counted before the password is hashed ([`Limiter::reserve`]), so that
//! simultaneous guesses cannot all pass the check before any is counted; an attempt
//! that succeeds is handed back.
//!
//! A stranger who knows an email address must not be able to lock its owner out by
//! guessing (OWASP's "device cookies"). After a successful check the browser gets a
//! device cookie bound to the account; attempts that bring a valid one are counted for
//! that browser alone ([`LimitName::LoginPerDevice`]), not against the account's limit
//! for unknown clients, nor the per-address limit. A stranger's guesses therefore lock
//! out only clients the account does not know.
//!
//! The cookie is `ISSUED.NONCE.TAG`, where TAG is an HMAC-SHA256 keyed by the account's
//! stored password hash: every process sharing the database can check it without
//! storing anything more, a changed password revokes every cookie, and a forged cookie
//! needs the password hash, which already allows offline guessing.
//!
//! Links to choose a forgotten password are not made this way: a forged one would set
//! the password, so whoever could read the stored hashes could take over accounts
//! without guessing. Their tokens are random and stored hashed (see
//! [`crate::services::accounts::request_password_reset`]).
use crate::passwords::HashError;
use crate::ratelimit::{address_key, KeyHash, LimitName};
use crate::relay::{self, Note};
use crate::state::AppState;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use pawpost_domain::Account;
use sha2::Sha256;
use std::net::IpAddr;
use std::time::Duration;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

/// How long a browser stays known after its last successful password check.
pub const DEVICE_TRUST: Duration = Duration::from_secs(DEVICE_TRUST_SECS.unsigned_abs());
/// [`DEVICE_TRUST`] in seconds, as a Unix time difference.
const DEVICE_TRUST_SECS: i64 = 180 * 24 * 3600;
/// Random bytes naming one browser in its device cookie.
const DEVICE_NONCE_BYTES: usize = 16;
/// Separates device cookie tags from any other use of the same key.
const DEVICE_TAG_CONTEXT: &[u8] = b"pawpost device cookie v1\0";

/// Who is asking: the client's address and the device cookie it sent, if any.
pub struct Client<'a> {
    pub address: IpAddr,
    pub device_cookie: Option<&'a str>,
}

#[derive(Debug)]
pub enum PasswordCheckError {
    /// The password is wrong (or the account does not exist).
    Wrong,
    /// Too many wrong passwords; try again after this long.
    Throttled(Duration),
    /// No check was made: the account already has checks under way, or the server's
    /// queue is full.
    Busy(HashError),
}

/// Checks `password` for the account named by `account_key` (its normalised email
/// address), which is `account` when it exists; an unknown account costs the same work
/// and counts against the same limits, so that the answer says nothing.
pub async fn check_password(
    state: &AppState,
    account_key: &str,
    account: Option<&Account>,
    password: &str,
    client: &Client<'_>,
) -> Result<(), PasswordCheckError> {
    let device = account.and_then(|a| known_device(a, client.device_cookie?));
    let trusted = device.is_some();
    let counted: Vec<(LimitName, String)> = match device {
        Some(device) => vec![(LimitName::LoginPerDevice, device)],
        None => vec![
            (LimitName::LoginPerAddress, address_key(client.address)),
            (LimitName::LoginPerAccount, account_key.to_owned()),
        ],
    };
    for (i, (name, key)) in counted.iter().enumerate() {
        if let Err(retry) = state.limits.get(*name).reserve(key) {
            for (name, key) in &counted[..i] {
                state.limits.get(*name).refund(key);
            }
            return Err(PasswordCheckError::Throttled(retry));
        }
    }
    let (name, key) = counted.last().expect("at least one limit applies");
    let matched = state
        .hasher
        .verify(
            &format!("{}/{key}", name.as_str()),
            pawpost_domain::password::normalise(password),
            account.map(|a| a.password_hash.clone()),
        )
        .await;
    match matched {
        Ok(true) if trusted => {
            relay::forgive(state, *name, key).await;
            Ok(())
        }
        Ok(true) => {
            for (name, key) in &counted {
                state.limits.get(*name).refund(key);
            }
            Ok(())
        }
        Ok(false) => {
            // Counted here already; the other processes count it now.
            for (name, key) in &counted {
                let key = KeyHash::of(key);
                relay::announce(state, Note::Attempt { limit: *name, key }).await;
            }
            Err(PasswordCheckError::Wrong)
        }
        Err(e) => {
            for (name, key) in &counted {
                state.limits.get(*name).refund(key);
            }
            Err(PasswordCheckError::Busy(e))
        }
    }
}

/// The value of a new device cookie for the browser that just proved it knows
/// `account`'s password (the HTTP layer sets it, for [`DEVICE_TRUST`]).
pub fn new_device_cookie(account: &Account) -> String {
    let issued = OffsetDateTime::now_utc().unix_timestamp();
    let nonce: [u8; DEVICE_NONCE_BYTES] = rand::random();
    let tag = device_tag(account, issued, &nonce);
    format!(
        "{issued}.{}.{}",
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// The limiter key of the browser behind `cookie` when the cookie is valid for
/// `account` and not expired.
fn known_device(account: &Account, cookie: &str) -> Option<String> {
    let mut parts = cookie.split('.');
    let issued: i64 = parts.next()?.parse().ok()?;
    let nonce = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    let tag = URL_SAFE_NO_PAD.decode(parts.next()?).ok()?;
    if parts.next().is_some() || nonce.len() != DEVICE_NONCE_BYTES {
        return None;
    }
    let age = OffsetDateTime::now_utc().unix_timestamp() - issued;
    if !(0..DEVICE_TRUST_SECS).contains(&age) {
        return None;
    }
    let expected = device_tag(account, issued, &nonce);
    if !bool::from(expected.as_slice().ct_eq(&tag)) {
        return None;
    }
    Some(format!("{}/{}", account.id, URL_SAFE_NO_PAD.encode(&nonce)))
}

fn device_tag(account: &Account, issued: i64, nonce: &[u8]) -> [u8; 32] {
    hmac_sha256(
        account.password_hash.as_bytes(),
        &[
            DEVICE_TAG_CONTEXT,
            account.id.0.as_bytes(),
            &issued.to_be_bytes(),
            nonce,
        ],
    )
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `message` parts.
fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in message {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pawpost_domain::{AccountId, Email};

    fn hex(bytes: &[u8]) -> String {
        hex::encode(bytes)
    }

    #[test]
    fn hmac_matches_the_rfc_4231_test_vectors() {
        assert_eq!(
            hex(&hmac_sha256(
                b"Jefe",
                &[b"what do ya want ", b"for nothing?"]
            )),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&hmac_sha256(
                &[0xaa; 131],
                &[b"Test Using Larger Than Block-Size Key - Hash Key First"]
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    fn account(password_hash: &str) -> Account {
        Account {
            id: AccountId::new(),
            email: Email::parse("rose@example.org").unwrap(),
            display_name: "Rose".into(),
            password_hash: password_hash.into(),
            created_at: OffsetDateTime::now_utc(),
            locked: false,
            email_verified_at: None,
        }
    }

    fn cookie_for(account: &Account, issued: i64) -> String {
        let nonce = [7; DEVICE_NONCE_BYTES];
        let tag = device_tag(account, issued, &nonce);
        format!(
            "{issued}.{}.{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    #[test]
    fn a_device_cookie_is_known_only_for_its_account_its_password_and_its_lifetime() {
        let rose = account("$argon2id$rose");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let cookie = cookie_for(&rose, now);
        assert!(known_device(&rose, &cookie).is_some());

        let ann = account("$argon2id$rose");
        assert!(known_device(&ann, &cookie).is_none(), "another account");
        let changed = Account {
            password_hash: "$argon2id$new".into(),
            ..rose.clone()
        };
        assert!(
            known_device(&changed, &cookie).is_none(),
            "a changed password"
        );
        let old = cookie_for(&rose, now - DEVICE_TRUST_SECS - 1);
        assert!(known_device(&rose, &old).is_none(), "an expired cookie");
        let forged = cookie.replace(&now.to_string(), &(now - 1).to_string());
        assert!(known_device(&rose, &forged).is_none(), "an edited cookie");
        for junk in ["", "1.2", "x.y.z", &format!("{cookie}.more")] {
            assert!(known_device(&rose, junk).is_none(), "{junk:?}");
        }
    }
}
