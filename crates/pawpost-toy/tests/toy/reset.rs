//! Holding the paw for ten seconds makes the toy a new, unpaired one; nothing from the
//! network can.

use pawpost_toy::{
    Action, Event, Frame, FrameType, Prompt, ReconnectReason, Toy, FACTORY_RESET_HOLD_MS,
};

use crate::microphone::{frames_for, random_frames, states};
use crate::support::*;

fn resets(actions: &[Action]) -> bool {
    actions.iter().any(|a| {
        matches!(
            a,
            Action::Speak(Prompt::Forgotten) | Action::Reconnect(ReconnectReason::FactoryReset)
        )
    })
}

#[test]
fn ten_seconds_on_the_paw_forget_everything_and_the_toy_can_be_paired_again() {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.grandma, message_id(7));
    world.deliver(&envelope);
    assert_eq!(world.toy.queued_messages(), 1);
    let old_id = world.toy.device_id();
    let old_identity = world.toy.identity();
    let old_state = world.saved.clone().unwrap();

    let actions = world.event(Event::PawHeld {
        ms: FACTORY_RESET_HOLD_MS,
    });

    // Saved first, then said, then a new connection as the new toy.
    let saved = persisted(&actions).expect("the wiped state is saved");
    let persist_at = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(_)))
        .unwrap();
    let speak_at = actions
        .iter()
        .position(|a| *a == Action::Speak(Prompt::Forgotten))
        .expect("the toy says it forgot everything");
    let reconnect_at = actions
        .iter()
        .position(|a| *a == Action::Reconnect(ReconnectReason::FactoryReset))
        .expect("the toy asks for a new connection");
    assert!(
        persist_at < speak_at && speak_at < reconnect_at,
        "{actions:?}"
    );
    assert!(
        sent(&actions).is_empty(),
        "a reset sends nothing: {actions:?}"
    );

    let toy = &world.toy;
    assert_ne!(toy.device_id(), old_id, "a new device id");
    assert_ne!(toy.identity().ed25519_pub, old_identity.ed25519_pub);
    assert_ne!(toy.identity().x25519_pub, old_identity.x25519_pub);
    assert_eq!(toy.household_id(), None);
    assert_eq!(toy.roster_version(), 0);
    assert_eq!(toy.queued_messages(), 0);
    assert_ne!(saved, old_state);

    // What was saved is the new toy, with nothing of the old one.
    let restored = Toy::restore(&saved).unwrap();
    assert_eq!(restored.device_id(), toy.device_id());
    assert_eq!(restored.identity(), toy.identity());
    assert_eq!(restored.household_id(), None);
    assert_eq!(restored.queued_messages(), 0);
    assert_eq!(restored.state_blob().as_bytes(), saved.as_slice());

    // The old message is not remembered as seen: the new toy has no seen set either,
    // and it is no longer the toy that message was sealed for.
    world.event(Event::Disconnected);
    let actions = world.press();
    assert_eq!(spoken(&actions), vec![Prompt::NotPaired]);

    // A new pairing works as for a toy fresh out of the box, with the new keys.
    world.pair(settings());
    assert_eq!(world.toy.household_id(), Some(household_id()));
    let actions = world.connect();
    assert_eq!(
        sent_types(&actions),
        vec![FrameType::ChunkRequest, FrameType::Auth]
    );
}

#[test]
fn a_reset_during_pairing_or_recording_stops_them() {
    let mut pairing = World::new_toy();
    pairing.connect();
    pairing.event(Event::PawPressed { long: true });
    let actions = pairing.event(Event::PawHeld { ms: 12_000 });
    assert!(resets(&actions));
    // Pairing is over: the heart goes off, and a press says the toy has no family.
    assert_eq!(hearts(&actions), vec![pawpost_toy::Heart::Off]);
    pairing.event(Event::Disconnected);
    assert_eq!(spoken(&pairing.press()), vec![Prompt::NotPaired]);

    let mut recording = World::paired();
    assert!(starts_microphone(&recording.press()));
    let actions = recording.event(Event::PawHeld {
        ms: FACTORY_RESET_HOLD_MS,
    });
    assert_eq!(actions.first(), Some(&Action::StopRecording));
    assert!(resets(&actions));
    // The recording that was being made is not sent by the new toy.
    let actions = recording.event(Event::RecordingFinished { ogg: voice(1_000) });
    assert!(sent(&actions).is_empty());
}

#[test]
fn a_hold_shorter_than_ten_seconds_is_a_long_press_not_a_reset() {
    let mut world = World::new_toy();
    world.connect();
    let id = world.toy.device_id();
    let actions = world.event(Event::PawHeld {
        ms: FACTORY_RESET_HOLD_MS - 1,
    });
    assert!(!resets(&actions));
    assert_eq!(world.toy.device_id(), id);
    assert_eq!(spoken(&actions), vec![Prompt::PairingStarted]);
    assert_eq!(sent_types(&actions), vec![FrameType::PairRequest]);

    let mut paired = World::paired();
    let actions = paired.event(Event::PawHeld { ms: 3_000 });
    let number = Prompt::SafetyNumber(paired.toy.identity().safety_number());
    assert_eq!(spoken(&actions), vec![Prompt::AlreadyPaired, number]);
    assert!(paired.toy.household_id().is_some());
}

#[test]
fn an_offline_toy_resets_without_asking_for_a_connection() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    let actions = world.event(Event::PawHeld {
        ms: FACTORY_RESET_HOLD_MS,
    });
    assert!(persisted(&actions).is_some());
    assert_eq!(spoken(&actions), vec![Prompt::Forgotten]);
    assert!(!actions.iter().any(|a| matches!(a, Action::Reconnect(_))));
    // Connecting later, it is an unpaired toy: it proves nothing and waits for a hold.
    let actions = world.connect();
    assert!(sent(&actions).is_empty(), "{actions:?}");
}

#[test]
fn no_frame_and_no_random_bytes_ever_reset_the_toy_in_any_state() {
    for (seed, (name, mut world)) in (1u8..).zip(states()) {
        let id = world.toy.device_id();
        let household = world.toy.household_id();
        let mut fed = 0;
        for bytes in frames_for(&world)
            .into_iter()
            .chain(random_frames(seed.wrapping_add(100)))
        {
            let actions = world.event(Event::FrameReceived(&bytes));
            assert!(
                !resets(&actions),
                "state {name:?}: frame {:?} reset the toy",
                Frame::decode(&bytes).map(|f| f.frame_type())
            );
            assert_eq!(world.toy.device_id(), id, "state {name:?}");
            let actions = world.advance(1000);
            assert!(!resets(&actions), "state {name:?}: timer");
            fed += 1;
        }
        for event in [Event::Disconnected, Event::Connected] {
            assert!(!resets(&world.event(event)), "state {name:?}");
        }
        assert_eq!(world.toy.device_id(), id, "state {name:?}");
        if household.is_some() {
            assert_eq!(world.toy.household_id(), household, "state {name:?}");
        }
        assert!(fed > 300, "state {name:?}: fed {fed} frames");
    }
}
