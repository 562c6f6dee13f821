//! The shell around the toy's brain: feeds it events from the button, the clock and the
//! connection, and carries out its actions in order.

mod slots;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eyre::{eyre, WrapErr};
use pawpost_crypto::os_rng;
use pawpost_crypto::rand_core::CryptoRng;
use pawpost_toy::{
    Action, ApprovalRefusal, ChannelToy, Event, Frame, Heart, MessageId, Prompt, ReconnectReason,
    RecordingProblem, Report, StateBlob, StateError, Toy,
};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{interval, Instant, MissedTickBehavior};

use crate::language::{prompt_text_in, Language};
use crate::link::{Link, LinkEvent};
use crate::speech::Speaker;
use crate::store::Store;
use crate::{uuid, Command, SimConfig, SimEvent, SimStatus, STATE_FILE};
use slots::Slots;
pub(crate) use slots::{install_factory, SimFirmware};

/// The toy's timers (pairing window, recording limit, key rotation) need about one tick a
/// second.
const TICK: Duration = Duration::from_secs(1);

/// The toy's brain: speaking toy protocol version 2 in the clear, or behind the channel of
/// version 3 (`ChannelToy`). Reading it reads the toy inside.
enum Brain {
    Clear(Box<Toy>),
    Channel(Box<ChannelToy>),
}

impl std::ops::Deref for Brain {
    type Target = Toy;

    fn deref(&self) -> &Toy {
        match self {
            Brain::Clear(toy) => toy,
            Brain::Channel(toy) => toy.toy(),
        }
    }
}

impl Brain {
    fn first_start(channel: bool, rng: &mut impl CryptoRng) -> Self {
        if channel {
            Brain::Channel(Box::new(ChannelToy::first_start(rng)))
        } else {
            Brain::Clear(Box::new(Toy::first_start(rng)))
        }
    }

    /// A saved toy; a channel toy restores a version 2 state too (with a new channel key).
    fn restore(bytes: &[u8], channel: bool, rng: &mut impl CryptoRng) -> Result<Self, StateError> {
        if channel {
            ChannelToy::restore(bytes, rng).map(|t| Brain::Channel(Box::new(t)))
        } else {
            Toy::restore(bytes).map(|t| Brain::Clear(Box::new(t)))
        }
    }

    fn with_firmware(self, firmware: pawpost_toy::Firmware, keys: Vec<[u8; 32]>) -> Self {
        match self {
            Brain::Clear(toy) => Brain::Clear(Box::new(toy.with_firmware(firmware, keys))),
            Brain::Channel(toy) => Brain::Channel(Box::new(toy.with_firmware(firmware, keys))),
        }
    }

    fn handle(&mut self, event: Event<'_>, rng: &mut impl CryptoRng) -> Vec<Action> {
        match self {
            Brain::Clear(toy) => toy.handle(event, rng),
            Brain::Channel(toy) => toy.handle(event, rng),
        }
    }

    fn is_channel(&self) -> bool {
        matches!(self, Brain::Channel(_))
    }

    /// The upload the server acknowledged in `bytes` (a frame, or a record of the channel,
    /// whose `UploadAck` the channel toy remembers), given the one remembered before.
    fn upload_acked(&self, bytes: &[u8], before: Option<MessageId>) -> Option<MessageId> {
        match self {
            Brain::Clear(_) => match Frame::decode(bytes) {
                Ok(Frame::UploadAck { message_id }) => Some(message_id),
                _ => None,
            },
            Brain::Channel(toy) => toy.last_upload_ack().filter(|id| Some(*id) != before),
        }
    }

    fn last_upload_ack(&self) -> Option<MessageId> {
        match self {
            Brain::Clear(_) => None,
            Brain::Channel(toy) => toy.last_upload_ack(),
        }
    }
}

pub(crate) struct Shell<R> {
    toy: Brain,
    rng: R,
    store: Store,
    link: Link,
    speaker: Option<Speaker>,
    language: Language,
    events: broadcast::Sender<SimEvent>,
    status: Arc<Mutex<SimStatus>>,
    /// The toy's monotonic clock starts at zero here.
    started: Instant,
    /// The microphone is on: the toy asked for `StartRecording` and has not had its
    /// `RecordingFinished` yet.
    microphone_on: bool,
    /// The last connection failure reported, so that a server that stays down is reported
    /// once, not at every retry.
    last_failure: Option<String>,
    /// The image slots, and what the toy runs if its state folder says.
    slots: Slots,
    firmware: Option<SimFirmware>,
}

/// The toy could not save its state: it must not go on, since what it tells the server next
/// may depend on that state having been saved.
#[derive(Debug)]
struct SaveFailed(String);

/// Loads or makes the toy and powers it on, saving a new toy's keys before returning.
pub(crate) async fn start(
    config: &SimConfig,
    ws_url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    backoff_scale: u32,
    events: broadcast::Sender<SimEvent>,
    channel: bool,
) -> eyre::Result<Shell<impl CryptoRng + Send + 'static>> {
    let store = Store::open(&config.state_dir)
        .wrap_err_with(|| format!("cannot create {}", config.state_dir.display()))?;
    let mut rng = os_rng();
    let saved = store
        .load_state()
        .wrap_err_with(|| format!("cannot read {}", store.state_path().display()))?;
    let first_start = saved.is_none();
    let toy = match saved {
        // A toy whose state cannot be read is not silently replaced: that would throw
        // away its keys and its household.
        Some(bytes) => Brain::restore(&bytes, channel, &mut rng).map_err(|e| {
            eyre!(
                "{} is not a toy state this version can read ({e:?}); move it away to reset the toy",
                store.state_path().display()
            )
        })?,
        None => Brain::first_start(channel, &mut rng),
    };
    let slots = Slots::new(&config.state_dir);
    let firmware = slots
        .running()
        .wrap_err("cannot read what software the toy runs")?;
    let toy = match &firmware {
        Some(f) => toy.with_firmware(f.firmware.clone(), f.release_keys.clone()),
        None => toy,
    };
    // Audio of a delivery a crash cut short is no message the toy keeps.
    for name in store.audio_names().unwrap_or_default() {
        let kept = name
            .strip_suffix(".ogg")
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .is_some_and(|id| toy.keeps_audio_of(pawpost_toy::MessageId(id.into_bytes())));
        if !kept {
            store
                .discard_audio(&name)
                .wrap_err("cannot clean the toy's audio storage")?;
        }
    }
    let identity = toy.identity();
    let status = SimStatus {
        device_id: uuid(toy.device_id().0),
        fingerprint: identity.fingerprint().to_string(),
        household_id: toy.household_id().map(|h| uuid(h.0)),
        roster_version: toy.roster_version(),
        queued: toy.queued_messages(),
        heart: heart_text(Heart::Off).into(),
        connected: false,
        first_start,
        ws_url: ws_url.clone(),
    };
    let speaker = Speaker::new(config.speak_wav, store.spoken_dir(), config.language);
    let mut shell = Shell {
        toy,
        rng,
        store,
        link: Link::new(ws_url, tls, backoff_scale),
        speaker,
        language: config.language,
        events,
        status: Arc::new(Mutex::new(status)),
        started: Instant::now(),
        microphone_on: false,
        last_failure: None,
        slots,
        firmware,
    };
    let wall_clock_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok());
    let now_ms = shell.now_ms();
    shell
        .feed(Event::PowerOn {
            now_ms,
            wall_clock_unix_ms,
        })
        .await
        .map_err(|SaveFailed(e)| eyre!("cannot save the toy's state: {e}"))?;
    Ok(shell)
}

impl<R: CryptoRng + Send + 'static> Shell<R> {
    pub(crate) fn status_handle(&self) -> Arc<Mutex<SimStatus>> {
        self.status.clone()
    }

    /// Runs until told to stop, or until the toy's state can no longer be saved.
    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut ticker = interval(TICK);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let outcome: Result<(), SaveFailed> = async {
            loop {
                tokio::select! {
                    command = commands.recv() => match command {
                        None | Some(Command::Stop) => return Ok(()),
                        Some(Command::Press { long }) => {
                            self.feed(Event::PawPressed { long }).await?;
                        }
                        Some(Command::Hold { ms }) => self.feed(Event::PawHeld { ms }).await?,
                        Some(Command::Record(ogg)) => self.record(ogg).await?,
                    },
                    _ = ticker.tick() => {
                        let now_ms = self.now_ms();
                        self.feed(Event::Timer { now_ms }).await?;
                    }
                    event = self.link.next() => self.link_event(event).await?,
                }
                if let Some(reason) = self.link.take_lost() {
                    self.link_event(LinkEvent::Lost(Some(reason))).await?;
                }
                if let Some(wait) = self.link.take_wait() {
                    self.emit(SimEvent::Waiting {
                        attempt: wait.attempt,
                        wait: wait.wait,
                        refused: wait.refused,
                    });
                }
            }
        }
        .await;
        if let Err(SaveFailed(reason)) = outcome {
            self.emit(SimEvent::Report {
                text: format!("stopped: cannot save {STATE_FILE}: {reason}"),
            });
        }
        let was_up = self.link.is_up();
        self.link.close().await;
        if was_up {
            self.set_status(|s| s.connected = false);
            self.emit(SimEvent::Disconnected);
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    async fn link_event(&mut self, event: LinkEvent) -> Result<(), SaveFailed> {
        match event {
            LinkEvent::Connected => {
                self.last_failure = None;
                self.set_status(|s| s.connected = true);
                self.emit(SimEvent::Connected);
                self.feed(Event::Connected).await
            }
            LinkEvent::Frame(bytes) => {
                let acked_before = self.toy.last_upload_ack();
                let was_paired = self.toy.household_id().is_some();
                let actions = self.toy.handle(Event::FrameReceived(&bytes), &mut self.rng);
                let acked_upload = self.toy.upload_acked(&bytes, acked_before);
                // The toy says "sent" only for an acknowledgement of one of its uploads.
                let sent = actions
                    .iter()
                    .any(|a| matches!(a, Action::Speak(Prompt::Sent)));
                self.execute(actions).await?;
                if let (Some(message_id), true) = (acked_upload, sent) {
                    self.emit(SimEvent::Uploaded {
                        message_id: uuid(message_id.0),
                    });
                }
                if !was_paired && self.toy.household_id().is_some() && self.link.is_up() {
                    // The toy authenticates only in answer to a challenge, and the pairing
                    // connection's challenge came before it had a household. A fresh
                    // connection lets it authenticate now, so that its acknowledgements
                    // and recordings go out at once instead of at the next reconnection.
                    self.link.reconnect().await;
                    self.went_down().await?;
                }
                Ok(())
            }
            LinkEvent::Lost(reason) => {
                if let Some(reason) = reason {
                    self.emit(SimEvent::Report {
                        text: format!("connection lost: {reason}"),
                    });
                }
                self.went_down().await
            }
            LinkEvent::ConnectFailed(reason) => {
                if self.last_failure.as_ref() != Some(&reason) {
                    self.emit(SimEvent::Report {
                        text: reason.clone(),
                    });
                    self.last_failure = Some(reason);
                }
                Ok(())
            }
        }
    }

    /// Boots the installed image: the toy starts again from its saved state, running the
    /// new version, and connects anew (where it authenticates, confirms the image and
    /// reports its version).
    async fn restart_into(&mut self, next: SimFirmware) -> Result<(), SaveFailed> {
        let saved = self
            .store
            .load_state()
            .map_err(|e| SaveFailed(e.to_string()))?
            .ok_or_else(|| SaveFailed(format!("{STATE_FILE} is missing")))?;
        let toy = Brain::restore(&saved, self.toy.is_channel(), &mut self.rng)
            .map_err(|e| SaveFailed(format!("{e:?}")))?;
        self.toy = toy.with_firmware(next.firmware.clone(), next.release_keys.clone());
        self.emit(SimEvent::Report {
            text: format!("restarted into software version {}", next.firmware.version),
        });
        self.firmware = Some(next);
        self.microphone_on = false;
        let was_up = self.link.is_up();
        self.link.reconnect().await;
        if was_up {
            self.set_status(|s| s.connected = false);
            self.emit(SimEvent::Disconnected);
        }
        let now_ms = self.now_ms();
        self.feed(Event::PowerOn {
            now_ms,
            wall_clock_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .ok()
                .and_then(|d| u64::try_from(d.as_millis()).ok()),
        })
        .await
    }

    async fn went_down(&mut self) -> Result<(), SaveFailed> {
        self.set_status(|s| s.connected = false);
        self.emit(SimEvent::Disconnected);
        self.feed(Event::Disconnected).await
    }

    /// A press that starts the microphone, finished with `ogg` as the recording. If the
    /// microphone is already on, the recording just finishes.
    async fn record(&mut self, ogg: Vec<u8>) -> Result<(), SaveFailed> {
        if !self.microphone_on {
            self.feed(Event::PawPressed { long: false }).await?;
        }
        if !self.microphone_on {
            self.emit(SimEvent::Report {
                text: "the press did not start the microphone; recording dropped".into(),
            });
            return Ok(());
        }
        self.finish_recording(ogg).await
    }

    async fn finish_recording(&mut self, ogg: Vec<u8>) -> Result<(), SaveFailed> {
        self.microphone_on = false;
        self.feed(Event::RecordingFinished { ogg }).await
    }

    async fn feed(&mut self, event: Event<'_>) -> Result<(), SaveFailed> {
        let actions = self.toy.handle(event, &mut self.rng);
        self.execute(actions).await
    }

    /// Carries out the actions strictly in order: in particular each `Persist` is on disk
    /// before any later `SendFrame` goes out.
    async fn execute(&mut self, actions: Vec<Action>) -> Result<(), SaveFailed> {
        let mut stop_microphone = false;
        let mut reconnect = None;
        let mut restart = None;
        for action in actions {
            match action {
                Action::SendFrame(frame) => {
                    self.link.send(frame).await;
                }
                Action::Persist(blob) => self.persist(blob).await?,
                Action::StoreAudio {
                    message_id,
                    offset,
                    bytes,
                } => {
                    let store = self.store.clone();
                    let name = format!("{}.ogg", uuid(message_id.0));
                    // Awaited, so that it is on disk before a later `Persist` queues it.
                    match tokio::task::spawn_blocking(move || {
                        store.store_audio(&name, offset, &bytes)
                    })
                    .await
                    {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return Err(SaveFailed(e.to_string())),
                        Err(e) => return Err(SaveFailed(e.to_string())),
                    }
                }
                Action::DiscardAudio { message_id } => {
                    let store = self.store.clone();
                    let name = format!("{}.ogg", uuid(message_id.0));
                    if let Ok(Err(e)) =
                        tokio::task::spawn_blocking(move || store.discard_audio(&name)).await
                    {
                        self.emit(SimEvent::Report {
                            text: format!("cannot delete stored audio: {e}"),
                        });
                    }
                }
                Action::PlayAudio { message_id } => {
                    let id = uuid(message_id.0);
                    let store = self.store.clone();
                    let name = format!("{id}.ogg");
                    let saved = tokio::task::spawn_blocking(move || {
                        let ogg = store.read_audio(&name)?;
                        store.save_played(&name, &ogg)
                    })
                    .await;
                    match saved {
                        Ok(Ok(ogg_path)) => self.emit(SimEvent::Played {
                            message_id: id,
                            ogg_path,
                        }),
                        Ok(Err(e)) => self.emit(SimEvent::Report {
                            text: format!("cannot write message {id}: {e}"),
                        }),
                        Err(e) => self.emit(SimEvent::Report {
                            text: format!("cannot write message {id}: {e}"),
                        }),
                    }
                }
                Action::StartRecording { .. } => {
                    self.microphone_on = true;
                    self.emit(SimEvent::RecordingStarted);
                }
                // This computer has no microphone: what was recorded is what `record` gives,
                // and a microphone stopped without it recorded nothing.
                Action::StopRecording => stop_microphone = self.microphone_on,
                Action::SetHeart(heart) => {
                    self.set_status(|s| s.heart = heart_text(heart).into());
                    self.emit(SimEvent::Heart {
                        state: heart_text(heart).into(),
                    });
                }
                Action::Speak(prompt) => self.speak(prompt).await,
                Action::Report(report) => self.emit(SimEvent::Report {
                    text: report_text(&report),
                }),
                // After the batch: the frames before it still go out on this connection.
                Action::Reconnect(reason) => reconnect = Some(reason),
                Action::ConnectionAccepted => self.link.accepted(),
                Action::EraseUpdate => {
                    if let Err(e) = self.slots.erase() {
                        self.emit(SimEvent::Report {
                            text: format!("cannot erase the image slot: {e}"),
                        });
                    }
                }
                Action::WriteUpdate { offset, bytes } => {
                    if let Err(e) = self.slots.write(offset, &bytes) {
                        self.emit(SimEvent::Report {
                            text: format!("cannot write the image slot: {e}"),
                        });
                    }
                }
                Action::InstallUpdate {
                    version,
                    counter,
                    size,
                    sha256,
                } => {
                    let Some(running) = &self.firmware else {
                        continue;
                    };
                    match self.slots.install(running, version, counter, size, &sha256) {
                        Ok(next) => {
                            // The restart: nothing after it in this batch runs.
                            restart = Some(next);
                            break;
                        }
                        Err(e) => self.emit(SimEvent::Report {
                            text: format!("update not installed: {e}"),
                        }),
                    }
                }
                Action::ConfirmImage => {
                    if let Some(running) = &mut self.firmware {
                        if let Err(e) = self.slots.confirm(running) {
                            self.emit(SimEvent::Report {
                                text: format!("cannot confirm the running image: {e}"),
                            });
                        }
                    }
                }
            }
        }
        if let Some(next) = restart {
            return Box::pin(self.restart_into(next)).await;
        }
        let toy = &self.toy;
        let (device_id, fingerprint, household, version, queued) = (
            uuid(toy.device_id().0),
            toy.identity().fingerprint().to_string(),
            toy.household_id().map(|h| uuid(h.0)),
            toy.roster_version(),
            toy.queued_messages(),
        );
        self.set_status(|s| {
            // A factory reset gives the toy a new id and keys.
            s.device_id = device_id;
            s.fingerprint = fingerprint;
            s.household_id = household;
            s.roster_version = version;
            s.queued = queued;
        });
        if stop_microphone {
            // Boxed: finishing feeds the toy again, which executes actions again.
            Box::pin(self.finish_recording(Vec::new())).await?;
        }
        if let Some(reason) = reconnect {
            let was_up = self.link.is_up();
            match reason {
                // Counted as a failure: the next attempt waits the toy's schedule.
                ReconnectReason::AuthRefused => self.link.refused().await,
                // A new toy, never refused, or a toy its family let go: it connects again at
                // once.
                ReconnectReason::FactoryReset | ReconnectReason::Left => {
                    self.link.reconnect().await
                }
            }
            if was_up {
                Box::pin(self.went_down()).await?;
            }
        }
        Ok(())
    }

    async fn persist(&mut self, blob: StateBlob) -> Result<(), SaveFailed> {
        let store = self.store.clone();
        // Awaited here, so that nothing after it in the batch runs before it is on disk.
        match tokio::task::spawn_blocking(move || store.save_state(blob.as_bytes())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SaveFailed(e.to_string())),
            Err(e) => Err(SaveFailed(e.to_string())),
        }
    }

    async fn speak(&mut self, prompt: Prompt) {
        let text = prompt_text_in(self.language, prompt);
        if let Some(speaker) = &mut self.speaker {
            if let Err(e) = speaker.speak(&text).await {
                self.emit(SimEvent::Report {
                    text: format!("no WAV for {text:?}: {e}"),
                });
            }
        }
        if prompt == Prompt::Paired {
            if let Some(household) = self.toy.household_id() {
                self.emit(SimEvent::Paired {
                    household_id: uuid(household.0),
                });
            }
        }
        self.emit(SimEvent::Spoke { text });
        if let Prompt::PairingCode(code) = prompt {
            self.emit(SimEvent::PairingCode {
                code: code.to_string(),
            });
        }
        if let Prompt::ConfirmPairing(number) = prompt {
            self.emit(SimEvent::ConfirmPairing {
                number: number.to_string(),
            });
        }
    }

    fn emit(&self, event: SimEvent) {
        // Nobody listening is fine: the toy does not depend on being watched.
        let _ = self.events.send(event);
    }

    fn set_status(&self, change: impl FnOnce(&mut SimStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

fn heart_text(heart: Heart) -> &'static str {
    match heart {
        Heart::Off => "off",
        Heart::On => "on",
        Heart::Blink => "blink",
    }
}

/// One line for the log, with the protocol's stable names for reasons.
pub(crate) fn report_text(report: &Report) -> String {
    match report {
        Report::MessageDropped { message_id, reason } => format!(
            "message {} dropped: {}",
            message_id.map_or_else(|| "(unreadable)".into(), |id| uuid(id.0).to_string()),
            reason.code()
        ),
        Report::RosterRefused { version, reason } => format!(
            "roster {} refused: {}",
            version.map_or_else(|| "(unreadable)".into(), |v| format!("version {v}")),
            reason.code()
        ),
        Report::ApprovalRefused { message_id, reason } => format!(
            "approval for message {} refused: {}",
            uuid(message_id.0),
            match reason {
                ApprovalRefusal::UnknownMessage => "unknown_message",
                ApprovalRefusal::NotApprover => "not_approver",
                ApprovalRefusal::BadSignature => "bad_signature",
                ApprovalRefusal::NotPaired => "not_paired",
            }
        ),
        Report::DeliveryInterrupted { message_id } => format!(
            "delivery of message {} interrupted; it comes again at the next connection",
            uuid(message_id.0)
        ),
        Report::RecordingDiscarded { reason } => format!(
            "recording discarded: {}",
            match reason {
                RecordingProblem::NotRequested => "the microphone was not on".into(),
                RecordingProblem::BadMedia(e) => format!("not a valid recording ({e})"),
                RecordingProblem::NoRecipients => "nobody in the household to send to".into(),
                RecordingProblem::Seal(e) => format!("sealing failed ({e})"),
                RecordingProblem::NoRosterKeys => "the roster does not list this toy's keys".into(),
            }
        ),
        Report::LeaveRefused { reason } => format!("leave refused: {}", reason.code()),
        Report::NamesRefused { reason } => format!("names refused: {}", reason.code()),
        Report::FrameRefused { error } => format!("frame refused: {}", error.code()),
        Report::FrameIgnored { frame_type } => format!("frame ignored: {frame_type:?}"),
        Report::ServerError { code } => format!("server error: {}", code.code()),
        Report::UpdateRefused { reason } => format!("update refused: {}", reason.code()),
    }
}

/// The device id and fingerprint lines a new toy shows, for the command line.
pub(crate) fn identity_lines(status: &SimStatus, state_dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    if status.first_start {
        lines.push(format!("new toy, state saved in {}", state_dir.display()));
    } else {
        lines.push(format!("toy restored from {}", state_dir.display()));
    }
    lines.push(format!("device id: {}", status.device_id));
    lines.push(format!("fingerprint: {}", status.fingerprint));
    lines
}
