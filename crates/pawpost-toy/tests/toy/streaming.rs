//! Protocol version 2: Grandma's long message reaches a small toy in chunks, each checked as
//! it arrives, and nothing plays until the whole message proved to be hers.

use pawpost_crypto::{EnvelopePrefix, MessageId, CHUNK_SIZE, TAG_LEN};
use pawpost_media::OggOpusWriter;
use pawpost_toy::{
    Action, Event, Frame, FrameType, RejectReason, Report, Toy, RECEIVE_WINDOW_CHUNKS,
    STREAMING_HELLO,
};

use crate::support::*;

/// About `ms` of voice in 20 ms packets of 61 bytes: 30 s is about 92 KB, six chunks.
fn long_voice(ms: u32, fill: u8) -> Vec<u8> {
    let mut writer = OggOpusWriter::new(1, 312, 0x5EED).unwrap();
    let mut packet = vec![fill; 61];
    packet[0] = 31 << 3;
    for _ in 0..(ms / 20) {
        writer.push_packet(&packet).unwrap();
    }
    writer.finish(0).unwrap()
}

/// The envelope's prefix and its chunks, as a server streams them.
fn split(envelope: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let (prefix, rest) = EnvelopePrefix::parse(envelope).unwrap();
    let prefix = envelope[..prefix.encoded_len()].to_vec();
    let chunks = rest
        .chunks(CHUNK_SIZE + TAG_LEN)
        .map(<[u8]>::to_vec)
        .collect();
    (prefix, chunks)
}

fn chunk_requests(actions: &[Action]) -> Vec<(MessageId, u32, u8)> {
    sent(actions)
        .iter()
        .filter_map(|b| match Frame::decode(b).unwrap() {
            Frame::ChunkRequest {
                message_id,
                next_index,
                window,
            } => Some((message_id, next_index, window)),
            _ => None,
        })
        .collect()
}

fn rejected(actions: &[Action]) -> Vec<(MessageId, RejectReason)> {
    sent(actions)
        .iter()
        .filter_map(|b| match Frame::decode(b).unwrap() {
            Frame::Rejected { message_id, reason } => Some((message_id, reason)),
            _ => None,
        })
        .collect()
}

fn chunk<'a>(id: MessageId, index: usize, chunks: &'a [Vec<u8>]) -> Frame<'a> {
    Frame::DeliverChunk {
        message_id: id,
        index: u32::try_from(index).unwrap(),
        chunk: &chunks[index],
    }
}

fn nothing_playable(world: &mut World) {
    assert_eq!(world.toy.queued_messages(), 0);
    assert!(world.audio.is_empty(), "partial audio is deleted");
    assert!(world.heard.is_empty());
}

#[test]
fn a_toy_says_before_auth_that_it_takes_deliveries_in_chunks() {
    let mut world = World::paired();
    world.event(Event::Disconnected);
    let actions = world.connect();
    assert_eq!(
        chunk_requests(&actions),
        vec![(STREAMING_HELLO, 0, RECEIVE_WINDOW_CHUNKS)]
    );
}

#[test]
fn a_thirty_second_message_arrives_in_chunks_within_the_window_and_plays_only_when_whole() {
    let mut world = World::paired();
    let id = message_id(1);
    let ogg = long_voice(30_000, 0x55);
    let toy = world.toy_in_roster();
    let envelope = seal_voice(&world.family.grandma, household_id(), id, &[toy], &ogg);
    let (prefix, chunks) = split(&envelope);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());

    // The signature and the key are checked before a single chunk is asked for.
    let actions = world.receive(Frame::DeliverStart { prefix: &prefix });
    assert_eq!(
        chunk_requests(&actions),
        vec![(id, 0, RECEIVE_WINDOW_CHUNKS)]
    );
    for index in 0..chunks.len() {
        let actions = world.receive(chunk(id, index, &chunks));
        assert!(reports(&actions).is_empty(), "{actions:?}");
        // Stored as it arrives, but not playable before the end.
        assert!(world.audio.contains_key(&id));
        if index + 1 < chunks.len() {
            let next = u32::try_from(index + 1).unwrap();
            assert_eq!(
                chunk_requests(&actions),
                vec![(id, next, RECEIVE_WINDOW_CHUNKS)]
            );
            assert_eq!(world.toy.queued_messages(), 0);
        } else {
            let persist_at = actions
                .iter()
                .position(|a| matches!(a, Action::Persist(_)))
                .unwrap();
            let ack_at = actions
                .iter()
                .position(|a| matches!(a, Action::SendFrame(_)))
                .unwrap();
            assert!(persist_at < ack_at, "saved before the ack");
            assert_eq!(sent_types(&actions), vec![FrameType::Delivered]);
        }
    }
    assert_eq!(world.toy.queued_messages(), 1);

    let actions = world.press();
    assert_eq!(played(&actions), vec![id]);
    assert_eq!(world.heard, vec![(id, ogg)]);
    assert!(world.audio.is_empty(), "heard audio is deleted");
}

#[test]
fn a_press_while_a_message_streams_records_rather_than_playing_part_of_it() {
    let mut world = World::paired();
    let id = message_id(1);
    let toy = world.toy_in_roster();
    let envelope = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(20_000, 1),
    );
    let (prefix, chunks) = split(&envelope);
    world.receive(Frame::DeliverStart { prefix: &prefix });
    world.receive(chunk(id, 0, &chunks));
    let actions = world.press();
    assert!(played(&actions).is_empty());
    assert!(starts_microphone(&actions));
}

#[test]
fn a_chunk_with_a_bad_tag_drops_the_message_and_what_was_stored() {
    let mut world = World::paired();
    let id = message_id(1);
    let toy = world.toy_in_roster();
    let envelope = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(30_000, 2),
    );
    let (prefix, mut chunks) = split(&envelope);
    chunks[2][100] ^= 1;
    world.receive(Frame::DeliverStart { prefix: &prefix });
    world.receive(chunk(id, 0, &chunks));
    world.receive(chunk(id, 1, &chunks));
    let actions = world.receive(chunk(id, 2, &chunks));
    assert!(actions.contains(&Action::DiscardAudio { message_id: id }));
    assert_eq!(rejected(&actions), vec![(id, RejectReason::Undecryptable)]);
    assert!(
        chunk_requests(&actions).is_empty(),
        "no more chunks asked for"
    );
    // What follows is ignored.
    let actions = world.receive(chunk(id, 3, &chunks));
    assert_eq!(
        reports(&actions),
        vec![Report::FrameIgnored {
            frame_type: FrameType::DeliverChunk
        }]
    );
    nothing_playable(&mut world);
}

#[test]
fn a_repeated_chunk_is_ignored_and_a_chunk_out_of_order_stops_the_delivery() {
    let mut world = World::paired();
    let id = message_id(1);
    let toy = world.toy_in_roster();
    let ogg = long_voice(30_000, 3);
    let envelope = seal_voice(&world.family.grandma, household_id(), id, &[toy], &ogg);
    let (prefix, chunks) = split(&envelope);

    // A repeat of chunk 0 changes nothing.
    world.receive(Frame::DeliverStart { prefix: &prefix });
    world.receive(chunk(id, 0, &chunks));
    let actions = world.receive(chunk(id, 0, &chunks));
    assert!(sent(&actions).is_empty());
    assert_eq!(
        reports(&actions),
        vec![Report::FrameIgnored {
            frame_type: FrameType::DeliverChunk
        }]
    );

    // Chunk 2 before chunk 1: the delivery stops, what was stored goes, and the message is
    // not refused (the server delivers it again at the next connection).
    let actions = world.receive(chunk(id, 2, &chunks));
    assert_eq!(
        reports(&actions),
        vec![Report::DeliveryInterrupted { message_id: id }]
    );
    assert!(rejected(&actions).is_empty());
    nothing_playable(&mut world);

    // Chunk 1's bytes labelled as chunk 0 of a fresh delivery do not authenticate there.
    world.receive(Frame::DeliverStart { prefix: &prefix });
    let moved = Frame::DeliverChunk {
        message_id: id,
        index: 0,
        chunk: &chunks[1],
    };
    let actions = world.receive(moved);
    assert_eq!(rejected(&actions), vec![(id, RejectReason::Undecryptable)]);
    nothing_playable(&mut world);

    // Delivered again in order, it plays.
    world.receive(Frame::DeliverStart { prefix: &prefix });
    for index in 0..chunks.len() {
        world.receive(chunk(id, index, &chunks));
    }
    assert_eq!(played(&world.press()), vec![id]);
    assert_eq!(world.heard, vec![(id, ogg)]);
}

#[test]
fn chunks_that_authenticate_but_differ_from_the_signed_digest_never_play() {
    let mut world = World::paired();
    let id = message_id(1);
    let toy = world.toy_in_roster();
    // Same message id, so the same content key and header: the second message's chunks
    // decrypt under the first one's key, but are not what Grandma signed.
    let signed = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(30_000, 4),
    );
    let swapped = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(30_000, 5),
    );
    let (prefix, _) = split(&signed);
    let (_, chunks) = split(&swapped);
    world.receive(Frame::DeliverStart { prefix: &prefix });
    let mut last = Vec::new();
    for index in 0..chunks.len() {
        last = world.receive(chunk(id, index, &chunks));
    }
    assert!(last.contains(&Action::DiscardAudio { message_id: id }));
    assert_eq!(rejected(&last), vec![(id, RejectReason::Undecryptable)]);
    nothing_playable(&mut world);
}

#[test]
fn a_stranger_or_a_blocked_uncle_gets_no_chunk_asked_for() {
    let mut world = World::paired();
    let toy = world.toy_in_roster();
    let uncle = keys(4);
    let stranger = keys(6);
    for (n, sender, reason) in [
        (1, &uncle, RejectReason::SenderBlocked),
        (2, &stranger, RejectReason::UnknownSender),
    ] {
        let id = message_id(n);
        let envelope = seal_voice(sender, household_id(), id, &[toy], &long_voice(1000, 6));
        let (prefix, _) = split(&envelope);
        let actions = world.receive(Frame::DeliverStart { prefix: &prefix });
        assert!(chunk_requests(&actions).is_empty());
        assert_eq!(rejected(&actions), vec![(id, reason)]);
    }
    // A prefix with a broken signature is refused before any chunk too.
    let id = message_id(3);
    let envelope = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(1000, 7),
    );
    let (mut prefix, _) = split(&envelope);
    let signature_at = prefix.len() - 80 - 64;
    prefix[signature_at] ^= 1;
    let actions = world.receive(Frame::DeliverStart { prefix: &prefix });
    assert!(chunk_requests(&actions).is_empty());
    assert_eq!(rejected(&actions), vec![(id, RejectReason::BadSignature)]);
    nothing_playable(&mut world);
}

#[test]
fn a_disconnection_mid_stream_deletes_the_partial_message() {
    let mut world = World::paired();
    let id = message_id(1);
    let toy = world.toy_in_roster();
    let envelope = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(30_000, 8),
    );
    let (prefix, chunks) = split(&envelope);
    world.receive(Frame::DeliverStart { prefix: &prefix });
    world.receive(chunk(id, 0, &chunks));
    let actions = world.event(Event::Disconnected);
    assert!(actions.contains(&Action::DiscardAudio { message_id: id }));
    nothing_playable(&mut world);
}

#[test]
fn saving_the_state_never_rewrites_queued_audio() {
    let mut world = World::paired();
    let id = message_id(1);
    let envelope = world.message_from(&world.family.grandma, id);
    world.deliver(&envelope);
    let saved = world.saved.clone().unwrap();
    let audio = &world.audio[&id];
    assert!(
        !saved.windows(audio.len()).any(|w| w == audio.as_slice()),
        "the state blob does not hold the audio"
    );
    assert!(saved.len() < 2048, "{} bytes", saved.len());
    // After a restart the toy still knows the message, and plays it from storage.
    let mut toy = Toy::restore(&saved).unwrap();
    toy.handle(
        Event::PowerOn {
            now_ms: 1,
            wall_clock_unix_ms: Some(NOON_UTC_MS),
        },
        &mut rng(3),
    );
    assert!(toy.keeps_audio_of(id));
    world.toy = toy;
    assert_eq!(played(&world.press()), vec![id]);
}

#[test]
fn messages_whose_starts_arrive_together_are_received_one_after_the_other() {
    let mut world = World::paired();
    let toy = world.toy_in_roster();
    let (first, second) = (message_id(1), message_id(2));
    let a = split(&seal_voice(
        &world.family.grandma,
        household_id(),
        first,
        &[toy],
        &long_voice(20_000, 9),
    ));
    let b = split(&seal_voice(
        &world.family.mum,
        household_id(),
        second,
        &[toy],
        &long_voice(20_000, 10),
    ));
    // The server sends both starts at once (a toy catching up after being offline).
    let asked = chunk_requests(&world.receive(Frame::DeliverStart { prefix: &a.0 }));
    assert_eq!(asked, vec![(first, 0, RECEIVE_WINDOW_CHUNKS)]);
    let actions = world.receive(Frame::DeliverStart { prefix: &b.0 });
    assert!(sent(&actions).is_empty(), "the second waits its turn");
    let mut last = Vec::new();
    for index in 0..a.1.len() {
        last = world.receive(chunk(first, index, &a.1));
    }
    assert_eq!(sent_types(&last)[0], FrameType::Delivered);
    assert_eq!(
        chunk_requests(&last),
        vec![(second, 0, RECEIVE_WINDOW_CHUNKS)],
        "the second starts when the first is done"
    );
    for index in 0..b.1.len() {
        world.receive(chunk(second, index, &b.1));
    }
    assert_eq!(world.toy.queued_messages(), 2);
}

#[test]
fn chunks_decrypted_where_the_frame_lies_act_as_chunks_decrypted_in_a_copy() {
    let ogg = long_voice(30_000, 0x66);
    let mut copied = World::paired();
    let mut in_place = World::paired();
    let id = message_id(7);
    let toy = copied.toy_in_roster();
    assert_eq!(toy, in_place.toy_in_roster());
    let envelope = seal_voice(&copied.family.grandma, household_id(), id, &[toy], &ogg);
    let (prefix, chunks) = split(&envelope);
    let start = Frame::DeliverStart { prefix: &prefix };
    assert_eq!(copied.receive(start), in_place.receive_in_place(start));
    for index in 0..chunks.len() {
        let with_copy = copied.receive(chunk(id, index, &chunks));
        let stored: Vec<_> = with_copy
            .iter()
            .filter(|a| !matches!(a, Action::StoreAudio { .. }))
            .cloned()
            .collect();
        assert_eq!(stored.len() + 1, with_copy.len(), "one StoreAudio a chunk");
        // In place, the audio is pointed to rather than carried in an action.
        assert_eq!(in_place.receive_in_place(chunk(id, index, &chunks)), stored);
        assert_eq!(copied.audio, in_place.audio);
    }
    assert_eq!(in_place.toy.queued_messages(), 1);
    assert_eq!(played(&in_place.press()), vec![id]);
    assert_eq!(in_place.heard, vec![(id, ogg)]);

    // A chunk with a bad tag points to nothing, and what was stored is deleted.
    let mut world = World::paired();
    let id = message_id(8);
    let envelope = seal_voice(
        &world.family.grandma,
        household_id(),
        id,
        &[toy],
        &long_voice(30_000, 3),
    );
    let (prefix, mut chunks) = split(&envelope);
    chunks[1][10] ^= 1;
    world.receive_in_place(Frame::DeliverStart { prefix: &prefix });
    world.receive_in_place(chunk(id, 0, &chunks));
    assert!(world.audio.contains_key(&id));
    let actions = world.receive_in_place(chunk(id, 1, &chunks));
    assert!(actions.contains(&Action::DiscardAudio { message_id: id }));
    assert_eq!(rejected(&actions), vec![(id, RejectReason::Undecryptable)]);
    nothing_playable(&mut world);
    // The chunks of a delivery that ended are ignored, as they are in a copy.
    let actions = world.receive_in_place(chunk(id, 2, &chunks));
    assert_eq!(
        reports(&actions),
        vec![Report::FrameIgnored {
            frame_type: FrameType::DeliverChunk
        }]
    );
}
