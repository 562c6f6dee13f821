//! `pawpost toy`'s command line: commands in, one line per thing the toy does out.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pawpost_toy::Frame;
use pawpost_toy_sim::run_cli;
use tokio::io::{AsyncWriteExt, BufReader};

use crate::support::*;

/// Output shared with the test while the command line runs.
#[derive(Clone, Default)]
struct Screen(Arc<Mutex<Vec<u8>>>);

impl Write for Screen {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Screen {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Waits (boundedly) until a line containing `needle` was printed.
    async fn shows(&self, needle: &str) {
        let deadline = tokio::time::Instant::now() + STEP;
        while !self.text().contains(needle) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{needle:?} never printed; screen:\n{}",
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test]
async fn commands_print_what_the_toy_says_and_does() {
    let dir = tempfile::tempdir().unwrap();
    let input = b"help\nstatus\npress\ndance\nrecord /nonexistent/voice.ogg\n\nquit\npress\n";
    let screen = Screen::default();
    run_cli(
        config(&nowhere().await, dir.path()),
        &input[..],
        screen.clone(),
    )
    .await
    .unwrap();
    let text = screen.text();
    for expected in [
        "new toy, state saved in",
        "device id: ",
        "fingerprint: ",
        "commands:",
        "household: none (not paired)",
        "connection: down (ws://127.0.0.1:",
        "toy says: I don't have a family yet",
        "unknown command \"dance\"; try help",
        "cannot read /nonexistent/voice.ogg",
        "toy switched off",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    // Nothing after `quit` runs.
    assert_eq!(
        text.matches("I don't have a family yet").count(),
        1,
        "{text}"
    );

    // The same toy comes back.
    let screen2 = Screen::default();
    run_cli(
        config(&nowhere().await, dir.path()),
        &b"quit\n"[..],
        screen2.clone(),
    )
    .await
    .unwrap();
    let device_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("device id: "))
            .unwrap()
            .to_string()
    };
    assert_eq!(device_line(&screen2.text()), device_line(&text));
    assert!(screen2.text().contains("toy restored from"));
}

#[tokio::test]
async fn pairing_from_the_command_line_prints_the_spoken_code() {
    let server = FakeServer::bind().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut keyboard, input) = tokio::io::duplex(1024);
    let screen = Screen::default();
    let cli = tokio::spawn(run_cli(
        config(&server.base, dir.path()),
        BufReader::new(input),
        screen.clone(),
    ));
    let mut conn = server.accept().await;
    screen.shows("connected").await;
    conn.challenge().await;
    keyboard.write_all(b"long-press\n").await.unwrap();
    let request = conn.recv().await;
    assert!(matches!(
        Frame::decode(&request).unwrap(),
        Frame::PairRequest { .. }
    ));
    conn.send(Frame::PairCode {
        code: pawpost_toy::PairingCode::from_number(CODE).unwrap(),
        expires_in_s: 600,
    })
    .await;
    screen.shows("toy says: 4 8 2 9 1 3").await;
    screen.shows("pairing code: 482913").await;
    keyboard.write_all(b"quit\n").await.unwrap();
    tokio::time::timeout(STEP, cli)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(screen.text().contains("toy switched off"));
}

#[tokio::test]
async fn holding_the_paw_ten_seconds_resets_the_toy_and_a_shorter_hold_is_a_long_press() {
    let dir = tempfile::tempdir().unwrap();
    let screen = Screen::default();
    run_cli(
        config(&nowhere().await, dir.path()),
        &b"hold 3\nhold 10\nhold\nquit\n"[..],
        screen.clone(),
    )
    .await
    .unwrap();
    let text = screen.text();
    for expected in [
        "toy says: let's find your family",
        "toy says: I've forgotten everything. I'm ready to be paired again.",
        "hold needs seconds, e.g. hold 10 for a factory reset",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let device_line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("device id: "))
            .unwrap()
            .to_string()
    };

    // What was saved is a new toy: another device id, no family.
    let screen2 = Screen::default();
    run_cli(
        config(&nowhere().await, dir.path()),
        &b"status\nquit\n"[..],
        screen2.clone(),
    )
    .await
    .unwrap();
    let text2 = screen2.text();
    assert!(text2.contains("toy restored from"), "{text2}");
    assert_ne!(device_line(&text2), device_line(&text));
    assert!(text2.contains("household: none (not paired)"), "{text2}");
}
