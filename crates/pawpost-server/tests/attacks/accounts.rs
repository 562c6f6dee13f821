//! Password guessing against accounts: racing the sign-in limit, locking an owner out,
//! and guessing through a stolen session.
use super::common::{TestServer, GOOD_PASSWORD, TEST_LOGIN_FAILURES};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

/// Simultaneous guesses in these stories: fewer than the connections one address may
/// have pending, so that every guess reaches the password check.
const GUESSES: usize = 30;

/// The browser's device cookie (`name=value`) from a sign-in response, if it set one.
fn device_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with("pawpost_device="))
        .map(str::to_owned)
}

/// A sign-in from a browser that holds `cookie` (or none).
async fn sign_in_from(
    server: &TestServer,
    cookie: Option<&str>,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": password}));
    if let Some(cookie) = cookie {
        request = request.header(reqwest::header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m4_thirty_simultaneous_guesses_get_no_more_tries_than_the_limit() {
    let server = TestServer::start_with(|c| {
        c.login_failures_per_account.max = 10;
        c.hash_workers = 1;
    })
    .await;
    server.person("rose@example.org", "Rose").await;
    // A guesser fires 30 wrong passwords for Rose at the same moment (as many as one
    // address may open at once).
    let guesses: Vec<_> = (0..GUESSES)
        .map(|i| {
            let anon = server.anonymous();
            tokio::spawn(async move {
                anon.post(
                    "/api/v1/sessions",
                    json!({"email": "rose@example.org", "password": format!("guess number {i} for rose")}),
                )
                .await
                .0
            })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        let status = guess.await.unwrap();
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        if status == StatusCode::UNAUTHORIZED {
            checked += 1;
        }
    }
    assert!(
        checked <= 10,
        "{checked} of {GUESSES} simultaneous guesses were checked against a limit of 10"
    );
}

#[tokio::test]
async fn m4_ten_wrong_passwords_from_a_stranger_do_not_lock_the_owner_out() {
    let server = TestServer::start_with(|c| c.insecure_cookies = true).await;
    server.person("rose@example.org", "Rose").await;
    // Rose signed in on her laptop before; the browser keeps what the server gave it.
    let first = sign_in_from(&server, None, "rose@example.org", GOOD_PASSWORD).await;
    assert_eq!(first.status(), StatusCode::OK);
    let laptop = device_cookie(&first);

    // A stranger who knows her email address uses up the account's tries, and more.
    for i in 0..TEST_LOGIN_FAILURES + 3 {
        let wrong = sign_in_from(
            &server,
            None,
            "rose@example.org",
            &format!("a stranger's guess {i}"),
        )
        .await;
        assert!([StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&wrong.status()));
    }
    let stranger = sign_in_from(&server, None, "rose@example.org", "one more guess, at last").await;
    assert_eq!(
        stranger.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the stranger is still stopped"
    );
    let stranger = sign_in_from(&server, None, "rose@example.org", GOOD_PASSWORD).await;
    assert_eq!(
        stranger.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits on a browser the account does not know"
    );

    // Rose, on her own laptop, signs in as usual.
    let rose = sign_in_from(
        &server,
        laptop.as_deref(),
        "rose@example.org",
        GOOD_PASSWORD,
    )
    .await;
    assert!(
        laptop.is_some(),
        "signing in gave the laptop no device cookie"
    );
    assert_eq!(
        rose.status(),
        StatusCode::OK,
        "the stranger's guesses locked the owner out"
    );
    // Her laptop's own typos count on their own, and stop there too.
    let laptop = device_cookie(&rose).or(laptop);
    for i in 0..TEST_LOGIN_FAILURES {
        let typo = sign_in_from(
            &server,
            laptop.as_deref(),
            "rose@example.org",
            &format!("rose's typo {i}"),
        )
        .await;
        assert_eq!(typo.status(), StatusCode::UNAUTHORIZED);
    }
    let typo = sign_in_from(
        &server,
        laptop.as_deref(),
        "rose@example.org",
        "rose's last typo",
    )
    .await;
    assert_eq!(typo.status(), StatusCode::TOO_MANY_REQUESTS);

    // A cookie from Rose's laptop does nothing for another account.
    server.person("ann@example.org", "Ann").await;
    for i in 0..TEST_LOGIN_FAILURES + 1 {
        sign_in_from(
            &server,
            None,
            "ann@example.org",
            &format!("guess for ann {i}"),
        )
        .await;
    }
    let borrowed = sign_in_from(&server, laptop.as_deref(), "ann@example.org", GOOD_PASSWORD).await;
    assert_eq!(borrowed.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m5_a_stolen_session_cannot_guess_the_password_through_delete_nor_starve_sign_ins() {
    let server = TestServer::start_with(|c| {
        c.hash_workers = 1;
        c.hash_queue = 4;
    })
    .await;
    let (mum, _) = server.person("mum@example.org", "Mum").await;
    let anon = server.anonymous();
    let (status, bea) = anon
        .call(
            Method::POST,
            "/api/v1/accounts",
            Some(json!({"email": "bea@example.org", "password": GOOD_PASSWORD, "display_name": "Bea"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bea}");

    // A thief holding Mum's session token keeps 30 guesses going at once, to delete her
    // account.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicUsize::new(0));
    let hammering = Arc::new(Notify::new());
    let thieves: Vec<_> = (0..GUESSES)
        .map(|i| {
            let (thief, stop, started, hammering) = (
                mum.clone(),
                stop.clone(),
                started.clone(),
                hammering.clone(),
            );
            tokio::spawn(async move {
                let mut answers = Vec::new();
                for round in 0.. {
                    let (status, _) = thief
                        .call(
                            Method::DELETE,
                            "/api/v1/accounts/me",
                            Some(json!({"password": format!("thief's guess {i}.{round}")})),
                        )
                        .await;
                    answers.push(status);
                    if round == 0 && started.fetch_add(1, Ordering::SeqCst) + 1 == GUESSES {
                        hammering.notify_one();
                    }
                    if stop.load(Ordering::SeqCst) {
                        return answers;
                    }
                }
                unreachable!("the loop ends when the story says stop")
            })
        })
        .collect();
    // While every one of them is guessing, Bea signs in with her right password.
    hammering.notified().await;
    for _ in 0..3 {
        let (status, body) = anon
            .post(
                "/api/v1/sessions",
                json!({"email": "bea@example.org", "password": GOOD_PASSWORD}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "Bea's sign-in was refused while a thief guessed: {body}"
        );
    }
    stop.store(true, Ordering::SeqCst);

    let (mut checked, mut refused) = (0, 0);
    for thief in thieves {
        for status in thief.await.unwrap() {
            match status {
                StatusCode::FORBIDDEN => checked += 1,
                StatusCode::TOO_MANY_REQUESTS => refused += 1,
                other => panic!("a guess was answered {other}"),
            }
        }
    }
    assert!(
        checked <= TEST_LOGIN_FAILURES as usize,
        "{checked} guesses were checked against a limit of {TEST_LOGIN_FAILURES}"
    );
    assert!(refused > 0);
    // The thief is cut off, and Mum's account is still there.
    let (status, _) = mum
        .call(
            Method::DELETE,
            "/api/v1/accounts/me",
            Some(json!({"password": "the thief's next guess"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(mum.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    // Changing the password asks for it too, under the same limit.
    let (status, _) = mum
        .call(
            Method::PUT,
            "/api/v1/accounts/me/password",
            Some(json!({"current_password": "yet another guess", "new_password": "copper lantern meadow quartz"})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}
