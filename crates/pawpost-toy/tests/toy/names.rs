//! The toy says who a message is from, with the names a parent set; nobody else can name
//! people for it.

use pawpost_crypto::{DeviceKeys, MediaType, MessageId};
use pawpost_toy::{Action, Frame, NamesRefusal, Prompt, Report, SpokenName};

use crate::support::*;

/// Grandma's account (number 3 in the family's roster), as the parents' app writes it.
const GRANDMA_ACCOUNT: &str = "ac000000-0000-4000-8000-000000000003";

fn record(name: &str) -> Vec<u8> {
    format!("pawpost-names/1\ntoy\tBunny\nmember\t{GRANDMA_ACCOUNT}\t{name}\n").into_bytes()
}

fn names_from(world: &World, signer: &DeviceKeys, id: MessageId, text: &[u8]) -> Vec<u8> {
    let toy = world.toy_in_roster();
    seal_with(
        signer,
        household_id(),
        id,
        &[toy, signer.public()],
        text,
        MediaType::Text,
    )
}

fn said_before_playing(world: &mut World, id: MessageId) -> Vec<Prompt> {
    let envelope = world.message_from(&world.family.grandma, id);
    world.deliver(&envelope);
    let actions = world.press();
    let play_at = actions
        .iter()
        .position(|a| matches!(a, Action::PlayAudio { .. }))
        .expect("the message plays");
    spoken(&actions[..play_at])
}

fn refusals(actions: &[Action]) -> Vec<NamesRefusal> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(Report::NamesRefused { reason }) => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn the_toy_says_a_message_is_from_grandma_before_playing_it() {
    let mut world = World::paired();
    assert!(said_before_playing(&mut world, message_id(1)).is_empty());

    let names = names_from(
        &world,
        &world.family.mum,
        message_id(40),
        &record("Grandma"),
    );
    let actions = world.receive(Frame::Names { envelope: &names });
    assert!(refusals(&actions).is_empty(), "{actions:?}");
    assert_eq!(
        said_before_playing(&mut world, message_id(2)),
        vec![Prompt::MessageFrom(SpokenName::new("Grandma").unwrap())]
    );
    // The server sends the same record again at the next connection: nothing changes.
    assert!(refusals(&world.receive(Frame::Names { envelope: &names })).is_empty());
}

#[test]
fn the_guardian_may_rename_but_a_relative_cannot_name_herself() {
    let mut world = World::paired();
    let by_dad = names_from(&world, &world.family.dad, message_id(41), &record("Nana"));
    assert!(refusals(&world.receive(Frame::Names { envelope: &by_dad })).is_empty());

    let by_grandma = names_from(
        &world,
        &world.family.grandma,
        message_id(42),
        &record("Mum"),
    );
    let actions = world.receive(Frame::Names {
        envelope: &by_grandma,
    });
    assert_eq!(refusals(&actions), vec![NamesRefusal::NotAParent]);
    assert_eq!(
        said_before_playing(&mut world, message_id(3)),
        vec![Prompt::MessageFrom(SpokenName::new("Nana").unwrap())]
    );
}

#[test]
fn a_record_not_for_the_toy_or_not_a_names_record_changes_nothing() {
    let mut world = World::paired();
    let mum = world.family.mum.public();
    let not_for_toy = seal_with(
        &world.family.mum,
        household_id(),
        message_id(43),
        &[mum],
        &record("Grandma"),
        MediaType::Text,
    );
    let actions = world.receive(Frame::Names {
        envelope: &not_for_toy,
    });
    assert_eq!(refusals(&actions), vec![NamesRefusal::NotARecipient]);

    let garbage = names_from(&world, &world.family.mum, message_id(44), b"Grandma");
    let actions = world.receive(Frame::Names { envelope: &garbage });
    assert_eq!(refusals(&actions), vec![NamesRefusal::BadRecord]);

    let actions = world.receive(Frame::Names {
        envelope: b"not an envelope",
    });
    assert_eq!(refusals(&actions), vec![NamesRefusal::Malformed]);
    assert!(said_before_playing(&mut world, message_id(4)).is_empty());
}

#[test]
fn a_long_press_repeats_the_safety_number_of_the_keys_the_roster_lists() {
    let mut world = World::paired();
    let actions = world.event(pawpost_toy::Event::PawPressed { long: true });
    let number = world.toy_in_roster().safety_number();
    assert_eq!(
        spoken(&actions),
        vec![Prompt::AlreadyPaired, Prompt::SafetyNumber(number)]
    );
}
