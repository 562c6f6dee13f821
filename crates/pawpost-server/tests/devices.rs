//! A person removes a lost device of theirs: the server stops listing it (so no parent's
//! device is asked to trust it again), never removes someone else's device or a toy, and
//! records it in the account's activity.
use pawpost_testkit::server as common;

use common::family::*;
use common::{invited_member, parent_with_household, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

fn listed(list: &Value, id: &str) -> bool {
    list.as_array()
        .unwrap()
        .iter()
        .any(|d| d["device_id"] == id)
}

#[tokio::test]
async fn a_person_removes_their_own_lost_device_and_nobody_elses() {
    let server = TestServer::start().await;
    let (mum, _, home) = parent_with_household(&server, "mum@example.org").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
        json!({}),
    )
    .await;
    let (laptop, lost) = (new_device(), new_device());
    register(&mum, &laptop, "Mum's laptop").await;
    let lost_id = register(&mum, &lost, "Mum's old phone").await["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tablet = register(&gran, &new_device(), "Gran's tablet").await["device_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Not someone else's, and not a device that does not exist: the same 404.
    let (status, body) = gran
        .call(Method::DELETE, &format!("/api/v1/devices/{lost_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = mum
        .call(
            Method::DELETE,
            &format!("/api/v1/devices/{}", Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = mum
        .call(Method::DELETE, &format!("/api/v1/devices/{lost_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, mine) = mum.get("/api/v1/devices").await;
    assert!(!listed(&mine, &lost_id), "{mine}");
    let (_, household) = gran
        .get(&format!("/api/v1/households/{home}/devices"))
        .await;
    assert!(!listed(&household, &lost_id), "{household}");
    assert!(listed(&household, &tablet), "{household}");
    let (status, _) = mum
        .call(Method::DELETE, &format!("/api/v1/devices/{lost_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "removed once");

    let (_, activity) = mum.get("/api/v1/accounts/me/activity").await;
    let removed = activity
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "device_removed" && e["target"] == lost_id.as_str())
        .count();
    assert_eq!(removed, 1, "{activity}");
}
