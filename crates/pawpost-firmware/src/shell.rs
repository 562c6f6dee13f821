//! The shell around the toy's brain, free of board details: it feeds the toy the link's
//! frames, the wires' presses and the clock, and carries out the toy's actions in order.
//!
//! The toy speaks toy protocol version 3: a [`ChannelToy`], every frame to and from the
//! server inside the encrypted channel (`pawpost-channel`). What crosses the link, and the
//! phone relaying it, is handshake messages and padded records only; a fragment injected,
//! altered or replayed on the link ends the channel, and the toy asks for a new
//! connection.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use pawpost_ble::{Fragmenter, Reassembler};
use pawpost_crypto::rand_core::CryptoRng;
use pawpost_toy::{
    reconnect_wait_ms, Action, ChannelToy, Event, FrameType, Heart, MessageId, Prompt,
    ReconnectReason, StateError, CHANNEL_STATE_VERSION, MAX_CHANNEL_MESSAGE_LEN,
};

use crate::link::{Decoder, Packet, MAX_LINK_MTU};
use crate::wires::{self, Input, Lines};

/// The toy's timers (pairing window, recording limit, key rotation) need about one tick a
/// second.
pub const TICK_MS: u64 = 1000;
/// Bytes of audio read from storage at a time while playing.
const PLAY_PIECE_BYTES: usize = 512;

/// What a board without image slots says when asked to update.
const UPDATES_UNSUPPORTED: &[u8] = b"report updates are not supported on this board\n";

/// What a board gives the shell.
pub trait Board {
    /// Milliseconds since power-on (monotonic).
    fn now_ms(&self) -> u64;
    /// Writes bytes to the link (the radio; here the phone's UART).
    fn link_write(&mut self, bytes: &[u8]);
    /// Writes bytes to the wires inside the toy (speaker, light; here a second UART).
    fn wires_write(&mut self, bytes: &[u8]);
    /// The toy's state saved last, if any.
    fn load_state(&mut self) -> Option<Vec<u8>>;
    /// Saves the toy's state, replacing the previous one; done before it returns.
    fn save_state(&mut self, state: &[u8]) -> Result<(), &'static str>;
    /// Writes `bytes` at `offset` of a message's audio in the audio storage, apart from
    /// the state (see [`crate::audio`]); done before it returns.
    fn store_audio(
        &mut self,
        message: MessageId,
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), &'static str>;
    /// Reads a message's audio from `offset` into `buf`; returns the bytes read (0 at its
    /// end).
    fn read_audio(&mut self, message: MessageId, offset: usize, buf: &mut [u8]) -> usize;
    /// Deletes a message's audio.
    fn discard_audio(&mut self, message: MessageId);
    /// The heap in use and its peak since the last reset (`reset` starts a new peak after
    /// reading), and the stack's deepest use.
    fn heap(&mut self, reset: bool) -> HeapStats;
    /// Erases the inactive image slot, before an update is written into it.
    fn erase_update(&mut self) {
        self.wires_write(UPDATES_UNSUPPORTED);
    }
    /// Writes `bytes` at `offset` of the inactive image slot; done before it returns.
    fn write_update(&mut self, offset: u32, bytes: &[u8]) {
        let _ = (offset, bytes);
        self.wires_write(UPDATES_UNSUPPORTED);
    }
    /// Marks the inactive slot, holding this image, to be tried at the next boot, and
    /// restarts (on a board that can).
    fn install_update(&mut self, version: u32, counter: u32, size: u32, sha256: &[u8; 32]) {
        let _ = (version, counter, size, sha256);
        self.wires_write(UPDATES_UNSUPPORTED);
    }
    /// The running image works: the boot stage stops counting its tries.
    fn confirm_image(&mut self) {
        self.wires_write(UPDATES_UNSUPPORTED);
    }
    /// What the board runs (from its boot stage) and the release keys built into the
    /// image, for the toy to report its version and check updates; None on a board
    /// without image slots.
    fn firmware(&mut self) -> Option<(pawpost_toy::Firmware, Vec<[u8; 32]>)> {
        None
    }
    /// The size of one image slot, in bytes: the toy refuses an update larger than that
    /// before downloading it. None on a board without image slots.
    fn update_slot_bytes(&self) -> Option<u32> {
        None
    }
}

/// How much of the heap is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes allocated now.
    pub used: usize,
    /// Most bytes allocated at once since the last reset.
    pub peak: usize,
    /// The deepest the stack has been since power-on, in bytes (0 if the board cannot
    /// tell).
    pub stack_peak: usize,
}

/// One connection to the server through the phone: its own fragment numbering.
struct Connection {
    mtu: u16,
    fragmenter: Fragmenter,
    reassembler: Reassembler,
}

/// The toy on a board.
pub struct Shell<B, R> {
    board: B,
    rng: R,
    toy: ChannelToy,
    link_in: Decoder,
    wires_in: Lines,
    connection: Option<Connection>,
    microphone_on: bool,
    /// Refused authentications in a row, for the wait before the next connection.
    failures: u32,
    next_tick_ms: u64,
    /// The state could not be saved: the toy must not go on, since what it says next may
    /// depend on that state.
    halted: bool,
}

impl<B: Board, R: CryptoRng> Shell<B, R> {
    /// Restores the toy the board saved (or makes a new one), powers it on and says
    /// `ready`. A saved state this version cannot read is an error: it holds the toy's
    /// keys and household, and is not silently replaced. A state saved before the channel
    /// (version 1 or 2) restores, gets a channel key, and is saved again as version 3 at
    /// once, so that the toy keeps that key.
    pub fn start(mut board: B, mut rng: R) -> Result<Self, StateError> {
        let (toy, older) = match board.load_state() {
            Some(saved) => (
                ChannelToy::restore(&saved, &mut rng)?,
                saved.first() != Some(&CHANNEL_STATE_VERSION),
            ),
            None => (ChannelToy::first_start(&mut rng), false),
        };
        let toy = match board.firmware() {
            Some((firmware, release_keys)) => toy.with_firmware(firmware, release_keys),
            None => toy,
        };
        let toy = match board.update_slot_bytes() {
            Some(slot_bytes) => toy.with_update_slot(slot_bytes),
            None => toy,
        };
        let now_ms = board.now_ms();
        let mut shell = Shell {
            board,
            rng,
            toy,
            link_in: Decoder::new(),
            wires_in: Lines::new(),
            connection: None,
            microphone_on: false,
            failures: 0,
            next_tick_ms: now_ms + TICK_MS,
            halted: false,
        };
        let identity = shell.toy.toy().identity();
        let line = format!(
            "ready {} {}",
            wires::hex(&shell.toy.toy().device_id().0),
            identity.fingerprint()
        );
        shell.say(&line);
        if older {
            let blob = shell.toy.state_blob();
            shell.execute(alloc::vec![Action::Persist(blob)]);
        }
        shell.feed(Event::PowerOn {
            now_ms,
            wall_clock_unix_ms: None,
        });
        Ok(shell)
    }

    /// The board, for its drivers.
    pub fn board(&mut self) -> &mut B {
        &mut self.board
    }

    /// The toy, to look at.
    pub fn toy(&self) -> &ChannelToy {
        &self.toy
    }

    /// Whether the toy stopped because its state could not be saved.
    pub fn halted(&self) -> bool {
        self.halted
    }

    /// One byte from the link.
    pub fn link_byte(&mut self, byte: u8) {
        if let Some(packet) = self.link_in.push(byte) {
            self.packet(packet);
        }
    }

    /// One byte from the wires.
    pub fn wires_byte(&mut self, byte: u8) {
        if let Some(input) = self.wires_in.push(byte) {
            self.input(input);
        }
    }

    /// Gives the toy a timer tick when one is due; call it often.
    pub fn poll(&mut self) {
        let now_ms = self.board.now_ms();
        if now_ms >= self.next_tick_ms {
            self.next_tick_ms = now_ms + TICK_MS;
            self.feed(Event::Timer { now_ms });
        }
    }

    fn packet(&mut self, packet: Packet) {
        match packet {
            Packet::ServerUp { mtu } => {
                if self.connection.is_some() {
                    self.went_down();
                }
                let connection = (mtu <= MAX_LINK_MTU)
                    .then(|| {
                        Some(Connection {
                            mtu,
                            fragmenter: Fragmenter::new(mtu).ok()?,
                            reassembler: Reassembler::new(mtu, MAX_CHANNEL_MESSAGE_LEN).ok()?,
                        })
                    })
                    .flatten();
                let Some(connection) = connection else {
                    self.say(&format!("report link refused: MTU {mtu} out of range"));
                    return;
                };
                self.connection = Some(connection);
                self.say(&format!("link up {mtu}"));
                self.feed(Event::Connected);
            }
            Packet::ServerDown => {
                if self.connection.is_some() {
                    self.went_down();
                }
            }
            Packet::Fragment(fragment) => self.fragment(&fragment),
            Packet::Reconnect { .. } => self.say("report link refused: a toy's own packet"),
            Packet::Unknown { kind } => {
                self.say(&format!("report link refused: unknown packet {kind:#04x}"));
            }
        }
    }

    fn fragment(&mut self, fragment: &[u8]) {
        if self.halted {
            return;
        }
        let Some(connection) = &mut self.connection else {
            self.say("report fragment refused: no server connection");
            return;
        };
        let was_paired = self.toy.toy().household_id().is_some();
        let started_ms = self.board.now_ms();
        match connection.reassembler.push(fragment) {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                let line = format!("report fragment refused: {e}");
                self.say(&line);
                return;
            }
        }
        // The toy decrypts the record where the reassembler holds it, and a chunk of a
        // message inside it too (no copy: on a chip the largest message on the link is the
        // largest buffer); its actions run once that borrow ends.
        let Some(frame) = connection.reassembler.delivered_mut() else {
            return;
        };
        let (actions, audio) = self.toy.handle_frame_in_place(frame, &mut self.rng);
        let frame_type = self.toy.take_opened_frame_type();
        let acked = match frame_type {
            Some(FrameType::UploadAck) => self.toy.last_upload_ack(),
            _ => None,
        };
        // A message that is not the channel's next (injected, altered, replayed) ended the
        // channel: the toy read nothing from it and asks for a new connection.
        let refused = (!self.toy.channel_up()
            && actions.iter().any(|a| matches!(a, Action::Reconnect(_))))
        .then(|| self.toy.last_channel_error())
        .flatten();
        // The chunk's audio goes to storage before any of the actions, as a `StoreAudio`
        // in front of them would.
        let stored = match audio {
            Some(audio) => {
                let bytes = frame.get(audio.range).unwrap_or_default();
                self.board
                    .store_audio(audio.message_id, audio.offset, bytes)
            }
            None => Ok(()),
        };
        if let Err(why) = stored {
            self.say(&format!("error cannot store a message's audio: {why}"));
            self.halted = true;
            return;
        }
        if let Some(error) = refused {
            self.say(&format!("report channel refused: {}", error.code()));
        }
        // The toy says "sent" only for an acknowledgement of one of its own uploads.
        let sent = acked.filter(|_| {
            actions
                .iter()
                .any(|a| matches!(a, Action::Speak(Prompt::Sent)))
        });
        self.execute(actions);
        if let Some(message_id) = sent {
            self.say(&format!("sent {}", wires::hex(&message_id.0)));
        }
        // How long the toy took over the frame (under QEMU's -icount shift=0, a virtual
        // millisecond is a million instructions).
        if let Some(frame_type) = frame_type {
            let took_ms = self.board.now_ms().saturating_sub(started_ms);
            self.say(&format!("took {frame_type:?} {took_ms}"));
        }
        if !was_paired && self.toy.toy().household_id().is_some() && self.connection.is_some() {
            // The toy authenticates only in answer to a challenge, and the pairing
            // connection's challenge came before it had a household: a fresh connection
            // lets it authenticate now.
            self.request_connection(0);
        }
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Press => self.feed(Event::PawPressed { long: false }),
            Input::LongPress => self.feed(Event::PawPressed { long: true }),
            Input::Hold { ms } => self.feed(Event::PawHeld { ms }),
            Input::Microphone(ogg) => {
                if self.microphone_on {
                    self.microphone_on = false;
                    self.say("mic off");
                    self.feed(Event::RecordingFinished { ogg });
                } else {
                    self.say("error the microphone is off: press the paw first");
                }
            }
            Input::Heap { reset } => {
                let HeapStats {
                    used,
                    peak,
                    stack_peak,
                } = self.board.heap(reset);
                self.say(&format!("heap used={used} peak={peak} stack={stack_peak}"));
            }
            Input::Status => {
                let line = format!(
                    "status household={} roster={} queued={} link={} channel={} pinned={}",
                    self.toy
                        .toy()
                        .household_id()
                        .map_or_else(|| String::from("none"), |h| wires::hex(&h.0)),
                    self.toy.toy().roster_version(),
                    self.toy.toy().queued_messages(),
                    match &self.connection {
                        Some(c) => format!("up/{}", c.mtu),
                        None => String::from("down"),
                    },
                    if self.toy.channel_up() { "up" } else { "down" },
                    if self.toy.pinned_server_key().is_some() {
                        "yes"
                    } else {
                        "no"
                    },
                );
                self.say(&line);
            }
            Input::Bench => {
                let board = &self.board;
                let lines = crate::bench::run(&mut self.rng, || board.now_ms());
                for line in lines {
                    self.say(&line);
                }
            }
            Input::Seed(_) => self.say("error the seed is taken only at power-on"),
            Input::Invalid(why) => self.say(&format!("error {why}")),
        }
    }

    fn feed(&mut self, event: Event<'_>) {
        if self.halted {
            return;
        }
        let actions = self.toy.handle(event, &mut self.rng);
        self.execute(actions);
    }

    /// Carries out the actions strictly in order: each `Persist` is saved before any later
    /// frame goes out.
    fn execute(&mut self, actions: Vec<Action>) {
        let mut stop_microphone = false;
        let mut reconnect = None;
        for action in actions {
            if self.halted {
                return;
            }
            match action {
                Action::SendFrame(frame) => self.send_frame(&frame),
                Action::Persist(blob) => match self.board.save_state(blob.as_bytes()) {
                    Ok(()) => {
                        let line = format!("saved {}", blob.as_bytes().len());
                        self.say(&line);
                    }
                    Err(why) => {
                        self.say(&format!("error cannot save the toy's state: {why}"));
                        self.halted = true;
                    }
                },
                Action::StoreAudio {
                    message_id,
                    offset,
                    bytes,
                } => {
                    if let Err(why) = self.board.store_audio(message_id, offset, &bytes) {
                        self.say(&format!("error cannot store a message's audio: {why}"));
                        self.halted = true;
                    }
                }
                Action::DiscardAudio { message_id } => self.board.discard_audio(message_id),
                Action::PlayAudio { message_id } => self.play(message_id),
                Action::StartRecording { .. } => {
                    self.microphone_on = true;
                    self.say("mic on");
                }
                Action::StopRecording => stop_microphone = self.microphone_on,
                Action::SetHeart(heart) => self.say(match heart {
                    Heart::Off => "heart off",
                    Heart::On => "heart on",
                    Heart::Blink => "heart blink",
                }),
                Action::Speak(prompt) => self.speak(prompt),
                Action::Report(report) => self.say(&format!("report {report:?}")),
                Action::Reconnect(reason) => reconnect = Some(reason),
                Action::ConnectionAccepted => self.failures = 0,
                Action::EraseUpdate => self.board.erase_update(),
                Action::WriteUpdate { offset, bytes } => self.board.write_update(offset, &bytes),
                Action::InstallUpdate {
                    version,
                    counter,
                    size,
                    sha256,
                } => self.board.install_update(version, counter, size, &sha256),
                Action::ConfirmImage => self.board.confirm_image(),
            }
        }
        if stop_microphone {
            // The board's microphone stopped: what it had is all there is (nothing here).
            self.microphone_on = false;
            self.say("mic off");
            self.feed(Event::RecordingFinished { ogg: Vec::new() });
        }
        if let Some(reason) = reconnect {
            let wait_ms = match reason {
                ReconnectReason::AuthRefused => {
                    self.failures = self.failures.saturating_add(1);
                    reconnect_wait_ms(self.failures, self.rng.next_u64())
                }
                // A new toy or a toy its family let go connects again at once.
                _ => 0,
            };
            self.request_connection(wait_ms);
        }
    }

    /// Asks the phone for a new server connection after `wait_ms`, and treats the current
    /// one as closed.
    fn request_connection(&mut self, wait_ms: u64) {
        let wait_ms = u32::try_from(wait_ms).unwrap_or(u32::MAX);
        self.link_packet(&Packet::Reconnect { wait_ms });
        if self.connection.is_some() {
            self.went_down();
        }
    }

    fn went_down(&mut self) {
        self.connection = None;
        self.say("link down");
        self.feed(Event::Disconnected);
    }

    fn send_frame(&mut self, frame: &[u8]) {
        let Some(connection) = &mut self.connection else {
            // A frame made for a connection that is gone is never sent on the next one.
            return;
        };
        let mut buf = [0u8; MAX_LINK_MTU as usize];
        let mut fragments = match connection.fragmenter.fragment(frame) {
            Ok(fragments) => fragments,
            Err(e) => {
                let line = format!("report frame not sent: {e}");
                self.say(&line);
                return;
            }
        };
        while let Ok(Some(len)) = fragments.encode_next(&mut buf) {
            if let Some(bytes) = Packet::Fragment(buf[..len].to_vec()).encode() {
                self.board.link_write(&bytes);
            }
        }
    }

    fn link_packet(&mut self, packet: &Packet) {
        if let Some(bytes) = packet.encode() {
            self.board.link_write(&bytes);
        }
    }

    fn speak(&mut self, prompt: Prompt) {
        self.say(&format!("say {prompt:?}"));
        match prompt {
            Prompt::PairingCode(code) => self.say(&format!("code {code}")),
            Prompt::ConfirmPairing(number) => self.say(&format!("confirm {number}")),
            Prompt::Paired => {
                if let Some(household) = self.toy.toy().household_id() {
                    self.say(&format!("paired {}", wires::hex(&household.0)));
                }
            }
            _ => {}
        }
    }

    /// Plays a message from the audio storage: to the speaker wire as `play ID HEX`, read
    /// a little at a time so that the message is never whole in RAM.
    fn play(&mut self, message_id: MessageId) {
        let mut piece = [0u8; PLAY_PIECE_BYTES];
        self.board.wires_write(b"play ");
        self.board.wires_write(wires::hex(&message_id.0).as_bytes());
        self.board.wires_write(b" ");
        let mut offset = 0;
        loop {
            let n = self.board.read_audio(message_id, offset, &mut piece);
            if n == 0 {
                break;
            }
            self.board.wires_write(wires::hex(&piece[..n]).as_bytes());
            offset += n;
        }
        self.board.wires_write(b"\n");
    }

    fn say(&mut self, line: &str) {
        self.board.wires_write(line.as_bytes());
        self.board.wires_write(b"\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use pawpost_crypto::rand_core::SeedableRng;
    use pawpost_toy::Frame;
    use pawpost_toy::PublicIdentity;
    use rand_chacha::ChaCha20Rng;

    #[derive(Default)]
    struct FakeBoard {
        now_ms: u64,
        link_out: Vec<u8>,
        wires_out: Vec<u8>,
        state: Option<Vec<u8>>,
        saving_fails: bool,
        audio: alloc::collections::BTreeMap<MessageId, Vec<u8>>,
    }

    impl Board for FakeBoard {
        fn now_ms(&self) -> u64 {
            self.now_ms
        }
        fn link_write(&mut self, bytes: &[u8]) {
            self.link_out.extend_from_slice(bytes);
        }
        fn wires_write(&mut self, bytes: &[u8]) {
            self.wires_out.extend_from_slice(bytes);
        }
        fn load_state(&mut self) -> Option<Vec<u8>> {
            self.state.clone()
        }
        fn save_state(&mut self, state: &[u8]) -> Result<(), &'static str> {
            if self.saving_fails {
                return Err("flash worn out");
            }
            self.state = Some(state.to_vec());
            Ok(())
        }
        fn store_audio(
            &mut self,
            message: MessageId,
            offset: u64,
            bytes: &[u8],
        ) -> Result<(), &'static str> {
            let audio = self.audio.entry(message).or_default();
            audio.truncate(usize::try_from(offset).unwrap());
            audio.extend_from_slice(bytes);
            Ok(())
        }
        fn read_audio(&mut self, message: MessageId, offset: usize, buf: &mut [u8]) -> usize {
            let audio = self.audio.get(&message).map_or(&[][..], |a| &a[..]);
            let n = audio.len().saturating_sub(offset).min(buf.len());
            buf[..n].copy_from_slice(&audio[offset..offset + n]);
            n
        }
        fn discard_audio(&mut self, message: MessageId) {
            self.audio.remove(&message);
        }
        fn heap(&mut self, _reset: bool) -> HeapStats {
            HeapStats {
                used: 1,
                peak: 2,
                stack_peak: 3,
            }
        }
    }

    fn start(board: FakeBoard) -> Shell<FakeBoard, ChaCha20Rng> {
        Shell::start(board, ChaCha20Rng::from_seed([7; 32])).unwrap()
    }

    /// The wire lines said since the last call.
    fn said(shell: &mut Shell<FakeBoard, ChaCha20Rng>) -> Vec<String> {
        let out = core::mem::take(&mut shell.board().wires_out);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(ToString::to_string)
            .collect()
    }

    fn wires(shell: &mut Shell<FakeBoard, ChaCha20Rng>, line: &str) {
        for b in line.bytes().chain([b'\n']) {
            shell.wires_byte(b);
        }
    }

    fn link(shell: &mut Shell<FakeBoard, ChaCha20Rng>, packet: &Packet) {
        for b in packet.encode().unwrap() {
            shell.link_byte(b);
        }
    }

    /// Frames the toy sent, reassembled as the phone would at `mtu`.
    fn sent_frames(shell: &mut Shell<FakeBoard, ChaCha20Rng>, mtu: u16) -> Vec<Vec<u8>> {
        let bytes = core::mem::take(&mut shell.board().link_out);
        let mut decoder = Decoder::new();
        let mut reassembler = Reassembler::new(mtu, pawpost_ble::MAX_FRAME_LEN).unwrap();
        let mut frames = Vec::new();
        for b in bytes {
            if let Some(Packet::Fragment(fragment)) = decoder.push(b) {
                if let Some(frame) = reassembler.push(&fragment).unwrap() {
                    frames.push(frame.data.to_vec());
                }
            }
        }
        frames
    }

    fn server_frame(
        shell: &mut Shell<FakeBoard, ChaCha20Rng>,
        fragmenter: &mut Fragmenter,
        frame: &[u8],
    ) {
        for fragment in fragmenter.fragment(frame).unwrap() {
            link(shell, &Packet::Fragment(fragment));
        }
    }

    #[test]
    fn a_new_toy_says_it_is_ready_and_saves_its_keys_first() {
        let mut shell = start(FakeBoard::default());
        let lines = said(&mut shell);
        assert!(lines[0].starts_with("ready "), "{lines:?}");
        assert!(lines.iter().any(|l| l.starts_with("saved ")), "{lines:?}");
        assert!(shell.board().state.is_some());
        assert!(
            shell.board().link_out.is_empty(),
            "nothing on the link before a phone"
        );
        // A restart restores the same toy.
        let state = shell.board().state.clone();
        let id = shell.toy().toy().device_id();
        let again = start(FakeBoard {
            state,
            ..FakeBoard::default()
        });
        assert_eq!(again.toy().toy().device_id(), id);
    }

    #[test]
    fn the_toy_opens_its_channel_in_fragments_and_a_frame_in_the_clear_ends_it() {
        let mut shell = start(FakeBoard::default());
        said(&mut shell);
        wires(&mut shell, "long");
        link(&mut shell, &Packet::ServerUp { mtu: 23 });
        // The toy's first message is the channel's pairing handshake (version 3), in
        // fragments of at most 20 bytes: no frame of version 2 in the clear.
        let frames = sent_frames(&mut shell, 23);
        assert_eq!(frames.len(), 1, "{frames:?}");
        let first = &frames[0];
        assert_eq!(
            first[..2],
            [
                pawpost_toy::channel::CHANNEL_VERSION,
                pawpost_toy::channel::KIND_PAIR_1
            ]
        );
        assert!(Frame::decode(first).is_err());
        let identity: PublicIdentity = shell.toy().toy().identity();
        assert!(
            !first.windows(16).any(|w| w == identity.device_id.0),
            "the device id is not on the link"
        );
        // A challenge in the clear, where the server's handshake reply belongs, ends the
        // channel: the toy reads nothing from it and asks the phone for a new connection.
        let mut fragmenter = Fragmenter::new(23).unwrap();
        let challenge = Frame::Challenge {
            nonce: [5; pawpost_toy::NONCE_LEN],
            server_time_ms: 1_764_000_000_000,
        }
        .encode()
        .unwrap();
        server_frame(&mut shell, &mut fragmenter, &challenge);
        let lines = said(&mut shell);
        assert!(lines.contains(&"link up 23".into()), "{lines:?}");
        assert!(
            lines.contains(&"report channel refused: unexpected_message".into())
                || lines.contains(&"report channel refused: not_version_3".into()),
            "{lines:?}"
        );
        assert!(lines.contains(&"link down".into()), "{lines:?}");
        let mut decoder = Decoder::new();
        let asked = core::mem::take(&mut shell.board().link_out)
            .into_iter()
            .filter_map(|b| decoder.push(b))
            .any(|p| matches!(p, Packet::Reconnect { .. }));
        assert!(asked, "the toy asks for a new connection");
        assert!(!shell.toy().channel_up());
        assert_eq!(shell.toy().toy().household_id(), None);
    }

    #[test]
    fn a_state_saved_before_the_channel_restores_and_is_saved_as_version_3() {
        let older = pawpost_toy::Toy::first_start(&mut ChaCha20Rng::from_seed([3; 32]));
        let id = older.device_id();
        let mut shell = start(FakeBoard {
            state: Some(older.state_blob().as_bytes().to_vec()),
            ..FakeBoard::default()
        });
        assert_eq!(shell.toy().toy().device_id(), id, "the same toy");
        let saved = shell.board().state.clone().unwrap();
        assert_eq!(saved[0], CHANNEL_STATE_VERSION, "saved again as version 3");
        let key = *shell.toy().channel_public_key();
        let again = start(FakeBoard {
            state: Some(saved),
            ..FakeBoard::default()
        });
        assert_eq!(
            again.toy().channel_public_key(),
            &key,
            "it keeps its channel key"
        );
        assert_eq!(again.toy().toy().device_id(), id);
    }

    #[test]
    fn nothing_on_the_link_presses_the_paw_records_or_plays() {
        let mut shell = start(FakeBoard::default());
        let identity = shell.toy().toy().identity();
        link(&mut shell, &Packet::ServerUp { mtu: 247 });
        let mut fragmenter = Fragmenter::new(247).unwrap();
        let envelope = [0x42; 300];
        let roster = [0x17; 200];
        for frame in pawpost_protocol::testing::one_of_each(identity, &envelope, &roster) {
            server_frame(&mut shell, &mut fragmenter, &frame.encode().unwrap());
        }
        // Garbage: unknown packets, fragments out of thin air, a wrong MTU.
        for b in [0x55u8, 3, 1, 2, 3, crate::link::FRAGMENT, 5, 1, 9, 9, 0, 0] {
            shell.link_byte(b);
        }
        link(&mut shell, &Packet::ServerUp { mtu: 600 });
        let lines = said(&mut shell);
        for forbidden in [
            "play",
            "mic on",
            "say Recording",
            "say PairingStarted",
            "say Forgotten",
        ] {
            assert!(
                !lines.iter().any(|l| l.starts_with(forbidden)),
                "{forbidden}: {lines:?}"
            );
        }
        assert!(
            lines.iter().any(|l| l.starts_with("report link refused")),
            "{lines:?}"
        );
        assert_eq!(shell.toy().toy().household_id(), None);
        assert_eq!(shell.toy().toy().queued_messages(), 0);
    }

    #[test]
    fn the_microphone_takes_a_recording_only_after_a_press_turned_it_on() {
        let mut shell = start(FakeBoard::default());
        said(&mut shell);
        wires(&mut shell, "mic 4f676753");
        assert_eq!(
            said(&mut shell),
            vec![String::from(
                "error the microphone is off: press the paw first"
            )]
        );
        wires(&mut shell, "heap reset");
        wires(&mut shell, "bogus");
        assert_eq!(
            said(&mut shell),
            vec![
                String::from("heap used=1 peak=2 stack=3"),
                String::from("error unknown command")
            ]
        );
    }

    #[test]
    fn bench_times_each_public_key_operation_and_says_so() {
        let mut shell = start(FakeBoard::default());
        said(&mut shell);
        wires(&mut shell, "bench");
        let lines = said(&mut shell);
        assert_eq!(lines.len(), crate::bench::OPERATIONS, "{lines:?}");
        let names: Vec<&str> = lines
            .iter()
            .map(|l| {
                let fields: Vec<&str> = l.split(' ').collect();
                assert_eq!(fields.len(), 4, "{l}");
                assert_eq!(fields[0], "bench", "{l}");
                assert_eq!(fields[2], crate::bench::REPEATS.to_string(), "{l}");
                assert!(fields[3].parse::<u64>().is_ok(), "{l}");
                l.split(' ').nth(1).unwrap()
            })
            .collect();
        assert_eq!(
            names,
            [
                "ed25519-verify",
                "ed25519-verify+hpke-open",
                "ed25519-sign",
                "sha256-16k",
                "aes-gcm+sha256-16k",
                "device-keys"
            ]
        );
        assert_eq!(
            shell.toy().toy().queued_messages(),
            0,
            "the toy is untouched"
        );
    }

    #[test]
    fn a_toy_that_cannot_save_its_state_stops() {
        let mut shell = start(FakeBoard {
            saving_fails: true,
            ..FakeBoard::default()
        });
        assert!(shell.halted());
        let lines = said(&mut shell);
        assert!(
            lines.iter().any(|l| l.starts_with("error cannot save")),
            "{lines:?}"
        );
        wires(&mut shell, "long");
        assert!(said(&mut shell).is_empty(), "a halted toy does nothing");
    }
}
