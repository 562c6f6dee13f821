//! Household recovery and device certificates: a parent who lost every owner device signs
//! the next roster with the recovery key written down at setup, adding her new phone as an
//! owner, and the phone then signs alone; a recovery key the household removed can sign
//! nothing; a new browser is vouched for by an existing device of the same account; and a
//! fresh browser reads every roster version to check the chain from version 1.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::{invited_member, parent_with_household, Client, TestServer};
use pawpost_crypto::{
    sign_certificate, DeviceKeys, RecoveryCode, RecoveryKey, Role, Roster, SignedRoster,
};
use pawpost_server::services::keys::ROSTER_PAGE_SIZE;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

fn account(id: &str) -> pawpost_crypto::AccountId {
    pawpost_crypto::AccountId(uuid_bytes(id))
}

fn device_uuid(keys: &DeviceKeys) -> String {
    Uuid::from_bytes(keys.device_id().0).to_string()
}

fn recovery_key() -> RecoveryKey {
    RecoveryKey::from_code(&RecoveryCode::generate(&mut pawpost_crypto::os_rng()))
}

/// Mum's household with her laptop as owner, the toy, and her recovery key.
async fn household_with_recovery(
    server: &TestServer,
) -> (
    Client,
    String,
    String,
    DeviceKeys,
    RecoveryKey,
    SignedRoster,
) {
    let (mum, mum_id, home) = parent_with_household(server, "mum@example.org").await;
    let (laptop, toy) = (new_device(), new_device());
    register(&mum, &laptop, "Mum's laptop").await;
    let key = recovery_key();
    let roster = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        settings(),
        vec![
            member(&laptop, &mum_id, Role::Owner),
            member(&toy, &home, Role::Toy),
            key.member(account(&mum_id)),
        ],
    );
    let v1 = SignedRoster::sign(&roster, &laptop).unwrap();
    let (status, body) = publish(&mum, &home, &v1).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (mum, mum_id, home, laptop, key, v1)
}

#[tokio::test]
async fn the_recovery_key_adds_mums_new_phone_which_then_signs_alone() {
    let server = TestServer::start().await;
    let (mum, mum_id, home, _lost_laptop, key, v1) = household_with_recovery(&server).await;

    // The laptop is gone; mum signs in on a new phone and types her recovery code.
    let phone = new_device();
    register(&mum, &phone, "Mum's new phone").await;
    let mut next = v1.unverified_roster().next_version();
    next.members.push(member(&phone, &mum_id, Role::Owner));
    let v2 = SignedRoster::sign_with_recovery(&next, &key).unwrap();
    let (status, body) = publish(&mum, &home, &v2).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let v3 = SignedRoster::sign(&v2.unverified_roster().next_version(), &phone).unwrap();
    let (status, body) = publish(&mum, &home, &v3).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["version"], 3);

    // A fresh browser fetches every version and checks the chain itself.
    let (status, list) = mum
        .get(&format!("/api/v1/households/{home}/rosters?after=0"))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let chain: Vec<SignedRoster> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let bytes = URL_SAFE_NO_PAD
                .decode(r["signed_roster"].as_str().unwrap())
                .unwrap();
            SignedRoster::decode(&bytes).unwrap()
        })
        .collect();
    assert_eq!(chain.len(), 3);
    chain[0].verify_genesis().unwrap();
    chain[1].verify_successor(&chain[0]).unwrap();
    chain[2].verify_successor(&chain[1]).unwrap();
    assert_eq!(chain[1].signer(), key.device_id());
}

#[tokio::test]
async fn a_recovery_key_the_household_removed_signs_nothing() {
    let server = TestServer::start().await;
    let (mum, mum_id, home, laptop, key, v1) = household_with_recovery(&server).await;
    let mut next = v1.unverified_roster().next_version();
    next.members.retain(|m| m.device_id != key.device_id());
    let v2 = SignedRoster::sign(&next, &laptop).unwrap();
    let (status, body) = publish(&mum, &home, &v2).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    let thief = new_device();
    register(&mum, &thief, "Not mum's").await;
    let mut grab = v2.unverified_roster().next_version();
    grab.members.push(member(&thief, &mum_id, Role::Owner));
    let grab = SignedRoster::sign_with_recovery(&grab, &key).unwrap();
    let (status, body) = publish(&mum, &home, &grab).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "not_your_device");
}

#[tokio::test]
async fn a_recovery_key_signs_only_for_the_account_it_was_made_for() {
    let server = TestServer::start().await;
    let (mum, mum_id, home) = parent_with_household(&server, "mum@example.org").await;
    let (dad, dad_id) = invited_member(&server, &mum, &home, "dad@example.org", "owner").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{dad_id}/approve"),
        json!({}),
    )
    .await;
    let laptop = new_device();
    register(&mum, &laptop, "Mum's laptop").await;
    let key = recovery_key();
    let roster = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        settings(),
        vec![
            member(&laptop, &mum_id, Role::Owner),
            key.member(account(&mum_id)),
        ],
    );
    let v1 = SignedRoster::sign(&roster, &laptop).unwrap();
    assert_eq!(publish(&mum, &home, &v1).await.0, StatusCode::CREATED);

    // Dad (an owner too) cannot publish with mum's recovery key.
    let mut next = v1.unverified_roster().next_version();
    next.settings.retention_days = 7;
    let v2 = SignedRoster::sign_with_recovery(&next, &key).unwrap();
    let (status, body) = publish(&dad, &home, &v2).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"], "not_your_device");
    // Nor can anyone start a household with one.
    let (other_mum, other_id, other_home) =
        parent_with_household(&server, "other@example.org").await;
    let other_key = recovery_key();
    let genesis = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&other_home)),
        settings(),
        vec![other_key.member(account(&other_id))],
    );
    let signed = SignedRoster::sign_with_recovery(&genesis, &other_key).unwrap();
    let (status, body) = publish(&other_mum, &other_home, &signed).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}

fn certificate_body(certifier: &DeviceKeys, account_id: &str, certified: &DeviceKeys) -> Value {
    let signature = sign_certificate(certifier, account(account_id), &certified.public());
    json!({
        "certifier_device_id": device_uuid(certifier),
        "signature": URL_SAFE_NO_PAD.encode(signature),
    })
}

fn view_of<'a>(list: &'a Value, keys: &DeviceKeys) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|d| d["device_id"] == device_uuid(keys))
        .unwrap_or_else(|| panic!("device not listed: {list}"))
}

#[tokio::test]
async fn an_existing_device_vouches_for_a_new_one_of_the_same_account() {
    let server = TestServer::start().await;
    let (mum, mum_id, home) = parent_with_household(&server, "mum@example.org").await;
    let (gran, gran_id) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    mum.post(
        &format!("/api/v1/households/{home}/members/{gran_id}/approve"),
        json!({}),
    )
    .await;
    let (laptop, phone, tablet) = (new_device(), new_device(), new_device());
    register(&mum, &laptop, "Mum's laptop").await;
    let view = register(&mum, &phone, "Mum's phone").await;
    assert_eq!(view["certificate"], Value::Null);
    register(&gran, &tablet, "Gran's tablet").await;
    let certify =
        |device: &DeviceKeys| format!("/api/v1/devices/{}/certificate", device_uuid(device));

    // A signature over something else (another account) is refused in plain words.
    let (status, body) = mum
        .post(
            &certify(&phone),
            certificate_body(&laptop, &gran_id, &phone),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_certificate");
    let (status, body) = mum
        .post(
            &certify(&phone),
            json!({"certifier_device_id": device_uuid(&laptop), "signature": "AAAA"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "bad_certificate");
    // A device does not vouch for itself.
    let (status, body) = mum
        .post(
            &certify(&laptop),
            certificate_body(&laptop, &mum_id, &laptop),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "same_device");
    // Another account's device, as the certified one or the certifier: not found.
    let (status, body) = mum
        .post(
            &certify(&tablet),
            certificate_body(&laptop, &mum_id, &tablet),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = gran
        .post(&certify(&phone), certificate_body(&laptop, &mum_id, &phone))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = mum
        .post(
            &certify(&phone),
            certificate_body(&tablet, &gran_id, &phone),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let good = certificate_body(&laptop, &mum_id, &phone);
    let (status, body) = mum.post(&certify(&phone), good.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["device_id"], device_uuid(&phone));
    assert_eq!(body["certificate"], good);
    let (status, body) = mum.post(&certify(&phone), good.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"], "already_certified");

    let (status, mine) = mum.get("/api/v1/devices").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view_of(&mine, &phone)["certificate"], good);
    assert_eq!(view_of(&mine, &laptop)["certificate"], Value::Null);
    let (status, theirs) = gran
        .get(&format!("/api/v1/households/{home}/devices"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view_of(&theirs, &phone)["certificate"], good);
    assert_eq!(view_of(&theirs, &tablet)["certificate"], Value::Null);

    let (status, export) = mum.get("/api/v1/accounts/me/export").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view_of(&export["devices"], &phone)["certificate"], good);

    let (status, activity) = mum.get("/api/v1/accounts/me/activity").await;
    assert_eq!(status, StatusCode::OK, "{activity}");
    let linked: Vec<&Value> = activity
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "device_linked")
        .collect();
    assert_eq!(linked.len(), 1, "{activity}");
    assert_eq!(linked[0]["target"], device_uuid(&phone));
}

#[tokio::test]
async fn a_new_browser_reads_the_roster_chain_page_by_page() {
    let server = TestServer::start().await;
    let (mum, mum_id, home) = parent_with_household(&server, "mum@example.org").await;
    let laptop = new_device();
    register(&mum, &laptop, "Mum's laptop").await;
    let path = |after: u64| format!("/api/v1/households/{home}/rosters?after={after}");
    let (status, list) = mum.get(&path(0)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list, json!([]));

    let versions = u64::try_from(ROSTER_PAGE_SIZE).unwrap() + 2;
    let mut signed = SignedRoster::sign(
        &Roster::genesis(
            pawpost_crypto::HouseholdId(uuid_bytes(&home)),
            settings(),
            vec![member(&laptop, &mum_id, Role::Owner)],
        ),
        &laptop,
    )
    .unwrap();
    assert_eq!(publish(&mum, &home, &signed).await.0, StatusCode::CREATED);
    for _ in 1..versions {
        signed = SignedRoster::sign(&signed.unverified_roster().next_version(), &laptop).unwrap();
        assert_eq!(publish(&mum, &home, &signed).await.0, StatusCode::CREATED);
    }

    let numbers = |list: &Value| -> Vec<u64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["version"].as_u64().unwrap())
            .collect()
    };
    let (_, first) = mum.get(&path(0)).await;
    assert_eq!(
        numbers(&first),
        (1..=u64::try_from(ROSTER_PAGE_SIZE).unwrap()).collect::<Vec<_>>()
    );
    let (_, rest) = mum.get(&path(*numbers(&first).last().unwrap())).await;
    assert_eq!(numbers(&rest), vec![versions - 1, versions]);
    let (_, none) = mum.get(&path(versions)).await;
    assert_eq!(none, json!([]));
    let (status, all) = mum.get(&format!("/api/v1/households/{home}/rosters")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(numbers(&all), numbers(&first));
    let (status, body) = mum
        .get(&format!("/api/v1/households/{home}/rosters?after=soon"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    // Not a member: the household does not exist for them; a pending member waits.
    let (stranger, _) = server.person("stranger@example.org", "Stranger").await;
    let (status, body) = stranger.get(&path(0)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (pending, _) = invited_member(&server, &mum, &home, "gran@example.org", "family").await;
    let (status, body) = pending.get(&path(0)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}
