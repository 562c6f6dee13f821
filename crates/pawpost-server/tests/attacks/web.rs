//! Attacks through the web app's own door: script in names, cross-site requests,
//! oversized and slow bodies, and the security headers every answer carries.
use super::*;

// ---------------------------------------------------------------------------------------
// Script in names.

#[tokio::test]
async fn script_in_display_and_household_names_comes_back_as_json_text() {
    let server = TestServer::start().await;
    let script = "<script>alert('pawpost')</script>";
    let image = "<img src=x onerror=alert(1)>\"'&";
    let anon = server.anonymous();
    let (status, body) = anon
        .post(
            "/api/v1/accounts",
            json!({"email": "eve@example.org", "password": GOOD_PASSWORD, "display_name": script}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["display_name"], script, "stored as typed, as text");
    let eve = server.sign_in("eve@example.org", GOOD_PASSWORD).await;
    let (status, household) = eve.post("/api/v1/households", json!({"name": image})).await;
    assert_eq!(status, StatusCode::CREATED, "{household}");
    let id = household["id"].as_str().unwrap();
    let (status, renamed) = eve
        .call(
            Method::PATCH,
            &format!("/api/v1/households/{id}"),
            Some(json!({"name": format!("{image}{script}")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");

    for path in [
        "/api/v1/accounts/me".to_owned(),
        "/api/v1/households".to_owned(),
        format!("/api/v1/households/{id}"),
        format!("/api/v1/households/{id}/members"),
        "/api/v1/sessions/current".to_owned(),
    ] {
        let response = eve
            .http
            .get(server.url(&path))
            .bearer_auth(eve.token.as_ref().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{path}: JSON, never HTML"
        );
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        let text = response.text().await.unwrap();
        let value: Value = serde_json::from_str(&text).expect("valid JSON");
        assert!(
            value.to_string().contains(script) || value.to_string().contains(image),
            "{path}: the name comes back unchanged: {value}"
        );
    }
    // Control characters (a way to break out of log lines and headers) are refused.
    let (status, _) = eve
        .post(
            "/api/v1/households",
            json!({"name": "a\u{0}b\r\nSet-Cookie: x=y"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // The app page loads only its own scripts: no inline script could run.
    let page = reqwest::get(server.url("/")).await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains(script));
    // And the app only ever puts names into the page as text.
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web/js");
    let mut stack = vec![web];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "js") {
                let source = std::fs::read_to_string(&path).unwrap();
                for sink in [
                    ".innerHTML",
                    ".outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                ] {
                    assert!(!source.contains(sink), "{} uses {sink}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 5, "the web app's modules were found ({checked})");
}

// ---------------------------------------------------------------------------------------
// Cross-site request forgery.

#[tokio::test]
async fn cross_site_requests_cannot_use_the_cookie_on_any_state_changing_route() {
    let f = family().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[f.toy_keys.public(), f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);
    let (_, me) = f.mum.get("/api/v1/sessions/current").await;
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let token = f.mum.token.clone().unwrap();
    let (_, doc) = f.server.anonymous().get("/api/openapi.json").await;
    let http = reqwest::Client::new();
    // Routes that change state without a session: they make one (sign-in, with a
    // password or a passkey), an account, or a new password or a confirmed address from
    // an emailed link (or switch off a kind of mail with the link in it).
    let before_a_session = [
        "POST /api/v1/accounts",
        "POST /api/v1/sessions",
        "POST /api/v1/password-resets",
        "POST /api/v1/password-resets/confirm",
        "POST /api/v1/email-verifications/confirm",
        "POST /api/v1/notifications/unsubscribe",
        "POST /api/v1/accounts/passkey",
        "POST /api/v1/accounts/passkey/{ceremony}",
        "POST /api/v1/sessions/passkey",
        "POST /api/v1/sessions/passkey/{ceremony}",
    ];

    let mut checked = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if !["post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let route = format!("{} {path}", method.to_uppercase());
            let concrete = path
                .replace("{household_id}", &f.home)
                .replace("{account_id}", &f.gran_id)
                .replace("{message_id}", &voice_id.to_string());
            let method: Method = method.to_uppercase().parse().unwrap();
            let send = |csrf: Option<&str>, headers: &[(&str, &str)]| {
                let mut request = http
                    .request(method.clone(), f.server.url(&concrete))
                    .header("cookie", format!("pawpost_session={token}"))
                    .json(&json!({}));
                if let Some(csrf) = csrf {
                    request = request.header("x-csrf-token", csrf);
                }
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                request.send()
            };
            // A page on another site makes the browser send the cookie, but it cannot
            // read the CSRF token: without it, or with a wrong one, nothing happens.
            if !before_a_session.contains(&route.as_str()) {
                for wrong in [None, Some("wrong"), Some("")] {
                    let response = send(wrong, &[]).await.unwrap();
                    assert_eq!(
                        response.status(),
                        StatusCode::FORBIDDEN,
                        "{route} {wrong:?}"
                    );
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["error"], "csrf", "{route}");
                }
            }
            // Even with the right token, a request a browser marks as coming from
            // another site is refused before it reaches the route.
            for headers in [
                &[("origin", "https://evil.example")][..],
                &[("origin", "null")][..],
                &[("sec-fetch-site", "cross-site")][..],
            ] {
                let response = send(Some(&csrf), headers).await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::FORBIDDEN,
                    "{route} {headers:?}"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"], "cross_site", "{route}");
            }
            checked.push(route);
        }
    }
    for route in before_a_session {
        assert!(checked.iter().any(|r| r == route), "{route} documented");
    }
    assert!(checked.len() >= 20, "{checked:?}");

    // None of it happened: mum's account, her household, gran's membership and the
    // message are all still there, and mum's session still works.
    assert_eq!(f.mum.get("/api/v1/accounts/me").await.0, StatusCode::OK);
    let (status, household) = f.mum.get(&format!("/api/v1/households/{}", f.home)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(household["name"], "Lee family");
    let (_, members) = f
        .mum
        .get(&format!("/api/v1/households/{}/members", f.home))
        .await;
    let gran = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["account_id"] == f.gran_id)
        .expect("gran is still a member");
    assert_eq!(gran["status"], "approved");
    assert_eq!(
        download(&f.mum, &voice_id.to_string()).await.0,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------
// Oversized and slow bodies.

#[tokio::test]
async fn oversized_json_and_envelopes_are_refused_with_413() {
    let f = family().await;
    let http = reqwest::Client::new();
    let max_json = pawpost_server::config::DEFAULT_MAX_JSON_BYTES;
    let max_envelope = pawpost_server::config::DEFAULT_MAX_ENVELOPE_BYTES;
    let token = f.mum.token.clone().unwrap();

    // JSON one byte over the limit, anonymous and signed in.
    let big_name = format!("{{\"name\":\"{}\"}}", "a".repeat(max_json));
    for (path, auth) in [("/api/v1/accounts", false), ("/api/v1/households", true)] {
        let mut request = http
            .post(f.server.url(path))
            .header("content-type", "application/json")
            .body(big_name.clone());
        if auth {
            request = request.bearer_auth(&token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "body_too_large");
    }
    // An envelope one byte over the limit, and one that streams without a length.
    let blobs = blob_count(&f.server);
    let (status, _) = upload(&f.gran, &f.home, vec![0u8; max_envelope + 1]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let addr = f.server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/households/{}/messages HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: Bearer {}\r\nContent-Type: application/octet-stream\r\n\
         Transfer-Encoding: chunked\r\n\r\n",
        f.home,
        f.gran.token.as_ref().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![1u8; 64 * 1024];
    for _ in 0..(max_envelope / chunk.len() + 8) {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        // The server may answer and stop reading before the client has sent everything.
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = vec![0u8; 1024];
    let n = tokio::time::timeout(STEP, stream.read(&mut answer))
        .await
        .expect("an answer to a chunked upload in time")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "chunked: {text}");
    // A body that claims 10 GB: refused once the bytes sent pass the limit, long before
    // the claim.
    for (path, content_type, limit) in [
        ("/api/v1/accounts".to_owned(), "application/json", max_json),
        (
            format!("/api/v1/households/{}/messages", f.home),
            "application/octet-stream",
            max_envelope,
        ),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: {content_type}\r\nContent-Length: 10000000000\r\n\r\n",
            f.gran.token.as_ref().unwrap()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let filler = vec![b' '; 16 * 1024];
        for _ in 0..(limit / filler.len() + 8) {
            if stream.write_all(&filler).await.is_err() {
                break;
            }
        }
        let mut answer = vec![0u8; 1024];
        let n = tokio::time::timeout(STEP, stream.read(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer to a 10 GB claim in time"))
            .unwrap_or(0);
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 413"), "{path}: {text}");
    }
    assert_eq!(blob_count(&f.server), blobs, "nothing stored");
}

#[tokio::test]
async fn a_slow_body_is_cut_off_by_the_request_timeout() {
    // Headers, then a body trickled one byte every 3 s: the server answers 408 (or hangs
    // up) once its 30 s request timeout passes, instead of holding the connection open.
    let server = TestServer::start().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/v1/accounts HTTP/1.1\r\nHost: {addr}\r\n\
                 Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"email\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let limit = pawpost_server::config::REQUEST_TIMEOUT + Duration::from_secs(8);
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    let mut sent = 0;
    let ended = loop {
        assert!(
            started.elapsed() < limit,
            "still open after {:?}",
            started.elapsed()
        );
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break "closed",
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break "answered";
                    }
                }
            },
            () = tokio::time::sleep(Duration::from_secs(3)) => {
                // A slow client keeps the connection busy, far below the declared length.
                if stream.write_all(b" ").await.is_err() {
                    break "closed";
                }
                sent += 1;
            }
        }
    };
    let elapsed = started.elapsed();
    let head = String::from_utf8_lossy(&answer);
    assert!(
        ended == "closed" || head.starts_with("HTTP/1.1 408"),
        "{ended}: {head}"
    );
    assert!(sent < 4000, "the body never completed");
    assert!(
        elapsed >= pawpost_server::config::REQUEST_TIMEOUT - Duration::from_secs(1),
        "the answer came before the timeout ({elapsed:?}): {head}"
    );
}

// ---------------------------------------------------------------------------------------
// Security headers.

#[tokio::test]
async fn every_page_and_answer_carries_the_security_headers() {
    let f = family().await;
    let token = f.mum.token.clone().unwrap();
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(f.server.url(path)).send();
    let mut responses = Vec::new();
    for path in [
        "/",
        "/join",
        "/index.html",
        "/js/app.js",
        "/css/app.css",
        "/healthz",
        "/api/openapi.json",
        "/.well-known/security.txt",
        "/security-policy",
        "/no/such/page",
        "/js/missing.js",
        "/api/v1/accounts/me",
        "/api/v1/toy/ws",
        "/api/v1/toy/channel",
    ] {
        responses.push((path.to_owned(), get(path).await.unwrap()));
    }
    responses.push((
        "signed-in JSON".into(),
        http.get(
            f.server
                .url(&format!("/api/v1/households/{}/members", f.home)),
        )
        .bearer_auth(&token)
        .send()
        .await
        .unwrap(),
    ));
    responses.push((
        "405".into(),
        http.put(f.server.url("/")).send().await.unwrap(),
    ));
    responses.push((
        "413".into(),
        http.post(f.server.url("/api/v1/accounts"))
            .header("content-type", "application/json")
            .body(vec![b' '; 128 * 1024])
            .send()
            .await
            .unwrap(),
    ));
    responses.push((
        "403 cross-site".into(),
        http.post(f.server.url("/api/v1/sessions"))
            .header("origin", "https://evil.example")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    ));
    let mut statuses = Vec::new();
    for (what, response) in &responses {
        let h = response.headers();
        let header = |name: &str| {
            h.get(name)
                .unwrap_or_else(|| panic!("{what}: no {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{what}: {csp} lacks {directive}");
        }
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{what}: {csp}"
        );
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        statuses.push(response.status().as_u16());
    }
    for expected in [200u16, 401, 403, 404, 405, 413] {
        assert!(
            statuses.contains(&expected),
            "{expected} among {statuses:?}"
        );
    }
}
