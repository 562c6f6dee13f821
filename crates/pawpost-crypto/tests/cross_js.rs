//! The browser implementation (`web/js/crypto`) against this crate, in the direction the
//! committed vectors do not cover: envelopes sealed, rosters signed (by a device or the
//! recovery key) and device certificates made by JavaScript must open and verify here, and
//! must equal this crate's bytes when both use the same randomness.
//!
//! Runs `node web/tools/seal.mjs`. Without Node.js 20 or later on PATH the tests are
//! recorded as skipped, and fail in CI (`CI` set) or with `PAWPOST_REQUIRE_NODE=1`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use pawpost_crypto::rand_core::{Rng, SeedableRng};
use pawpost_crypto::{
    open, seal, sign_certificate, verify_certificate, AccountId, DeviceId, DeviceKeys,
    EnvelopePrefix, HouseholdId, HouseholdSettings, MediaType, Member, MemberStatus, MessageId,
    MessageParams, OpenError, PublicIdentity, QuietHours, RecoveryCode, RecoveryKey, Role, Roster,
    RosterError, SignedRoster, CHUNK_SIZE,
};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

const REQUIRE_VAR: &str = "PAWPOST_REQUIRE_NODE";

/// Whether Node.js 20+ can run the tool; if not, records the skip, or fails when required.
fn node_available() -> bool {
    let why = match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let major = version
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse::<u32>().ok());
            match major {
                // WebCrypto X25519 and Ed25519 arrived in Node.js 20.
                Some(m) if m >= 20 => return true,
                _ => format!("node {version} is older than 20"),
            }
        }
        Ok(out) => format!("`node --version` failed ({})", out.status),
        Err(e) => format!("cannot run node: {e}"),
    };
    pawpost_testkit::skip("Node.js 20 or later", &why, Some(REQUIRE_VAR));
    false
}

/// Runs `node web/tools/seal.mjs <mode>` with `request` on stdin and returns its hex output.
fn run_tool(mode: &str, request: &Value) -> Vec<u8> {
    let tool = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/tools/seal.mjs");
    let mut child = Command::new("node")
        .arg(&tool)
        .arg(mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node {}: {e}", tool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "seal.mjs {mode} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    hex::decode(String::from_utf8(out.stdout).unwrap().trim()).expect("seal.mjs prints hex")
}

/// Fresh keys every run, from a seed that is printed so that a failure can be replayed.
fn fresh_rng() -> ChaCha20Rng {
    let mut seed = [0u8; 32];
    for part in seed.chunks_mut(8) {
        // Each RandomState is keyed from the OS generator (then a per-thread counter).
        part.copy_from_slice(&RandomState::new().build_hasher().finish().to_le_bytes());
    }
    eprintln!("cross_js seed: {}", hex::encode(seed));
    ChaCha20Rng::from_seed(seed)
}

fn random_id(rng: &mut ChaCha20Rng) -> [u8; 16] {
    let mut id = [0u8; 16];
    rng.fill_bytes(&mut id);
    id
}

fn device(rng: &mut ChaCha20Rng) -> DeviceKeys {
    let id = DeviceId(random_id(rng));
    DeviceKeys::generate(rng, id)
}

fn secret_hex(keys: &DeviceKeys) -> String {
    hex::encode(keys.to_secret_bytes().as_slice())
}

#[test]
fn envelopes_sealed_in_javascript_open_here() {
    if !node_available() {
        return;
    }
    let mut rng = fresh_rng();
    let sender = device(&mut rng);
    let recipients: Vec<DeviceKeys> = (0..3).map(|_| device(&mut rng)).collect();
    let outsider = device(&mut rng);
    let publics: Vec<PublicIdentity> = recipients.iter().map(DeviceKeys::public).collect();
    let household_id = HouseholdId(random_id(&mut rng));

    for size in [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 123] {
        let mut payload = vec![0u8; size];
        rng.fill_bytes(&mut payload);
        let params = MessageParams {
            message_id: MessageId(random_id(&mut rng)),
            household_id,
            created_at_ms: 1_767_225_600_000 + size as u64,
            media_type: MediaType::OggOpus,
            duration_ms: 4_250,
            recipients: &publics,
        };
        let mut request = json!({
            "sender": secret_hex(&sender),
            "recipients": publics.iter().map(|p| hex::encode(p.encode())).collect::<Vec<_>>(),
            "message": {
                "message_id": hex::encode(params.message_id.as_bytes()),
                "household_id": hex::encode(household_id.as_bytes()),
                "created_at_ms": params.created_at_ms,
                "media_type": params.media_type as u8,
                "duration_ms": params.duration_ms,
            },
            "payload": hex::encode(&payload),
        });

        // JavaScript's own randomness: every recipient opens it here, nobody else does.
        let envelope = run_tool("seal", &request);
        for me in &recipients {
            let opened = open(&envelope, me, &sender.public())
                .unwrap_or_else(|e| panic!("{size} bytes: {}", e.code()));
            assert_eq!(opened.payload, payload, "{size} bytes");
            assert_eq!(opened.header.sender, sender.device_id());
            assert_eq!(opened.header.message_id, params.message_id);
            assert_eq!(opened.header.household_id, household_id);
            assert_eq!(opened.header.created_at_ms, params.created_at_ms);
            assert_eq!(opened.header.media_type, MediaType::OggOpus);
            assert_eq!(opened.header.duration_ms, params.duration_ms);
            let ids: Vec<DeviceId> = recipients.iter().map(DeviceKeys::device_id).collect();
            assert_eq!(opened.header.recipients, ids);
        }
        assert_eq!(
            open(&envelope, &outsider, &sender.public()),
            Err(OpenError::NotARecipient)
        );
        let (prefix, _) = EnvelopePrefix::parse(&envelope).unwrap();
        assert_eq!(prefix.verify_sender(&sender.public()), Ok(()));

        // The same randomness on both sides: the same bytes.
        let replay = rng.clone();
        let mut random = vec![0u8; 32 * (1 + publics.len())];
        rng.fill_bytes(&mut random);
        request["random"] = Value::String(hex::encode(&random));
        let from_js = run_tool("seal", &request);
        let from_rust = seal(&mut replay.clone(), &sender, &params, &payload).unwrap();
        assert!(
            from_js == from_rust,
            "{size} bytes: JavaScript and Rust seal different bytes from the same randomness"
        );
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Guardian => "guardian",
        Role::Family => "family",
        Role::Toy => "toy",
        Role::Recovery => "recovery",
    }
}

fn status_name(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Approved => "approved",
        MemberStatus::Blocked => "blocked",
    }
}

/// The roster in the JSON layout of `test-vectors/roster-v1.json`, members in any order.
fn roster_json(r: &Roster) -> Value {
    let s = &r.settings;
    json!({
        "household_id": hex::encode(r.household_id.as_bytes()),
        "version": r.version,
        "previous_digest": hex::encode(r.previous_digest),
        "settings": {
            "quiet_hours": s.quiet_hours.map(|q| json!({"start_minute": q.start_minute, "end_minute": q.end_minute})),
            "timezone_offset_minutes": s.timezone_offset_minutes,
            "parent_approves_before_play": s.parent_approves_before_play,
            "retention_days": s.retention_days,
        },
        "members": r.members.iter().map(|m| json!({
            "device_id": hex::encode(m.device_id.as_bytes()),
            "account_id": hex::encode(m.account_id.as_bytes()),
            "role": role_name(m.role),
            "status": status_name(m.status),
            "x25519_pub": hex::encode(m.x25519_pub),
            "ed25519_pub": hex::encode(m.ed25519_pub),
        })).collect::<Vec<_>>(),
    })
}

fn sign_in_js(roster: &Roster, signer: &DeviceKeys) -> SignedRoster {
    let request = json!({"signer": secret_hex(signer), "roster": roster_json(roster)});
    let bytes = run_tool("sign-roster", &request);
    let signed = SignedRoster::decode(&bytes).expect("a JavaScript-signed roster decodes");
    // Canonical encoding and deterministic Ed25519: exactly this crate's bytes.
    assert_eq!(
        bytes,
        SignedRoster::sign(roster, signer).unwrap().encode(),
        "JavaScript and Rust sign different bytes"
    );
    signed
}

#[test]
fn rosters_signed_in_javascript_verify_here() {
    if !node_available() {
        return;
    }
    let mut rng = fresh_rng();
    let owner = device(&mut rng);
    let guardian = device(&mut rng);
    let toy = device(&mut rng);
    let relative = device(&mut rng);
    let account = |rng: &mut ChaCha20Rng| AccountId(random_id(rng));
    let member = |keys: &DeviceKeys, account: AccountId, role: Role| {
        Member::new(&keys.public(), account, role, MemberStatus::Approved)
    };

    let genesis = Roster::genesis(
        HouseholdId(random_id(&mut rng)),
        HouseholdSettings {
            quiet_hours: Some(QuietHours {
                start_minute: 20 * 60,
                end_minute: 6 * 60 + 30,
            }),
            timezone_offset_minutes: -300,
            parent_approves_before_play: false,
            retention_days: 365,
        },
        vec![
            member(&toy, account(&mut rng), Role::Toy),
            member(&owner, account(&mut rng), Role::Owner),
            member(&guardian, account(&mut rng), Role::Guardian),
        ],
    );
    let v1 = sign_in_js(&genesis, &owner);
    assert_eq!(v1.verify_genesis().unwrap(), &genesis_sorted(&genesis));

    let mut next = v1.unverified_roster().next_version();
    next.members
        .push(member(&relative, account(&mut rng), Role::Family));
    next.settings.quiet_hours = None;
    next.settings.timezone_offset_minutes = 840;
    let v2 = sign_in_js(&next, &owner);
    v2.verify_successor(&v1).expect("owner-signed successor");
    v2.verify_signed_by(&owner.public().ed25519_pub).unwrap();

    let mut blocked = v2.unverified_roster().next_version();
    for m in &mut blocked.members {
        if m.device_id == relative.device_id() {
            m.status = MemberStatus::Blocked;
        }
    }
    let by_owner = sign_in_js(&blocked, &owner);
    by_owner.verify_successor(&v2).expect("owner-signed v3");
    let by_guardian = sign_in_js(&blocked, &guardian);
    assert_eq!(
        by_guardian.verify_successor(&v2),
        Err(RosterError::SignerNotOwner)
    );
}

/// The roster as decoding returns it: members in device id order.
fn genesis_sorted(roster: &Roster) -> Roster {
    let mut sorted = roster.clone();
    sorted.members.sort_by_key(|m| m.device_id);
    sorted
}

#[test]
fn recovery_signed_rosters_and_certificates_made_in_javascript_verify_here() {
    if !node_available() {
        return;
    }
    let mut rng = fresh_rng();
    let owner = device(&mut rng);
    let new_phone = device(&mut rng);
    let mum = AccountId(random_id(&mut rng));
    let code = RecoveryCode::generate(&mut rng);
    let key = RecoveryKey::from_code(&code);
    let genesis = Roster::genesis(
        HouseholdId(random_id(&mut rng)),
        HouseholdSettings {
            quiet_hours: None,
            timezone_offset_minutes: 0,
            parent_approves_before_play: true,
            retention_days: 30,
        },
        vec![
            Member::new(&owner.public(), mum, Role::Owner, MemberStatus::Approved),
            key.member(mum),
        ],
    );
    let v1 = sign_in_js(&genesis, &owner);
    v1.verify_genesis().unwrap();

    let mut next = v1.unverified_roster().next_version();
    next.members.push(Member::new(
        &new_phone.public(),
        mum,
        Role::Owner,
        MemberStatus::Approved,
    ));
    let request =
        json!({"recovery_code": hex::encode(code.as_bytes()), "roster": roster_json(&next)});
    let bytes = run_tool("sign-roster", &request);
    assert_eq!(
        bytes,
        SignedRoster::sign_with_recovery(&next, &key)
            .unwrap()
            .encode(),
        "JavaScript and Rust sign different bytes with the recovery key"
    );
    let v2 = SignedRoster::decode(&bytes).unwrap();
    assert_eq!(v2.signer(), key.device_id());
    v2.verify_successor(&v1).expect("recovery-signed successor");

    let request = json!({
        "certifier": secret_hex(&owner),
        "account_id": hex::encode(mum.as_bytes()),
        "identity": hex::encode(new_phone.public().encode()),
    });
    let signature: [u8; 64] = run_tool("sign-certificate", &request).try_into().unwrap();
    assert_eq!(
        signature,
        sign_certificate(&owner, mum, &new_phone.public())
    );
    assert!(verify_certificate(
        &owner.public(),
        mum,
        &new_phone.public(),
        &signature
    ));
    assert!(!verify_certificate(
        &owner.public(),
        AccountId([0; 16]),
        &new_phone.public(),
        &signature
    ));
}
