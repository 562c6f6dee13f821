//! The toy's state survives restarts, privately, and is never silently replaced.

use pawpost_toy_sim::{SimConfig, SimToy, STATE_FILE};

use crate::support::*;

#[tokio::test]
async fn a_restarted_toy_keeps_its_device_id_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().join("toy");
    let server = nowhere().await;
    let toy = SimToy::start(config(&server, &state_dir)).await.unwrap();
    let first = toy.status();
    assert!(first.first_start);
    assert_eq!(first.household_id, None);
    assert_eq!(first.roster_version, 0);
    assert!(!first.connected);
    assert_eq!(first.fingerprint.split(' ').count(), 6);
    // Saved before `start` returned, so a crash right away keeps the same toy.
    assert!(state_dir.join(STATE_FILE).is_file());
    toy.stop().await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state_dir), 0o700);
        assert_eq!(mode(&state_dir.join(STATE_FILE)), 0o600);
    }

    let toy = SimToy::start(config(&server, &state_dir)).await.unwrap();
    let second = toy.status();
    assert!(!second.first_start);
    assert_eq!(second.device_id, first.device_id);
    assert_eq!(second.fingerprint, first.fingerprint);
    drop(toy);
}

#[tokio::test]
async fn an_unreadable_state_is_refused_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(STATE_FILE), b"not a toy").unwrap();
    let error = SimToy::start(config(&nowhere().await, dir.path()))
        .await
        .err()
        .expect("refused");
    assert!(error.to_string().contains("reset the toy"), "{error}");
    assert_eq!(
        std::fs::read(dir.path().join(STATE_FILE)).unwrap(),
        b"not a toy"
    );
}

#[tokio::test]
async fn bad_server_addresses_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for server in ["127.0.0.1:8080", "ftp://pawpost.example"] {
        let config = SimConfig {
            server: server.into(),
            state_dir: dir.path().to_path_buf(),
            speak_wav: false,
            language: pawpost_toy_sim::Language::default(),
            trust_cert: None,
        };
        assert!(SimToy::start(config).await.is_err(), "{server}");
    }
    let missing = dir.path().join("missing.pem");
    let config = SimConfig {
        server: "https://pawpost.example".into(),
        state_dir: dir.path().to_path_buf(),
        speak_wav: false,
        language: pawpost_toy_sim::Language::default(),
        trust_cert: Some(missing.clone()),
    };
    let error = SimToy::start(config).await.err().expect("refused");
    assert!(
        error.to_string().contains(&missing.display().to_string()),
        "{error}"
    );
}
