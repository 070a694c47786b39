//! Black-box tests of the economy server live in `tests/`; this library
//! holds what they share with each other and with the benchmark harness.

pub mod cluster;
pub mod components;
pub mod database;
pub mod hostile;
