//! Notification mails: each kind reaches the outbox (and one a real SMTP server) in plain
//! words that name the household and never the child or a message's content; a person
//! switches a kind off on the Security page's API or with the mail's one-click link, which
//! needs no session and refuses a forged token; a chatty toy sends one mail per household
//! per person in ten minutes; deleting a household takes its mails out of the outbox.
use pawpost_testkit::server as common;

use base64::Engine;
use common::family::*;
use common::mail::{outbox, raw_mails_in, SmtpServer, MAIL_WAIT};
use common::toys::*;
use common::{invited_member, parent_with_household, Client, TestServer};
use pawpost_crypto::MediaType;
use pawpost_toy_sim::SimEvent;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

/// How long to wait before concluding that a mail was not sent.
const QUIET_WAIT: Duration = Duration::from_millis(1500);
const REPLY: &[u8] = include_bytes!("../../pawpost-media/tests/fixtures/chime-stereo-60ms.ogg");

/// One mail: its raw headers and its decoded text.
#[derive(Debug, Clone)]
struct Mail {
    headers: String,
    text: String,
}

impl Mail {
    fn parse(raw: &str) -> Mail {
        let (headers, body) = raw
            .split_once("\r\n\r\n")
            .or(raw.split_once("\n\n"))
            .unwrap_or((raw, ""));
        let lower = headers.to_ascii_lowercase();
        let text = if lower.contains("content-transfer-encoding: base64") {
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap(),
            )
            .unwrap()
        } else if lower.contains("content-transfer-encoding: quoted-printable") {
            String::from_utf8(
                quoted_printable::decode(body, quoted_printable::ParseMode::Robust).unwrap(),
            )
            .unwrap()
        } else {
            body.to_owned()
        };
        Mail {
            headers: headers.replace("\r\n ", " ").replace("\r\n\t", " "),
            text: text.replace("\r\n", "\n"),
        }
    }

    fn to(&self, address: &str) -> bool {
        self.headers.contains(&format!("To: {address}"))
    }

    /// The unsubscribe link in the text.
    fn unsubscribe_link(&self) -> String {
        let start = self
            .text
            .find("/api/v1/notifications/unsubscribe?token=")
            .unwrap_or_else(|| panic!("no unsubscribe link in {}", self.text));
        let from_scheme = self.text[..start].rfind("http").unwrap();
        self.text[from_scheme..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    }
}

fn mails_in(dir: &Path) -> Vec<Mail> {
    raw_mails_in(dir)
        .iter()
        .map(|raw| Mail::parse(raw))
        .collect()
}

fn matching(dir: &Path, to: &str, needle: &str) -> Vec<Mail> {
    mails_in(dir)
        .into_iter()
        .filter(|m| m.to(to) && m.text.contains(needle))
        .collect()
}

async fn wait_for_mail(dir: &Path, to: &str, needle: &str) -> Mail {
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        if let Some(mail) = matching(dir, to, needle).into_iter().next() {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail to {to} containing {needle:?} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every notification mail says what happened in which household, carries its kind's
/// unsubscribe link in the text and in RFC 8058's headers, and names no child and no
/// content.
fn assert_notification(mail: &Mail) {
    assert!(mail.text.contains("Lee family"), "{mail:?}");
    assert!(
        mail.headers
            .contains("List-Unsubscribe: <http://127.0.0.1:"),
        "{mail:?}"
    );
    assert!(
        mail.headers
            .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{mail:?}"
    );
    assert!(mail.unsubscribe_link().contains("token="));
}

async fn settings_of(who: &Client) -> serde_json::Value {
    let (status, body) = who.get("/api/v1/accounts/me/notifications").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn enabled(settings: &serde_json::Value, kind: &str) -> bool {
    settings["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {settings}"))["enabled"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn every_kind_reaches_the_outbox_and_a_chatty_toy_sends_one_mail_per_ten_minutes() {
    let f = family().await;
    let outbox = outbox(&f.server);
    // Gran joined (mum is asked to approve) and mum approved her (gran is told).
    let waiting = wait_for_mail(&outbox, "mum@example.org", "waits for your approval").await;
    assert_notification(&waiting);
    assert!(waiting.text.contains("Relative"), "the newcomer's name");
    let approved = wait_for_mail(&outbox, "gran@example.org", "A parent approved you").await;
    assert_notification(&approved);

    // An invitation to an address with an account follows that person's switch and
    // carries their link.
    let (_aunt, _) = f.server.person("aunt@example.org", "Aunt").await;
    let (status, body) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/invitations", f.home),
            json!({"email": "aunt@example.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let invitation = wait_for_mail(&outbox, "aunt@example.org", "You are invited").await;
    assert_notification(&invitation);
    assert!(invitation.unsubscribe_link().contains(".invitation."));

    // The child answers twice in a row: gran hears once, and is told there may be more.
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f, &f.server).await;
    let mut events = toy.events();
    for _ in 0..2 {
        toy.record(REPLY.to_vec());
        pawpost_toy_sim::next_event(
            &mut events,
            |e| matches!(e, SimEvent::Uploaded { .. }),
            STEP,
        )
        .await
        .unwrap();
    }
    let replied = wait_for_mail(
        &outbox,
        "gran@example.org",
        "There is a new message from the toy in",
    )
    .await;
    assert_notification(&replied);
    assert!(
        replied.text.contains("There may be more since."),
        "{replied:?}"
    );
    tokio::time::sleep(QUIET_WAIT).await;
    assert_eq!(
        matching(&outbox, "gran@example.org", "new message from the toy").len(),
        1,
        "one mail per household per person in ten minutes"
    );

    // Gran's message the toy cannot play (not Ogg Opus inside the sealed envelope): the
    // toy's refusal reaches her by mail.
    let (broken, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        b"this is not a recording",
    );
    assert_eq!(
        upload(&f.gran, &f.home, broken).await.0,
        StatusCode::CREATED
    );
    let not_played = wait_for_mail(&outbox, "gran@example.org", "could not play").await;
    assert_notification(&not_played);

    // No mail ever holds what was said.
    for mail in mails_in(&outbox) {
        assert!(!mail.text.contains("this is not a recording"));
    }
    toy.stop().await;
}

#[tokio::test]
async fn a_switched_off_kind_is_not_sent_and_the_mails_link_switches_off_without_a_session() {
    let server = TestServer::start().await;
    let outbox = outbox(&server);
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let all = settings_of(&mum).await;
    assert_eq!(all["settings"].as_array().unwrap().len(), 5, "{all}");
    assert!(all["settings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["enabled"] == true));

    // Mum switches "waits for approval" off: a relative joins, and no mail comes; gran's
    // approval (still on for her) does.
    let (status, saved) = mum
        .call(
            reqwest::Method::PUT,
            "/api/v1/accounts/me/notifications",
            Some(json!({"settings": [{"kind": "approval_waiting", "enabled": false}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert!(!enabled(&saved, "approval_waiting"));
    assert!(enabled(&saved, "child_replied"));
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
        json!({}),
    )
    .await;
    let approved = wait_for_mail(&outbox, "gran@example.org", "A parent approved you").await;
    tokio::time::sleep(QUIET_WAIT).await;
    assert!(matching(&outbox, "mum@example.org", "waits for your approval").is_empty());
    let (_, activity) = mum.get("/api/v1/accounts/me/activity").await;
    assert!(
        activity.to_string().contains("approval_waiting:off"),
        "{activity}"
    );

    // Gran follows the link in her mail, signed out: the kind is off, and a plain page
    // says so.
    let link = approved.unsubscribe_link();
    let http = server.http_client();
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = page.text().await.unwrap();
    assert!(text.contains("Emails switched off"), "{text}");
    assert!(!enabled(&settings_of(&gran).await, "approved"));

    // A forged or cut token is refused with a plain page, and changes nothing.
    let path = link.split_once("/api/").unwrap().1;
    let forged = format!("{}/api/{}", server.base, &path[..path.len() - 2]) + "00";
    for bad in [
        forged,
        server.url("/api/v1/notifications/unsubscribe?token=nonsense"),
        server.url("/api/v1/notifications/unsubscribe"),
    ] {
        let refused = http.get(&bad).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(refused.text().await.unwrap().contains("did not work"));
    }

    // Gran switches "approved" back on and "child replied" is untouched; then the mail
    // program's one-click POST (RFC 8058) switches it off again, without a session.
    let (status, _) = gran
        .call(
            reqwest::Method::PUT,
            "/api/v1/accounts/me/notifications",
            Some(json!({"settings": [{"kind": "approved", "enabled": true}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(enabled(&settings_of(&gran).await, "approved"));
    let one_click = http
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), StatusCode::OK);
    let now = settings_of(&gran).await;
    assert!(!enabled(&now, "approved"));
    assert!(enabled(&now, "child_replied"));

    // An unknown kind is refused by the API.
    let (status, _) = gran
        .call(
            reqwest::Method::PUT,
            "/api/v1/accounts/me/notifications",
            Some(json!({"settings": [{"kind": "everything", "enabled": false}]})),
        )
        .await;
    assert!(status.is_client_error(), "{status}");

    // Deleting the household takes the outbox's mails about it too.
    assert!(!matching(&outbox, "gran@example.org", "Lee family").is_empty());
    let (status, _) = mum
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/households/{home}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        mails_in(&outbox)
            .iter()
            .all(|m| !m.text.contains("Lee family")),
        "no mail about the deleted household is kept"
    );
}

#[tokio::test]
async fn a_notification_goes_through_a_real_smtp_server() {
    let Some(smtpd) = SmtpServer::start().await else {
        return;
    };
    let server = TestServer::start_with(|c| c.smtp_url = Some(smtpd.url())).await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    let new_mail = smtpd.received();
    let waiting = wait_for_mail(&new_mail, "mum@example.org", "waits for your approval").await;
    assert!(waiting.text.contains("Lee family"), "{waiting:?}");
    assert!(
        waiting
            .headers
            .contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{waiting:?}"
    );
    // The link in the mail works.
    let link = waiting.unsubscribe_link();
    let page = server.http_client().post(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(!enabled(&settings_of(&mum).await, "approval_waiting"));
}
