//! The link between the toy and the phone, as bytes on a UART.
//!
//! Over BLE, each GATT write or notification arrives whole; a UART is a byte stream, so
//! each packet is preceded by its kind and its length (one byte each), the same two facts
//! an ATT PDU carries. The fragments inside are exactly `pawpost-ble`'s.
//!
//! | kind | direction | payload |
//! |---|---|---|
//! | [`FRAGMENT`] | both | one `pawpost-ble` fragment (at most ATT MTU − 3 bytes) |
//! | [`SERVER_UP`] | phone → toy | the ATT MTU (u16, little-endian): the phone opened a connection to the server; fragments of a new connection start |
//! | [`SERVER_DOWN`] | phone → toy | none: the server connection closed |
//! | [`RECONNECT`] | toy → phone | milliseconds to wait (u32, little-endian): close the server connection, open a new one after the wait |
//!
//! The phone never sees inside a frame: it reassembles fragments into the WebSocket
//! message the server expects and fragments the server's messages, nothing else.

use alloc::vec::Vec;

/// A `pawpost-ble` fragment.
pub const FRAGMENT: u8 = 0x01;
/// The phone's connection to the server is open.
pub const SERVER_UP: u8 = 0x02;
/// The phone's connection to the server closed.
pub const SERVER_DOWN: u8 = 0x03;
/// The toy asks for a new server connection.
pub const RECONNECT: u8 = 0x04;
/// Largest payload of one packet (a fragment at the largest MTU `pawpost-ble` allows is
/// larger, so the link holds the MTU to [`MAX_LINK_MTU`]).
pub const MAX_PAYLOAD: usize = u8::MAX as usize;
/// Largest ATT MTU this link carries: its fragments (MTU − 3 bytes) fit one packet.
pub const MAX_LINK_MTU: u16 = 258;

/// One packet from the byte stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// A fragment.
    Fragment(Vec<u8>),
    /// The server connection opened with this MTU.
    ServerUp {
        /// The ATT MTU.
        mtu: u16,
    },
    /// The server connection closed.
    ServerDown,
    /// The toy asks for a new connection after `wait_ms`.
    Reconnect {
        /// Milliseconds to wait first.
        wait_ms: u32,
    },
    /// A packet of a kind this version does not know, or of the wrong size: dropped.
    Unknown {
        /// Its kind byte.
        kind: u8,
    },
}

impl Packet {
    /// The packet as bytes on the wire. A fragment longer than [`MAX_PAYLOAD`] cannot be
    /// sent: `None`.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let (kind, payload): (u8, Vec<u8>) = match self {
            Packet::Fragment(bytes) => (FRAGMENT, bytes.clone()),
            Packet::ServerUp { mtu } => (SERVER_UP, mtu.to_le_bytes().to_vec()),
            Packet::ServerDown => (SERVER_DOWN, Vec::new()),
            Packet::Reconnect { wait_ms } => (RECONNECT, wait_ms.to_le_bytes().to_vec()),
            Packet::Unknown { kind } => (*kind, Vec::new()),
        };
        let len = u8::try_from(payload.len()).ok()?;
        let mut out = Vec::with_capacity(2 + payload.len());
        out.push(kind);
        out.push(len);
        out.extend_from_slice(&payload);
        Some(out)
    }

    fn parse(kind: u8, payload: &[u8]) -> Packet {
        match (kind, payload.len()) {
            (FRAGMENT, _) => Packet::Fragment(payload.to_vec()),
            (SERVER_UP, 2) => Packet::ServerUp {
                mtu: u16::from_le_bytes([payload[0], payload[1]]),
            },
            (SERVER_DOWN, 0) => Packet::ServerDown,
            (RECONNECT, 4) => Packet::Reconnect {
                wait_ms: u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]),
            },
            _ => Packet::Unknown { kind },
        }
    }
}

/// Cuts the byte stream into packets, one byte at a time (a UART gives no more).
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    kind: Option<u8>,
    len: Option<usize>,
    payload: Vec<u8>,
}

impl Decoder {
    /// A decoder at the start of a packet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one byte; returns the packet it completes.
    pub fn push(&mut self, byte: u8) -> Option<Packet> {
        let Some(kind) = self.kind else {
            self.kind = Some(byte);
            return None;
        };
        let len = match self.len {
            Some(len) => {
                self.payload.push(byte);
                len
            }
            None => {
                let len = usize::from(byte);
                self.len = Some(len);
                len
            }
        };
        if self.payload.len() < len {
            return None;
        }
        let packet = Packet::parse(kind, &self.payload);
        self.kind = None;
        self.len = None;
        self.payload.clear();
        Some(packet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn decode_all(bytes: &[u8]) -> Vec<Packet> {
        let mut decoder = Decoder::new();
        bytes.iter().filter_map(|b| decoder.push(*b)).collect()
    }

    #[test]
    fn packets_cross_the_stream_whole_and_in_order() {
        let packets = vec![
            Packet::ServerUp { mtu: 23 },
            Packet::Fragment(vec![3, 1, 0, 0, 0, 9]),
            Packet::Fragment(vec![7; MAX_PAYLOAD]),
            Packet::ServerDown,
            Packet::Reconnect { wait_ms: 70_000 },
            Packet::Fragment(Vec::new()),
        ];
        let bytes: Vec<u8> = packets.iter().flat_map(|p| p.encode().unwrap()).collect();
        assert_eq!(decode_all(&bytes), packets);
    }

    #[test]
    fn unknown_kinds_and_wrong_sizes_are_skipped_without_losing_the_next_packet() {
        let mut bytes = vec![0x7f, 3, 1, 2, 3, SERVER_UP, 1, 5, RECONNECT, 0];
        bytes.extend(Packet::ServerDown.encode().unwrap());
        assert_eq!(
            decode_all(&bytes),
            vec![
                Packet::Unknown { kind: 0x7f },
                Packet::Unknown { kind: SERVER_UP },
                Packet::Unknown { kind: RECONNECT },
                Packet::ServerDown,
            ]
        );
    }

    #[test]
    fn a_fragment_too_long_for_one_packet_is_not_encoded() {
        assert_eq!(Packet::Fragment(vec![0; MAX_PAYLOAD + 1]).encode(), None);
        // The largest MTU the link carries gives fragments that fit.
        let largest = usize::from(MAX_LINK_MTU) - pawpost_ble::ATT_OVERHEAD;
        assert!(Packet::Fragment(vec![0; largest]).encode().is_some());
    }
}
