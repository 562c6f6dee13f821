//! The PostgreSQL store against a real server. Each test works in a schema of its own,
//! named at random and dropped at the end, so runs never see each other's rows.
//! Without `PAWPOST_TEST_DATABASE_URL` these tests are recorded as skipped (and fail in
//! CI).
use pawpost_domain::{
    Account, AccountId, DeviceId, Email, Household, HouseholdId, Invitation, InvitationId, Message,
    PairingClaim, PairingClaimant, PairingCreated, PendingPairing, Role,
};
use pawpost_store::{MetadataStore, Redemption, StoreError};
use pawpost_store_postgres::PostgresStore;
use sqlx::{Connection, PgConnection};
use std::future::Future;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;
use uuid::Uuid;

const URL_VAR: &str = "PAWPOST_TEST_DATABASE_URL";
/// Rounds of the race tests: one round may not overlap, several nearly always do.
const RACE_ROUNDS: usize = 20;

/// The server to test against (e.g. postgres://postgres@127.0.0.1:5432/test).
fn database_url() -> Option<String> {
    pawpost_testkit::require("PostgreSQL", URL_VAR)
}

/// Runs `body` with a fresh schema name and drops that schema afterwards, even when
/// `body` panics (it runs as its own task so that its panic can be caught and
/// re-raised after the cleanup).
async fn in_fresh_schema<F, Fut>(url: String, body: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let schema = format!("pawpost_test_{}", Uuid::new_v4().simple());
    let outcome = tokio::spawn(body(url.clone(), schema.clone())).await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("test task did not finish: {e}"),
    }
}

fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(u32::from(t.millisecond()) * 1_000_000)
        .unwrap()
}

fn account(email: &str) -> Account {
    Account {
        id: AccountId::new(),
        email: Email::parse(email).unwrap(),
        display_name: email.into(),
        password_hash: "$argon2id$not-a-real-hash".into(),
        created_at: now(),
        locked: false,
        email_verified_at: None,
    }
}

async fn household_of(store: &PostgresStore, owner: &Account) -> Household {
    store.create_account(owner).await.unwrap();
    let home = Household {
        id: HouseholdId::new(),
        name: "Home".into(),
        created_at: now(),
    };
    store.create_household(&home, owner.id).await.unwrap();
    home
}

fn invitation(home: &Household, by: AccountId, token_hash: [u8; 32]) -> Invitation {
    Invitation {
        id: InvitationId::new(),
        household_id: home.id,
        token_hash,
        role: Role::Family,
        created_by: by,
        created_at: now(),
        expires_at: now() + Duration::days(7),
    }
}

#[tokio::test]
async fn postgres_passes_the_metadata_store_suite() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
        pawpost_store::testsuite::metadata_store(&store).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_strangers_racing_for_one_invitation_exactly_one_joins() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        let mum = account("race-mum@example.org");
        let home = household_of(&store, &mum).await;
        for round in 0..RACE_ROUNDS {
            let token = [u8::try_from(round).expect("fewer rounds than 256"); 32];
            store
                .create_invitation(&invitation(&home, mum.id, token))
                .await
                .unwrap();
            let start = Arc::new(Barrier::new(2));
            let mut racers = Vec::new();
            for who in ["a", "b"] {
                let racer = account(&format!("racer-{round}-{who}@example.org"));
                store.create_account(&racer).await.unwrap();
                let (store, start) = (store.clone(), start.clone());
                racers.push(tokio::spawn(async move {
                    start.wait().await;
                    store.redeem_invitation(&token, racer.id, now()).await
                }));
            }
            let mut joined = 0;
            for racer in racers {
                match racer.await.unwrap().unwrap() {
                    Redemption::Joined(_) => joined += 1,
                    Redemption::Spent => {}
                    other => panic!("round {round}: unexpected {other:?}"),
                }
            }
            assert_eq!(joined, 1, "round {round}: a single-use invitation");
        }
        assert_eq!(
            store.members(home.id).await.unwrap().len(),
            1 + RACE_ROUNDS,
            "the owner and one winner per invitation"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_person_redeeming_two_invitations_at_once_joins_once_and_spends_one() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        let mum = account("twice-mum@example.org");
        let home = household_of(&store, &mum).await;
        for round in 0..RACE_ROUNDS {
            let gran = account(&format!("twice-gran-{round}@example.org"));
            store.create_account(&gran).await.unwrap();
            let first = u8::try_from(2 * round).expect("fewer rounds than 128");
            let tokens = [[first; 32], [first + 1; 32]];
            for token in tokens {
                store
                    .create_invitation(&invitation(&home, mum.id, token))
                    .await
                    .unwrap();
            }
            let start = Arc::new(Barrier::new(2));
            let racers: Vec<_> = tokens
                .into_iter()
                .map(|token| {
                    let (store, start) = (store.clone(), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        let got = store.redeem_invitation(&token, gran.id, now()).await;
                        (token, got.unwrap())
                    })
                })
                .collect();
            let mut joined = 0;
            let mut unspent = Vec::new();
            for racer in racers {
                match racer.await.unwrap() {
                    (_, Redemption::Joined(_)) => joined += 1,
                    (token, Redemption::AlreadyMember(h)) if h == home.id => unspent.push(token),
                    (_, other) => panic!("round {round}: unexpected {other:?}"),
                }
            }
            assert_eq!((joined, unspent.len()), (1, 1), "round {round}");
            let cousin = account(&format!("twice-cousin-{round}@example.org"));
            store.create_account(&cousin).await.unwrap();
            assert!(
                matches!(
                    store
                        .redeem_invitation(&unspent[0], cousin.id, now())
                        .await
                        .unwrap(),
                    Redemption::Joined(_)
                ),
                "round {round}: the losing invitation stays usable"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn reopening_keeps_the_data_and_applies_no_migration_twice() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
        let mum = account("reopen-mum@example.org");
        let home = household_of(&store, &mum).await;
        let applied = migrations(&store).await;
        assert!(!applied.is_empty());
        store.pool().close().await;

        let reopened = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
        assert_eq!(migrations(&reopened).await, applied, "nothing re-applied");
        assert_eq!(reopened.household(home.id).await.unwrap().unwrap(), home);
        assert_eq!(reopened.account_by_id(mum.id).await.unwrap().unwrap(), mum);

        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables \
             WHERE table_schema = $1 AND table_name IN ('accounts', '_sqlx_migrations')",
        )
        .bind(&schema)
        .fetch_one(reopened.pool())
        .await
        .unwrap();
        assert_eq!(tables, 2, "tables and history live in the chosen schema");
    })
    .await;
}

/// (version, success, checksum, installed_on) of every applied migration.
async fn migrations(store: &PostgresStore) -> Vec<(i64, bool, Vec<u8>, OffsetDateTime)> {
    sqlx::query_as(
        "SELECT version, success, checksum, installed_on FROM _sqlx_migrations ORDER BY version",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn each_schema_is_a_store_of_its_own() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, first| async move {
        let rose = account("schema-rose@example.org");
        PostgresStore::open_in_schema(&url, &first)
            .await
            .unwrap()
            .create_account(&rose)
            .await
            .unwrap();
        in_fresh_schema(url, move |url, second| async move {
            let other = PostgresStore::open_in_schema(&url, &second).await.unwrap();
            assert!(other.account_by_id(rose.id).await.unwrap().is_none());
            other.create_account(&rose).await.unwrap();
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn times_come_back_in_whole_milliseconds_and_out_of_range_sizes_are_refused() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
        let mut mum = account("precise-mum@example.org");
        mum.created_at =
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        let home = household_of(&store, &mum).await;
        let stored = store.account_by_id(mum.id).await.unwrap().unwrap();
        assert_eq!(
            stored.created_at.unix_timestamp_nanos(),
            1_700_000_000_123_000_000,
            "as SQLite keeps it"
        );

        let huge = Message {
            id: Uuid::now_v7(),
            household_id: home.id,
            sender_device: DeviceId(Uuid::new_v4()),
            sender_account: Some(mum.id),
            media_type: 1,
            duration_ms: u32::MAX,
            envelope_len: u64::MAX,
            created_at: now(),
            blob_key: "envelopes/huge".into(),
        };
        assert!(matches!(
            store.insert_message(&huge, &[]).await,
            Err(StoreError::Backend(_))
        ));
        let largest = Message {
            id: Uuid::now_v7(),
            envelope_len: i64::MAX as u64,
            ..huge
        };
        store.insert_message(&largest, &[]).await.unwrap();
        assert_eq!(store.message(largest.id).await.unwrap().unwrap(), largest);
    })
    .await;
}

#[tokio::test]
async fn a_bad_schema_name_is_refused_before_connecting() {
    // No server is needed: the name is checked first, so this runs everywhere.
    let refused = PostgresStore::open_in_schema(
        "postgres://nobody@127.0.0.1:1/none",
        "x\"; DROP SCHEMA public CASCADE; --",
    )
    .await;
    match refused {
        Err(StoreError::Backend(message)) => assert!(message.contains("refused"), "{message}"),
        Err(other) => panic!("unexpected error {other:?}"),
        Ok(_) => panic!("an unsafe schema name was accepted"),
    }
}

#[tokio::test]
async fn a_password_in_the_url_never_appears_in_an_error() {
    let refused =
        PostgresStore::open("postgres://pawpost:hunter2-secret@127.0.0.1:1/x?sslmode=nonsense")
            .await;
    match refused {
        Err(e) => assert!(!e.to_string().contains("hunter2-secret"), "{e}"),
        Ok(_) => panic!("a bad URL was accepted"),
    }
}

fn pending_pairing(code: &str) -> PendingPairing {
    PendingPairing {
        code: code.into(),
        device_id: DeviceId(Uuid::new_v4()),
        identity: vec![7; 81],
        created_at: now(),
        expires_at: now() + Duration::minutes(10),
        claim: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_toys_drawing_the_same_code_at_once_get_one_pairing() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        for round in 0..RACE_ROUNDS {
            let code = format!("{round:06}");
            let start = Arc::new(Barrier::new(2));
            let toys: Vec<_> = (0..2)
                .map(|_| {
                    let (store, start) = (store.clone(), start.clone());
                    let pairing = pending_pairing(&code);
                    tokio::spawn(async move {
                        start.wait().await;
                        store.create_pairing(&pairing).await
                    })
                })
                .collect();
            let mut created = 0;
            for toy in toys {
                match toy.await.unwrap() {
                    Ok(PairingCreated::Created) => created += 1,
                    Ok(PairingCreated::CodeTaken) => {}
                    other => panic!("round {round}: {other:?}"),
                }
            }
            assert_eq!(created, 1, "round {round}: one live pairing per code");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_households_claiming_one_code_at_once_spend_it_for_both() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        for round in 0..RACE_ROUNDS {
            let code = format!("{:06}", 500_000 + round);
            let toy = pending_pairing(&code);
            store.create_pairing(&toy).await.unwrap();
            let start = Arc::new(Barrier::new(2));
            let claims: Vec<_> = (0..2)
                .map(|n| {
                    let claimant = PairingClaimant {
                        household_id: HouseholdId::new(),
                        account_id: AccountId(Uuid::new_v4()),
                        confirmation: format!("{n:03}"),
                        confirm_by: now() + Duration::minutes(2),
                    };
                    let (store, start, code) = (store.clone(), start.clone(), code.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        store.claim_pairing(&code, &claimant, now()).await
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for claim in claims {
                outcomes.push(match claim.await.unwrap().unwrap() {
                    PairingClaim::Claimed(_) => "claimed",
                    PairingClaim::Contested(_) => "contested",
                    PairingClaim::NoMatch => "no match",
                });
            }
            outcomes.sort_unstable();
            assert_eq!(outcomes, ["claimed", "contested"], "round {round}");
            assert_eq!(
                store.pairing_of_device(toy.device_id, now()).await.unwrap(),
                None,
                "round {round}: the code is spent"
            );
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_device_id_asked_for_with_two_sets_of_keys_at_once_pairs_one() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url, |url, schema| async move {
        let store = Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        for round in 0..RACE_ROUNDS {
            let device = DeviceId(Uuid::new_v4());
            let start = Arc::new(Barrier::new(2));
            let asks: Vec<_> = (0..2u8)
                .map(|n| {
                    let pairing = PendingPairing {
                        device_id: device,
                        identity: vec![n; 81],
                        ..pending_pairing(&format!("{:06}", 100_000 + 2 * round + usize::from(n)))
                    };
                    let (store, start) = (store.clone(), start.clone());
                    tokio::spawn(async move {
                        start.wait().await;
                        store.create_pairing(&pairing).await
                    })
                })
                .collect();
            let mut outcomes = Vec::new();
            for ask in asks {
                outcomes.push(ask.await.unwrap().unwrap());
            }
            assert!(
                outcomes.contains(&PairingCreated::Created)
                    && outcomes.contains(&PairingCreated::DeviceTaken),
                "round {round}: {outcomes:?}"
            );
        }
    })
    .await;
}

/// Waits for the next note, failing the test after `NOTE_WAIT` rather than hanging.
async fn next_note(listener: &mut Box<dyn pawpost_store::PeerListener>) -> String {
    const NOTE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);
    tokio::time::timeout(NOTE_WAIT, listener.next())
        .await
        .expect("a note arrives")
        .unwrap()
        .expect("the connection stays up")
}

#[tokio::test]
async fn processes_on_one_schema_hear_each_others_notes_and_no_other_schemas() {
    let Some(url) = database_url() else {
        return;
    };
    in_fresh_schema(url.clone(), |url, schema| async move {
        in_fresh_schema(url.clone(), |url, other_schema| async move {
            // Two "processes" on one schema, and a stranger on another.
            let a = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
            let b = PostgresStore::open_in_schema(&url, &schema).await.unwrap();
            let stranger = PostgresStore::open_in_schema(&url, &other_schema)
                .await
                .unwrap();
            let a_peers = a.peers().expect("PostgreSQL has peers");
            let b_peers = b.peers().expect("PostgreSQL has peers");
            let stranger_peers = stranger.peers().expect("PostgreSQL has peers");
            let mut at_a = a_peers.listen().await.unwrap();
            let mut at_b = b_peers.listen().await.unwrap();
            let mut at_stranger = stranger_peers.listen().await.unwrap();

            a_peers.announce("first from a").await.unwrap();
            b_peers.announce("then from b").await.unwrap();
            assert_eq!(next_note(&mut at_b).await, "first from a");
            assert_eq!(next_note(&mut at_b).await, "then from b");
            assert_eq!(next_note(&mut at_a).await, "first from a");
            assert_eq!(next_note(&mut at_a).await, "then from b");

            stranger_peers.announce("only for my schema").await.unwrap();
            assert_eq!(next_note(&mut at_stranger).await, "only for my schema");
            a_peers.announce("marker").await.unwrap();
            // Notes arrive in order, so if the stranger's note had crossed over it
            // would come before the marker.
            assert_eq!(next_note(&mut at_b).await, "marker");

            let too_long = "x".repeat(pawpost_store::MAX_NOTE_BYTES + 1);
            assert!(matches!(
                a_peers.announce(&too_long).await,
                Err(StoreError::Backend(_))
            ));
        })
        .await;
    })
    .await;
}

/// Polls `work` a few times (more for larger `seed`), letting the runtime's I/O run in
/// between, then drops it wherever it stands, as a request whose client hung up is.
async fn give_up_after(work: impl Future<Output = impl Sized>, seed: u64) {
    /// Polls at most; past the first few, most writes have finished.
    const MAX_POLLS: u64 = 8;
    /// Yields between polls: each lets a reply or two arrive.
    const MAX_YIELDS: u64 = 40;
    let mut work = std::pin::pin!(work);
    let polls = 1 + seed % MAX_POLLS;
    let yields = (seed / MAX_POLLS) % MAX_YIELDS;
    for _ in 0..polls {
        if futures_util::poll!(work.as_mut()).is_ready() {
            return;
        }
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
    }
}

/// Takes every connection of the pool at once and checks that none is inside a
/// transaction: each takes a transaction id, which another connection must then see
/// committed (inside a transaction left open, it stays "in progress").
async fn assert_no_connection_inside_a_transaction(
    store: &PostgresStore,
    other: &mut PgConnection,
) {
    let mut held = Vec::new();
    for _ in 0..pawpost_store_postgres::MAX_CONNECTIONS {
        let mut conn = store.pool().acquire().await.unwrap();
        let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        let status: String = sqlx::query_scalar("SELECT txid_status($1)")
            .bind(xid)
            .fetch_one(&mut *other)
            .await
            .unwrap();
        assert_eq!(
            status, "committed",
            "a pooled connection was left inside a transaction"
        );
        held.push(conn);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_give_up_mid_transaction_never_leave_a_connection_inside_one() {
    let Some(url) = database_url() else {
        return;
    };
    /// Writes given up at every stage, from before `BEGIN` is answered to after.
    const ABANDONED: u64 = 8 * 40 * 2;
    /// Writes afterwards, enough to pass through every pooled connection.
    const AFTERWARDS: usize = 3 * pawpost_store_postgres::MAX_CONNECTIONS as usize;
    in_fresh_schema(url, |url, schema| async move {
        let store = Arc::new(PostgresStore::open_in_schema(&url, &schema).await.unwrap());
        let owner = account("impatient@example.org");
        store.create_account(&owner).await.unwrap();
        let mut other = PgConnection::connect(&url).await.unwrap();
        for i in 0..ABANDONED {
            let home = Household {
                id: HouseholdId::new(),
                name: format!("given up {i}"),
                created_at: now(),
            };
            give_up_after(store.create_household(&home, owner.id), i).await;
            assert_no_connection_inside_a_transaction(&store, &mut other).await;
        }
        // Every later write is committed: another connection sees each one. A connection
        // left inside a transaction would keep single-statement writes to itself, to be
        // lost when it closes (or rolled back with the next failed transaction).
        let mut names = Vec::new();
        for i in 0..AFTERWARDS {
            let kept = account(&format!("kept{i}@example.org"));
            store.create_account(&kept).await.unwrap();
            names.push(kept.email.as_str().to_owned());
        }
        let seen: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT email FROM \"{schema}\".accounts WHERE email LIKE 'kept%'"
        ))
        .fetch_all(&mut other)
        .await
        .unwrap();
        assert_eq!(seen.len(), names.len(), "committed: {seen:?}");
    })
    .await;
}
