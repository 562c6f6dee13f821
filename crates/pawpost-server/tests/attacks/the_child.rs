//! Attacks aimed at the child, through the simulated toy over a real WebSocket: a toy
//! impersonated without its key, audio from someone who may not send it, replays, forged
//! rosters, and frames that try to start the microphone.
use super::*;

// ---------------------------------------------------------------------------------------
// A toy impersonated without its key.

#[tokio::test]
async fn a_toy_impersonated_without_its_key_receives_nothing() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let identity = pair(&f, &toy).await;
    toy.stop().await;
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, voice).await.0, StatusCode::CREATED);

    // 1. The impostor claims the toy's id, signing with a key of its own.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url(&f.server))
        .await
        .unwrap();
    let impostor = new_device();
    for _ in 0..3 {
        let Frame::Challenge { nonce, .. } = Frame::decode(&next_frame(&mut socket).await).unwrap()
        else {
            panic!("expected a challenge")
        };
        let input = pawpost_toy::auth_signature_input(&nonce, identity.device_id, 0);
        let auth = Frame::Auth {
            device_id: identity.device_id,
            roster_version: 0,
            signature: ed25519_sign(&impostor, &input),
        };
        socket
            .send(tokio_tungstenite::tungstenite::Message::Binary(
                auth.encode().unwrap().into(),
            ))
            .await
            .unwrap();
        let answer = next_frame(&mut socket).await;
        assert_eq!(
            Frame::decode(&answer).unwrap(),
            Frame::Error {
                code: ServerError::AuthFailed
            },
            "no roster and no message before authentication"
        );
    }
    let rest = tokio::time::timeout(STEP, socket.next()).await.unwrap();
    assert!(
        matches!(
            rest,
            None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))
        ),
        "after three failures the server hangs up: {rest:?}"
    );

    // 2. It replays a signature the real toy made over another connection's nonce.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url(&f.server))
        .await
        .unwrap();
    let _ = next_frame(&mut socket).await;
    let stale = Frame::Auth {
        device_id: identity.device_id,
        roster_version: 0,
        signature: [0x5a; 64],
    };
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            stale.encode().unwrap().into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        Frame::decode(&next_frame(&mut socket).await).unwrap(),
        Frame::Error {
            code: ServerError::AuthFailed
        }
    );

    // 3. It asks to pair again under the toy's public identity, without its private key.
    let Frame::Challenge { .. } = Frame::decode(&next_frame(&mut socket).await).unwrap() else {
        panic!("expected a fresh challenge")
    };
    let request = Frame::PairRequest {
        identity,
        signature: [0x11; 64],
    };
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            request.encode().unwrap().into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        Frame::decode(&next_frame(&mut socket).await).unwrap(),
        Frame::Error {
            code: ServerError::PairingRefused
        }
    );

    // 4. Frames before authentication close the connection.
    let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url(&f.server))
        .await
        .unwrap();
    let _ = next_frame(&mut socket).await;
    let upload_frame = Frame::Upload { envelope: b"x" };
    socket
        .send(tokio_tungstenite::tungstenite::Message::Binary(
            upload_frame.encode().unwrap().into(),
        ))
        .await
        .unwrap();
    let rest = tokio::time::timeout(STEP, socket.next()).await.unwrap();
    assert!(
        matches!(
            rest,
            None | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) | Some(Err(_))
        ),
        "{rest:?}"
    );

    // The message is still waiting for the real toy: nothing was delivered to anyone.
    let (_, listed) = f
        .mum
        .get(&format!("/api/v1/households/{}/messages", f.home))
        .await;
    let message = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["message_id"] == voice_id.to_string())
        .unwrap();
    assert!(
        message["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["delivered_at"].is_null()),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------------
// Audio pushed to the child by someone who may not.

#[tokio::test]
async fn audio_from_a_stranger_a_blocked_or_a_removed_member_never_reaches_the_child() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f).await;

    // An uncle joins, is approved, and is in the signed roster.
    let (uncle, uncle_id) =
        invited_member(&f.server, &f.mum, &f.home, "uncle@example.org", "family").await;
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{uncle_id}/approve", f.home),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let uncle_keys = new_device();
    register(&uncle, &uncle_keys, "Uncle's phone").await;
    let v3 = publish_next(&f, |next| {
        next.members
            .push(member(&uncle_keys, &uncle_id, Role::Family))
    })
    .await;
    wait_for_status(&toy, "the toy takes the uncle's roster", |s| {
        s.roster_version == v3
    })
    .await;

    // A stranger with an account, a household and keys of their own.
    let (stranger, _, _) = parent_with_household(&f.server, "stranger@example.org").await;
    let stranger_keys = new_device();
    register(&stranger, &stranger_keys, "Stranger").await;
    let (theirs, _) = sealed(
        &stranger_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    let blobs = blob_count(&f.server);
    let (status, body) = upload(&stranger, &f.home, theirs).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(blob_count(&f.server), blobs, "nothing stored");

    // Gran and the uncle each send one while they may; the toy holds both.
    let mut events = toy.events();
    let (held, held_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, held).await.0, StatusCode::CREATED);
    let (uncles, uncles_id) = sealed(
        &uncle_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&uncle, &f.home, uncles).await.0, StatusCode::CREATED);
    wait_for_status(&toy, "both messages wait on the toy", |s| s.queued == 2).await;

    // The toy goes offline; gran sends another before anyone blocks her.
    toy.stop().await;
    let (late, late_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    assert_eq!(upload(&f.gran, &f.home, late).await.0, StatusCode::CREATED);

    // Mum blocks gran and removes the uncle, on the server and in a signed roster.
    let (status, _) = f
        .mum
        .post(
            &format!("/api/v1/households/{}/members/{}/block", f.home, f.gran_id),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = f
        .mum
        .call(
            Method::DELETE,
            &format!("/api/v1/households/{}/members/{uncle_id}", f.home),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let gran_device = f.gran_keys.device_id();
    let uncle_device = uncle_keys.device_id();
    let v4 = publish_next(&f, |next| {
        next.members.retain(|m| m.device_id != uncle_device);
        for m in &mut next.members {
            if m.device_id == gran_device {
                m.status = MemberStatus::Blocked;
            }
        }
    })
    .await;

    // The server refuses both of them from now on, and stores nothing.
    let blobs = blob_count(&f.server);
    let (again, _) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    let (status, body) = upload(&f.gran, &f.home, again).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (again, _) = sealed(
        &uncle_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity],
        VOICE,
    );
    let (status, body) = upload(&uncle, &f.home, again).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(blob_count(&f.server), blobs, "nothing stored");

    // The toy comes back: the new roster drops what it held from them, and it refuses
    // the message gran sent before the block, which the server still had for it.
    let toy = start_toy(&f.server, state.path()).await;
    let mut events_after = toy.events();
    wait_for_status(&toy, "the toy takes the blocking roster", |s| {
        s.roster_version == v4 && s.queued == 0
    })
    .await;
    let seen = drain(&mut events_after, Duration::from_millis(500)).await;
    let mut reports = reports(&seen);
    // Events before the restart, from the first run of the toy.
    reports.extend(self::reports(&drain(&mut events, Duration::ZERO).await));
    for (id, reason) in [
        (held_id, RejectReason::SenderBlocked),
        (uncles_id, RejectReason::UnknownSender),
    ] {
        let line = format!("message {id} dropped: {}", reason.code());
        assert!(reports.contains(&line), "{line} not in {reports:?}");
    }
    let refused_late = format!(
        "message {late_id} dropped: {}",
        RejectReason::SenderBlocked.code()
    );
    // The server still hands the toy what gran sent before the block; the toy's own
    // roster check is what refuses it.
    assert!(
        reports.contains(&refused_late),
        "{refused_late} not in {reports:?}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, SimEvent::Played { .. })),
        "nothing played"
    );
    assert_eq!(toy.status().heart, "off", "no message waiting");
    assert_eq!(toy.status().queued, 0);
    toy.stop().await;
}

#[tokio::test]
async fn a_replayed_envelope_is_refused_and_plays_only_once() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    let toy_identity = pair(&f, &toy).await;
    wait_online(&f).await;
    let mut events = toy.events();
    let (voice, voice_id) = sealed(
        &f.gran_keys,
        &f.home,
        MediaType::OggOpus,
        &[toy_identity, f.mum_keys.public()],
        VOICE,
    );
    assert_eq!(
        upload(&f.gran, &f.home, voice.clone()).await.0,
        StatusCode::CREATED
    );
    wait_for_status(&toy, "the message waits on the toy", |s| s.queued == 1).await;
    toy.press();
    let played =
        pawpost_toy_sim::next_event(&mut events, |e| matches!(e, SimEvent::Played { .. }), STEP)
            .await
            .unwrap();
    assert!(matches!(played, SimEvent::Played { message_id, .. } if message_id == voice_id));

    // The same bytes again, by the sender, by mum (a recipient who holds them), and by a
    // stranger into a household of their own.
    let (status, body) = upload(&f.gran, &f.home, voice.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, body) = upload(&f.mum, &f.home, voice.clone()).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::CONFLICT,
        "{status} {body}"
    );
    let (stranger, _, elsewhere) = parent_with_household(&f.server, "stranger@example.org").await;
    let (status, body) = upload(&stranger, &elsewhere, voice.clone()).await;
    assert!(
        status.is_client_error() && status != StatusCode::NOT_FOUND,
        "{status} {body}"
    );
    // And a second copy under a new message id, re-signed by nobody: the header changed,
    // so gran's signature no longer covers it.
    let mut renamed = voice;
    let id_at = renamed
        .windows(16)
        .position(|w| w == voice_id.as_bytes())
        .expect("the header carries the message id");
    renamed[id_at + 15] ^= 1;
    let (status, body) = upload(&f.gran, &f.home, renamed).await;
    assert!(status.is_client_error(), "{status} {body}");

    let seen = drain(&mut events, Duration::from_millis(500)).await;
    assert!(
        !seen.iter().any(|e| matches!(e, SimEvent::Played { .. })),
        "played once only: {seen:?}"
    );
    assert_eq!(toy.status().queued, 0);
    toy.stop().await;
}

#[tokio::test]
async fn a_forged_roster_is_refused_and_the_toy_keeps_its_own() {
    let f = family().await;
    let state = tempfile::tempdir().unwrap();
    let toy = start_toy(&f.server, state.path()).await;
    pair(&f, &toy).await;
    wait_online(&f).await;
    let current = latest_roster(&f.mum, &f.home).await;
    let version = current.unverified_roster().version;
    wait_for_status(&toy, "the toy holds the current roster", |s| {
        s.roster_version == version
    })
    .await;
    // The forger's aim: gran becomes an owner, a stranger's key joins.
    let stranger_keys = new_device();
    let forged_roster = {
        let mut next = current.unverified_roster().next_version();
        for m in &mut next.members {
            if m.device_id == f.gran_keys.device_id() {
                m.role = Role::Owner;
            }
        }
        next.members
            .push(member(&stranger_keys, &f.gran_id, Role::Family));
        next
    };
    let roster_path = format!("/api/v1/households/{}/roster", f.home);

    // Signed by gran (a family member, not an owner), from her own account.
    let by_gran = SignedRoster::sign(&forged_roster, &f.gran_keys).unwrap();
    assert_eq!(
        publish(&f.gran, &f.home, &by_gran).await.0,
        StatusCode::FORBIDDEN
    );
    // Signed by a new key, even when registered to mum's account.
    let rogue = new_device();
    register(&f.mum, &rogue, "Rogue").await;
    let by_rogue = SignedRoster::sign(&forged_roster, &rogue).unwrap();
    assert_eq!(
        publish(&f.mum, &f.home, &by_rogue).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Signed by mum, then altered.
    let mut tampered = SignedRoster::sign(&forged_roster, &f.mum_keys)
        .unwrap()
        .encode();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, _) = f
        .mum
        .post(
            &roster_path,
            json!({"signed_roster": URL_SAFE_NO_PAD.encode(&tampered)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // An old version replayed, which would undo later changes.
    let (status, _) = publish(&f.mum, &f.home, &f.roster).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // A genuine roster of another household, published into this one.
    let (stranger, stranger_id, elsewhere) =
        parent_with_household(&f.server, "stranger@example.org").await;
    register(&stranger, &stranger_keys, "Stranger").await;
    let theirs = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&elsewhere)),
        settings(),
        vec![member(&stranger_keys, &stranger_id, Role::Owner)],
    );
    let theirs = SignedRoster::sign(&theirs, &stranger_keys).unwrap();
    assert_eq!(
        publish(&stranger, &f.home, &theirs).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        publish(&f.mum, &f.home, &theirs).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Garbage.
    let (status, _) = f
        .mum
        .post(&roster_path, json!({"signed_roster": "AAAA"}))
        .await;
    assert!(status.is_client_error(), "{status}");

    // Nothing changed: the server's roster and the toy's are still mum's last one.
    assert_eq!(
        latest_roster(&f.mum, &f.home).await.encode(),
        current.encode()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(toy.status().roster_version, version);
    toy.stop().await;
}

// ---------------------------------------------------------------------------------------
// The microphone started from outside.

#[test]
fn no_frame_from_outside_starts_the_microphone() {
    // The exhaustive version, in every toy state, is pawpost-toy's
    // `no_frame_and_no_random_bytes_ever_start_the_microphone_in_any_state`; this one
    // walks a new toy through pairing with one frame of every type at each step.
    let mut rng = os_rng();
    let mut toy = Toy::first_start(&mut rng);
    let wall = 1_764_000_000_000u64;
    let mut now = 0u64;
    let feed = |toy: &mut Toy, event: Event<'_>| -> Vec<Action> {
        let actions = toy.handle(event, &mut os_rng());
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::StartRecording { .. })),
            "the microphone started without a press"
        );
        actions
    };
    feed(
        &mut toy,
        Event::PowerOn {
            now_ms: now,
            wall_clock_unix_ms: Some(wall),
        },
    );
    feed(&mut toy, Event::Connected);

    let mum = new_device();
    let home = Uuid::now_v7().to_string();
    let roster = Roster::genesis(
        pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        settings(),
        vec![
            member(&mum, &Uuid::now_v7().to_string(), Role::Owner),
            Member::new(
                &toy.identity(),
                pawpost_crypto::AccountId(uuid_bytes(&home)),
                Role::Toy,
                MemberStatus::Approved,
            ),
        ],
    );
    let roster = SignedRoster::sign(&roster, &mum).unwrap().encode();
    let message_id = Uuid::now_v7();
    let recipients = [toy.identity()];
    let params = MessageParams {
        message_id: pawpost_crypto::MessageId(*message_id.as_bytes()),
        household_id: pawpost_crypto::HouseholdId(uuid_bytes(&home)),
        created_at_ms: wall,
        media_type: MediaType::OggOpus,
        duration_ms: 3633,
        recipients: &recipients,
    };
    let envelope = seal(&mut os_rng(), &mum, &params, VOICE).unwrap();
    let id = pawpost_toy::MessageId(*message_id.as_bytes());
    let household = pawpost_crypto::HouseholdId(uuid_bytes(&home));
    let every_frame = |toy: &Toy| -> Vec<Vec<u8>> {
        let identity = toy.identity();
        let frames = vec![
            Frame::PairRequest {
                identity,
                signature: [1; 64],
            },
            Frame::Auth {
                device_id: identity.device_id,
                roster_version: 1,
                signature: [2; 64],
            },
            Frame::RotateKey {
                new_identity: mum.public(),
                signature_by_old_key: [3; 64],
            },
            Frame::Delivered { message_id: id },
            Frame::Rejected {
                message_id: id,
                reason: RejectReason::SenderBlocked,
            },
            Frame::Played { message_id: id },
            Frame::Upload {
                envelope: &envelope,
            },
            Frame::RosterRejected {
                version: 1,
                reason: RosterRefusal::StaleVersion,
            },
            Frame::PairConfirmed {
                number: pawpost_toy::ConfirmationNumber::from_number(472).unwrap(),
            },
            Frame::ChunkRequest {
                message_id: id,
                next_index: 0,
                window: 8,
            },
            Frame::UploadChunk {
                message_id: id,
                offset: 0,
                total_len: 40_000,
                bytes: &envelope[..envelope.len().min(pawpost_toy::MAX_CHUNK_BYTES)],
            },
            Frame::UpdateRequest {
                offset: 0,
                window: 2,
            },
            Frame::Version {
                board: "pawpost-sim",
                version: 1,
                counter: 1,
            },
            Frame::Challenge {
                nonce: [4; 32],
                server_time_ms: wall,
            },
            Frame::PairCode {
                code: PairingCode::from_number(123_456).unwrap(),
                expires_in_s: 600,
            },
            Frame::Paired {
                household_id: household,
                signed_roster: &roster,
            },
            Frame::RosterUpdate {
                signed_roster: &roster,
            },
            Frame::Deliver {
                envelope: &envelope,
            },
            Frame::Approval {
                message_id: id,
                approver: mum.device_id(),
                signature: pawpost_toy::signing::sign_approval(&mum, household, id),
            },
            Frame::UploadAck { message_id: id },
            Frame::RotateAck {
                ed25519_pub: mum.public().ed25519_pub,
            },
            Frame::Error {
                code: ServerError::UploadRefused,
            },
            Frame::ConfirmPairing {
                number: pawpost_toy::ConfirmationNumber::from_number(472).unwrap(),
            },
            // A goodbye that no owner signed.
            Frame::Leave {
                household_id: household,
                signer: mum.device_id(),
                signature: [5; 64],
            },
            Frame::DeliverStart {
                prefix: &envelope[..envelope.len().min(pawpost_toy::MAX_ENVELOPE_PREFIX_LEN)],
            },
            Frame::DeliverChunk {
                message_id: id,
                index: 0,
                chunk: &envelope[..envelope.len().min(pawpost_toy::MAX_CHUNK_BYTES)],
            },
            Frame::UploadChunkAck {
                message_id: id,
                next_offset: 16_400,
            },
            Frame::Names {
                envelope: &envelope[..envelope.len().min(pawpost_toy::MAX_NAMES_ENVELOPE_LEN)],
            },
            // An offer no release key signed.
            Frame::UpdateOffer {
                manifest: &roster[..roster.len().min(pawpost_crypto::MAX_MANIFEST_LEN)],
                signature: [6; 64],
            },
            Frame::UpdateChunk {
                offset: 0,
                bytes: &envelope[..envelope.len().min(pawpost_protocol::UPDATE_CHUNK_BYTES)],
            },
        ];
        let types: Vec<FrameType> = frames.iter().map(Frame::frame_type).collect();
        assert_eq!(types, FrameType::ALL, "one frame of every type");
        frames.iter().map(|f| f.encode().unwrap()).collect()
    };
    // Random bodies behind every frame type's header, from a fixed xorshift sequence.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random_frames = || -> Vec<Vec<u8>> {
        (0..200usize)
            .map(|i| {
                let mut bytes: Vec<u8> = (0..(i * 7) % 180)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state.to_le_bytes()[0]
                    })
                    .collect();
                if bytes.len() >= 6 {
                    bytes[0] = PROTOCOL_VERSION;
                    bytes[1] = FrameType::ALL[i % FrameType::ALL.len()] as u8;
                    let body = u32::try_from(bytes.len() - 6).unwrap();
                    bytes[2..6].copy_from_slice(&body.to_be_bytes());
                }
                bytes
            })
            .collect()
    };

    let mut stages = Vec::new();
    for stage in ["unpaired", "pairing", "paired"] {
        if stage == "pairing" {
            feed(&mut toy, Event::PawPressed { long: true });
        }
        for bytes in every_frame(&toy).into_iter().chain(random_frames()) {
            feed(&mut toy, Event::FrameReceived(&bytes));
            now += 1000;
            feed(&mut toy, Event::Timer { now_ms: now });
        }
        feed(&mut toy, Event::Disconnected);
        feed(&mut toy, Event::Connected);
        stages.push((stage, toy.household_id().is_some(), toy.queued_messages()));
    }
    assert_eq!(
        stages.last().map(|s| s.1),
        Some(true),
        "the walk reached a paired toy: {stages:?}"
    );
    // The microphone does start from a press: presses first play what waits, then record.
    let mut started = false;
    for _ in 0..=toy.queued_messages() {
        let actions = toy.handle(Event::PawPressed { long: false }, &mut rng);
        started = actions
            .iter()
            .any(|a| matches!(a, Action::StartRecording { .. }));
        if started {
            break;
        }
    }
    assert!(started, "a short press on a paired toy starts recording");
}
