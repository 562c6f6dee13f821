//! The child presses the paw and speaks back to the family.

use pawpost_crypto::open;
use pawpost_media::{validate_ogg_opus, Limits, MediaError};
use pawpost_toy::{
    Action, Event, Frame, FrameType, Heart, Prompt, RecordingProblem, Report, MAX_RECORDING_MS,
    RECORDING_GRACE_MS,
};

use crate::support::*;

/// The one upload sent in pieces (`UploadChunk`), put together in order.
fn upload_in(actions: &[Action]) -> Vec<u8> {
    let mut envelope = Vec::new();
    for bytes in sent(actions) {
        if let Frame::UploadChunk {
            offset,
            total_len,
            bytes,
            ..
        } = Frame::decode(&bytes).unwrap()
        {
            assert_eq!(offset as usize, envelope.len(), "pieces in order");
            envelope.extend_from_slice(bytes);
            assert!(envelope.len() <= total_len as usize);
        }
    }
    assert!(!envelope.is_empty(), "{actions:?}");
    envelope
}

#[test]
fn the_child_records_a_reply_that_the_family_can_open_and_the_toy_says_sent() {
    let mut world = World::paired();
    let actions = world.press();
    assert_eq!(
        spoken(&actions),
        vec![Prompt::NoMessages, Prompt::Recording]
    );
    assert!(actions.contains(&Action::StartRecording {
        max_ms: MAX_RECORDING_MS
    }));
    assert_eq!(hearts(&actions), vec![Heart::On]);

    // A press stops the microphone early.
    assert_eq!(world.press(), vec![Action::StopRecording]);
    let ogg = voice(3000);
    let actions = world.event(Event::RecordingFinished { ogg: ogg.clone() });
    assert_eq!(hearts(&actions), vec![Heart::Off]);
    let envelope = upload_in(&actions);

    // Every approved person opens it, checking the toy's signature against the roster.
    let toy = world.toy_in_roster();
    for reader in [&world.family.mum, &world.family.dad, &world.family.grandma] {
        let opened = open(&envelope, reader, &toy).unwrap();
        assert_eq!(opened.payload, ogg);
        assert_eq!(opened.header.household_id, household_id());
        assert_eq!(
            opened.header.duration_ms,
            validate_ogg_opus(&ogg, &Limits::DEFAULT)
                .unwrap()
                .duration_ms
        );
    }
    // The blocked uncle is not even a recipient.
    assert!(open(&envelope, &world.family.uncle, &toy).is_err());

    let message_id = pawpost_crypto::Envelope::parse(&envelope)
        .unwrap()
        .header()
        .message_id;
    let actions = world.receive(Frame::UploadAck { message_id });
    assert_eq!(spoken(&actions), vec![Prompt::Sent]);
    // Once only.
    let actions = world.receive(Frame::UploadAck { message_id });
    assert!(spoken(&actions).is_empty());
}

#[test]
fn the_microphone_is_stopped_if_the_shell_forgets_to() {
    let mut world = World::paired();
    world.press();
    let actions = world.advance(u64::from(MAX_RECORDING_MS) + RECORDING_GRACE_MS);
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == Action::StopRecording)
            .count(),
        1
    );
    assert!(!world.advance(1000).contains(&Action::StopRecording));
}

#[test]
fn a_recording_made_offline_is_uploaded_on_reconnect() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    world.press();
    let actions = world.event(Event::RecordingFinished { ogg: voice(1000) });
    assert!(sent(&actions).is_empty());
    let actions = world.connect();
    assert_eq!(
        sent_types(&actions),
        vec![
            FrameType::ChunkRequest,
            FrameType::Auth,
            FrameType::UploadChunk
        ]
    );
}

#[test]
fn a_bad_or_unrequested_recording_is_not_sent() {
    let mut world = World::paired();
    let actions = world.event(Event::RecordingFinished { ogg: voice(1000) });
    assert!(sent(&actions).is_empty());
    assert_eq!(
        reports(&actions),
        vec![Report::RecordingDiscarded {
            reason: RecordingProblem::NotRequested
        }]
    );

    world.press();
    let actions = world.event(Event::RecordingFinished { ogg: Vec::new() });
    assert!(sent(&actions).is_empty());
    assert_eq!(spoken(&actions), vec![Prompt::RecordingFailed]);
    assert_eq!(
        reports(&actions),
        vec![Report::RecordingDiscarded {
            reason: RecordingProblem::BadMedia(MediaError::Empty)
        }]
    );
}

#[test]
fn an_unpaired_toy_never_records() {
    let mut world = World::new_toy();
    let actions = world.press();
    assert_eq!(spoken(&actions), vec![Prompt::NotPaired]);
    assert!(!starts_microphone(&actions));
}
