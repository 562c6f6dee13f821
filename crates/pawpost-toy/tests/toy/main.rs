//! Stories of a plush toy, its family, a stand-in server and the people who attack them.

mod attacks;
mod codec;
mod delivery;
mod pairing;
mod support;
