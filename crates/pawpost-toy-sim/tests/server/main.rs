//! The simulated toy against a real pawpost server: a toy the server refuses backs off,
//! and a toy reset by holding its paw is paired again.

mod backoff;
mod reset;
