//! The toy installs only software a release key signed, for its board, newer than what it
//! runs, and only once every byte matched; anything else leaves it on its old version.

use pawpost_crypto::{ImageDigest, Manifest, ReleaseKey};
use pawpost_toy::{
    Action, Firmware, Frame, FrameType, Report, Toy, UpdateRefusal, MAX_UPDATE_IMAGE_BYTES,
    UPDATE_CHUNK_BYTES,
};

use crate::support::*;

const BOARD: &str = "mps2-an386";

fn release_key() -> ReleaseKey {
    ReleaseKey::from_seed(&[0x42; 32])
}

fn image(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i * 7 % 251).unwrap())
        .collect()
}

fn manifest(board: &str, version: u32, counter: u32, image: &[u8]) -> Manifest {
    Manifest {
        board: board.into(),
        version,
        counter,
        size: u32::try_from(image.len()).unwrap(),
        sha256: ImageDigest::of(image),
    }
}

/// A paired toy running version 1 (counter 5) of `BOARD`, trusting `release_key()`,
/// connected and authenticated.
fn toy_on_v1() -> World {
    let mut world = World::paired();
    let toy = std::mem::replace(&mut world.toy, Toy::first_start(&mut rng(1)));
    world.toy = toy.with_firmware(
        Firmware {
            board: BOARD.into(),
            version: 1,
            counter: 5,
            confirmed: true,
        },
        vec![release_key().public_key()],
    );
    world.connect();
    world
}

fn offer(world: &mut World, key: &ReleaseKey, manifest: &Manifest) -> Vec<Action> {
    let bytes = manifest.encode().unwrap();
    let signature = key.sign(&bytes);
    world.receive(Frame::UpdateOffer {
        manifest: &bytes,
        signature,
    })
}

fn refusals(actions: &[Action]) -> Vec<UpdateRefusal> {
    reports(actions)
        .into_iter()
        .filter_map(|r| match r {
            Report::UpdateRefused { reason } => Some(reason),
            _ => None,
        })
        .collect()
}

fn requests(actions: &[Action]) -> Vec<(u32, u8)> {
    sent(actions)
        .iter()
        .filter_map(|bytes| match Frame::decode(bytes).unwrap() {
            Frame::UpdateRequest { offset, window } => Some((offset, window)),
            _ => None,
        })
        .collect()
}

fn installs(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::InstallUpdate { .. }))
}

/// Serves every piece the toy asks for, as the server does; returns all the actions and
/// the bytes written into the slot.
fn serve(world: &mut World, image: &[u8], first: Vec<Action>) -> (Vec<Action>, Vec<u8>) {
    serve_from(world, image, first, 0)
}

/// As [`serve`], with the first `written` bytes already in the slot.
fn serve_from(
    world: &mut World,
    image: &[u8],
    first: Vec<Action>,
    written: usize,
) -> (Vec<Action>, Vec<u8>) {
    let mut all = Vec::new();
    let mut slot = image[..written].to_vec();
    let mut pending = requests(&first);
    all.extend(first);
    while let Some((offset, window)) = pending.first().copied() {
        pending.remove(0);
        for i in 0..u32::from(window) {
            let start = offset as usize + i as usize * UPDATE_CHUNK_BYTES;
            if start >= image.len() {
                break;
            }
            let end = image.len().min(start + UPDATE_CHUNK_BYTES);
            let actions = world.receive(Frame::UpdateChunk {
                offset: u32::try_from(start).unwrap(),
                bytes: &image[start..end],
            });
            for action in &actions {
                if let Action::WriteUpdate { offset, bytes } = action {
                    assert_eq!(*offset as usize, slot.len(), "written in order");
                    slot.extend_from_slice(bytes);
                }
            }
            pending.extend(requests(&actions));
            all.extend(actions);
        }
    }
    (all, slot)
}

#[test]
fn the_toy_says_what_it_runs_after_authenticating() {
    let mut world = toy_on_v1();
    let types = sent_types(&world.connect());
    let auth = types.iter().position(|t| *t == FrameType::Auth).unwrap();
    let version = types.iter().position(|t| *t == FrameType::Version).unwrap();
    assert!(auth < version, "{types:?}");
}

#[test]
fn a_signed_newer_release_is_downloaded_checked_and_installed() {
    let mut world = toy_on_v1();
    let image = image(3 * UPDATE_CHUNK_BYTES + 100);
    let first = offer(&mut world, &release_key(), &manifest(BOARD, 2, 6, &image));
    assert!(first.contains(&Action::EraseUpdate));
    assert_eq!(requests(&first), vec![(0, 2)], "a small window");
    let (actions, slot) = serve(&mut world, &image, first);
    assert_eq!(slot, image);
    assert!(refusals(&actions).is_empty(), "{actions:?}");
    assert_eq!(
        actions.last(),
        Some(&Action::InstallUpdate {
            version: 2,
            counter: 6,
            size: u32::try_from(image.len()).unwrap(),
            sha256: ImageDigest::of(&image),
        })
    );
}

#[test]
fn a_tampered_image_is_erased_and_never_installed() {
    let mut world = toy_on_v1();
    let good = image(2 * UPDATE_CHUNK_BYTES + 1);
    let mut bad = good.clone();
    bad[UPDATE_CHUNK_BYTES + 3] ^= 1;
    let first = offer(&mut world, &release_key(), &manifest(BOARD, 2, 6, &good));
    let (actions, _) = serve(&mut world, &bad, first);
    assert!(!installs(&actions));
    assert_eq!(refusals(&actions), vec![UpdateRefusal::DigestMismatch]);
    assert_eq!(
        actions.last(),
        Some(&Action::Report(Report::UpdateRefused {
            reason: UpdateRefusal::DigestMismatch
        }))
    );
    assert!(actions.contains(&Action::EraseUpdate));
    // Offered again on this run, the same bad release is not downloaded again.
    let again = offer(&mut world, &release_key(), &manifest(BOARD, 2, 6, &good));
    assert!(requests(&again).is_empty());
}

#[test]
fn a_release_signed_by_another_key_is_refused() {
    let mut world = toy_on_v1();
    let image = image(10);
    let stranger = ReleaseKey::from_seed(&[0x13; 32]);
    let actions = offer(&mut world, &stranger, &manifest(BOARD, 2, 6, &image));
    assert_eq!(refusals(&actions), vec![UpdateRefusal::BadSignature]);
    assert!(requests(&actions).is_empty());
    assert!(!actions.contains(&Action::EraseUpdate));
}

#[test]
fn a_lower_or_equal_counter_is_refused_whatever_the_version() {
    let mut world = toy_on_v1();
    let image = image(10);
    for counter in [4, 5] {
        let actions = offer(
            &mut world,
            &release_key(),
            &manifest(BOARD, 9, counter, &image),
        );
        assert_eq!(refusals(&actions), vec![UpdateRefusal::StaleCounter]);
        assert!(requests(&actions).is_empty());
    }
}

#[test]
fn a_release_for_another_board_is_refused() {
    let mut world = toy_on_v1();
    let actions = offer(
        &mut world,
        &release_key(),
        &manifest("esp32-c3", 2, 6, &image(10)),
    );
    assert_eq!(refusals(&actions), vec![UpdateRefusal::WrongBoard]);
}

#[test]
fn an_image_larger_than_a_slot_is_refused() {
    let mut world = toy_on_v1();
    let mut m = manifest(BOARD, 2, 6, &image(10));
    m.size = MAX_UPDATE_IMAGE_BYTES + 1;
    let actions = offer(&mut world, &release_key(), &m);
    assert_eq!(refusals(&actions), vec![UpdateRefusal::TooLarge]);
}

#[test]
fn an_image_larger_than_the_boards_slot_is_refused_before_any_of_it_is_asked_for() {
    const SLOT: u32 = 512 * 1024;
    let mut world = toy_on_v1();
    let toy = std::mem::replace(&mut world.toy, Toy::first_start(&mut rng(1)));
    world.toy = toy.with_update_slot(SLOT);
    assert_eq!(world.toy.max_update_image_bytes(), SLOT);
    let mut m = manifest(BOARD, 2, 6, &image(10));
    m.size = SLOT + 1;
    let actions = offer(&mut world, &release_key(), &m);
    assert_eq!(refusals(&actions), vec![UpdateRefusal::TooLarge]);
    assert!(requests(&actions).is_empty(), "nothing is downloaded");
    assert!(
        !actions.iter().any(|a| matches!(a, Action::EraseUpdate)),
        "the slot is not touched"
    );
    // An image that fills the slot exactly is taken.
    let mut m = manifest(BOARD, 2, 6, &image(10));
    m.size = SLOT;
    let actions = offer(&mut world, &release_key(), &m);
    assert!(refusals(&actions).is_empty(), "{actions:?}");
    assert!(!requests(&actions).is_empty());
    // A board cannot raise the limit above the toy's own.
    let toy = Toy::first_start(&mut rng(2)).with_update_slot(u32::MAX);
    assert_eq!(toy.max_update_image_bytes(), MAX_UPDATE_IMAGE_BYTES);
}

#[test]
fn a_piece_out_of_place_abandons_the_download() {
    let mut world = toy_on_v1();
    let image = image(3 * UPDATE_CHUNK_BYTES);
    offer(&mut world, &release_key(), &manifest(BOARD, 2, 6, &image));
    let actions = world.receive(Frame::UpdateChunk {
        offset: u32::try_from(UPDATE_CHUNK_BYTES).unwrap(),
        bytes: &image[UPDATE_CHUNK_BYTES..2 * UPDATE_CHUNK_BYTES],
    });
    assert_eq!(refusals(&actions), vec![UpdateRefusal::OutOfOrder]);
    assert!(actions.contains(&Action::EraseUpdate));
}

#[test]
fn a_cut_connection_resumes_where_it_stopped_and_never_installs_half() {
    let mut world = toy_on_v1();
    let image = image(3 * UPDATE_CHUNK_BYTES);
    let m = manifest(BOARD, 2, 6, &image);
    offer(&mut world, &release_key(), &m);
    let actions = world.receive(Frame::UpdateChunk {
        offset: 0,
        bytes: &image[..UPDATE_CHUNK_BYTES],
    });
    assert!(!installs(&actions));
    world.event(pawpost_toy::Event::Disconnected);
    world.connect();
    let again = offer(&mut world, &release_key(), &m);
    assert!(
        !again.contains(&Action::EraseUpdate),
        "what was written stays"
    );
    assert_eq!(
        requests(&again),
        vec![(u32::try_from(UPDATE_CHUNK_BYTES).unwrap(), 2)]
    );
    let (actions, slot) = serve_from(&mut world, &image, again, UPDATE_CHUNK_BYTES);
    assert_eq!(slot, image);
    assert!(installs(&actions));
}

#[test]
fn an_offer_before_authentication_is_ignored() {
    let mut world = toy_on_v1();
    world.event(pawpost_toy::Event::Disconnected);
    world.event(pawpost_toy::Event::Connected);
    let actions = offer(
        &mut world,
        &release_key(),
        &manifest(BOARD, 2, 6, &image(10)),
    );
    assert!(requests(&actions).is_empty());
    assert!(!actions.contains(&Action::EraseUpdate));
}

#[test]
fn a_new_image_is_confirmed_once_the_server_accepts_the_toy() {
    let mut world = World::paired();
    let toy = std::mem::replace(&mut world.toy, Toy::first_start(&mut rng(1)));
    world.toy = toy.with_firmware(
        Firmware {
            board: BOARD.into(),
            version: 2,
            counter: 6,
            confirmed: false,
        },
        vec![release_key().public_key()],
    );
    let mut actions = world.connect();
    assert!(
        !actions.contains(&Action::ConfirmImage),
        "not before the server answered"
    );
    actions.extend(world.advance(pawpost_toy::AUTH_SETTLED_MS));
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == Action::ConfirmImage)
            .count(),
        1
    );
    assert!(world.toy.firmware().unwrap().confirmed);
    assert!(!world.connect().contains(&Action::ConfirmImage));
}
