//! The household's own rules, signed into its roster, enforced by the toy itself.

use pawpost_crypto::{HouseholdSettings, QuietHours};
use pawpost_toy::signing::sign_approval;
use pawpost_toy::{ApprovalRefusal, Frame, FrameType, Heart, Prompt, Report};

use crate::support::*;

fn quiet_evenings() -> HouseholdSettings {
    HouseholdSettings {
        // 19:30 to 07:00 local time, in a household at UTC+01:00.
        quiet_hours: Some(QuietHours {
            start_minute: 19 * 60 + 30,
            end_minute: 7 * 60,
        }),
        timezone_offset_minutes: 60,
        ..settings()
    }
}

#[test]
fn a_message_arriving_at_bedtime_waits_silently_until_morning() {
    // 21:00 local (20:00 UTC).
    let mut world = World::new_toy_at(NOON_UTC_MS + 8 * HOUR_MS);
    world.pair(quiet_evenings());
    world.connect();
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    let actions = world.deliver(&envelope);
    assert_eq!(sent_types(&actions), vec![FrameType::Delivered]);
    assert!(hearts(&actions).is_empty(), "the heart stays dark at night");

    let actions = world.press();
    assert_eq!(spoken(&actions), vec![Prompt::QuietHours]);
    assert!(played(&actions).is_empty());
    assert!(!starts_microphone(&actions));

    // 06:59 local: still quiet.
    let actions = world.advance(9 * HOUR_MS + 59 * 60 * 1000);
    assert!(hearts(&actions).is_empty());
    // 07:00 local: the heart blinks and the message plays.
    let actions = world.advance(60 * 1000);
    assert_eq!(hearts(&actions), vec![Heart::Blink]);
    assert_eq!(played(&world.press())[0], message_id(1));
}

#[test]
fn quiet_hours_follow_the_households_time_zone() {
    // Quiet 11:30 to 13:00 local; it is 12:00 UTC.
    let window = Some(QuietHours {
        start_minute: 11 * 60 + 30,
        end_minute: 13 * 60,
    });
    let in_utc = HouseholdSettings {
        quiet_hours: window,
        ..settings()
    };
    let in_new_york = HouseholdSettings {
        quiet_hours: window,
        timezone_offset_minutes: -5 * 60,
        ..settings()
    };
    for (settings, quiet) in [(in_utc, true), (in_new_york, false)] {
        let mut world = World::paired_with(settings);
        let envelope = world.message_from(&world.family.grandma, message_id(1));
        let actions = world.deliver(&envelope);
        assert_eq!(hearts(&actions).is_empty(), quiet);
        assert_eq!(played(&world.press()).is_empty(), quiet);
    }
}

fn approvals_first() -> HouseholdSettings {
    HouseholdSettings {
        parent_approves_before_play: true,
        ..settings()
    }
}

fn approval_refused(actions: &[pawpost_toy::Action]) -> Option<ApprovalRefusal> {
    reports(actions).iter().find_map(|r| match r {
        Report::ApprovalRefused { reason, .. } => Some(*reason),
        _ => None,
    })
}

#[test]
fn a_held_message_plays_only_after_a_parent_approves_it() {
    let mut world = World::paired_with(approvals_first());
    let id = message_id(1);
    let envelope = world.message_from(&world.family.grandma, id);
    let actions = world.deliver(&envelope);
    assert_eq!(sent_types(&actions), vec![FrameType::Delivered]);
    assert!(hearts(&actions).is_empty(), "held: nothing to show yet");
    assert_eq!(world.toy.queued_messages(), 1);

    // Grandma cannot approve her own message, nor can a stranger.
    let attempts: Vec<_> = [
        &world.family.grandma,
        &world.family.stranger,
        &world.family.uncle,
    ]
    .into_iter()
    .map(|who| (who.device_id(), sign_approval(who, household_id(), id)))
    .collect();
    for (approver, signature) in attempts {
        let actions = world.receive(Frame::Approval {
            message_id: id,
            approver,
            signature,
        });
        assert_eq!(
            approval_refused(&actions),
            Some(ApprovalRefusal::NotApprover)
        );
    }
    // An approval for another message, or another household, does not transfer.
    let dad = world.family.dad.device_id();
    for signature in [
        sign_approval(&world.family.dad, household_id(), message_id(2)),
        sign_approval(&world.family.dad, other_household_id(), id),
    ] {
        let actions = world.receive(Frame::Approval {
            message_id: id,
            approver: dad,
            signature,
        });
        assert_eq!(
            approval_refused(&actions),
            Some(ApprovalRefusal::BadSignature)
        );
    }
    let actions = world.receive(Frame::Approval {
        message_id: message_id(9),
        approver: dad,
        signature: sign_approval(&world.family.dad, household_id(), message_id(9)),
    });
    assert_eq!(
        approval_refused(&actions),
        Some(ApprovalRefusal::UnknownMessage)
    );

    // Dad, a guardian, approves: the heart blinks and the message plays.
    let actions = world.receive(Frame::Approval {
        message_id: id,
        approver: dad,
        signature: sign_approval(&world.family.dad, household_id(), id),
    });
    assert_eq!(approval_refused(&actions), None);
    assert_eq!(hearts(&actions), vec![Heart::Blink]);
    assert_eq!(played(&world.press())[0], id);
}

#[test]
fn switching_approvals_off_releases_held_messages() {
    let mut world = World::paired_with(approvals_first());
    let envelope = world.message_from(&world.family.grandma, message_id(1));
    world.deliver(&envelope);
    let off = world.next_roster(&world.family.mum, |r| {
        r.settings.parent_approves_before_play = false;
    });
    let actions = world.update_roster(off);
    assert_eq!(hearts(&actions), vec![Heart::Blink]);
    assert_eq!(played(&world.press())[0], message_id(1));
}
