//! Black-box tests of the economy server live in `tests/`; this library
//! holds what they share with the benchmark harness.

pub mod cluster;
