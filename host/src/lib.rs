//! The economy server: HTTP in front (`http`), the rules component run by
//! wasmtime (`runtime`), PostgreSQL behind a storage trait (`storage`).
//! A purchase flows HTTP → host → rules export → storage imports → one
//! database transaction → response.

pub mod catalog;
pub mod config;
pub mod domain;
pub mod economy;
pub mod http;
pub mod rules;
pub mod runtime;
pub mod secrets;
pub mod startup;
pub mod storage;
pub mod telemetry;
