//! The economy server: HTTP in front (`http`), the economy service
//! (`economy`), the rules component run by wasmtime (`runtime`), and
//! PostgreSQL or embedded SQLite behind the storage traits (`storage`).
//! A purchase flows HTTP → economy service → rules export → storage
//! imports → one database transaction → response.

pub mod catalog;
pub mod commit;
pub mod config;
pub mod demo;
pub mod domain;
pub mod economy;
pub mod http;
pub mod rules;
pub mod runtime;
pub mod scaffold;
pub mod secrets;
pub mod startup;
pub mod storage;
pub mod telemetry;
