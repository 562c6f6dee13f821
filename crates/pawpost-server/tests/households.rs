//! Stories of a family forming around a household, and of outsiders kept out of it.
use pawpost_testkit::server as common;

use common::{invited_member, parent_with_household, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

#[tokio::test]
async fn a_grandparent_is_invited_accepts_and_waits_for_approval() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;

    // Pending: listed in her households, but she can do nothing yet.
    let (_, mine) = gran.get("/api/v1/households").await;
    assert_eq!(mine[0]["status"], "pending");
    let (status, body) = gran
        .get(&format!("/api/v1/households/{home}/members"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "pending_approval");

    let (status, _) = mum
        .post(
            &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, members) = gran
        .get(&format!("/api/v1/households/{home}/members"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(|m| m["status"] == "approved"));
    assert!(
        members.iter().all(|m| m["email"].is_null()),
        "relatives do not see addresses"
    );
    let (_, for_mum) = mum.get(&format!("/api/v1/households/{home}/members")).await;
    assert!(for_mum
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["email"].is_string()));
}

#[tokio::test]
async fn an_invitation_works_once_and_only_with_its_token() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (_, invitation) = mum
        .post(&format!("/api/v1/households/{home}/invitations"), json!({}))
        .await;
    assert_eq!(invitation["role"], "family");
    let url = invitation["url"].as_str().unwrap();
    let token = invitation["token"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("/join#{token}")),
        "the token rides in the fragment: {url}"
    );
    assert!(token.len() >= 43, "unguessable token");

    let (stranger, _) = server.person("stranger@example.org", "S").await;
    let (status, body) = stranger
        .post(
            "/api/v1/invitations/accept",
            json!({"token": "guessed-token"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (aunt, _) = server.person("aunt@example.org", "Aunt").await;
    assert_eq!(
        aunt.post("/api/v1/invitations/accept", json!({"token": token}))
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = stranger
        .post("/api/v1/invitations/accept", json!({"token": token}))
        .await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert_eq!(body["error"], "invitation_spent");
}

#[tokio::test]
async fn a_blocked_relative_stays_listed_and_can_do_nothing() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (uncle, uncle_id) =
        invited_member(&server, &mum, &home, "uncle@example.org", "family").await;
    let approve = format!("/api/v1/households/{home}/members/{uncle_id}/approve");
    assert_eq!(
        mum.post(&approve, json!({})).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = mum
        .post(
            &format!("/api/v1/households/{home}/members/{uncle_id}/block"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, body) = uncle.get(&format!("/api/v1/households/{home}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "blocked");
    let (status, _) = uncle
        .post(&format!("/api/v1/households/{home}/invitations"), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, members) = mum.get(&format!("/api/v1/households/{home}/members")).await;
    let listed: Vec<&Value> = members
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["account_id"] == uncle_id.as_str())
        .collect();
    assert_eq!(listed[0]["status"], "blocked");
    // Approving does not lift a block; unblocking does.
    assert_eq!(mum.post(&approve, json!({})).await.0, StatusCode::CONFLICT);
    let (status, _) = mum
        .post(
            &format!("/api/v1/households/{home}/members/{uncle_id}/unblock"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        uncle.get(&format!("/api/v1/households/{home}")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn family_members_cannot_manage_and_guardians_cannot_touch_owners() {
    let server = TestServer::start().await;
    let (mum, mum_id, home) = parent_with_household(&server, "mum@example.org").await;
    let (dad, dad_id) = invited_member(&server, &mum, &home, "dad@example.org", "guardian").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    for id in [&dad_id, &gran_id] {
        let path = format!("/api/v1/households/{home}/members/{id}/approve");
        assert_eq!(mum.post(&path, json!({})).await.0, StatusCode::NO_CONTENT);
    }
    let members = format!("/api/v1/households/{home}/members");

    // Family: no invitations, no blocking, no renaming.
    assert_eq!(
        gran.post(&format!("/api/v1/households/{home}/invitations"), json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        gran.post(&format!("{members}/{dad_id}/block"), json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        gran.call(
            Method::PATCH,
            &format!("/api/v1/households/{home}"),
            Some(json!({"name": "Mine"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );

    // Guardian: manages family, but cannot block, demote or remove an owner, nor make one.
    assert_eq!(
        dad.post(&format!("{members}/{mum_id}/block"), json!({}))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        dad.call(Method::DELETE, &format!("{members}/{mum_id}"), None)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        dad.call(
            Method::PATCH,
            &format!("{members}/{gran_id}"),
            Some(json!({"role": "owner"}))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        dad.post(
            &format!("/api/v1/households/{home}/invitations"),
            json!({"role": "owner"})
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (status, renamed) = dad
        .call(
            Method::PATCH,
            &format!("/api/v1/households/{home}"),
            Some(json!({"name": "Lee-Park family"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(renamed["name"], "Lee-Park family");

    // The owner can promote, and the last owner cannot leave or be demoted.
    assert_eq!(
        mum.call(Method::DELETE, &format!("{members}/{mum_id}"), None)
            .await
            .0,
        StatusCode::CONFLICT,
        "the last owner cannot leave"
    );
    assert_eq!(
        mum.call(
            Method::PATCH,
            &format!("{members}/{dad_id}"),
            Some(json!({"role": "owner"}))
        )
        .await
        .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        mum.call(Method::DELETE, &format!("{members}/{mum_id}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );

    // Removing a member takes the household away from them.
    assert_eq!(
        dad.call(Method::DELETE, &format!("{members}/{gran_id}"), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        gran.get(&format!("/api/v1/households/{home}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_member_of_another_household_gets_404_on_every_household_route() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
        json!({}),
    )
    .await;
    drop(gran);
    let (other, _, _) = parent_with_household(&server, "other@example.org").await;

    let h = format!("/api/v1/households/{home}");
    let m = format!("{h}/members/{gran_id}");
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, h.clone(), None),
        (
            Method::PATCH,
            h.clone(),
            Some(json!({"name": "Taken over"})),
        ),
        (Method::GET, format!("{h}/members"), None),
        (Method::POST, format!("{h}/invitations"), Some(json!({}))),
        (Method::POST, format!("{m}/approve"), Some(json!({}))),
        (Method::POST, format!("{m}/block"), Some(json!({}))),
        (Method::POST, format!("{m}/unblock"), Some(json!({}))),
        (Method::PATCH, m.clone(), Some(json!({"role": "guardian"}))),
        (Method::DELETE, m.clone(), None),
    ];
    for (method, path, body) in routes {
        let (status, answer) = other.call(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {answer}");
        let text = answer.to_string();
        assert!(
            !text.contains("Lee family") && !text.contains("gran@"),
            "{method} {path} leaked {text}"
        );
    }
    // Ids that exist nowhere answer exactly the same.
    let (status, nowhere) = other
        .get(&format!("/api/v1/households/{}", uuid_like()))
        .await;
    let (_, theirs) = other.get(&h).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(nowhere, theirs);
    // And the household is untouched.
    let (_, still) = mum.get(&h).await;
    assert_eq!(still["name"], "Lee family");
}

fn uuid_like() -> String {
    "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned()
}

#[tokio::test]
async fn names_are_checked_and_kept_as_text() {
    let server = TestServer::start().await;
    let (mum, _) = server.person("mum@example.org", "Mum").await;
    let (status, body) = mum.post("/api/v1/households", json!({"name": "   "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = mum
        .post("/api/v1/households", json!({"name": "x".repeat(200)}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let script = "<script>alert(1)</script>";
    let (status, body) = mum
        .post("/api/v1/households", json!({"name": script}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        body["name"], script,
        "stored as text; the web app renders it as text"
    );
}

#[tokio::test]
async fn relatives_never_see_who_was_blocked_or_waits() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let members = format!("/api/v1/households/{home}/members");
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    let (_, uncle_id) = invited_member(&server, &mum, &home, "uncle@example.org", "family").await;
    let (_, aunt_id) = invited_member(&server, &mum, &home, "aunt@example.org", "family").await;
    for id in [&gran_id, &uncle_id] {
        let (status, _) = mum
            .post(&format!("{members}/{id}/approve"), json!({}))
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, _) = mum
        .post(&format!("{members}/{uncle_id}/block"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["account_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, seen_by_gran) = gran.get(&members).await;
    let seen = ids(&seen_by_gran);
    assert!(seen.contains(&gran_id), "{seen_by_gran}");
    assert!(
        !seen.contains(&uncle_id),
        "the block is the parents' business: {seen_by_gran}"
    );
    assert!(!seen.contains(&aunt_id), "so is who waits: {seen_by_gran}");
    assert!(seen_by_gran
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["status"] == "approved"));
    let (_, seen_by_mum) = mum.get(&members).await;
    let seen = ids(&seen_by_mum);
    assert!(
        seen.contains(&uncle_id) && seen.contains(&aunt_id),
        "{seen_by_mum}"
    );
}
