//! The conformance suite every storage backend runs in its own tests, so that SQLite,
//! PostgreSQL, a local folder and a bucket all keep the same promises.
use crate::{
    BlobKey, BlobStore, EmailVerification, InvitationCount, MetadataStore, PasswordReset,
    Redemption, StoreError, BLOB_LIST_PAGE_SIZE,
};
use pawpost_domain::{
    Account, AccountId, Approval, AuditRecord, Device, DeviceId, DeviceKind, Email, Household,
    HouseholdId, Invitation, InvitationId, MemberStatus, Message, PairingClaim, PairingClaimant,
    PairingCreated, PendingPairing, ReceiptState, Role, Session, StoredRoster,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn now() -> OffsetDateTime {
    // Whole milliseconds: the precision every backend keeps.
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(u32::from(t.millisecond()) * 1_000_000)
        .unwrap()
}

fn account(email: &str) -> Account {
    Account {
        id: AccountId::new(),
        email: Email::parse(email).unwrap(),
        display_name: format!("Name of {email}"),
        password_hash: "$argon2id$not-a-real-hash".into(),
        created_at: now(),
        locked: false,
        email_verified_at: None,
    }
}

fn session(account: AccountId, token_hash: [u8; 32], expires_at: OffsetDateTime) -> Session {
    Session {
        id: Uuid::now_v7(),
        account_id: account,
        token_hash,
        csrf_token: "csrf".into(),
        created_at: now(),
        expires_at,
        client_address: "127.0.0.1".into(),
        user_agent: "suite".into(),
    }
}

/// Runs every metadata promise against `store`, which must be empty.
pub async fn metadata_store(store: &dyn MetadataStore) {
    accounts(store).await;
    sessions(store).await;
    password_resets(store).await;
    email_verifications(store).await;
    households_and_invitations(store).await;
    devices_rosters_and_messages(store).await;
    envelopes_in_rows(store).await;
    toys(store).await;
    farewells(store).await;
    toy_profiles(store).await;
    releases(store).await;
    pairing_numbers(store).await;
    device_certificates(store).await;
    notification_settings(store).await;
    forgetting(store).await;
    audit_trail(store).await;
    passkeys(store).await;
}

async fn pairing_numbers(store: &dyn MetadataStore) {
    let t = now();
    let pairing = PendingPairing {
        code: "262626".into(),
        device_id: DeviceId(Uuid::new_v4()),
        identity: vec![7; 81],
        created_at: t,
        expires_at: t + Duration::minutes(10),
        claim: None,
    };
    assert_eq!(
        store.create_pairing(&pairing).await.unwrap(),
        PairingCreated::Created
    );
    assert_eq!(
        store.pairing_number("262626", t).await.unwrap(),
        None,
        "a version 2 toy's pairing has no channel number"
    );
    assert!(
        !store
            .set_pairing_number(DeviceId(Uuid::new_v4()), "262626", "042")
            .await
            .unwrap(),
        "only the device whose pairing it is"
    );
    assert!(store
        .set_pairing_number(pairing.device_id, "262626", "042")
        .await
        .unwrap());
    assert_eq!(
        store.pairing_number("262626", t).await.unwrap().as_deref(),
        Some("042")
    );
    assert_eq!(
        store
            .pairing_number("262626", t + Duration::minutes(11))
            .await
            .unwrap(),
        None,
        "not once the pairing expired"
    );
    assert_eq!(store.pairing_number("363636", t).await.unwrap(), None);
    assert!(store
        .end_pairing(pairing.device_id, "262626")
        .await
        .unwrap());
    assert_eq!(store.pairing_number("262626", t).await.unwrap(), None);
}

async fn audit_trail(store: &dyn MetadataStore) {
    let home = HouseholdId::new();
    let record = |action: &str, household: Option<HouseholdId>| AuditRecord {
        at: OffsetDateTime::now_utc(),
        actor: Some(AccountId::new()),
        household,
        action: action.into(),
        target: Some("target".into()),
        client: Some("127.0.0.1".into()),
    };
    let first = store.append_audit(&record("sign_in", None)).await.unwrap();
    let second = store
        .append_audit(&record("member_blocked", Some(home)))
        .await
        .unwrap();
    assert_eq!(second.seq, first.seq + 1);
    assert_eq!(second.prev_hash, first.hash);
    let all = store.audit_entries(0, 1000).await.unwrap();
    pawpost_domain::audit::verify_chain(0, [0; 32], &all).expect("the stored chain verifies");
    assert_eq!(
        all.last().unwrap(),
        &second,
        "entries read back exactly as appended"
    );
    let theirs = store.household_audit(home, 10).await.unwrap();
    assert_eq!(theirs, vec![second.clone()]);
    assert!(store
        .audit_entries(second.seq, 10)
        .await
        .unwrap()
        .is_empty());
    let mine = store
        .account_audit(first.record.actor.unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(mine, vec![first.clone()], "only that account's own entries");

    // A burst appended at once: in order, each chained to the one before, one chain.
    let burst: Vec<_> = (0..3)
        .map(|_| record("toy_connected", Some(home)))
        .collect();
    let appended = store.append_audits(&burst).await.unwrap();
    assert_eq!(
        appended.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![second.seq + 1, second.seq + 2, second.seq + 3]
    );
    assert_eq!(appended[0].prev_hash, second.hash);
    assert_eq!(appended[2].prev_hash, appended[1].hash);
    assert!(store.append_audits(&[]).await.unwrap().is_empty());
    let all = store.audit_entries(0, 1000).await.unwrap();
    pawpost_domain::audit::verify_chain(0, [0; 32], &all).expect("the burst extends the chain");
    assert_eq!(&all[all.len() - 3..], appended.as_slice());

    // Bursts from many callers at once (sharing commits where the store groups them):
    // still one chain, every entry once.
    let bursts: Vec<Vec<AuditRecord>> = (0..8)
        .map(|i| {
            (0..=i % 3)
                .map(|_| record("toy_connected", Some(home)))
                .collect()
        })
        .collect();
    let appended = futures_util::future::join_all(bursts.iter().map(|b| store.append_audits(b)))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut seqs: Vec<u64> = appended.iter().flatten().map(|e| e.seq).collect();
    seqs.sort_unstable();
    let last = all.last().unwrap().seq;
    let total = bursts.iter().map(Vec::len).sum::<usize>() as u64;
    assert_eq!(seqs, (last + 1..=last + total).collect::<Vec<_>>());
    let all = store.audit_entries(0, 1000).await.unwrap();
    pawpost_domain::audit::verify_chain(0, [0; 32], &all).expect("the bursts extend the chain");
    assert_eq!(all.last().unwrap().seq, last + total);
}

async fn forgetting(store: &dyn MetadataStore) {
    let t = now();
    let mum = account("forget-mum@example.org");
    let gran = account("forget-gran@example.org");
    for a in [&mum, &gran] {
        store.create_account(a).await.unwrap();
    }
    let home = Household {
        id: HouseholdId::new(),
        name: "Forget".into(),
        created_at: t,
    };
    store.create_household(&home, mum.id).await.unwrap();
    let gran_phone = Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Member,
        account_id: Some(gran.id),
        household_id: None,
        identity: vec![1; 81],
        label: "phone".into(),
        created_at: t,
    };
    store.create_device(&gran_phone).await.unwrap();
    let toy = DeviceId(Uuid::new_v4());
    let message = |sender: AccountId, minutes_ago: i64, key: &str| Message {
        id: Uuid::now_v7(),
        household_id: home.id,
        sender_device: gran_phone.id,
        sender_account: Some(sender),
        media_type: 1,
        duration_ms: 1000,
        envelope_len: 10,
        created_at: t - Duration::minutes(minutes_ago),
        blob_key: key.into(),
    };
    let old_played = message(gran.id, 120, "forget/old-played");
    let new_played = message(gran.id, 120, "forget/new-played");
    let old_unplayed = message(mum.id, 120, "forget/old-unplayed");
    let fresh = message(mum.id, 1, "forget/fresh");
    for m in [&old_played, &new_played, &old_unplayed, &fresh] {
        store.insert_message(m, &[toy]).await.unwrap();
    }
    store
        .set_receipt(
            old_played.id,
            toy,
            ReceiptState::Played,
            t - Duration::minutes(90),
        )
        .await
        .unwrap();
    store
        .set_receipt(
            new_played.id,
            toy,
            ReceiptState::Played,
            t - Duration::minutes(5),
        )
        .await
        .unwrap();

    assert!(store
        .households_with_messages()
        .await
        .unwrap()
        .contains(&home.id));
    let played: Vec<Uuid> = store
        .played_messages_before(home.id, t - Duration::minutes(30))
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(played, vec![old_played.id], "played long enough ago");
    let unplayed: Vec<Uuid> = store
        .unplayed_messages_before(t - Duration::minutes(30))
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert!(
        unplayed.contains(&old_unplayed.id)
            && !unplayed.contains(&fresh.id)
            && !unplayed.contains(&old_played.id)
    );
    store.delete_messages(&[old_played.id]).await.unwrap();
    assert!(store.message(old_played.id).await.unwrap().is_none());
    assert!(store.receipts(old_played.id).await.unwrap().is_empty());

    // Deleting gran's account takes her messages, devices and place with it.
    let (gran_invite, gran_token) = (InvitationId::new(), [42; 32]);
    store
        .create_invitation(&Invitation {
            id: gran_invite,
            household_id: home.id,
            token_hash: gran_token,
            role: Role::Family,
            created_by: mum.id,
            created_at: t,
            expires_at: t + Duration::days(1),
        })
        .await
        .unwrap();
    store
        .redeem_invitation(&gran_token, gran.id, t)
        .await
        .unwrap();
    let keys = store.delete_account(gran.id).await.unwrap();
    assert_eq!(keys, vec!["forget/new-played".to_owned()]);
    assert!(store.account_by_id(gran.id).await.unwrap().is_none());
    assert!(store.device(gran_phone.id).await.unwrap().is_none());
    assert!(store.membership(home.id, gran.id).await.unwrap().is_none());
    assert!(store.message(new_played.id).await.unwrap().is_none());

    // Deleting the household takes everything in it.
    let mut keys = store.delete_household(home.id).await.unwrap();
    keys.sort();
    assert_eq!(
        keys,
        vec!["forget/fresh".to_owned(), "forget/old-unplayed".to_owned()]
    );
    assert!(store.household(home.id).await.unwrap().is_none());
    assert!(store.message(fresh.id).await.unwrap().is_none());
    assert!(store.membership(home.id, mum.id).await.unwrap().is_none());
    assert!(!store
        .households_with_messages()
        .await
        .unwrap()
        .contains(&home.id));
    assert!(matches!(
        store.delete_household(home.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn notification_settings(store: &dyn MetadataStore) {
    let gran = account("notifications-gran@example.org");
    store.create_account(&gran).await.unwrap();
    assert_eq!(store.notification_settings(gran.id).await.unwrap(), vec![]);
    store
        .set_notification_setting(gran.id, "child_replied", false)
        .await
        .unwrap();
    store
        .set_notification_setting(gran.id, "approved", true)
        .await
        .unwrap();
    store
        .set_notification_setting(gran.id, "child_replied", true)
        .await
        .unwrap();
    store
        .set_notification_setting(gran.id, "approved", false)
        .await
        .unwrap();
    assert_eq!(
        store.notification_settings(gran.id).await.unwrap(),
        vec![("approved".into(), false), ("child_replied".into(), true)]
    );
    assert!(matches!(
        store
            .set_notification_setting(AccountId::new(), "approved", false)
            .await,
        Err(StoreError::NotFound(_))
    ));
    // The first key kept is the one every later caller gets.
    let first = store.server_secret("suite-key", &[7; 32]).await.unwrap();
    assert_eq!(first, vec![7; 32]);
    let again = store.server_secret("suite-key", &[8; 32]).await.unwrap();
    assert_eq!(again, vec![7; 32]);
    assert_eq!(
        store.server_secret("suite-other", &[9; 32]).await.unwrap(),
        vec![9; 32]
    );
    store.delete_account(gran.id).await.unwrap();
    assert_eq!(store.notification_settings(gran.id).await.unwrap(), vec![]);
}

async fn device_certificates(store: &dyn MetadataStore) {
    let mum = account("certificates-mum@example.org");
    store.create_account(&mum).await.unwrap();
    let device = |label: &str| Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Member,
        account_id: Some(mum.id),
        household_id: None,
        identity: vec![1; 81],
        label: label.into(),
        created_at: now(),
    };
    let (laptop, phone, tablet) = (device("laptop"), device("phone"), device("tablet"));
    for d in [&laptop, &phone, &tablet] {
        store.create_device(d).await.unwrap();
    }
    let certificate = |device: &Device, signature: u8| crate::DeviceCertificate {
        device_id: device.id,
        certifier_device_id: laptop.id,
        signature: [signature; 64],
        created_at: now(),
    };
    assert_eq!(store.device_certificates(&[]).await.unwrap(), vec![]);
    assert_eq!(
        store
            .device_certificates(&[phone.id, tablet.id])
            .await
            .unwrap(),
        vec![]
    );
    let phone_cert = certificate(&phone, 4);
    store.add_device_certificate(&phone_cert).await.unwrap();
    assert!(matches!(
        store.add_device_certificate(&certificate(&phone, 5)).await,
        Err(StoreError::Conflict(_))
    ));
    let gone = crate::DeviceCertificate {
        device_id: DeviceId(Uuid::new_v4()),
        ..certificate(&phone, 6)
    };
    assert!(matches!(
        store.add_device_certificate(&gone).await,
        Err(StoreError::NotFound(_))
    ));
    let tablet_cert = certificate(&tablet, 7);
    store.add_device_certificate(&tablet_cert).await.unwrap();
    let mut both = vec![phone_cert.clone(), tablet_cert.clone()];
    both.sort_by_key(|c| c.device_id.0);
    assert_eq!(
        store
            .device_certificates(&[tablet.id, laptop.id, phone.id])
            .await
            .unwrap(),
        both
    );
    assert_eq!(
        store.device_certificates(&[phone.id]).await.unwrap(),
        vec![phone_cert]
    );
    // Certificates go with their devices.
    store.delete_account(mum.id).await.unwrap();
    assert_eq!(
        store
            .device_certificates(&[phone.id, tablet.id])
            .await
            .unwrap(),
        vec![]
    );
}

/// Small envelopes kept in their message's row: written in one commit with the row,
/// uploads arriving together committed together (where the backend groups them), each
/// write failing alone, and the envelope gone with the row.
async fn envelopes_in_rows(store: &dyn MetadataStore) {
    use futures_util::future::join_all;
    use pawpost_domain::ENVELOPE_IN_ROW;

    let gran = account("row-gran@example.org");
    store.create_account(&gran).await.unwrap();
    let home = Household {
        id: HouseholdId::new(),
        name: "Rows".into(),
        created_at: now(),
    };
    store.create_household(&home, gran.id).await.unwrap();
    let phone = Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Member,
        account_id: Some(gran.id),
        household_id: None,
        identity: vec![1; 81],
        label: "phone".into(),
        created_at: now(),
    };
    let bear = Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Toy,
        account_id: None,
        household_id: Some(home.id),
        identity: vec![2; 81],
        label: "bear".into(),
        created_at: now(),
    };
    store.create_device(&phone).await.unwrap();
    store.create_device(&bear).await.unwrap();
    let message = |id: Uuid, in_row: bool| Message {
        id,
        household_id: home.id,
        sender_device: phone.id,
        sender_account: Some(gran.id),
        media_type: 1,
        duration_ms: 3000,
        envelope_len: 30_000,
        created_at: now(),
        blob_key: if in_row {
            format!("{ENVELOPE_IN_ROW}envelopes/{}/{id}-1", home.id)
        } else {
            format!("envelopes/{}/{id}-1", home.id)
        },
    };
    let envelope = |n: u8| vec![n; 30_000];

    let to_bear = &[bear.id][..];
    // Twenty uploads at once, each with its own ciphertext.
    let messages: Vec<Message> = (0..20).map(|_| message(Uuid::now_v7(), true)).collect();
    let envelopes: Vec<Vec<u8>> = (0..20).map(envelope).collect();
    let results = join_all(
        messages
            .iter()
            .zip(&envelopes)
            .map(|(m, e)| store.insert_message_with_envelope(m, to_bear, e)),
    )
    .await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for (m, e) in messages.iter().zip(&envelopes) {
        let stored = store.message(m.id).await.unwrap().unwrap();
        assert_eq!(&stored, m);
        assert!(stored.envelope_in_row());
        assert_eq!(
            store.message_envelope(m.id).await.unwrap().as_ref(),
            Some(e)
        );
        assert_eq!(store.receipts(m.id).await.unwrap().len(), 1);
    }
    assert_eq!(store.undelivered_for(bear.id).await.unwrap().len(), 20);

    // A replay fails alone; the upload and the receipts committed beside it stand.
    let fresh = message(Uuid::now_v7(), true);
    let replay = store.insert_message_with_envelope(&messages[0], to_bear, &envelopes[1]);
    let new = store.insert_message_with_envelope(&fresh, to_bear, &envelopes[2]);
    let delivered = store.set_receipt(messages[1].id, bear.id, ReceiptState::Delivered, now());
    let unknown = store.set_receipt(Uuid::now_v7(), bear.id, ReceiptState::Delivered, now());
    let (replay, new, delivered, unknown) = futures_util::join!(replay, new, delivered, unknown);
    assert!(matches!(replay, Err(StoreError::Conflict(_))), "{replay:?}");
    assert!(new.is_ok() && delivered.is_ok(), "{new:?} {delivered:?}");
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );
    assert_eq!(
        store.message_envelope(messages[0].id).await.unwrap(),
        Some(envelopes[0].clone()),
        "the replay changed nothing"
    );
    assert_eq!(
        store.message_envelope(fresh.id).await.unwrap(),
        Some(envelopes[2].clone())
    );
    let receipt = &store.receipts(messages[1].id).await.unwrap()[0];
    assert!(receipt.delivered_at.is_some());

    // A message whose envelope lies in the blob store has none in its row.
    let in_blobs = message(Uuid::now_v7(), false);
    store.insert_message(&in_blobs, &[bear.id]).await.unwrap();
    assert!(!store
        .message(in_blobs.id)
        .await
        .unwrap()
        .unwrap()
        .envelope_in_row());
    assert_eq!(store.message_envelope(in_blobs.id).await.unwrap(), None);
    assert_eq!(store.message_envelope(Uuid::now_v7()).await.unwrap(), None);

    // The envelope goes with its row.
    store.delete_messages(&[messages[0].id]).await.unwrap();
    assert_eq!(store.message_envelope(messages[0].id).await.unwrap(), None);
    let keys = store.delete_household(home.id).await.unwrap();
    assert!(keys.contains(&in_blobs.blob_key), "{keys:?}");
    assert_eq!(store.message_envelope(fresh.id).await.unwrap(), None);
}

/// A toy's names record, safety check and last-seen time: kept per toy, shown for its
/// household only, and gone with the toy.
async fn toy_profiles(store: &dyn MetadataStore) {
    let mum = account("profiles-mum@example.org");
    store.create_account(&mum).await.unwrap();
    let (home, other) = (
        Household {
            id: HouseholdId::new(),
            name: "Profiles".into(),
            created_at: now(),
        },
        Household {
            id: HouseholdId::new(),
            name: "Next door".into(),
            created_at: now(),
        },
    );
    store.create_household(&home, mum.id).await.unwrap();
    store.create_household(&other, mum.id).await.unwrap();
    let device = |kind, household: HouseholdId| Device {
        id: DeviceId(Uuid::new_v4()),
        kind,
        account_id: None,
        household_id: Some(household),
        identity: vec![7; 81],
        label: "Toy".into(),
        created_at: now(),
    };
    let (bear, rabbit, neighbour) = (
        device(DeviceKind::Toy, home.id),
        device(DeviceKind::Toy, home.id),
        device(DeviceKind::Toy, other.id),
    );
    let laptop = Device {
        account_id: Some(mum.id),
        ..device(DeviceKind::Member, home.id)
    };
    for d in [&bear, &rabbit, &neighbour, &laptop] {
        store.create_device(d).await.unwrap();
    }
    assert!(store.toy_profiles(home.id).await.unwrap().is_empty());

    let (t1, t2) = (now(), now() + Duration::seconds(5));
    assert!(store
        .set_toy_names(bear.id, b"sealed v1", t1)
        .await
        .unwrap());
    assert!(store
        .set_toy_names(bear.id, b"sealed v2", t2)
        .await
        .unwrap());
    assert!(store
        .set_toy_safety_checked(bear.id, mum.id, t2)
        .await
        .unwrap());
    store.set_toy_seen(bear.id, t2).await.unwrap();
    // Several at once, as the server writes them, in one commit: a toy named twice keeps
    // its later entry, and a device that is not a toy is passed over.
    store
        .set_toys_seen(&[
            (rabbit.id, t2),
            (laptop.id, t2),
            (neighbour.id, t1),
            (rabbit.id, t1),
        ])
        .await
        .unwrap();
    store.set_toys_seen(&[]).await.unwrap();
    assert_eq!(
        store
            .arrival(bear.id, 0)
            .await
            .unwrap()
            .unwrap()
            .names_envelope,
        Some(b"sealed v2".to_vec()),
        "a toy arrives with its names record"
    );
    // Only toys have a profile.
    assert!(!store.set_toy_names(laptop.id, b"x", t1).await.unwrap());
    assert!(!store
        .set_toy_safety_checked(laptop.id, mum.id, t1)
        .await
        .unwrap());
    store.set_toy_seen(laptop.id, t1).await.unwrap();
    assert!(!store
        .set_toy_names(DeviceId(Uuid::new_v4()), b"x", t1)
        .await
        .unwrap());

    let profiles = store.toy_profiles(home.id).await.unwrap();
    let ids: Vec<DeviceId> = profiles.iter().map(|p| p.toy_device_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&bear.id) && ids.contains(&rabbit.id));
    let bears = profiles
        .iter()
        .find(|p| p.toy_device_id == bear.id)
        .unwrap();
    assert_eq!(bears.names_envelope.as_deref(), Some(&b"sealed v2"[..]));
    assert_eq!(bears.names_updated_at, Some(t2));
    assert_eq!(bears.safety_checked_by, Some(mum.id));
    assert_eq!(bears.safety_checked_at, Some(t2));
    assert_eq!(bears.last_seen_at, Some(t2));
    let rabbits = profiles
        .iter()
        .find(|p| p.toy_device_id == rabbit.id)
        .unwrap();
    assert_eq!(rabbits.names_envelope, None);
    assert_eq!(rabbits.safety_checked_by, None);
    assert_eq!(rabbits.last_seen_at, Some(t1));

    // Removed from the household: its profile goes with it, and a toy paired again with
    // the same id starts afresh.
    let bye = crate::Farewell {
        toy_device_id: bear.id,
        identity: bear.identity.clone(),
        household_id: home.id,
        signer_device_id: laptop.id,
        signature: [3; 64],
        created_at: now(),
    };
    assert!(store.remove_toy(&bye).await.unwrap());
    let ids: Vec<DeviceId> = store
        .toy_profiles(home.id)
        .await
        .unwrap()
        .iter()
        .map(|p| p.toy_device_id)
        .collect();
    assert_eq!(ids, vec![rabbit.id]);
    store.create_device(&bear).await.unwrap();
    store.set_toy_seen(bear.id, t1).await.unwrap();
    let again = store.toy_profiles(home.id).await.unwrap();
    let bears = again.iter().find(|p| p.toy_device_id == bear.id).unwrap();
    assert_eq!(
        (bears.names_envelope.as_ref(), bears.safety_checked_at),
        (None, None)
    );
}

async fn releases(store: &dyn MetadataStore) {
    let at = now();
    let release = |board: &str, counter: u32, version: u32| crate::Release {
        board: board.into(),
        counter,
        version,
        size: 1000 + counter,
        manifest: vec![1, 2, u8::try_from(counter).unwrap()],
        signature: [u8::try_from(counter).unwrap(); 64],
        blob_key: format!("releases/{board}-{counter}"),
        created_at: at,
    };
    assert_eq!(store.newest_release("story-board", 0).await.unwrap(), None);
    for (counter, version) in [(3, 1), (5, 2), (4, 9)] {
        store
            .put_release(&release("story-board", counter, version))
            .await
            .unwrap();
    }
    store
        .put_release(&release("other-board", 9, 9))
        .await
        .unwrap();
    assert!(matches!(
        store.put_release(&release("story-board", 5, 3)).await,
        Err(crate::StoreError::Conflict(_))
    ));
    // The highest counter wins, whatever the version says; none above the toy's is none.
    let newest = store.newest_release("story-board", 3).await.unwrap();
    assert_eq!(newest, Some(release("story-board", 5, 2)));
    assert_eq!(store.newest_release("story-board", 5).await.unwrap(), None);
    assert_eq!(
        store.newest_release("no-such-board", 0).await.unwrap(),
        None
    );

    let mum = account("software-mum@example.org");
    store.create_account(&mum).await.unwrap();
    let home = Household {
        id: HouseholdId::new(),
        name: "Software".into(),
        created_at: now(),
    };
    store.create_household(&home, mum.id).await.unwrap();
    let bear = Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Toy,
        account_id: None,
        household_id: Some(home.id),
        identity: vec![7; 81],
        label: "Toy".into(),
        created_at: now(),
    };
    store.create_device(&bear).await.unwrap();
    let said = |version: u32, counter: u32| crate::ToySoftware {
        toy_device_id: bear.id,
        board: "story-board".into(),
        version,
        counter,
        reported_at: at,
    };
    assert!(store.toy_software(home.id).await.unwrap().is_empty());
    store.set_toy_software(&said(1, 3)).await.unwrap();
    store.set_toy_software(&said(2, 5)).await.unwrap();
    assert_eq!(store.toy_software(home.id).await.unwrap(), vec![said(2, 5)]);
    // Not a toy: nothing recorded.
    store
        .set_toy_software(&crate::ToySoftware {
            toy_device_id: DeviceId(Uuid::new_v4()),
            ..said(1, 1)
        })
        .await
        .unwrap();
    assert_eq!(store.toy_software(home.id).await.unwrap().len(), 1);
}

async fn farewells(store: &dyn MetadataStore) {
    let mum = account("farewell-mum@example.org");
    store.create_account(&mum).await.unwrap();
    let (home, other) = (
        Household {
            id: HouseholdId::new(),
            name: "Farewells".into(),
            created_at: now(),
        },
        Household {
            id: HouseholdId::new(),
            name: "Elsewhere".into(),
            created_at: now(),
        },
    );
    store.create_household(&home, mum.id).await.unwrap();
    store.create_household(&other, mum.id).await.unwrap();
    let toy = |household: HouseholdId| Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Toy,
        account_id: None,
        household_id: Some(household),
        identity: vec![7; 81],
        label: "Toy".into(),
        created_at: now(),
    };
    let laptop = Device {
        id: DeviceId(Uuid::new_v4()),
        kind: DeviceKind::Member,
        account_id: Some(mum.id),
        household_id: None,
        identity: vec![1; 81],
        label: "laptop".into(),
        created_at: now(),
    };
    let (bear, rabbit) = (toy(home.id), toy(home.id));
    for d in [&bear, &rabbit, &laptop] {
        store.create_device(d).await.unwrap();
    }
    let message = |id| Message {
        id,
        household_id: home.id,
        sender_device: laptop.id,
        sender_account: Some(mum.id),
        media_type: 1,
        duration_ms: 1000,
        envelope_len: 100,
        created_at: now(),
        blob_key: format!("envelopes/{id}"),
    };
    let (heard, waiting) = (message(Uuid::now_v7()), message(Uuid::now_v7()));
    store.insert_message(&heard, &[bear.id]).await.unwrap();
    store.insert_message(&waiting, &[bear.id]).await.unwrap();
    store
        .set_receipt(heard.id, bear.id, ReceiptState::Delivered, now())
        .await
        .unwrap();
    let farewell = |device: &Device, household: HouseholdId, created_at| crate::Farewell {
        toy_device_id: device.id,
        identity: device.identity.clone(),
        household_id: household,
        signer_device_id: laptop.id,
        signature: [3; 64],
        created_at,
    };

    assert_eq!(store.farewell(bear.id).await.unwrap(), None);
    // Not a toy of that household, or not a toy at all: nothing changes.
    let elsewhere = farewell(&bear, other.id, now());
    assert!(!store.remove_toy(&elsewhere).await.unwrap());
    assert!(!store
        .remove_toy(&farewell(&laptop, home.id, now()))
        .await
        .unwrap());
    assert!(store.device(bear.id).await.unwrap().is_some());
    assert!(store.device(laptop.id).await.unwrap().is_some());
    assert_eq!(store.farewell(bear.id).await.unwrap(), None);

    let bye = farewell(&bear, home.id, now());
    assert!(store.remove_toy(&bye).await.unwrap());
    assert!(store.device(bear.id).await.unwrap().is_none());
    assert_eq!(store.farewell(bear.id).await.unwrap(), Some(bye.clone()));
    assert!(
        store.undelivered_for(bear.id).await.unwrap().is_empty(),
        "what it never received is not pushed to it any more"
    );
    assert_eq!(
        store.receipts(heard.id).await.unwrap().len(),
        1,
        "what it received stays on its sender's record"
    );
    assert!(!store.remove_toy(&bye).await.unwrap(), "only once");

    // Kept for a toy of a household deleted next; it outlives the household.
    let old = now() - Duration::days(100);
    let rabbit_bye = farewell(&rabbit, home.id, old);
    store.put_farewell(&rabbit_bye).await.unwrap();
    store.put_farewell(&rabbit_bye).await.unwrap();
    store.delete_household(home.id).await.unwrap();
    assert_eq!(store.farewell(rabbit.id).await.unwrap(), Some(rabbit_bye));
    assert_eq!(store.farewell(bear.id).await.unwrap(), Some(bye.clone()));

    // Removed again from another household: the newer farewell replaces the older.
    let again = Device {
        household_id: Some(other.id),
        ..bear.clone()
    };
    store.create_device(&again).await.unwrap();
    let newer = farewell(&again, other.id, now());
    assert!(store.remove_toy(&newer).await.unwrap());
    assert_eq!(store.farewell(bear.id).await.unwrap(), Some(newer));

    // The sweep prunes the old ones only.
    assert_eq!(
        store
            .delete_farewells_before(now() - Duration::days(90))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.farewell(rabbit.id).await.unwrap(), None);
    assert!(store.delete_farewell(bear.id).await.unwrap());
    assert!(!store.delete_farewell(bear.id).await.unwrap());
    assert_eq!(store.farewell(bear.id).await.unwrap(), None);
}

async fn toys(store: &dyn MetadataStore) {
    let t = now();
    let pairing = |code: &str| PendingPairing {
        code: code.into(),
        device_id: DeviceId(Uuid::new_v4()),
        identity: vec![7; 81],
        created_at: t,
        expires_at: t + Duration::minutes(10),
        claim: None,
    };
    let claimant = |household: HouseholdId, digits: &str| PairingClaimant {
        household_id: household,
        account_id: AccountId(Uuid::new_v4()),
        confirmation: digits.into(),
        confirm_by: t + Duration::minutes(2),
    };
    let (ours, theirs) = (HouseholdId::new(), HouseholdId::new());
    let first = pairing("123456");
    assert_eq!(
        store.create_pairing(&first).await.unwrap(),
        PairingCreated::Created
    );
    assert_eq!(
        store.create_pairing(&pairing("123456")).await.unwrap(),
        PairingCreated::CodeTaken
    );
    assert_eq!(
        store
            .create_pairing(&PendingPairing {
                identity: vec![9; 81],
                ..pairing("111111")
            })
            .await
            .unwrap(),
        PairingCreated::Created,
        "another device"
    );
    assert_eq!(
        store
            .create_pairing(&PendingPairing {
                code: "999999".into(),
                identity: vec![9; 81],
                ..first.clone()
            })
            .await
            .unwrap(),
        PairingCreated::DeviceTaken,
        "the same device id with other keys"
    );
    assert_eq!(
        store
            .claim_pairing("654321", &claimant(ours, "111"), t)
            .await
            .unwrap(),
        PairingClaim::NoMatch
    );
    assert_eq!(
        store.pairing_of_device(first.device_id, t).await.unwrap(),
        Some(first.clone()),
        "a wrong code spends nobody's pairing"
    );
    let ours_claim = claimant(ours, "472");
    let claimed = PendingPairing {
        claim: Some(ours_claim.clone()),
        ..first.clone()
    };
    assert_eq!(
        store.claim_pairing("123456", &ours_claim, t).await.unwrap(),
        PairingClaim::Claimed(claimed.clone())
    );
    assert_eq!(
        store
            .claim_pairing("123456", &claimant(ours, "999"), t)
            .await
            .unwrap(),
        PairingClaim::Claimed(claimed.clone()),
        "the same household claiming again gets its first claim"
    );
    assert_eq!(
        store.pairing_of_device(first.device_id, t).await.unwrap(),
        Some(claimed.clone())
    );
    assert!(store.end_pairing(first.device_id, "123456").await.unwrap());
    assert!(
        !store.end_pairing(first.device_id, "123456").await.unwrap(),
        "only once"
    );
    assert_eq!(
        store.claim_pairing("123456", &ours_claim, t).await.unwrap(),
        PairingClaim::NoMatch,
        "single use"
    );

    let contested = pairing("222222");
    store.create_pairing(&contested).await.unwrap();
    store
        .claim_pairing("222222", &claimant(theirs, "123"), t)
        .await
        .unwrap();
    assert!(matches!(
        store.claim_pairing("222222", &ours_claim, t).await.unwrap(),
        PairingClaim::Contested(_)
    ));
    assert_eq!(
        store
            .pairing_of_device(contested.device_id, t)
            .await
            .unwrap(),
        None,
        "a contested code is spent for both"
    );

    // The toy asking again with its own keys replaces its code.
    let asked_again = PendingPairing {
        code: "444444".into(),
        ..pairing("000000")
    };
    store
        .create_pairing(&PendingPairing {
            code: "555555".into(),
            ..asked_again.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store.create_pairing(&asked_again).await.unwrap(),
        PairingCreated::Created
    );
    assert_eq!(
        store
            .pairing_of_device(asked_again.device_id, t)
            .await
            .unwrap()
            .map(|p| p.code),
        Some("444444".into())
    );

    let late = pairing("333333");
    store.create_pairing(&late).await.unwrap();
    let after = t + Duration::minutes(11);
    assert_eq!(
        store
            .claim_pairing("333333", &ours_claim, after)
            .await
            .unwrap(),
        PairingClaim::NoMatch,
        "expired"
    );
    assert_eq!(
        store
            .pairing_of_device(late.device_id, after)
            .await
            .unwrap(),
        None
    );
    // An expired code may be drawn again.
    store
        .create_pairing(&PendingPairing {
            created_at: after,
            expires_at: after + Duration::minutes(10),
            ..pairing("333333")
        })
        .await
        .unwrap();

    let owner = account("toys-owner@example.org");
    store.create_account(&owner).await.unwrap();
    let home = Household {
        id: HouseholdId::new(),
        name: "Toys".into(),
        created_at: now(),
    };
    store.create_household(&home, owner.id).await.unwrap();
    let toy = Device {
        id: first.device_id,
        kind: DeviceKind::Toy,
        account_id: None,
        household_id: Some(home.id),
        identity: first.identity.clone(),
        label: "Bear".into(),
        created_at: now(),
    };
    store.create_device(&toy).await.unwrap();
    store
        .update_device_identity(toy.id, &[8; 81])
        .await
        .unwrap();
    assert_eq!(
        store.device(toy.id).await.unwrap().unwrap().identity,
        vec![8; 81]
    );
    // A toy that arrives to nothing: no roster yet, nothing waiting.
    let arrived = store
        .arrival(toy.id, 0)
        .await
        .unwrap()
        .expect("the toy's row");
    assert_eq!(arrived.device, store.device(toy.id).await.unwrap().unwrap());
    assert_eq!(
        (
            arrived.newest_roster,
            arrived.undelivered,
            arrived.approvals_pending
        ),
        (None, false, false)
    );
    assert_eq!(
        store.arrival(DeviceId(Uuid::new_v4()), 0).await.unwrap(),
        None
    );

    for version in 1..=3u64 {
        let r = StoredRoster {
            household_id: home.id,
            version,
            signed: vec![u8::try_from(version).unwrap()],
            created_at: now(),
        };
        store.insert_roster(&r).await.unwrap();
    }
    let since: Vec<u64> = store
        .rosters_since(home.id, 1)
        .await
        .unwrap()
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(since, vec![2, 3]);
    let arrived = store.arrival(toy.id, 1).await.unwrap().unwrap();
    assert_eq!(
        (arrived.newest_roster, arrived.undelivered),
        (Some(3), false)
    );
    let lacked: Vec<(u64, Vec<u8>)> = arrived
        .rosters
        .iter()
        .map(|r| (r.version, r.signed.clone()))
        .collect();
    assert_eq!(
        lacked,
        vec![(2, vec![2]), (3, vec![3])],
        "a toy holding version 1 arrives with versions 2 and 3, oldest first"
    );
    assert!(arrived.rosters.iter().all(|r| r.household_id == home.id));
    assert_eq!(
        store.arrival(toy.id, 3).await.unwrap().unwrap().rosters,
        vec![],
        "a toy holding the newest roster lacks none"
    );
    assert_eq!(
        store
            .arrival(toy.id, 0)
            .await
            .unwrap()
            .unwrap()
            .rosters
            .len(),
        3
    );

    let message = |n: i64| Message {
        id: Uuid::now_v7(),
        household_id: home.id,
        sender_device: DeviceId(Uuid::new_v4()),
        sender_account: Some(owner.id),
        media_type: 1,
        duration_ms: 1000,
        envelope_len: 100,
        created_at: t + Duration::seconds(n),
        blob_key: format!("envelopes/toys/{n}"),
    };
    let (a, b) = (message(1), message(2));
    store.insert_message(&a, &[toy.id]).await.unwrap();
    store.insert_message(&b, &[toy.id]).await.unwrap();
    let waiting: Vec<Uuid> = store
        .undelivered_for(toy.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(waiting, vec![a.id, b.id], "oldest first");
    assert!(store.arrival(toy.id, 0).await.unwrap().unwrap().undelivered);
    store
        .set_receipt(a.id, toy.id, ReceiptState::Delivered, t)
        .await
        .unwrap();
    let waiting: Vec<Uuid> = store
        .undelivered_for(toy.id)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(waiting, vec![b.id]);

    let approval = |id: Uuid, sig: u8| Approval {
        message_id: id,
        approver: DeviceId(Uuid::new_v4()),
        signature: vec![sig; 64],
        created_at: t,
    };
    store.insert_approval(&approval(a.id, 1)).await.unwrap();
    store.insert_approval(&approval(a.id, 2)).await.unwrap();
    let pending = store.approvals_pending_for(toy.id).await.unwrap();
    assert_eq!(pending.len(), 1, "one approval per message");
    assert!(
        store
            .arrival(toy.id, 0)
            .await
            .unwrap()
            .unwrap()
            .approvals_pending
    );
    assert_eq!(
        pending[0].signature,
        vec![1; 64],
        "the first approval is kept"
    );
    store
        .set_receipt(a.id, toy.id, ReceiptState::Played, t)
        .await
        .unwrap();
    assert!(
        store
            .approvals_pending_for(toy.id)
            .await
            .unwrap()
            .is_empty(),
        "played messages need no approval"
    );
    let arrived = store.arrival(toy.id, 0).await.unwrap().unwrap();
    assert_eq!(
        (arrived.undelivered, arrived.approvals_pending),
        (true, false),
        "b is still on its way; a, played, needs no approval"
    );

    // The toy refuses a waiting message for good (its sender was blocked meanwhile).
    let c = message(3);
    store.insert_message(&c, &[toy.id]).await.unwrap();
    store.insert_approval(&approval(c.id, 3)).await.unwrap();
    let later = t + Duration::minutes(5);
    store
        .refuse_receipt(c.id, toy.id, "sender_blocked", t)
        .await
        .unwrap();
    store
        .refuse_receipt(c.id, toy.id, "queue_full", later)
        .await
        .unwrap();
    let refused = store.receipts(c.id).await.unwrap().remove(0);
    assert_eq!(
        (
            refused.delivered_at,
            refused.played_at,
            refused.refused_at,
            refused.refusal.as_deref()
        ),
        (Some(t), None, Some(t), Some("sender_blocked")),
        "the first refusal is kept, and the message is never pushed again"
    );
    assert!(!store
        .undelivered_for(toy.id)
        .await
        .unwrap()
        .iter()
        .any(|m| m.id == c.id));
    assert!(
        store
            .approvals_pending_for(toy.id)
            .await
            .unwrap()
            .is_empty(),
        "a refused message needs no approval"
    );
    // A played message stays played.
    store
        .refuse_receipt(a.id, toy.id, "sender_blocked", later)
        .await
        .unwrap();
    let played = store.receipts(a.id).await.unwrap().remove(0);
    assert_eq!(
        (played.played_at, played.refused_at, played.refusal),
        (Some(t), None, None)
    );
    assert!(matches!(
        store
            .refuse_receipt(c.id, DeviceId(Uuid::new_v4()), "sender_blocked", t)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn devices_rosters_and_messages(store: &dyn MetadataStore) {
    let mum = account("keys-mum@example.org");
    let gran = account("keys-gran@example.org");
    let outsider = account("keys-out@example.org");
    for a in [&mum, &gran, &outsider] {
        store.create_account(a).await.unwrap();
    }
    let home = Household {
        id: HouseholdId::new(),
        name: "Keys".into(),
        created_at: now(),
    };
    store.create_household(&home, mum.id).await.unwrap();
    let device = |account: Option<AccountId>, household: Option<HouseholdId>, kind| Device {
        id: DeviceId(Uuid::new_v4()),
        kind,
        account_id: account,
        household_id: household,
        identity: vec![1, 2, 3],
        label: "laptop".into(),
        created_at: now(),
    };
    let mum_laptop = device(Some(mum.id), None, DeviceKind::Member);
    let gran_phone = device(Some(gran.id), None, DeviceKind::Member);
    let stranger = device(Some(outsider.id), None, DeviceKind::Member);
    let toy = device(None, Some(home.id), DeviceKind::Toy);
    for d in [&mum_laptop, &gran_phone, &stranger, &toy] {
        store.create_device(d).await.unwrap();
    }
    assert!(matches!(
        store.create_device(&mum_laptop).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.device(toy.id).await.unwrap().unwrap(), toy);
    assert_eq!(
        store.devices_of_account(mum.id).await.unwrap(),
        vec![mum_laptop.clone()]
    );
    let in_home: Vec<DeviceId> = store
        .devices_of_household(home.id)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert!(in_home.contains(&mum_laptop.id) && in_home.contains(&toy.id));
    assert!(
        !in_home.contains(&gran_phone.id),
        "only approved members' devices"
    );
    assert!(!in_home.contains(&stranger.id));

    // A person deletes their own lost device: never someone else's, never a toy.
    let lost = device(Some(mum.id), None, DeviceKind::Member);
    store.create_device(&lost).await.unwrap();
    assert!(!store.delete_member_device(gran.id, lost.id).await.unwrap());
    assert!(!store.delete_member_device(mum.id, toy.id).await.unwrap());
    assert!(store.delete_member_device(mum.id, lost.id).await.unwrap());
    assert!(store.device(lost.id).await.unwrap().is_none());
    assert!(!store.delete_member_device(mum.id, lost.id).await.unwrap());
    assert!(store.device(toy.id).await.unwrap().is_some());

    assert!(store.latest_roster(home.id).await.unwrap().is_none());
    for version in [1u64, 2] {
        let roster = StoredRoster {
            household_id: home.id,
            version,
            signed: vec![u8::try_from(version).unwrap(); 4],
            created_at: now(),
        };
        store.insert_roster(&roster).await.unwrap();
    }
    let latest = store.latest_roster(home.id).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.signed), (2, vec![2; 4]));
    let again = StoredRoster {
        household_id: home.id,
        version: 2,
        signed: vec![9],
        created_at: now(),
    };
    assert!(matches!(
        store.insert_roster(&again).await,
        Err(StoreError::Conflict(_))
    ));

    let message = Message {
        id: Uuid::now_v7(),
        household_id: home.id,
        sender_device: mum_laptop.id,
        sender_account: Some(mum.id),
        media_type: 1,
        duration_ms: 2500,
        envelope_len: 4096,
        created_at: now(),
        blob_key: "envelopes/x/y".into(),
    };
    store
        .insert_message(&message, &[toy.id, gran_phone.id])
        .await
        .unwrap();
    assert!(
        matches!(
            store.insert_message(&message, &[toy.id]).await,
            Err(StoreError::Conflict(_))
        ),
        "a replayed id"
    );
    assert_eq!(store.message(message.id).await.unwrap().unwrap(), message);
    assert_eq!(
        store
            .messages_for_account(home.id, mum.id)
            .await
            .unwrap()
            .len(),
        1,
        "the sender sees it"
    );
    assert_eq!(
        store
            .messages_for_account(home.id, gran.id)
            .await
            .unwrap()
            .len(),
        1,
        "a recipient sees it"
    );
    assert!(store
        .messages_for_account(home.id, outsider.id)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.messages_of_household(home.id).await.unwrap(),
        vec![message.clone()]
    );
    assert!(store
        .messages_of_household(HouseholdId::new())
        .await
        .unwrap()
        .is_empty());

    let t = now();
    store
        .set_receipt(message.id, toy.id, ReceiptState::Played, t)
        .await
        .unwrap();
    store
        .set_receipt(
            message.id,
            toy.id,
            ReceiptState::Played,
            t + Duration::hours(1),
        )
        .await
        .unwrap();
    store
        .set_receipt(message.id, gran_phone.id, ReceiptState::Delivered, t)
        .await
        .unwrap();
    let receipts = store.receipts(message.id).await.unwrap();
    let of = |d: DeviceId| receipts.iter().find(|r| r.device_id == d).unwrap().clone();
    assert_eq!(
        (of(toy.id).delivered_at, of(toy.id).played_at),
        (Some(t), Some(t)),
        "first times are kept"
    );
    assert_eq!(
        (of(gran_phone.id).delivered_at, of(gran_phone.id).played_at),
        (Some(t), None)
    );
    assert!(matches!(
        store
            .set_receipt(message.id, stranger.id, ReceiptState::Played, t)
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn accounts(store: &dyn MetadataStore) {
    let rose = account("rose@example.org");
    store.create_account(&rose).await.unwrap();
    let again = account("ROSE@example.org");
    assert!(matches!(
        store.create_account(&again).await,
        Err(StoreError::Conflict(_))
    ));
    let found = store.account_by_email(&rose.email).await.unwrap().unwrap();
    assert_eq!(found, rose);
    assert_eq!(store.account_by_id(rose.id).await.unwrap().unwrap(), rose);
    assert!(store.accounts().await.unwrap().contains(&rose));
    assert!(store
        .account_by_id(AccountId::new())
        .await
        .unwrap()
        .is_none());
    store
        .set_password_hash(rose.id, "$argon2id$new")
        .await
        .unwrap();
    store.set_account_locked(rose.id, true).await.unwrap();
    let changed = store.account_by_id(rose.id).await.unwrap().unwrap();
    assert_eq!(changed.password_hash, "$argon2id$new");
    assert!(changed.locked);
    assert!(matches!(
        store.set_password_hash(AccountId::new(), "x").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn sessions(store: &dyn MetadataStore) {
    let ann = account("ann@example.org");
    store.create_account(&ann).await.unwrap();
    let t = now();
    let live = session(ann.id, [1; 32], t + Duration::hours(1));
    let other = session(ann.id, [2; 32], t + Duration::hours(1));
    let expired = session(ann.id, [3; 32], t - Duration::seconds(1));
    for s in [&live, &other, &expired] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store.session_by_token_hash(&[1; 32], t).await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(
        store.session_by_token_hash(&[3; 32], t).await.unwrap(),
        None,
        "expired sessions are not found"
    );
    assert_eq!(
        store.account_by_session(&[1; 32], t).await.unwrap(),
        Some(ann.clone()),
        "a live session's account is found by the session's token hash"
    );
    assert_eq!(
        store.account_by_session(&[3; 32], t).await.unwrap(),
        None,
        "an expired session names no account"
    );
    assert_eq!(store.account_by_session(&[9; 32], t).await.unwrap(), None);
    assert_eq!(store.sessions_of(ann.id, t).await.unwrap().len(), 2);
    assert_eq!(
        store.delete_other_sessions(ann.id, live.id).await.unwrap(),
        2
    );
    assert!(store
        .session_by_token_hash(&[2; 32], t)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .delete_expired_sessions(t + Duration::hours(2))
            .await
            .unwrap(),
        1
    );
    assert!(store
        .session_by_token_hash(&[1; 32], t)
        .await
        .unwrap()
        .is_none());
    let again = session(ann.id, [4; 32], t + Duration::hours(1));
    store.create_session(&again).await.unwrap();
    store.delete_session(again.id).await.unwrap();
    assert!(store
        .session_by_token_hash(&[4; 32], t)
        .await
        .unwrap()
        .is_none());
    assert!(
        store
            .account_by_session(&[4; 32], t)
            .await
            .unwrap()
            .is_none(),
        "a signed-out session names no account"
    );
}

fn password_reset(account: AccountId, token_hash: [u8; 32], t: OffsetDateTime) -> PasswordReset {
    PasswordReset {
        token_hash,
        account_id: account,
        created_at: t,
        expires_at: t + Duration::minutes(30),
    }
}

async fn password_resets(store: &dyn MetadataStore) {
    let t = now();
    let kim = account("reset-kim@example.org");
    let lou = account("reset-lou@example.org");
    for a in [&kim, &lou] {
        store.create_account(a).await.unwrap();
    }

    // Single use: the first take gets the account, the second nothing.
    let first = password_reset(kim.id, [11; 32], t);
    store.create_password_reset(&first).await.unwrap();
    assert!(matches!(
        store.create_password_reset(&first).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.password_reset(&[11; 32]).await.unwrap(),
        Some(first.clone()),
        "read back exactly as kept"
    );
    assert_eq!(
        store.password_reset(&[11; 32]).await.unwrap(),
        Some(first.clone()),
        "looking does not use it up"
    );
    assert_eq!(
        store.take_password_reset(&[11; 32], t).await.unwrap(),
        Some(kim.id)
    );
    assert_eq!(store.take_password_reset(&[11; 32], t).await.unwrap(), None);
    assert_eq!(store.password_reset(&[11; 32]).await.unwrap(), None);
    assert_eq!(
        store.take_password_reset(&[12; 32], t).await.unwrap(),
        None,
        "an unknown token"
    );

    // Expiry: an expired link is not taken, and stays to be told apart from an unknown
    // one until the sweep.
    let old = password_reset(kim.id, [13; 32], t - Duration::hours(1));
    store.create_password_reset(&old).await.unwrap();
    assert_eq!(
        store.take_password_reset(&[13; 32], t).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.password_reset(&[13; 32]).await.unwrap(),
        Some(old.clone())
    );
    let edge = password_reset(kim.id, [14; 32], t);
    store.create_password_reset(&edge).await.unwrap();
    assert_eq!(
        store
            .take_password_reset(&[14; 32], edge.expires_at)
            .await
            .unwrap(),
        None,
        "a link is dead at its expiry"
    );

    // The sweep removes the expired ones only.
    let live = password_reset(lou.id, [15; 32], t);
    store.create_password_reset(&live).await.unwrap();
    assert_eq!(
        store
            .delete_expired_password_resets(old.expires_at)
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.password_reset(&[13; 32]).await.unwrap(), None);
    assert_eq!(
        store.password_reset(&[14; 32]).await.unwrap(),
        Some(edge.clone())
    );
    assert_eq!(
        store.password_reset(&[15; 32]).await.unwrap(),
        Some(live.clone())
    );

    // Ending an account's links leaves the others'.
    store
        .create_password_reset(&password_reset(kim.id, [16; 32], t))
        .await
        .unwrap();
    assert_eq!(store.delete_password_resets_of(kim.id).await.unwrap(), 2);
    assert_eq!(store.password_reset(&[16; 32]).await.unwrap(), None);
    assert_eq!(
        store.password_reset(&[15; 32]).await.unwrap(),
        Some(live.clone())
    );

    // Deleting the account deletes its links.
    store.delete_account(lou.id).await.unwrap();
    assert_eq!(store.password_reset(&[15; 32]).await.unwrap(), None);
    assert_eq!(store.take_password_reset(&[15; 32], t).await.unwrap(), None);
}

fn email_verification(
    account: AccountId,
    token_hash: [u8; 32],
    t: OffsetDateTime,
) -> EmailVerification {
    EmailVerification {
        token_hash,
        account_id: account,
        created_at: t,
        expires_at: t + Duration::days(7),
    }
}

async fn email_verifications(store: &dyn MetadataStore) {
    let t = now();
    let day_ago = t - Duration::days(1);
    let ada = account("verify-ada@example.org");
    let bo = account("verify-bo@example.org");
    for a in [&ada, &bo] {
        store.create_account(a).await.unwrap();
    }
    let verified_at = |id| async move {
        store
            .account_by_id(id)
            .await
            .unwrap()
            .unwrap()
            .email_verified_at
    };
    assert_eq!(
        verified_at(ada.id).await,
        None,
        "a new account is unverified"
    );

    // Kept up to the limit within the window; past it, the oldest link's creation.
    let first = email_verification(ada.id, [21; 32], t - Duration::hours(2));
    assert_eq!(
        store
            .create_email_verification(&first, 2, day_ago)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store.create_email_verification(&first, 2, day_ago).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.email_verification(&[21; 32]).await.unwrap(),
        Some(first.clone()),
        "read back exactly as kept"
    );
    let second = email_verification(ada.id, [22; 32], t);
    assert_eq!(
        store
            .create_email_verification(&second, 2, day_ago)
            .await
            .unwrap(),
        None
    );
    let third = email_verification(ada.id, [23; 32], t);
    assert_eq!(
        store
            .create_email_verification(&third, 2, day_ago)
            .await
            .unwrap(),
        Some(first.created_at),
        "the limit is reached"
    );
    assert_eq!(store.email_verification(&[23; 32]).await.unwrap(), None);
    assert_eq!(
        store
            .create_email_verification(&third, 2, t - Duration::hours(1))
            .await
            .unwrap(),
        None,
        "links made before the window do not count"
    );
    let bo_link = email_verification(bo.id, [24; 32], t);
    assert_eq!(
        store
            .create_email_verification(&bo_link, 1, day_ago)
            .await
            .unwrap(),
        None,
        "each account has its own count"
    );

    // Links that expired before the window go when the account gets a new one.
    let stale = email_verification(bo.id, [25; 32], t - Duration::days(9));
    assert_eq!(
        store
            .create_email_verification(&stale, 5, t - Duration::days(10))
            .await
            .unwrap(),
        None
    );
    let fresh = email_verification(bo.id, [26; 32], t);
    assert_eq!(
        store
            .create_email_verification(&fresh, 5, day_ago)
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.email_verification(&[25; 32]).await.unwrap(), None);
    assert_eq!(
        store.email_verification(&[24; 32]).await.unwrap(),
        Some(bo_link.clone())
    );

    // An expired link is not used, and stays to be told apart from an unknown one.
    let expired = email_verification(ada.id, [27; 32], t - Duration::days(8));
    assert_eq!(
        store
            .create_email_verification(&expired, 5, t - Duration::days(9))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .confirm_email_verification(&[27; 32], t)
            .await
            .unwrap(),
        None,
        "expired"
    );
    assert_eq!(
        store.email_verification(&[27; 32]).await.unwrap(),
        Some(expired)
    );
    assert_eq!(
        store
            .confirm_email_verification(&[22; 32], second.expires_at)
            .await
            .unwrap(),
        None,
        "a link is dead at its expiry"
    );
    assert_eq!(
        store
            .confirm_email_verification(&[28; 32], t)
            .await
            .unwrap(),
        None,
        "an unknown token"
    );
    assert_eq!(verified_at(ada.id).await, None);

    // Single use: confirming marks the account and ends every link of it, only of it.
    assert_eq!(
        store
            .confirm_email_verification(&[22; 32], t)
            .await
            .unwrap(),
        Some(ada.id)
    );
    assert_eq!(verified_at(ada.id).await, Some(t));
    assert_eq!(
        store
            .confirm_email_verification(&[22; 32], t)
            .await
            .unwrap(),
        None
    );
    for used in [[21; 32], [22; 32], [23; 32], [27; 32]] {
        assert_eq!(store.email_verification(&used).await.unwrap(), None);
    }
    assert_eq!(
        store.email_verification(&[26; 32]).await.unwrap(),
        Some(fresh.clone())
    );
    assert!(
        !store
            .set_email_verified(ada.id, t + Duration::hours(1))
            .await
            .unwrap(),
        "already verified"
    );
    assert_eq!(verified_at(ada.id).await, Some(t), "the first time is kept");

    // Marking an account verified (a password reset by email) ends its links too.
    assert!(store.set_email_verified(bo.id, t).await.unwrap());
    assert_eq!(verified_at(bo.id).await, Some(t));
    assert_eq!(store.email_verification(&[26; 32]).await.unwrap(), None);

    // A verified account reads back as it was created; deleting it deletes its links.
    let cy = Account {
        email_verified_at: Some(t),
        ..account("verify-cy@example.org")
    };
    store.create_account(&cy).await.unwrap();
    assert_eq!(store.account_by_id(cy.id).await.unwrap(), Some(cy.clone()));
    let cy_link = email_verification(cy.id, [29; 32], t);
    store
        .create_email_verification(&cy_link, 1, day_ago)
        .await
        .unwrap();
    store.delete_account(cy.id).await.unwrap();
    assert_eq!(store.email_verification(&[29; 32]).await.unwrap(), None);
    assert_eq!(
        store
            .confirm_email_verification(&[29; 32], t)
            .await
            .unwrap(),
        None
    );
}

async fn households_and_invitations(store: &dyn MetadataStore) {
    let mum = account("mum@example.org");
    let gran = account("gran@example.org");
    store.create_account(&mum).await.unwrap();
    store.create_account(&gran).await.unwrap();
    let home = Household {
        id: HouseholdId::new(),
        name: "The Lees".into(),
        created_at: now(),
    };
    store.create_household(&home, mum.id).await.unwrap();
    let owner = store.membership(home.id, mum.id).await.unwrap().unwrap();
    assert_eq!(
        (owner.role, owner.status),
        (Role::Owner, MemberStatus::Approved)
    );
    store.rename_household(home.id, "Lee family").await.unwrap();
    assert_eq!(
        store.household(home.id).await.unwrap().unwrap().name,
        "Lee family"
    );
    assert!(store.household(HouseholdId::new()).await.unwrap().is_none());

    let t = now();
    let invitation = Invitation {
        id: InvitationId::new(),
        household_id: home.id,
        token_hash: [9; 32],
        role: Role::Family,
        created_by: mum.id,
        created_at: t,
        expires_at: t + Duration::days(7),
    };
    store.create_invitation(&invitation).await.unwrap();
    assert_eq!(
        store.redeem_invitation(&[8; 32], gran.id, t).await.unwrap(),
        Redemption::Unknown
    );
    assert_eq!(
        store.redeem_invitation(&[9; 32], mum.id, t).await.unwrap(),
        Redemption::AlreadyMember(home.id),
        "a member redeeming does not spend the invitation"
    );
    let Redemption::Joined(joined) = store.redeem_invitation(&[9; 32], gran.id, t).await.unwrap()
    else {
        panic!("the invitation should have been redeemed");
    };
    assert_eq!(
        (joined.role, joined.status),
        (Role::Family, MemberStatus::Pending)
    );
    let third = account("third@example.org");
    store.create_account(&third).await.unwrap();
    assert_eq!(
        store
            .redeem_invitation(&[9; 32], third.id, t)
            .await
            .unwrap(),
        Redemption::Spent,
        "single use"
    );

    let late = Invitation {
        id: InvitationId::new(),
        token_hash: [7; 32],
        expires_at: t - Duration::seconds(1),
        ..invitation
    };
    store.create_invitation(&late).await.unwrap();
    assert_eq!(
        store
            .redeem_invitation(&[7; 32], third.id, t)
            .await
            .unwrap(),
        Redemption::Spent,
        "expired"
    );

    let members = store.members(home.id).await.unwrap();
    assert_eq!(members.len(), 2);
    assert_eq!(members[1].email, gran.email);
    store
        .update_member(home.id, gran.id, Role::Family, MemberStatus::Blocked)
        .await
        .unwrap();
    assert_eq!(
        store
            .membership(home.id, gran.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        MemberStatus::Blocked
    );
    let mine = store.households_of(gran.id).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].0.id, home.id);

    // Blocked gran leaves: the household drops from her list, the block stays.
    store.remove_member(home.id, gran.id).await.unwrap();
    assert!(store.households_of(gran.id).await.unwrap().is_empty());
    let kept = store.membership(home.id, gran.id).await.unwrap().unwrap();
    assert_eq!(kept.status, MemberStatus::Blocked);
    assert_eq!(store.members(home.id).await.unwrap().len(), 2);
    let again = Invitation {
        id: InvitationId::new(),
        token_hash: [6; 32],
        ..invitation
    };
    store.create_invitation(&again).await.unwrap();
    assert_eq!(
        store.redeem_invitation(&[6; 32], gran.id, t).await.unwrap(),
        Redemption::Blocked(home.id),
        "a blocked account cannot rejoin, and the invitation stays unused"
    );
    store.remove_member(home.id, gran.id).await.unwrap();
    store
        .update_member(home.id, gran.id, Role::Family, MemberStatus::Blocked)
        .await
        .unwrap();
    assert!(store.households_of(gran.id).await.unwrap().is_empty());
    // A parent lifts the block: she had left, so her place ends.
    store
        .update_member(home.id, gran.id, Role::Family, MemberStatus::Approved)
        .await
        .unwrap();
    assert!(store.membership(home.id, gran.id).await.unwrap().is_none());
    assert!(matches!(
        store.remove_member(home.id, gran.id).await,
        Err(StoreError::NotFound(_))
    ));
    let Redemption::Joined(back) = store.redeem_invitation(&[6; 32], gran.id, t).await.unwrap()
    else {
        panic!("with the block lifted the invitation works");
    };
    assert_eq!(back.status, MemberStatus::Pending);
    // A member who is not blocked leaves for good.
    store.remove_member(home.id, gran.id).await.unwrap();
    assert!(store.membership(home.id, gran.id).await.unwrap().is_none());

    // The daily invitation counts: mum made four here ([9], [7], [6] and one in a
    // household of her own), the household had three; none before `t`.
    let elsewhere = Household {
        id: HouseholdId::new(),
        name: "Mum's flat".into(),
        created_at: t,
    };
    store.create_household(&elsewhere, mum.id).await.unwrap();
    store
        .create_invitation(&Invitation {
            id: InvitationId::new(),
            household_id: elsewhere.id,
            token_hash: [5; 32],
            created_at: t + Duration::seconds(1),
            ..invitation
        })
        .await
        .unwrap();
    let recent = store
        .recent_invitations(home.id, mum.id, t - Duration::hours(24))
        .await
        .unwrap();
    assert_eq!(recent.by_account.count, 4);
    assert_eq!(recent.in_household.count, 3);
    assert_eq!(recent.by_account.oldest, Some(invitation.created_at));
    assert_eq!(recent.in_household.oldest, Some(invitation.created_at));
    let later = store
        .recent_invitations(home.id, mum.id, t + Duration::milliseconds(500))
        .await
        .unwrap();
    assert_eq!(later.by_account.count, 1);
    assert_eq!(later.in_household, InvitationCount::default());
}

/// Runs every blob promise against `store`, which must start empty. It leaves one blob
/// behind: `suite/big`.
pub async fn blob_store(store: &dyn BlobStore) {
    assert_eq!(store.list().await.unwrap(), Vec::<BlobKey>::new(), "empty");
    let key = BlobKey::new("suite/first").unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    store.put(&key, b"ciphertext one").await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"ciphertext one"[..])
    );
    store.put(&key, b"replaced").await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    let big = vec![0xa5u8; 1 << 20];
    let big_key = BlobKey::new("suite/big").unwrap();
    store.put(&big_key, &big).await.unwrap();
    assert_eq!(store.get(&big_key).await.unwrap().unwrap(), big);
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), None);
    blob_listing(store).await;
}

/// Listing: every blob once, in byte order, page by page.
async fn blob_listing(store: &dyn BlobStore) {
    let big = BlobKey::new("suite/big").unwrap();
    assert_eq!(store.list().await.unwrap(), std::slice::from_ref(&big));

    // `-` sorts before `/`, so byte order is not the order of a walk through folders.
    let names = [
        "suite/list/b",
        "suite/list/a/c",
        "suite/list/a-b",
        "suite/list/a/b/d",
        "suite/list/0",
        "suite/list-z",
    ];
    let keys: Vec<BlobKey> = names.iter().map(|n| BlobKey::new(*n).unwrap()).collect();
    for key in &keys {
        store.put(key, key.as_str().as_bytes()).await.unwrap();
    }
    let mut expected: Vec<BlobKey> = keys.iter().chain([&big]).cloned().collect();
    expected.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    assert_eq!(
        store.list().await.unwrap(),
        expected,
        "every blob, in byte order"
    );

    for limit in [1, 2, 3] {
        let mut paged = Vec::new();
        let mut cursor = None;
        let mut pages = 0;
        loop {
            let page = store.list_page(cursor.as_ref(), limit).await.unwrap();
            assert!(page.keys.len() <= limit, "a page of {limit} held {page:?}");
            paged.extend(page.keys);
            pages += 1;
            assert!(pages <= expected.len() + 1, "the listing does not end");
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(paged, expected, "pages of {limit}");
    }
    let first = store.list_page(None, 0).await.unwrap();
    assert_eq!(first.keys.len(), 1, "a limit of 0 is taken as 1");
    let all = store
        .list_page(None, BLOB_LIST_PAGE_SIZE + 1)
        .await
        .unwrap();
    assert_eq!(
        all.keys, expected,
        "a limit above the page size is taken as the page size"
    );

    for key in &keys {
        store.delete(key).await.unwrap();
    }
    assert_eq!(
        store.list().await.unwrap(),
        [big],
        "deleted blobs are not listed"
    );
}

/// Passkeys: unique credential ids, the last one kept when asked, recovery material
/// only for its owner, everything gone with the account; ceremonies used up once.
async fn passkeys(store: &dyn MetadataStore) {
    use crate::{PasskeyCeremony, StoredPasskey};
    let owner = account("passkeys@example.org");
    let other = account("passkeys-other@example.org");
    store.create_account(&owner).await.unwrap();
    store.create_account(&other).await.unwrap();
    let passkey = |account: AccountId, credential_id: &[u8], label: &str| StoredPasskey {
        id: Uuid::now_v7(),
        account_id: account,
        credential_id: credential_id.to_vec(),
        label: label.into(),
        credential: format!("{{\"label\":\"{label}\"}}"),
        created_at: now(),
        last_used_at: None,
        has_recovery_material: false,
    };
    let first = passkey(owner.id, b"cred-1", "Phone");
    let second = passkey(owner.id, b"cred-2", "Laptop");
    store.add_passkey(&first).await.unwrap();
    store.add_passkey(&second).await.unwrap();
    assert!(matches!(
        store
            .add_passkey(&passkey(other.id, b"cred-1", "Copy"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.passkeys_of(owner.id).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert!(store.passkeys_of(other.id).await.unwrap().is_empty());
    assert_eq!(
        store.passkey_by_credential_id(b"cred-2").await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(store.passkey_by_credential_id(b"nope").await.unwrap(), None);

    let used = now();
    store
        .record_passkey_use(first.id, "{\"counter\":1}", used)
        .await
        .unwrap();
    let read = store
        .passkey_by_credential_id(b"cred-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.credential, "{\"counter\":1}");
    assert_eq!(read.last_used_at, Some(used));
    assert!(matches!(
        store.record_passkey_use(Uuid::now_v7(), "{}", used).await,
        Err(StoreError::NotFound(_))
    ));

    // Recovery material: only through its owner.
    assert!(!store
        .set_passkey_recovery_material(other.id, first.id, b"x")
        .await
        .unwrap());
    assert_eq!(
        store
            .passkey_recovery_material(owner.id, first.id)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .set_passkey_recovery_material(owner.id, first.id, b"sealed")
        .await
        .unwrap());
    assert_eq!(
        store
            .passkey_recovery_material(owner.id, first.id)
            .await
            .unwrap(),
        Some(b"sealed".to_vec())
    );
    assert_eq!(
        store
            .passkey_recovery_material(other.id, first.id)
            .await
            .unwrap(),
        None
    );
    assert!(store.passkeys_of(owner.id).await.unwrap()[0].has_recovery_material);

    // Removal: not another account's, and with keep_one not the last.
    assert!(!store
        .delete_passkey(other.id, first.id, false)
        .await
        .unwrap());
    assert!(store
        .delete_passkey(owner.id, second.id, true)
        .await
        .unwrap());
    assert!(!store
        .delete_passkey(owner.id, first.id, true)
        .await
        .unwrap());
    assert_eq!(store.passkeys_of(owner.id).await.unwrap().len(), 1);

    // Ceremonies: taken once, expired ones swept.
    let ceremony = |expires_at: OffsetDateTime, account: Option<AccountId>| PasskeyCeremony {
        id: Uuid::new_v4(),
        purpose: "sign_in".into(),
        account_id: account,
        state: "{}".into(),
        expires_at,
    };
    let live = ceremony(now() + Duration::minutes(5), Some(owner.id));
    let old = ceremony(now() - Duration::minutes(5), None);
    store.create_passkey_ceremony(&live).await.unwrap();
    store.create_passkey_ceremony(&old).await.unwrap();
    assert!(matches!(
        store.create_passkey_ceremony(&live).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .delete_expired_passkey_ceremonies(now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.take_passkey_ceremony(old.id).await.unwrap(), None);
    assert_eq!(
        store.take_passkey_ceremony(live.id).await.unwrap(),
        Some(live.clone())
    );
    assert_eq!(store.take_passkey_ceremony(live.id).await.unwrap(), None);

    // Everything goes with the account.
    let pending = ceremony(now() + Duration::minutes(5), Some(owner.id));
    store.create_passkey_ceremony(&pending).await.unwrap();
    store.delete_account(owner.id).await.unwrap();
    assert!(store.passkeys_of(owner.id).await.unwrap().is_empty());
    assert_eq!(
        store.passkey_by_credential_id(b"cred-1").await.unwrap(),
        None
    );
    assert_eq!(store.take_passkey_ceremony(pending.id).await.unwrap(), None);
}
