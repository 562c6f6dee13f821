//! What the toy saves is exactly what it restores, and damaged storage is refused.

use pawpost_toy::{StateError, Toy};

use crate::support::*;

#[test]
fn a_saved_toy_restores_to_the_same_bytes() {
    let mut world = World::paired();
    for n in 1..=2 {
        let envelope = world.message_from(&world.family.grandma, message_id(n));
        world.deliver(&envelope);
    }
    world.press();
    let saved = world.saved.clone().unwrap();
    let restored = Toy::restore(&saved).unwrap();
    assert_eq!(restored.state_blob().as_bytes(), saved.as_slice());
    assert_eq!(restored.queued_messages(), 1);
    assert_eq!(restored.roster_version(), 1);
    assert_eq!(restored.identity(), world.toy.identity());
}

#[test]
fn damaged_storage_is_refused_not_half_loaded() {
    let world = World::paired();
    let saved = world.saved.clone().unwrap();
    for cut in [0, 1, 50, saved.len() - 1] {
        assert_eq!(
            Toy::restore(&saved[..cut]).err(),
            Some(StateError::Truncated),
            "cut at {cut}"
        );
    }
    let mut longer = saved.clone();
    longer.push(0);
    assert_eq!(Toy::restore(&longer).err(), Some(StateError::TrailingBytes));
    let mut wrong_version = saved.clone();
    wrong_version[0] = 9;
    assert_eq!(
        Toy::restore(&wrong_version).err(),
        Some(StateError::UnsupportedVersion)
    );
}

#[test]
fn the_state_blob_never_prints_its_secrets() {
    let world = World::new_toy();
    let blob = world.toy.state_blob();
    assert_eq!(
        format!("{blob:?}"),
        format!("StateBlob({} bytes)", blob.as_bytes().len())
    );
}
