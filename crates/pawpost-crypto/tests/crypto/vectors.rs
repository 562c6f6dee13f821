//! The shared test vectors.
