//! The API suite again, against the embedded SQLite store: the same files,
//! built as a second test binary (see `helpers::backend`).

#[path = "../api/admin.rs"]
mod admin;
#[path = "../api/attributes.rs"]
mod attributes;
#[path = "../api/auth.rs"]
mod auth;
#[path = "../api/bundles.rs"]
mod bundles;
#[path = "../api/concurrency.rs"]
mod concurrency;
#[path = "../api/consume.rs"]
mod consume;
#[path = "../api/fairness.rs"]
mod fairness;
#[path = "../api/helpers.rs"]
mod helpers;
#[path = "../api/idempotency.rs"]
mod idempotency;
#[path = "../api/ledger.rs"]
mod ledger;
#[path = "../api/module_watch.rs"]
mod module_watch;
#[path = "../api/modules.rs"]
mod modules;
#[path = "../api/openapi.rs"]
mod openapi;
#[path = "../api/playfab.rs"]
mod playfab;
#[path = "../api/playfab_economy.rs"]
mod playfab_economy;
#[path = "../api/purchase.rs"]
mod purchase;
#[path = "../api/scenarios.rs"]
mod scenarios;
#[path = "../api/sverse.rs"]
mod sverse;
#[path = "../api/tenants.rs"]
mod tenants;
#[path = "../api/transport.rs"]
mod transport;
#[path = "../api/wallet.rs"]
mod wallet;
