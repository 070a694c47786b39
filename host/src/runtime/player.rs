//! Host side of `economy:plugin/player` and `economy:plugin/settings`: the
//! player's identity, the attributes the game server set on the player
//! (read once per call, inside the request's transaction), and the tenant's
//! module settings, as the request began.

use super::bindings::economy::plugin::{player, settings};
use super::state::{RequestState, storage};
use serde_json::{Map, Value};
use std::sync::Arc;

impl player::Host for RequestState {
    async fn identity(&mut self) -> wasmtime::Result<String> {
        self.charge_import()?;
        Ok(self.player.identity.clone())
    }

    async fn attribute(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge_import()?;
        if self.player.attributes.is_none() {
            let attributes = storage!(self.snapshot.attributes());
            self.player.attributes = Some(attributes);
        }
        Ok(self.player.attributes.as_ref().and_then(|attributes| attributes.get(&name)).map(ToString::to_string))
    }
}

impl settings::Host for RequestState {
    async fn setting(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.charge_import()?;
        Ok(self.player.settings.get(&name).map(ToString::to_string))
    }
}

/// What a call may learn of its player and tenant beyond the request
/// context.
#[derive(Clone, Debug, Default)]
pub struct PlayerContext {
    /// The player's identity as the game names it.
    pub identity: String,
    /// The tenant's module settings.
    pub settings: Arc<Map<String, Value>>,
    /// The player's attributes, once the guest asked for one.
    pub(crate) attributes: Option<Map<String, Value>>,
}

impl PlayerContext {
    pub fn new(identity: String, settings: Arc<Map<String, Value>>) -> Self {
        Self { identity, settings, attributes: None }
    }
}
