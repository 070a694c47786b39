//! The storage conformance suite: what every storage backend must do, run
//! against each backend there is (the scenarios in `conformance.rs`, the
//! backends in `backends.rs`).

mod backends;
mod conformance;
