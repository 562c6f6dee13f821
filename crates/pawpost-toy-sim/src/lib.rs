//! The pawpost toy on a computer: runs [`pawpost_toy::Toy`] over a real WebSocket to a
//! pawpost server, with files standing in for the speaker, the microphone and the flash.
//!
//! - [`SimToy::start`] loads the toy from `state_dir/toy-state.bin` (or makes a new one),
//!   connects to `/api/v1/toy/ws` and keeps reconnecting, waiting longer after each failure
//!   in a row (the toy's schedule, `pawpost_toy::reconnect_wait_ms`: from about a second up
//!   to five minutes, with jitter; a failure is a connection that could not be opened or
//!   was lost, or keys the server refused); the server does not have to be up yet.
//! - [`SimToy::press`], [`SimToy::long_press`], [`SimToy::hold`] and [`SimToy::record`] are
//!   the paw button and the microphone; what the toy does comes back as [`SimEvent`]s.
//! - [`run_cli`] is the `pawpost toy` command: one command per input line, one line of
//!   output per thing the toy says or does.
//!
//! Files under `state_dir` (directories 0700, files 0600, since they hold the toy's secret
//! keys and decrypted voices): `toy-state.bin`, `played/<message id>.ogg`, and with
//! [`SimConfig::speak_wav`] `spoken/NNN.wav` (made with `espeak-ng` when it is installed).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cli;
mod language;
mod link;
mod serial;
mod shell;
mod speech;
mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use eyre::{bail, eyre, WrapErr};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use cli::{parse_command, run_cli, run_cli_on, CliCommand};
pub use language::{prompt_text_in, Language};
pub use link::{tls_config, INITIAL_BACKOFF, MAX_BACKOFF};
pub use serial::SerialLink;
pub use speech::prompt_text;
pub use store::STATE_FILE;

/// The toy endpoint, below the server's base address.
pub const TOY_WS_PATH: &str = "/api/v1/toy/ws";
/// The server's path for toy protocol version 3, the encrypted channel.
pub const TOY_CHANNEL_PATH: &str = "/api/v1/toy/channel";

/// Events kept for a slow subscriber before it starts missing them.
const EVENT_BUFFER: usize = 1024;

/// How long [`SimToy::stop`] waits for the toy to close its connection.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the toy connects and where it keeps its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The server's base address, e.g. `http://127.0.0.1:8080` (`http`/`https` become
    /// `ws`/`wss`; `ws://` and `wss://` addresses are taken as they are).
    pub server: String,
    /// The toy's storage: state (keys, roster, queue), played and spoken audio.
    pub state_dir: PathBuf,
    /// Also write each spoken prompt as a WAV file (needs `espeak-ng`; otherwise text only).
    pub speak_wav: bool,
    /// The language the toy speaks its prompts in (and the `espeak-ng` voice).
    pub language: Language,
    /// A PEM file of certificates to trust for a `https://`/`wss://` server besides the
    /// public certificate authorities: a self-signed server's certificate, or a private CA.
    pub trust_cert: Option<PathBuf>,
}

/// Something the toy did, in the order it did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimEvent {
    /// The WebSocket to the server is open.
    Connected,
    /// The WebSocket closed or failed, or the toy left the connection it paired on to
    /// authenticate on a new one; the toy reconnects by itself.
    Disconnected,
    /// The toy said this (a pairing code as digits separated by spaces).
    Spoke {
        /// What it said.
        text: String,
    },
    /// The server gave a pairing code, which the toy also speaks.
    PairingCode {
        /// The six digits, no spaces.
        code: String,
    },
    /// A parent entered the code: the toy speaks this number and waits for a press of
    /// its paw to confirm.
    ConfirmPairing {
        /// The three digits, no spaces.
        number: String,
    },
    /// The toy accepted its household's roster and belongs to it now.
    Paired {
        /// The household.
        household_id: Uuid,
    },
    /// The heart light changed.
    Heart {
        /// `off`, `on` (recording or pairing) or `blink` (a message is waiting).
        state: String,
    },
    /// A verified message was played: its Ogg Opus file is at `ogg_path`.
    Played {
        /// The message.
        message_id: Uuid,
        /// Where the audio was written.
        ogg_path: PathBuf,
    },
    /// The microphone is on (only ever after a paw press).
    RecordingStarted,
    /// The server acknowledged the child's recording (`UploadAck`).
    Uploaded {
        /// The recording's message id.
        message_id: Uuid,
    },
    /// The toy waits before connecting again, and says why.
    Waiting {
        /// Failures in a row, this one included (1 for the first).
        attempt: u32,
        /// The wait from the toy's schedule; [`SimToy::start_with_backoff_scale`] shortens
        /// the real wait, not this.
        wait: Duration,
        /// The server refused the toy's keys; otherwise it could not be reached.
        refused: bool,
    },
    /// Something was refused or went wrong, for the log.
    Report {
        /// What happened.
        text: String,
    },
}

/// A snapshot of the toy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimStatus {
    /// The toy's device id, until a factory reset gives it a new one.
    pub device_id: Uuid,
    /// The safety number of the toy's current keys, as a parent's app shows it.
    pub fingerprint: String,
    /// The household, once paired.
    pub household_id: Option<Uuid>,
    /// The roster version the toy holds; 0 before pairing.
    pub roster_version: u64,
    /// Messages waiting to be played or approved.
    pub queued: usize,
    /// The heart light: `off`, `on` or `blink`.
    pub heart: String,
    /// Whether the WebSocket is open.
    pub connected: bool,
    /// The toy was made on this start (no saved state was found).
    pub first_start: bool,
    /// The address the toy connects to.
    pub ws_url: String,
}

/// What the handle asks the toy's task to do.
#[derive(Debug)]
pub(crate) enum Command {
    Press { long: bool },
    Hold { ms: u64 },
    Record(Vec<u8>),
    Stop,
}

/// A running toy. Dropping it stops the toy at once; [`SimToy::stop`] closes the connection
/// first.
pub struct SimToy {
    commands: mpsc::UnboundedSender<Command>,
    events: broadcast::Sender<SimEvent>,
    status: Arc<Mutex<SimStatus>>,
    task: Option<JoinHandle<()>>,
}

impl SimToy {
    /// Loads or makes the toy, saves it, and starts its task. Connecting happens in the
    /// background, so this works while the server is still down.
    pub async fn start(config: SimConfig) -> eyre::Result<SimToy> {
        Self::start_with_backoff_scale(config, 1).await
    }

    /// For tests only: [`SimToy::start`], with every wait between connection attempts
    /// divided by `scale` (1 is real time), so that a story can watch minutes of the toy's
    /// back-off in a moment. The waits the toy announces ([`SimEvent::Waiting`]) are the
    /// schedule's, unscaled.
    pub async fn start_with_backoff_scale(config: SimConfig, scale: u32) -> eyre::Result<SimToy> {
        Self::start_with(config, scale, false).await
    }

    /// As [`SimToy::start`], the toy speaking toy protocol version 3: every frame inside
    /// the encrypted channel (`ChannelToy`), on the server's [`TOY_CHANNEL_PATH`]. A toy
    /// state saved by a version 2 toy is taken over (with a new channel key).
    pub async fn start_on_channel(config: SimConfig) -> eyre::Result<SimToy> {
        Self::start_with(config, 1, true).await
    }

    async fn start_with(config: SimConfig, scale: u32, channel: bool) -> eyre::Result<SimToy> {
        let mut ws_url = ws_url(&config.server)?;
        if channel {
            let base = ws_url.strip_suffix(TOY_WS_PATH).unwrap_or(&ws_url);
            ws_url = format!("{base}{TOY_CHANNEL_PATH}");
        }
        let tls = if ws_url.starts_with("wss://") {
            Some(link::tls_config(config.trust_cert.as_deref())?)
        } else {
            None
        };
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (commands, command_rx) = mpsc::unbounded_channel();
        let shell = shell::start(&config, ws_url, tls, scale, events.clone(), channel).await?;
        let status = shell.status_handle();
        let task = tokio::spawn(shell.run(command_rx));
        Ok(SimToy {
            commands,
            events,
            status,
            task: Some(task),
        })
    }

    /// A short paw press: plays the oldest waiting message, or else starts recording.
    pub fn press(&self) {
        self.send(Command::Press { long: false });
    }

    /// A long paw press: starts pairing on a toy without a household.
    pub fn long_press(&self) {
        self.send(Command::Press { long: true });
    }

    /// The paw held down for `duration` and released (the time is simulated: this returns
    /// at once). At least `pawpost_toy::FACTORY_RESET_HOLD_MS` (10 s) is a factory reset:
    /// the toy forgets its keys, household and messages, says so, and starts over as a new
    /// toy that can be paired again. A shorter hold is a long press.
    pub fn hold(&self, duration: Duration) {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        self.send(Command::Hold { ms });
    }

    /// Presses the paw to record (unless the microphone is already on) and finishes the
    /// recording with `ogg`, as if the microphone had recorded it. If the press does
    /// something else (plays a waiting message, or the toy is not paired), the bytes are
    /// dropped and a [`SimEvent::Report`] says so.
    pub fn record(&self, ogg: Vec<u8>) {
        self.send(Command::Record(ogg));
    }

    /// Events from now on. Subscribe before acting to be sure to see the events the action
    /// causes.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.events.subscribe()
    }

    /// Waits for the first event from now on that matches `pred`. For an event caused by an
    /// action, subscribe with [`SimToy::events`] before acting and use [`next_event`].
    pub async fn wait_for(
        &self,
        pred: impl Fn(&SimEvent) -> bool,
        timeout: Duration,
    ) -> eyre::Result<SimEvent> {
        let mut events = self.events();
        next_event(&mut events, pred, timeout).await
    }

    /// The toy as of its last event.
    pub fn status(&self) -> SimStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the toy after the commands already given, closing its connection.
    pub async fn stop(mut self) {
        self.send(Command::Stop);
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
        }
    }

    fn send(&self, command: Command) {
        // A stopped task drops the receiver; commands to a stopped toy do nothing.
        let _ = self.commands.send(command);
    }
}

impl Drop for SimToy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Waits for the next event on `events` that matches `pred`, for at most `timeout`.
/// Events that do not match are skipped.
pub async fn next_event(
    events: &mut broadcast::Receiver<SimEvent>,
    pred: impl Fn(&SimEvent) -> bool,
    timeout: Duration,
) -> eyre::Result<SimEvent> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => bail!("no matching toy event within {timeout:?}"),
            Ok(Ok(event)) if pred(&event) => return Ok(event),
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => {
                bail!("the toy stopped before a matching event")
            }
        }
    }
}

/// The toy's WebSocket address for a server base address: `http://host:port[/prefix]`
/// gives `ws://host:port[/prefix]/api/v1/toy/ws`, `https` gives `wss`. A `ws://` or `wss://`
/// address gets the path too, unless it already ends with it.
pub fn ws_url(server: &str) -> eyre::Result<String> {
    let server = server.trim();
    let (scheme, rest) = server.split_once("://").ok_or_else(|| {
        eyre!("server address {server:?} needs a scheme, e.g. http://127.0.0.1:8080")
    })?;
    let ws_scheme = match scheme.to_ascii_lowercase().as_str() {
        "http" | "ws" => "ws",
        "https" | "wss" => "wss",
        other => bail!(
            "server address {server:?}: unsupported scheme {other:?} (http, https, ws or wss)"
        ),
    };
    if rest.contains(['?', '#']) {
        bail!("server address {server:?}: no query or fragment, just scheme, host, port and path");
    }
    let base = rest.trim_end_matches('/');
    let host = base.split('/').next().unwrap_or_default();
    if host.is_empty() {
        bail!("server address {server:?} has no host");
    }
    if base.ends_with(TOY_WS_PATH) {
        return Ok(format!("{ws_scheme}://{base}"));
    }
    Ok(format!("{ws_scheme}://{base}{TOY_WS_PATH}"))
}

/// The same bytes, as the UUID the rest of pawpost uses.
pub(crate) fn uuid(bytes: [u8; 16]) -> Uuid {
    Uuid::from_bytes(bytes)
}

/// Reads a recording for [`SimToy::record`], with the file named in the error.
pub(crate) async fn read_recording(path: &std::path::Path) -> eyre::Result<Vec<u8>> {
    tokio::fs::read(path)
        .await
        .wrap_err_with(|| format!("cannot read {}", path.display()))
}

/// Gives a toy that has no `firmware.txt` yet (docs/UPDATES.md) the image a toy leaves the
/// factory with: `board`, `version`, `counter`, and the release public keys that may sign
/// its updates. A toy that already says what it runs keeps it (it may have installed an
/// update). Returns whether the file was written.
pub fn install_factory_firmware(
    state_dir: &std::path::Path,
    firmware: pawpost_toy::Firmware,
    release_keys: Vec<[u8; 32]>,
) -> std::io::Result<bool> {
    shell::install_factory(
        state_dir,
        &shell::SimFirmware {
            firmware,
            release_keys,
        },
    )
}

/// Whether `board` is a valid board name for a release (a-z, 0-9 and -, 1 to 32).
pub fn valid_board(board: &str) -> bool {
    pawpost_crypto::valid_board_name(board)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_addresses_become_the_toy_websocket() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080").unwrap(),
            "ws://127.0.0.1:8080/api/v1/toy/ws"
        );
        assert_eq!(
            ws_url("https://pawpost.example/").unwrap(),
            "wss://pawpost.example/api/v1/toy/ws"
        );
        assert_eq!(
            ws_url("HTTP://[::1]:8080/family/").unwrap(),
            "ws://[::1]:8080/family/api/v1/toy/ws"
        );
        assert_eq!(
            ws_url("ws://127.0.0.1:9/api/v1/toy/ws").unwrap(),
            "ws://127.0.0.1:9/api/v1/toy/ws"
        );
        assert_eq!(ws_url("wss://h").unwrap(), "wss://h/api/v1/toy/ws");
    }

    #[test]
    fn addresses_without_scheme_or_host_or_with_a_query_are_refused() {
        for bad in [
            "127.0.0.1:8080",
            "ftp://host",
            "http://",
            "http:///path",
            "http://host/?x=1",
            "http://host#top",
        ] {
            assert!(ws_url(bad).is_err(), "{bad}");
        }
    }
}
