//! Module calls per tenant. The host's instances are shared by every
//! tenant, so each tenant may hold at most its share of them at once: a
//! tenant over its share waits a bounded time for one of its own calls to
//! end, then is answered busy. A tenant's slow or numerous calls never make
//! another tenant's wait, unless the whole host is full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, timeout_at};

/// Tenants whose shares are kept; past it, the shares not in use are
/// forgotten (a share is only a count of calls in flight).
const KEPT_SHARES: usize = 10_000;

pub(crate) struct CallShares {
    host: Arc<Semaphore>,
    per_tenant: usize,
    wait: Duration,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

/// A call's place: one of its tenant's share and one of the host's.
pub(crate) struct Entered {
    _tenant: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

/// Why a call found no place in time.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Full {
    #[error("the tenant's {0} module calls in flight are its share of the host; retry shortly")]
    Tenant(usize),
    #[error("every instance of the host is in use; retry shortly")]
    Host,
}

impl CallShares {
    /// `host` instances in all, at most `per_tenant` of them for one tenant;
    /// a call waits at most `wait` for its place.
    pub(crate) fn new(host: usize, per_tenant: usize, wait: Duration) -> Self {
        Self {
            host: Arc::new(Semaphore::new(host)),
            per_tenant: per_tenant.clamp(1, host),
            wait,
            tenants: Mutex::default(),
        }
    }

    /// Waits for a place for a call of `tenant`: first in the tenant's own
    /// share, then in the host's.
    pub(crate) async fn enter(&self, tenant: &str) -> Result<Entered, Full> {
        let deadline = Instant::now() + self.wait;
        let share = self.share(tenant);
        let closed = |_| Full::Host;
        let tenant = match timeout_at(deadline, share.acquire_owned()).await {
            Ok(permit) => permit.map_err(closed)?,
            Err(_) => return Err(Full::Tenant(self.per_tenant)),
        };
        let host = match timeout_at(deadline, self.host.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(closed)?,
            Err(_) => return Err(Full::Host),
        };
        Ok(Entered { _tenant: tenant, _host: host })
    }

    fn share(&self, tenant: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().expect("call shares lock");
        if let Some(share) = tenants.get(tenant) {
            return share.clone();
        }
        if tenants.len() >= KEPT_SHARES {
            let per_tenant = self.per_tenant;
            tenants.retain(|_, share| Arc::strong_count(share) > 1 || share.available_permits() < per_tenant);
        }
        let share = Arc::new(Semaphore::new(self.per_tenant));
        tenants.insert(tenant.to_owned(), share.clone());
        share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_tenant_past_its_share_waits_then_is_refused_while_others_enter() {
        let shares = CallShares::new(4, 2, Duration::from_millis(50));
        let held = [shares.enter("a").await.unwrap(), shares.enter("a").await.unwrap()];
        assert!(matches!(shares.enter("a").await, Err(Full::Tenant(2))), "past its share");
        let others = [shares.enter("b").await.unwrap(), shares.enter("c").await.unwrap()];
        assert!(matches!(shares.enter("d").await, Err(Full::Host)), "the host is full");
        drop(held);
        assert!(shares.enter("a").await.is_ok(), "a place of its own came free");
        drop(others);
    }
}
