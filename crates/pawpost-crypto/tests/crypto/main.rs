//! Stories of families and attackers, the shared test vectors, and RFC 9180 conformance.

mod envelope_stories;
mod fixtures;
mod hpke_rfc9180;
mod recovery_stories;
mod roster_stories;
mod vectors;
