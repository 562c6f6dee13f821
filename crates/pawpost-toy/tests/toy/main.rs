//! Stories of a plush toy, its family, a stand-in server and the people who attack them.

mod attacks;
mod ble;
mod delivery;
mod leave;
mod microphone;
mod names;
mod pairing;
mod persistence;
mod reconnect;
mod recording;
mod recovery;
mod reset;
mod rotation;
mod settings;
mod streaming;
mod support;
mod updates;
