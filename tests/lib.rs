//! Black-box tests of the economy server live in `tests/`; this crate has
//! no code of its own.
