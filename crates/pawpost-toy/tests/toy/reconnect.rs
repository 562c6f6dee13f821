//! When the toy tells its shell to wait before reconnecting, and when to start the wait
//! over: a refused `Auth` is not answered again on the same connection.

use pawpost_toy::{Action, Event, Frame, FrameType, ReconnectReason, ServerError, AUTH_SETTLED_MS};

use crate::support::*;

fn accepted(actions: &[Action]) -> bool {
    actions.contains(&Action::ConnectionAccepted)
}

fn refused(actions: &[Action]) -> bool {
    actions.contains(&Action::Reconnect(ReconnectReason::AuthRefused))
}

#[test]
fn a_refused_toy_asks_to_wait_and_does_not_answer_the_next_challenge() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    let actions = world.connect();
    assert_eq!(
        sent_types(&actions),
        vec![FrameType::ChunkRequest, FrameType::Auth]
    );
    assert!(
        !accepted(&actions),
        "an Auth sent is not yet an Auth that stood"
    );

    let actions = world.receive(Frame::Error {
        code: ServerError::AuthFailed,
    });
    assert!(refused(&actions), "{actions:?}");
    // The server challenges again on the same connection; the toy stays silent.
    let actions = world.receive(Frame::Challenge {
        nonce: [9; 32],
        server_time_ms: NOON_UTC_MS,
    });
    assert!(sent(&actions).is_empty(), "{actions:?}");
    let actions = world.receive(Frame::Error {
        code: ServerError::AuthFailed,
    });
    assert!(!refused(&actions), "asked once per connection");
    let actions = world.advance(AUTH_SETTLED_MS * 2);
    assert!(!accepted(&actions), "a refused toy is never accepted");

    // On the next connection it tries again, once.
    world.event(Event::Disconnected);
    let actions = world.connect();
    assert_eq!(
        sent_types(&actions),
        vec![FrameType::ChunkRequest, FrameType::Auth]
    );
}

#[test]
fn an_auth_that_stands_is_reported_once_after_the_settling_time() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    world.connect();
    let actions = world.advance(AUTH_SETTLED_MS - 1);
    assert!(!accepted(&actions));
    let actions = world.advance(1);
    assert!(accepted(&actions), "{actions:?}");
    assert!(
        !accepted(&world.advance(AUTH_SETTLED_MS)),
        "once per connection"
    );
}

#[test]
fn a_frame_only_an_authenticated_toy_gets_reports_the_acceptance_at_once() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    world.connect();
    let envelope = world.message_from(&world.family.grandma, message_id(9));
    let actions = world.deliver(&envelope);
    assert!(accepted(&actions), "{actions:?}");
    assert!(!accepted(&world.advance(AUTH_SETTLED_MS)));
}

#[test]
fn an_unpaired_toy_is_accepted_when_the_server_challenges_it() {
    let mut world = World::new_toy();
    let actions = world.connect();
    assert!(accepted(&actions), "{actions:?}");
    // Offline, nothing is accepted.
    world.event(Event::Disconnected);
    assert!(!accepted(&world.advance(AUTH_SETTLED_MS)));
}
