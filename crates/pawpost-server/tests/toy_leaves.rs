//! A toy leaves its family for real: when its household is deleted, or a parent removes it,
//! an owner's device signs its goodbye, the server relays it (at once, or when a toy that
//! was off connects again), the real toy (the simulator, over a real WebSocket) says it
//! left and forgets the household, and another household can then pair the same toy with
//! the same keys. A goodbye that is not an owner device's, or not for this household and
//! this toy, is refused and changes nothing.
use pawpost_testkit::server as common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::family::*;
use common::toys::*;
use common::{parent_with_household, Client, TestServer};
use pawpost_crypto::{DeviceKeys, Role, Roster, SignedRoster};
use pawpost_toy::signing::sign_leave;
use pawpost_toy::Prompt;
use pawpost_toy_sim::{next_event, prompt_text, SimEvent, SimToy};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

// Each story runs on two worker threads: its server may still be writing (a toy that just
// connected is being recorded in the audit trail) when the story ends, and dropping the
// story's PostgreSQL schema must not block the only thread that would finish that write.

fn household(home: &str) -> pawpost_crypto::HouseholdId {
    pawpost_crypto::HouseholdId(uuid_bytes(home))
}

/// `signer`'s signed goodbye for the toy `toy` of household `home`, as the API takes it.
fn goodbye(signer: &DeviceKeys, home: &str, toy: Uuid) -> Value {
    let signature = sign_leave(
        signer,
        household(home),
        pawpost_crypto::DeviceId(*toy.as_bytes()),
    );
    json!({
        "toy_device_id": toy.to_string(),
        "signer_device_id": Uuid::from_bytes(signer.device_id().0).to_string(),
        "signature": URL_SAFE_NO_PAD.encode(signature),
    })
}

async fn delete_household(f: &Family, leave: Vec<Value>) -> (StatusCode, Value) {
    f.mum
        .call(
            Method::DELETE,
            &format!("/api/v1/households/{}", f.home),
            Some(json!({ "leave": leave })),
        )
        .await
}

async fn remove_toy(client: &Client, home: &str, toy: Uuid, body: Value) -> (StatusCode, Value) {
    client
        .call(
            Method::DELETE,
            &format!("/api/v1/households/{home}/toys/{toy}"),
            Some(body),
        )
        .await
}

/// Waits until the toy says it left its family and has forgotten the household.
async fn says_it_left(toy: &SimToy, events: &mut tokio::sync::broadcast::Receiver<SimEvent>) {
    let left = prompt_text(Prompt::LeftFamily);
    next_event(
        events,
        |e| *e == SimEvent::Spoke { text: left.clone() },
        STEP,
    )
    .await
    .expect("the toy says it left its family");
    // Its status follows once the toy has carried out everything the goodbye asked.
    let deadline = tokio::time::Instant::now() + STEP;
    while toy.status().household_id.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the toy still has a household: {:?}",
            toy.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(toy.status().queued, 0);
}

/// A second household on the same server, with an owner whose device keys are registered
/// and a first roster listing her alone.
async fn another_household(server: &TestServer) -> Family {
    let (owner, owner_id, home) = parent_with_household(server, "aunt@example.org").await;
    let keys = new_device();
    register(&owner, &keys, "Aunt's phone").await;
    let roster = Roster::genesis(
        household(&home),
        settings(),
        vec![member(&keys, &owner_id, Role::Owner)],
    );
    let signed = SignedRoster::sign(&roster, &keys).unwrap();
    let (status, body) = publish(&owner, &home, &signed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Family {
        server: TestServer::at(server.base.clone()),
        home,
        gran: owner.clone(),
        mum: owner,
        mum_keys: keys,
        gran_keys: new_device(),
        gran_id: String::new(),
        toy_keys: new_device(),
        roster: signed,
    }
}

async fn toys_of(f: &Family) -> Vec<Value> {
    let (status, toys) = f
        .mum
        .get(&format!("/api/v1/households/{}/toys", f.home))
        .await;
    assert_eq!(status, StatusCode::OK, "{toys}");
    toys.as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_household_makes_the_toy_say_goodbye_and_another_family_pairs_it() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(identity.device_id.0);
    wait_online(&f, &f.server).await;
    let gran_voice = sealed(
        &f.gran_keys,
        &f.home,
        pawpost_crypto::MediaType::OggOpus,
        &[identity, f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(
        upload(&f.gran, &f.home, gran_voice.0).await.0,
        StatusCode::CREATED
    );
    wait_queued(&toy, 1).await;

    let mut events = toy.events();
    let (status, body) = delete_household(&f, vec![goodbye(&f.mum_keys, &f.home, toy_id)]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    says_it_left(&toy, &mut events).await;
    assert_eq!(
        toy.status().device_id,
        toy_id,
        "it keeps its device id and keys"
    );
    // It connects again as an unpaired toy: a short press says so.
    next_event(&mut events, |e| *e == SimEvent::Connected, STEP)
        .await
        .expect("it connects again");
    toy.press();
    let not_paired = prompt_text(Prompt::NotPaired);
    next_event(
        &mut events,
        |e| {
            *e == SimEvent::Spoke {
                text: not_paired.clone(),
            }
        },
        STEP,
    )
    .await
    .expect("it has no family now");

    // Another family pairs the same toy, same keys, and it comes online there.
    let aunt = another_household(&f.server).await;
    let again = pair(&aunt, &toy).await;
    assert_eq!(again, identity, "the same keys joined the new household");
    wait_online(&aunt, &aunt.server).await;
    assert_eq!(toys_of(&aunt).await.len(), 1);
    assert_eq!(
        toy.status().household_id,
        Some(Uuid::parse_str(&aunt.home).unwrap())
    );
    toy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parent_removes_the_toy_and_it_forgets_the_family() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(identity.device_id.0);
    wait_online(&f, &f.server).await;

    let mut events = toy.events();
    let (status, body) = remove_toy(
        &f.mum,
        &f.home,
        toy_id,
        json!({
            "signer_device_id": goodbye(&f.mum_keys, &f.home, toy_id)["signer_device_id"],
            "signature": goodbye(&f.mum_keys, &f.home, toy_id)["signature"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    says_it_left(&toy, &mut events).await;
    assert!(toys_of(&f).await.is_empty(), "gone from the family page");
    let (status, trail) = f
        .mum
        .get(&format!("/api/v1/households/{}/audit", f.home))
        .await;
    assert_eq!(status, StatusCode::OK, "{trail}");
    assert!(
        trail.to_string().contains("\"toy_removed\""),
        "the household's activity shows it: {trail}"
    );
    // Removing it again finds no toy.
    let (status, _) = remove_toy(
        &f.mum,
        &f.home,
        toy_id,
        json!({
            "signer_device_id": goodbye(&f.mum_keys, &f.home, toy_id)["signer_device_id"],
            "signature": goodbye(&f.mum_keys, &f.home, toy_id)["signature"],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The parent's app publishes the household keys without the toy (as it does after
    // every change); then the same family can pair it again.
    let mut next = latest_roster(&f.mum, &f.home)
        .await
        .unverified_roster()
        .next_version();
    next.members.retain(|m| m.device_id != identity.device_id);
    let signed = SignedRoster::sign(&next, &f.mum_keys).unwrap();
    let (status, body) = publish(&f.mum, &f.home, &signed).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    next_event(&mut events, |e| *e == SimEvent::Connected, STEP)
        .await
        .expect("it connects again");
    assert_eq!(pair(&f, &toy).await, identity);
    toy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toy_that_was_off_gets_its_goodbye_when_it_connects_again() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(identity.device_id.0);
    wait_online(&f, &f.server).await;
    // Switched off while its family deletes the household.
    toy.stop().await;
    wait_shown(&f, &f.server, false).await;
    let (status, body) = delete_household(&f, vec![goodbye(&f.mum_keys, &f.home, toy_id)]).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Switched on again, it still believes in its household until the server gives it
    // the goodbye kept for it.
    let toy = start_toy(&f.server, state.path()).await;
    let mut events = toy.events();
    says_it_left(&toy, &mut events).await;
    assert_eq!(toy.status().device_id, toy_id);

    // A family pairs it again, with the same keys.
    let aunt = another_household(&f.server).await;
    assert_eq!(pair(&aunt, &toy).await, identity);
    wait_online(&aunt, &aunt.server).await;
    toy.stop().await;

    // Restarted once more, it stays in its new family: the old goodbye is gone.
    let toy = start_toy(&f.server, state.path()).await;
    wait_online(&aunt, &aunt.server).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        toy.status().household_id,
        Some(Uuid::parse_str(&aunt.home).unwrap())
    );
    toy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goodbye_not_signed_by_an_owner_for_this_household_and_toy_is_refused() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    let toy_id = Uuid::from_bytes(identity.device_id.0);
    wait_online(&f, &f.server).await;
    let mut events = toy.events();

    let mum_device = Uuid::from_bytes(f.mum_keys.device_id().0).to_string();
    let for_other_household = sign_leave(
        &f.mum_keys,
        pawpost_crypto::HouseholdId([9; 16]),
        identity.device_id,
    );
    let for_other_toy = sign_leave(
        &f.mum_keys,
        household(&f.home),
        pawpost_crypto::DeviceId([9; 16]),
    );
    let by_gran_as_mum = sign_leave(&f.gran_keys, household(&f.home), identity.device_id);
    let cases = [
        // Gran's device is registered, but she is not an owner.
        (goodbye(&f.gran_keys, &f.home, toy_id), "signer_not_owner"),
        // A device the server never saw.
        (goodbye(&new_device(), &f.home, toy_id), "signer_not_owner"),
        (
            json!({"toy_device_id": toy_id.to_string(), "signer_device_id": mum_device,
                   "signature": URL_SAFE_NO_PAD.encode(for_other_household)}),
            "bad_signature",
        ),
        (
            json!({"toy_device_id": toy_id.to_string(), "signer_device_id": mum_device,
                   "signature": URL_SAFE_NO_PAD.encode(for_other_toy)}),
            "bad_signature",
        ),
        (
            json!({"toy_device_id": toy_id.to_string(), "signer_device_id": mum_device,
                   "signature": URL_SAFE_NO_PAD.encode(by_gran_as_mum)}),
            "bad_signature",
        ),
        (
            json!({"toy_device_id": toy_id.to_string(), "signer_device_id": mum_device,
                   "signature": URL_SAFE_NO_PAD.encode([1u8; 12])}),
            "invalid_signature",
        ),
        (
            json!({"toy_device_id": toy_id.to_string(), "signer_device_id": mum_device,
                   "signature": "not base64!"}),
            "invalid_base64",
        ),
    ];
    for (leave, code) in &cases {
        let (status, body) = remove_toy(&f.mum, &f.home, toy_id, leave.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{leave}: {body}");
        assert_eq!(body["error"], *code, "{leave}: {body}");
        let (status, body) = delete_household(&f, vec![leave.clone()]).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{leave}: {body}");
        assert_eq!(body["error"], *code, "{leave}: {body}");
    }
    // Only a parent removes a toy, and only the household's own toys.
    let (status, body) = remove_toy(
        &f.gran,
        &f.home,
        toy_id,
        goodbye(&f.mum_keys, &f.home, toy_id),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let stranger_toy = Uuid::new_v4();
    let (status, body) =
        delete_household(&f, vec![goodbye(&f.mum_keys, &f.home, stranger_toy)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // Nothing changed: the household and its toy are there, and the toy said nothing.
    assert_eq!(toys_of(&f).await.len(), 1);
    wait_online(&f, &f.server).await;
    let left = prompt_text(Prompt::LeftFamily);
    assert!(
        next_event(
            &mut events,
            |e| *e == SimEvent::Spoke { text: left.clone() },
            Duration::from_millis(300),
        )
        .await
        .is_err(),
        "the toy never heard a goodbye"
    );
    assert_eq!(
        toy.status().household_id,
        Some(Uuid::parse_str(&f.home).unwrap())
    );
    toy.stop().await;
}
