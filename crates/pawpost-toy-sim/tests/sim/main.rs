//! The simulated toy against a stand-in server on 127.0.0.1: pairing, delivery, playback,
//! recording, reconnection, restarts and the command line.

mod cli;
mod persistence;
mod socket;
mod support;
