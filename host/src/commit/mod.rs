//! The commit protocol: a request reads what it needs of one player without
//! a lock ([`Snapshot`]), the rules run against what it read, and
//! everything they changed commits at once, guarded on what it changed
//! being as it was read ([`crate::storage::TenantStore::commit`]). A
//! conflict leaves nothing written and the request runs again on fresh
//! reads. No tenant code runs while a connection, a lock or SQLite's writer
//! is held. The host remembers the balances it committed, so a first
//! attempt need not read them.

mod remembered;
mod snapshot;

pub use remembered::Remembered;
pub use snapshot::{Snapshot, Source};
