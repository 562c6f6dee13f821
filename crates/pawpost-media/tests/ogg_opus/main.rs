//! Stories of the files the validator must accept and those it must refuse.

mod real_files;
mod rejects;
mod round_trip;
mod support;
