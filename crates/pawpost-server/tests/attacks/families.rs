//! Abusing the family features themselves: invitations as a spam relay, links left lying
//! in the outbox, a blocked relative walking back in, and names that lie about who wrote
//! them.
use super::common::{invited_member, parent_with_household, TestServer, GOOD_PASSWORD};
use base64::Engine;
use pawpost_server::config::{INVITATIONS_PER_ACCOUNT_PER_DAY, INVITATIONS_PER_HOUSEHOLD_PER_DAY};
use pawpost_server::mail::{OUTBOX_DIR, OUTBOX_MAX_AGE, OUTBOX_MAX_MAILS};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long to wait for mail sent in the background.
const MAIL_WAIT: Duration = Duration::from_secs(15);

fn mails_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect()
}

/// Waits (bounded) until the outbox holds `count` mails to addresses containing `to`.
async fn wait_for_mails(dir: &Path, to: &str, count: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + MAIL_WAIT;
    loop {
        let mails: Vec<String> = mails_in(dir)
            .into_iter()
            .filter(|m| m.contains(&format!("To: {to}")))
            .collect();
        if mails.len() >= count {
            return mails;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} mails to {to} in {}",
            mails.len(),
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The decoded Subject header of a formatted mail (RFC 2047 words, folded lines).
fn subject(mail: &str) -> String {
    let unfolded = mail.replace("\r\n ", " ").replace("\r\n\t", " ");
    let line = unfolded
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_else(|| panic!("no subject in {mail}"));
    // Space between two encoded words is not part of the text; any other space is.
    let mut text = String::new();
    let mut after_encoded = false;
    for (i, word) in line.split(' ').enumerate() {
        let encoded = word
            .to_ascii_lowercase()
            .strip_prefix("=?utf-8?b?")
            .and_then(|w| w.strip_suffix("?="))
            .map(|_| &word["=?utf-8?b?".len()..word.len() - 2]);
        if i > 0 && !(after_encoded && encoded.is_some()) {
            text.push(' ');
        }
        match encoded {
            Some(encoded) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .unwrap_or_else(|e| panic!("{word}: {e}"));
                text.push_str(&String::from_utf8(bytes).unwrap());
            }
            None => text.push_str(word),
        }
        after_encoded = encoded.is_some();
    }
    text
}

/// The decoded text of a quoted-printable mail body.
fn body(mail: &str) -> String {
    let raw = mail.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let bytes = quoted_printable::decode(raw, quoted_printable::ParseMode::Robust)
        .unwrap_or_else(|e| panic!("the mail body is not quoted-printable: {e}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Posts an invitation for `email`; the status, the Retry-After seconds and the body.
async fn invite(
    server: &TestServer,
    token: &str,
    home: &str,
    email: &str,
) -> (StatusCode, Option<u64>, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/households/{home}/invitations")))
        .bearer_auth(token)
        .json(&json!({"email": email}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let retry = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (status, retry, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l1_a_spammer_cannot_send_sixty_invitations_with_an_advert_for_a_name() {
    let server = TestServer::start().await;
    let advert = "WIN A FREE PHONE at prizes.example";
    let (spammer, _) = server.person("prizes@example.org", advert).await;
    let (status, home) = spammer
        .post("/api/v1/households", json!({"name": "Lee family"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{home}");
    let home = home["id"].as_str().unwrap().to_owned();
    let token = spammer.token.clone().unwrap();

    // Sixty strangers' addresses, as fast as the server answers.
    let mut sent = 0;
    let mut refused = 0;
    for i in 0..60 {
        let (status, retry, body) =
            invite(&server, &token, &home, &format!("victim{i}@example.net")).await;
        match status {
            StatusCode::CREATED => sent += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert_eq!(body["error"], "rate_limited", "{body}");
                assert!(
                    body["message"].as_str().unwrap().contains("invitations"),
                    "{body}"
                );
                let retry = retry.expect("a Retry-After header");
                assert!(retry > 0 && retry <= 24 * 3600, "{retry}");
            }
            other => panic!("invitation {i}: {other} {body}"),
        }
    }
    let limit = INVITATIONS_PER_ACCOUNT_PER_DAY.min(INVITATIONS_PER_HOUSEHOLD_PER_DAY) as usize;
    assert_eq!(sent, limit);
    assert_eq!(refused, 60 - limit);

    // What went out names the household, in quotes, and never opens with his advert.
    let outbox = server.data.path().join("data").join(OUTBOX_DIR);
    let mails = wait_for_mails(&outbox, "victim", limit).await;
    assert_eq!(
        mails.len(),
        limit,
        "only the invitations let through were mailed"
    );
    for mail in &mails {
        assert_eq!(
            subject(mail),
            "Invitation to join \u{201c}Lee family\u{201d} on pawpost"
        );
        let text = body(mail);
        assert!(!text.starts_with(advert), "{text}");
        assert!(
            text.contains(&format!("\u{201c}{advert}\u{201d}")),
            "the sender's name is quoted as a name: {text}"
        );
    }
}

#[tokio::test]
async fn l1_two_parents_share_their_household_s_daily_invitations() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (dad, dad_id) = invited_member(&server, &mum, &home, "dad@example.org", "guardian").await;
    let (status, _) = mum
        .post(
            &format!("/api/v1/households/{home}/members/{dad_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Mum's one invitation (dad's) counts too; each then invites until refused.
    let path = format!("/api/v1/households/{home}/invitations");
    let mut made = [1, 0];
    for (parent, count) in [&mum, &dad].into_iter().zip(&mut made) {
        loop {
            let (status, body) = parent.post(&path, json!({})).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert_eq!(body["error"], "rate_limited", "{body}");
                break;
            }
            assert_eq!(status, StatusCode::CREATED, "{body}");
            *count += 1;
            assert!(*count <= INVITATIONS_PER_ACCOUNT_PER_DAY, "no limit held");
        }
    }
    assert_eq!(made[0], INVITATIONS_PER_ACCOUNT_PER_DAY);
    assert_eq!(made[0] + made[1], INVITATIONS_PER_HOUSEHOLD_PER_DAY);
    // In a household of his own only his own daily count holds, and he has some left.
    assert!(made[1] < INVITATIONS_PER_ACCOUNT_PER_DAY);
    let (status, own) = dad
        .post("/api/v1/households", json!({"name": "Dad's flat"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = dad
        .post(
            &format!(
                "/api/v1/households/{}/invitations",
                own["id"].as_str().unwrap()
            ),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Writes a mail-like file into `outbox`, last modified `age` ago.
fn plant(outbox: &Path, name: &str, age: Duration) {
    let path = outbox.join(name);
    std::fs::write(
        &path,
        "To: someone@example.org\r\n\r\nhttp://127.0.0.1/join#secret\r\n",
    )
    .unwrap();
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn l3_a_burglar_finds_no_old_links_in_the_outbox() {
    let server = TestServer::start_with(|config| {
        let outbox = config.data_dir.join(OUTBOX_DIR);
        std::fs::create_dir_all(&outbox).unwrap();
        // A week-old invitation nobody used, and a pile of recent mail.
        plant(
            &outbox,
            "old-invitation.eml",
            OUTBOX_MAX_AGE + Duration::from_secs(3600),
        );
        for i in 0..OUTBOX_MAX_MAILS + 20 {
            plant(
                &outbox,
                &format!("recent-{i:04}.eml"),
                Duration::from_secs(60),
            );
        }
    })
    .await;
    let outbox = server.data.path().join("data").join(OUTBOX_DIR);
    let names = || -> Vec<String> {
        std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let left = names();
    assert!(
        !left.contains(&"old-invitation.eml".to_owned()),
        "mail older than the outbox keeps it is gone at start"
    );
    assert!(left.len() <= OUTBOX_MAX_MAILS, "{} mails kept", left.len());

    // New mail still arrives, and the pile stays bounded.
    server.person("mum@example.org", "Mum").await;
    wait_for_mails(&outbox, "mum@example.org", 1).await;
    assert!(names().len() <= OUTBOX_MAX_MAILS);
}

#[tokio::test]
async fn l4_a_blocked_relative_cannot_walk_back_in_by_leaving_and_rejoining() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (uncle, uncle_id) =
        invited_member(&server, &mum, &home, "uncle@example.org", "family").await;
    let member_path = format!("/api/v1/households/{home}/members/{uncle_id}");
    let (status, _) = mum.post(&format!("{member_path}/block"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // The blocked uncle leaves; the household is no longer in his list.
    let (status, _) = uncle.call(Method::DELETE, &member_path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, mine) = uncle.get("/api/v1/households").await;
    assert_eq!(mine, json!([]));

    // He gets hold of a fresh invitation meant for someone else, and is refused.
    let (status, invitation) = mum
        .post(&format!("/api/v1/households/{home}/invitations"), json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = uncle
        .post(
            "/api/v1/invitations/accept",
            json!({"token": invitation["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "blocked_here");

    // Mum still sees him blocked; the invitation still works for the cousin it was for.
    let (_, members) = mum.get(&format!("/api/v1/households/{home}/members")).await;
    let listed = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account_id"] == uncle_id.as_str())
        .expect("the blocked uncle stays listed for the parents");
    assert_eq!(listed["status"], "blocked");
    let (cousin, _) = server.person("cousin@example.org", "Cousin").await;
    let (status, joined) = cousin
        .post(
            "/api/v1/invitations/accept",
            json!({"token": invitation["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");

    // Only when mum lifts the block may he come back, through a new invitation.
    let (status, _) = mum.post(&format!("{member_path}/unblock"), json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, members) = mum.get(&format!("/api/v1/households/{home}/members")).await;
    assert!(
        members
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["account_id"] != uncle_id.as_str()),
        "he had left, so lifting the block ends his place: {members}"
    );
    let (_, again) = mum
        .post(&format!("/api/v1/households/{home}/invitations"), json!({}))
        .await;
    let (status, joined) = uncle
        .post(
            "/api/v1/invitations/accept",
            json!({"token": again["token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{joined}");
    assert_eq!(joined["status"], "pending");
}

#[tokio::test]
async fn l5_a_look_alike_address_cannot_pose_as_mum() {
    let server = TestServer::start().await;
    server.person("mum.alpha@example.org", "Mum").await;
    let anon = server.anonymous();
    for (address, hint) in [
        // A Cyrillic "а" among Latin letters.
        ("mum.\u{430}lpha@example.org", "mixes"),
        // A Greek omicron in the domain.
        ("mum.alpha@exampl\u{3bf}.org", "mixes"),
        ("mum.alpha\u{200b}@example.org", "invisible"),
        ("\u{202e}mum.alpha@example.org", "invisible"),
        ("mum.alpha\u{e0041}@example.org", "invisible"),
    ] {
        let (status, body) = anon
            .post(
                "/api/v1/accounts",
                json!({"email": address, "password": GOOD_PASSWORD, "display_name": "Mum"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{address:?}: {body}"
        );
        assert_eq!(body["error"], "invalid_email", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains(hint),
            "{address:?}: {body}"
        );
    }
    // An address in one script of its own is someone's real address.
    let (status, body) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": "\u{43c}\u{430}\u{43c}\u{430}@example.org", "password": GOOD_PASSWORD, "display_name": "Мама"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn l5_names_cannot_hide_or_reverse_text() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let anon = server.anonymous();
    // "Gran" followed by a right-to-left override that shows "exe.txt" as "txt.exe".
    for name in [
        "Gran\u{202e}txt.exe",
        "Gr\u{200b}an",
        "Gran\u{2066}",
        "Gran\u{e0067}",
        "\u{feff}Gran",
    ] {
        let (status, body) = anon
            .post(
                "/api/v1/accounts",
                json!({"email": "gran@example.org", "password": GOOD_PASSWORD, "display_name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}: {body}");
        assert_eq!(body["error"], "invalid_name");
        assert!(
            body["message"].as_str().unwrap().contains("invisible"),
            "{body}"
        );
        let (status, _) = mum
            .call(
                Method::PATCH,
                &format!("/api/v1/households/{home}"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
    }
    // Emoji, even those joined into one picture, and other scripts are names.
    for name in [
        "Nana \u{1f475}",
        "The \u{1f468}\u{200d}\u{1f469}\u{200d}\u{1f467} family",
        "Gran \u{2764}\u{fe0f}",
        "\u{41b}\u{435}\u{43d}\u{430}",
    ] {
        let (status, body) = mum
            .call(
                Method::PATCH,
                &format!("/api/v1/households/{home}"),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{name:?}: {body}");
        assert_eq!(body["name"], name);
    }
}
