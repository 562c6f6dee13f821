//! Email: new sign-in alerts and invitations, through a real SMTP server on loopback or
//! the outbox folder; and the breach report that tells exactly who was affected.
use pawpost_testkit::server as common;

use common::mail::{raw_mails_in as mails_in, SmtpServer, MAIL_WAIT};
use common::{parent_with_household, TestServer, GOOD_PASSWORD};
use pawpost_server::admin::{breach_report, notify, BreachScope, Incident};
use pawpost_server::mail::Mailer;
use reqwest::StatusCode;
use serde_json::json;
use std::path::Path;
use std::time::Duration;

async fn wait_for_mail(dir: &Path, needle: &str) -> String {
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        if let Some(mail) = mails_in(dir).into_iter().find(|m| m.contains(needle)) {
            return mail;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no mail containing {needle:?} in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn without_smtp_alerts_and_invitations_land_in_the_outbox() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let outbox = server.data.path().join("data/outbox");
    let alert = wait_for_mail(&outbox, "New sign-in").await;
    assert!(alert.contains("To: mum@example.org"), "{alert}");
    assert!(alert.contains("127.0.0.1"));
    let (status, invitation) = mum
        .post(
            &format!("/api/v1/households/{home}/invitations"),
            json!({"email": "gran@example.org"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = invitation["token"].as_str().unwrap();
    let invite = wait_for_mail(&outbox, "To: gran@example.org").await;
    assert!(
        invite.replace("=\r\n", "").contains(token),
        "the link is in the mail: {invite}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

#[tokio::test]
async fn alerts_go_through_a_real_smtp_server() {
    let Some(smtpd) = SmtpServer::start().await else {
        return;
    };
    let server = TestServer::start_with(|c| c.smtp_url = Some(smtpd.url())).await;
    let (ann, _) = server.person("ann@example.org", "Ann").await;
    let new_mail = smtpd.received();
    let alert = wait_for_mail(&new_mail, "New sign-in").await;
    assert!(alert.contains("ann@example.org"), "{alert}");

    // A forgotten password, through the same SMTP server: the link works and ends Ann's
    // other sessions, and the account is told.
    let (status, body) = server
        .anonymous()
        .post(
            "/api/v1/password-resets",
            json!({ "email": "ann@example.org" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let raw = wait_for_mail(&new_mail, "Subject: Choose a new pawpost password").await;
    let (_, encoded) = raw
        .split_once("\r\n\r\n")
        .or(raw.split_once("\n\n"))
        .unwrap();
    let decoded = quoted_printable::decode(encoded, quoted_printable::ParseMode::Robust).unwrap();
    let text = String::from_utf8_lossy(&decoded);
    let token = text
        .split_once("/reset#")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("a reset link in the mail:\n{text}"))
        .to_owned();
    let (status, body) = server
        .anonymous()
        .post(
            "/api/v1/password-resets/confirm",
            json!({ "token": token, "new_password": "copper kettle hums at dawn" }),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, _) = ann.get("/api/v1/accounts/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old session ended");
    wait_for_mail(&new_mail, "Subject: Your pawpost password was reset").await;
    assert!(
        mails_in(&server.data.path().join("data/outbox")).is_empty(),
        "nothing went to the outbox"
    );
}

#[tokio::test]
async fn a_breach_report_names_exactly_who_the_incident_reached_and_notifies_them() {
    let server = TestServer::start().await;
    let state = server.server.as_ref().unwrap().state.clone();
    server.person("before@example.org", "Before").await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let since = time::OffsetDateTime::now_utc();
    server.person("ann@example.org", "Ann").await;
    server.sign_in("ann@example.org", GOOD_PASSWORD).await;
    let (status, _) = server
        .anonymous()
        .post(
            "/api/v1/sessions",
            json!({"email": "bea@example.org", "password": "guessing guessing"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let until = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;
    server.person("after@example.org", "After").await;

    let emails = |affected: &[pawpost_server::admin::Affected]| {
        let mut e: Vec<String> = affected
            .iter()
            .filter_map(|a| a.email.as_ref().map(|e| e.to_string()))
            .collect();
        e.sort();
        e
    };
    let sign_ins = breach_report(state.store.as_ref(), since, until, BreachScope::SignIns)
        .await
        .unwrap();
    assert_eq!(
        emails(&sign_ins),
        ["ann@example.org"],
        "only who signed in during the incident"
    );
    let all = breach_report(state.store.as_ref(), since, until, BreachScope::All)
        .await
        .unwrap();
    assert_eq!(
        emails(&all),
        ["ann@example.org", "before@example.org"],
        "everyone held then; not later sign-ups"
    );

    let outbox = tempfile::tempdir().unwrap();
    let mailer = Mailer::new(None, pawpost_server::mail::DEFAULT_MAIL_FROM, outbox.path()).unwrap();
    let incident = Incident {
        what_happened: "A backup copy of the database was exposed.".into(),
        information_involved: "Email addresses and display names.".into(),
        contact: "mailto:safety@toys.example".into(),
        since,
        until,
    };
    assert_eq!(
        notify(state.store.as_ref(), &mailer, &all, &incident).await,
        2
    );
    let notices = mails_in(&outbox.path().join("outbox"));
    assert_eq!(notices.len(), 2);
    for notice in &notices {
        let text = notice.replace("=\r\n", "");
        let headings = [
            "What Happened",
            "What Information Was Involved",
            "What We Are Doing",
            "What You Can Do",
            "For More Information",
        ];
        let positions: Vec<usize> = headings
            .iter()
            .map(|h| text.find(h).unwrap_or_else(|| panic!("{h} missing")))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "the headings come in order"
        );
        assert!(text.contains("Subject: Notice of Data Breach"));
    }
    let trail = state.store.audit_entries(0, 1000).await.unwrap();
    assert_eq!(
        trail
            .iter()
            .filter(|e| e.record.action == "breach_notice_sent")
            .count(),
        2,
        "each notice is in the trail"
    );
}
