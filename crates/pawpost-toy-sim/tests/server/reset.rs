//! A paired toy is reset by holding its paw for ten seconds, and a parent pairs it again.

use std::time::Duration;

use pawpost_testkit::server::family::family;
use pawpost_testkit::server::toys::{pair, start_toy, wait_online, STEP};
use pawpost_toy::{Prompt, Toy, FACTORY_RESET_HOLD_MS};
use pawpost_toy_sim::{next_event, prompt_text, SimEvent, STATE_FILE};
use uuid::Uuid;

#[tokio::test]
async fn a_toy_held_for_ten_seconds_forgets_its_family_and_is_paired_again() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let first = pair(&f, &toy).await;
    wait_online(&f, &f.server).await;
    let household = Uuid::parse_str(&f.home).unwrap();
    assert_eq!(toy.status().household_id, Some(household));

    let mut events = toy.events();
    toy.hold(Duration::from_millis(FACTORY_RESET_HOLD_MS));
    next_event(
        &mut events,
        |e| {
            *e == SimEvent::Spoke {
                text: prompt_text(Prompt::Forgotten),
            }
        },
        STEP,
    )
    .await
    .expect("the toy says it forgot everything");
    let status = toy.status();
    assert_eq!(status.household_id, None);
    assert_eq!(status.roster_version, 0);
    assert_ne!(status.device_id, Uuid::from_bytes(first.device_id.0));
    assert_ne!(status.fingerprint, first.fingerprint().to_string());

    // What it saved is the new toy: no household, the new id.
    let saved = std::fs::read(state.path().join(STATE_FILE)).unwrap();
    let restored = Toy::restore(&saved).unwrap();
    assert_eq!(restored.household_id(), None);
    assert_eq!(Uuid::from_bytes(restored.device_id().0), status.device_id);

    // It connects again as the new toy, and a parent pairs it by its new code.
    next_event(&mut events, |e| *e == SimEvent::Connected, STEP)
        .await
        .expect("the reset toy connects again");
    let second = pair(&f, &toy).await;
    assert_eq!(Uuid::from_bytes(second.device_id.0), status.device_id);
    assert_ne!(second.ed25519_pub, first.ed25519_pub);
    assert_eq!(toy.status().household_id, Some(household));
}
