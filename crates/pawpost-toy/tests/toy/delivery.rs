//! Grandma's messages reach the child, online or not, and she sees them heard.

use pawpost_toy::{Action, Event, Frame, FrameType, Heart, Toy};

use crate::support::*;

#[test]
fn grandmas_message_is_delivered_blinks_plays_on_a_press_and_is_marked_heard() {
    let mut world = World::paired();
    let id = message_id(1);
    let envelope = world.message_from(&world.family.grandma, id);
    let actions = world.deliver(&envelope);

    // Saved before the server is told, then acknowledged, and the heart blinks.
    let persist_at = actions
        .iter()
        .position(|a| matches!(a, Action::Persist(_)))
        .unwrap();
    let ack_at = actions
        .iter()
        .position(|a| matches!(a, Action::SendFrame(_)))
        .unwrap();
    assert!(persist_at < ack_at);
    assert_eq!(
        Frame::decode(&sent(&actions)[0]).unwrap(),
        Frame::Delivered { message_id: id }
    );
    assert_eq!(hearts(&actions), vec![Heart::Blink]);
    assert!(reports(&actions).is_empty());

    let actions = world.press();
    assert_eq!(played(&actions), vec![id]);
    assert_eq!(world.heard, vec![(id, voice(1000))]);
    assert!(
        world.audio.is_empty(),
        "heard audio is deleted from storage"
    );
    assert_eq!(
        Frame::decode(&sent(&actions)[0]).unwrap(),
        Frame::Played { message_id: id }
    );
    assert_eq!(hearts(&actions), vec![Heart::Off]);
    assert!(!starts_microphone(&actions));
    assert_eq!(world.toy.queued_messages(), 0);
}

#[test]
fn messages_play_oldest_first_one_per_press() {
    let mut world = World::paired();
    for n in 1..=3 {
        let envelope = world.message_from(&world.family.grandma, message_id(n));
        world.deliver(&envelope);
    }
    let envelope = world.message_from(&world.family.dad, message_id(4));
    world.deliver(&envelope);
    for n in 1..=4 {
        let actions = world.press();
        assert_eq!(played(&actions)[0], message_id(n));
    }
}

#[test]
fn messages_sent_while_the_toy_was_offline_arrive_when_it_reconnects() {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    world.deliver(&envelope);
    world.event(Event::Disconnected);

    // Offline: the child hears the message; the "heard" waits for the connection.
    let actions = world.press();
    assert_eq!(played(&actions).len(), 1);
    assert!(sent(&actions).is_empty());

    // Meanwhile the server kept two more messages for the toy.
    let waiting: Vec<Vec<u8>> = (2..=3)
        .map(|n| world.message_from(&world.family.grandma, message_id(n)))
        .collect();

    let actions = world.connect();
    assert_eq!(
        sent_types(&actions),
        vec![FrameType::ChunkRequest, FrameType::Auth, FrameType::Played],
        "the hello and auth first, then what waited"
    );
    for (n, envelope) in (2..=3).zip(&waiting) {
        let actions = world.deliver(envelope);
        assert_eq!(
            Frame::decode(&sent(&actions)[0]).unwrap(),
            Frame::Delivered {
                message_id: message_id(n)
            }
        );
    }
    assert_eq!(world.toy.queued_messages(), 2);
    assert_eq!(played(&world.press())[0], message_id(2));
}

#[test]
fn queued_messages_and_seen_ids_survive_a_restart() {
    let mut world = World::paired();
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    world.deliver(&envelope);

    let mut toy = Toy::restore(world.saved.as_ref().unwrap()).unwrap();
    let mut rng = rng(3);
    let actions = toy.handle(
        Event::PowerOn {
            now_ms: 5,
            wall_clock_unix_ms: Some(NOON_UTC_MS),
        },
        &mut rng,
    );
    assert_eq!(hearts(&actions), vec![Heart::Blink]);
    assert_eq!(toy.queued_messages(), 1);
    world.toy = toy;
    world.connect();
    // The server, not having seen the ack, delivers again: the toy already has it.
    let actions = world.deliver(&envelope);
    assert_eq!(world.toy.queued_messages(), 1);
    assert_eq!(sent_types(&actions), vec![FrameType::Rejected]);
    assert_eq!(played(&world.press())[0], message_id(1));
}
