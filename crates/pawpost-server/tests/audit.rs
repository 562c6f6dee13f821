//! The audit trail: every sign-in, refusal and parent's decision is recorded, members see
//! their household's part of it, and tampering with the log is detected.
use pawpost_testkit::server as common;

use common::{invited_member, parent_with_household, TestServer};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_households_trail_shows_who_did_what_and_only_to_its_members() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
        json!({}),
    )
    .await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/block"),
        json!({}),
    )
    .await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/unblock"),
        json!({}),
    )
    .await;

    let (status, trail) = mum.get(&format!("/api/v1/households/{home}/audit")).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "member_unblocked",
            "member_blocked",
            "member_approved",
            "invitation_accepted",
            "invitation_created",
            "household_created"
        ],
        "newest first"
    );
    assert_eq!(trail[1]["target"], gran_id.as_str());
    assert!(trail[0]["client"].is_null() || trail[0]["client"].is_string());
    // Gran sees the trail too, without addresses; an outsider sees nothing.
    let (status, theirs) = gran.get(&format!("/api/v1/households/{home}/audit")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(theirs
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["client"].is_null()));
    // Blocks are the parents' business: a relative's trail does not show them.
    let seen: Vec<&str> = theirs
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        [
            "member_approved",
            "invitation_accepted",
            "invitation_created",
            "household_created"
        ],
        "no member_blocked or member_unblocked for relatives"
    );
    let (outsider, _, _) = parent_with_household(&server, "out@example.org").await;
    assert_eq!(
        outsider
            .get(&format!("/api/v1/households/{home}/audit"))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    // No secrets ride along.
    let text = trail.to_string();
    assert!(!text.contains(common::GOOD_PASSWORD) && !text.contains("argon2"));
}

#[tokio::test]
async fn sign_ins_and_failed_sign_ins_are_recorded_and_the_chain_verifies() {
    let server = TestServer::start().await;
    server.person("ann@example.org", "Ann").await;
    let (status, _) = server
        .anonymous()
        .post(
            "/api/v1/sessions",
            json!({"email": "ann@example.org", "password": "wrong wrong wrong wrong"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let state = &server.server.as_ref().unwrap().state;
    let entries = state.store.audit_entries(0, 100).await.unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.record.action.as_str()).collect();
    assert_eq!(actions, ["account_created", "sign_in", "sign_in_failed"]);
    assert_eq!(entries[2].record.client.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        entries[2].record.actor, entries[0].record.actor,
        "the failed attempt names the account it targeted"
    );
    assert_eq!(
        pawpost_server::audit::verify(state.store.as_ref())
            .await
            .unwrap(),
        3
    );
    // Ann sees her own sign-ins, the failed one included, with where they came from.
    let ann = server
        .sign_in("ann@example.org", common::GOOD_PASSWORD)
        .await;
    let (status, activity) = ann.get("/api/v1/accounts/me/activity").await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = activity
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["sign_in", "sign_in_failed", "sign_in", "account_created"]
    );
    assert_eq!(activity[1]["client"], "127.0.0.1");
}

#[tokio::test]
async fn pawpost_audit_verify_finds_a_changed_or_deleted_entry() {
    if common::postgres_url().is_some() {
        // The tampering below edits the SQLite file; the chain itself is checked on
        // PostgreSQL by the store suite and the test above.
        return;
    }
    let server = TestServer::start().await;
    let (_mum, _, _home) = parent_with_household(&server, "mum@example.org").await;
    let state = server.server.as_ref().unwrap().state.clone();
    assert!(pawpost_server::audit::verify(state.store.as_ref())
        .await
        .is_ok());
    let db = server.data.path().join("data/pawpost.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();

    // An attacker rewrites what happened...
    sqlx::query("UPDATE audit_log SET action = 'nothing_happened' WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    let err = pawpost_server::audit::verify(state.store.as_ref())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("entry 2"), "{err}");
    // ...or deletes it.
    sqlx::query("DELETE FROM audit_log WHERE seq = 2")
        .execute(&pool)
        .await
        .unwrap();
    let err = pawpost_server::audit::verify(state.store.as_ref())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("deleted"), "{err}");
}
