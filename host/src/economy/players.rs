//! Players and their sessions: the server opens sessions for the players it
//! names; a game client signs in with a custom id (a secret it keeps on the
//! device), which names a player of its own unless the server linked it.

use super::Economy;
use super::catalog::check_named_values;
use super::error::EconomyError;
use crate::domain::{CustomId, Identity};
use crate::secrets;
use crate::storage::{ApiKeyRecord, Attributes, Session, User};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use uuid::Uuid;

/// The longest session a server may ask for: 30 days.
pub const MAX_SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A session just opened; its token is shown only here.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct OpenedSession {
    pub session_token: String,
    pub expires_at: DateTime<Utc>,
    pub app_user_id: Uuid,
    /// The identity the server names the player by.
    pub identity: String,
}

/// A custom-id login: the session, and whether the login made the player.
#[derive(Clone, Debug)]
pub struct CustomLogin {
    pub session: OpenedSession,
    pub newly_created: bool,
}

impl Economy {
    /// The player `identity` of the tenant.
    pub async fn player(&self, tenant_id: Uuid, identity: &Identity) -> Result<User, EconomyError> {
        let found = self.tenant_store(tenant_id).await?.find_user(identity.as_str()).await?;
        found.ok_or_else(|| EconomyError::not_found("user"))
    }

    /// The attributes the game server set on the player `identity`.
    pub async fn attributes(&self, tenant_id: Uuid, identity: &Identity) -> Result<Attributes, EconomyError> {
        let user = self.player(tenant_id, identity).await?;
        Ok(self.tenant_store(tenant_id).await?.attributes(user.id).await?)
    }

    /// Replaces the attributes of the player `identity` (created if new),
    /// which rules modules read.
    pub async fn set_attributes(
        &self,
        tenant_id: Uuid,
        identity: &Identity,
        attributes: Attributes,
    ) -> Result<Attributes, EconomyError> {
        check_named_values("attributes", &attributes)?;
        let store = self.tenant_store(tenant_id).await?;
        let user = store.find_or_create_user(identity.as_str()).await?;
        store.set_attributes(&user, &attributes).await?;
        Ok(attributes)
    }

    /// The player of the tenant whose id (`app_user_id`) is `user_id`.
    pub async fn player_by_id(&self, tenant_id: Uuid, user_id: Uuid) -> Result<Option<User>, EconomyError> {
        Ok(self.tenant_store(tenant_id).await?.find_user_by_id(user_id).await?)
    }

    /// Opens a session for the player `identity`, creating the player if
    /// new; `ttl` defaults to the host's session lifetime.
    pub async fn open_session(
        &self,
        tenant_id: Uuid,
        identity: &Identity,
        ttl: Option<Duration>,
    ) -> Result<OpenedSession, EconomyError> {
        let ttl = ttl.unwrap_or(self.settings.session_ttl);
        if ttl.is_zero() || ttl > MAX_SESSION_TTL {
            return Err(EconomyError::Invalid(format!(
                "ttl_seconds must be between 1 and {}",
                MAX_SESSION_TTL.as_secs()
            )));
        }
        let user = self.tenant_store(tenant_id).await?.find_or_create_user(identity.as_str()).await?;
        self.new_session(&user, ttl).await
    }

    /// Signs a player in by custom id, unless the tenant turned that off;
    /// a custom id that names no player yet makes one if `create`, and is
    /// not found otherwise.
    pub async fn login_custom(
        &self,
        tenant_id: Uuid,
        custom_id: &CustomId,
        create: bool,
    ) -> Result<CustomLogin, EconomyError> {
        if !self.rules.for_tenant(tenant_id).await?.settings().custom_id_login {
            return Err(EconomyError::TurnedOff("custom-id login is turned off for this tenant"));
        }
        let store = self.tenant_store(tenant_id).await?;
        let hash = custom_id.hash();
        let (user, newly_created) = match create {
            true => store.custom_id_user(&hash).await?,
            false => (store.find_custom_id_user(&hash).await?.ok_or_else(|| EconomyError::not_found("player"))?, false),
        };
        Ok(CustomLogin { session: self.new_session(&user, self.settings.session_ttl).await?, newly_created })
    }

    /// Links a custom id to the player `identity`, so a custom-id login
    /// (e.g. on a new device) reaches that player. A custom id that already
    /// names another player is not moved.
    pub async fn link_custom_id(
        &self,
        tenant_id: Uuid,
        identity: &Identity,
        custom_id: &CustomId,
    ) -> Result<User, EconomyError> {
        let user = self.player(tenant_id, identity).await?;
        if !self.tenant_store(tenant_id).await?.link_custom_id(&user, &custom_id.hash()).await? {
            return Err(EconomyError::Conflict("a link of this custom id to another player".into()));
        }
        Ok(user)
    }

    async fn new_session(&self, user: &User, ttl: Duration) -> Result<OpenedSession, EconomyError> {
        let session_token = secrets::generate("es_");
        let expires_at = Utc::now() + chrono::Duration::from_std(ttl).map_err(EconomyError::internal)?;
        self.tenant_store(user.tenant_id)
            .await?
            .create_session(user, &secrets::hash(&session_token), expires_at)
            .await?;
        Ok(OpenedSession { session_token, expires_at, app_user_id: user.id, identity: user.identity.clone() })
    }
}

impl Economy {
    /// The record of an API key (given as its hash), if it is one.
    pub async fn api_key(&self, key_hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, EconomyError> {
        Ok(self.control.find_api_key(key_hash).await?)
    }

    /// The session of a token (given as its hash) in `tenant_id`, expired or
    /// not, if there is one.
    pub async fn session(&self, tenant_id: Uuid, token_hash: &[u8; 32]) -> Result<Option<Session>, EconomyError> {
        Ok(self.tenant_store(tenant_id).await?.find_session(token_hash).await?)
    }
}
