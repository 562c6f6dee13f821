//! A toy whose household was deleted is refused at every authentication; it waits longer
//! after each refusal instead of reconnecting several times a second.

use std::time::Duration;

use pawpost_testkit::server::family::family;
use pawpost_testkit::server::toys::{pair, start_toy, wait_online, wait_shown, STEP};
use pawpost_toy::{reconnect_wait_range_ms, RECONNECT_MAX_MS};
use pawpost_toy_sim::{next_event, SimConfig, SimEvent, SimToy};
use reqwest::{Method, StatusCode};

/// Every wait is a thousandth of the schedule's: the first eight attempts, up to four
/// minutes of the toy's life, take at most a quarter of a second of waiting.
const SCALE: u32 = 1_000;
/// Refusals watched.
const REFUSALS: u32 = 8;
/// The limit: at most this many connection attempts in a minute.
const MAX_ATTEMPTS_PER_MINUTE: usize = 10;

#[tokio::test]
async fn a_toy_whose_household_was_deleted_waits_longer_after_each_refusal() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    pair(&f, &toy).await;
    wait_online(&f, &f.server).await;
    // Switched off while its family deletes the household.
    toy.stop().await;
    wait_shown(&f, &f.server, false).await;
    let (status, body) = f
        .mum
        .call(
            Method::DELETE,
            &format!("/api/v1/households/{}", f.home),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // Switched on again, the toy still believes in its household; the server does not.
    let toy = SimToy::start_with_backoff_scale(
        SimConfig {
            server: f.server.base.clone(),
            state_dir: state.path().to_owned(),
            speak_wav: false,
            language: pawpost_toy_sim::Language::default(),
            trust_cert: f.server.tls_cert.clone(),
        },
        SCALE,
    )
    .await
    .unwrap();
    let mut events = toy.events();
    let mut connections = 0usize;
    let mut waits = Vec::new();
    while waits.len() < usize::try_from(REFUSALS).unwrap() {
        let event = next_event(
            &mut events,
            |e| matches!(e, SimEvent::Connected | SimEvent::Waiting { .. }),
            STEP,
        )
        .await
        .expect("the toy keeps trying");
        match event {
            SimEvent::Connected => connections += 1,
            SimEvent::Waiting {
                attempt,
                wait,
                refused,
            } => {
                assert!(refused, "the server is up: every wait is for a refusal");
                waits.push((attempt, wait));
            }
            _ => unreachable!(),
        }
    }
    toy.stop().await;

    // Each refusal closed its connection: one attempt, one connection, one wait.
    assert_eq!(connections, waits.len());
    for (n, (attempt, wait)) in (1u32..).zip(&waits) {
        assert_eq!(*attempt, n, "failures are counted in a row");
        let (floor, ceiling) = reconnect_wait_range_ms(n);
        let ms = u64::try_from(wait.as_millis()).unwrap();
        assert!(
            (floor..=ceiling).contains(&ms),
            "wait {n}: {ms} ms, not within {floor}..={ceiling}"
        );
    }
    // The attempts the toy made fall where its waits put them: attempt k + 1 comes after
    // the first k waits (each real wait is at least its scheduled share). Within the first
    // minute that leaves room for few attempts, not the hundreds an immediate retry made.
    let mut start = Duration::ZERO;
    let mut in_first_minute = 1;
    for (_, wait) in &waits {
        start += *wait;
        if start <= Duration::from_secs(60) {
            in_first_minute += 1;
        }
    }
    assert!(
        in_first_minute <= MAX_ATTEMPTS_PER_MINUTE,
        "{in_first_minute} attempts in the first minute: {waits:?}"
    );
    assert!(
        start > Duration::from_secs(60),
        "the watched waits cover more than a minute: {waits:?}"
    );
    assert!(
        waits
            .iter()
            .all(|(_, w)| *w <= Duration::from_millis(RECONNECT_MAX_MS)),
        "{waits:?}"
    );
}
