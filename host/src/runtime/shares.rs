//! Module calls per tenant. The host's instances and cores are shared by
//! every tenant, so each tenant may hold at most its share of the instances
//! at once, and, while other tenants have calls too, its calls may run on
//! the host's cores at most its share of each second (a tenant alone may
//! use them all). A tenant past either waits a bounded time (for one of its
//! own calls to end, or for its time to come back), then is answered busy.
//! A tenant's slow, numerous or costly calls never make another tenant
//! wait, unless the whole host is full.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep_until, timeout_at};

/// Tenants whose shares are kept; past it, the shares not in use are
/// forgotten (with any time they owed).
const KEPT_SHARES: usize = 10_000;
/// How recently another tenant must have entered a call for a tenant's
/// calls to be held to their share of the cores.
const CONTENDED_WITHIN: Duration = Duration::from_secs(1);

pub(crate) struct CallShares {
    host: Arc<Semaphore>,
    per_tenant: usize,
    /// Time on the host's cores one tenant's calls may take per second;
    /// they may save up at most a second's worth.
    cpu_per_second: Duration,
    wait: Duration,
    tenants: Mutex<HashMap<String, Arc<TenantShare>>>,
    latest: Arc<Mutex<Latest>>,
}

/// The last two tenants to enter a call, the latest first, and when.
type Latest = [Option<(Arc<TenantShare>, Instant)>; 2];

struct TenantShare {
    calls: Arc<Semaphore>,
    cpu: Mutex<Credit>,
}

/// A tenant's time left on the host's cores: negative once its calls have
/// run past it; it comes back at the tenant's rate.
struct Credit {
    seconds: f64,
    at: Instant,
}

/// A call's place: one of its tenant's share and one of the host's. The
/// time the call ran is charged to its tenant with [`Entered::ran`], if
/// another tenant had calls too.
pub(crate) struct Entered {
    share: Arc<TenantShare>,
    latest: Arc<Mutex<Latest>>,
    at: Instant,
    _tenant: OwnedSemaphorePermit,
    _host: OwnedSemaphorePermit,
}

/// Why a call found no place in time.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Full {
    #[error("the tenant's {0} module calls in flight are its share of the host; retry shortly")]
    Tenant(usize),
    #[error("the tenant's module calls used their share of the host's cores ({0:?} a second); retry shortly")]
    Cores(Duration),
    #[error("every instance of the host is in use; retry shortly")]
    Host,
}

impl CallShares {
    /// `host` instances in all, at most `per_tenant` of them for one tenant,
    /// whose calls may run `cpu_per_second` on the host's cores each second;
    /// a call waits at most `wait` for its place.
    pub(crate) fn new(host: usize, per_tenant: usize, cpu_per_second: Duration, wait: Duration) -> Self {
        Self {
            host: Arc::new(Semaphore::new(host)),
            per_tenant: per_tenant.clamp(1, host),
            cpu_per_second,
            wait,
            tenants: Mutex::default(),
            latest: Arc::default(),
        }
    }

    /// Waits for a place for a call of `tenant`: first for the tenant's
    /// time on the cores, then a place in its own share, then in the host's.
    pub(crate) async fn enter(&self, tenant: &str) -> Result<Entered, Full> {
        let deadline = Instant::now() + self.wait;
        let share = self.share(tenant);
        let contended = self.contended(&share);
        if let Some(owed) = share.owed(self.cpu_per_second).filter(|_| contended) {
            let until = Instant::now() + owed;
            if until > deadline {
                return Err(Full::Cores(self.cpu_per_second));
            }
            sleep_until(until).await;
        }
        let closed = |_| Full::Host;
        let tenant = match timeout_at(deadline, share.calls.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(closed)?,
            Err(_) => return Err(Full::Tenant(self.per_tenant)),
        };
        let host = match timeout_at(deadline, self.host.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(closed)?,
            Err(_) => return Err(Full::Host),
        };
        let latest = self.latest.clone();
        Ok(Entered { share, latest, at: Instant::now(), _tenant: tenant, _host: host })
    }

    /// Notes that `share`'s tenant enters a call: whether another tenant
    /// entered one lately.
    fn contended(&self, share: &Arc<TenantShare>) -> bool {
        let now = Instant::now();
        let mut latest = self.latest.lock().expect("latest tenants lock");
        if !latest[0].as_ref().is_some_and(|(last, _)| Arc::ptr_eq(last, share)) {
            latest[1] = latest[0].take();
        }
        latest[0] = Some((share.clone(), now));
        latest[1].as_ref().is_some_and(|(_, at)| now.duration_since(*at) < CONTENDED_WITHIN)
    }

    fn share(&self, tenant: &str) -> Arc<TenantShare> {
        let mut tenants = self.tenants.lock().expect("call shares lock");
        if let Some(share) = tenants.get(tenant) {
            return share.clone();
        }
        if tenants.len() >= KEPT_SHARES {
            tenants.retain(|_, share| Arc::strong_count(share) > 1);
        }
        let credit = Credit { seconds: self.cpu_per_second.as_secs_f64(), at: Instant::now() };
        let share = Arc::new(TenantShare { calls: Arc::new(Semaphore::new(self.per_tenant)), cpu: Mutex::new(credit) });
        tenants.insert(tenant.to_owned(), share.clone());
        share
    }
}

impl TenantShare {
    /// How long until the tenant's time on the cores is no longer negative,
    /// if it is now.
    fn owed(&self, per_second: Duration) -> Option<Duration> {
        let mut credit = self.cpu.lock().expect("credit lock");
        let now = Instant::now();
        let rate = per_second.as_secs_f64();
        credit.seconds = (credit.seconds + now.duration_since(credit.at).as_secs_f64() * rate).min(rate);
        credit.at = now;
        (credit.seconds < 0.0).then(|| Duration::from_secs_f64(-credit.seconds / rate.max(f64::EPSILON)))
    }
}

impl Entered {
    /// Charges the call's time on the cores to its tenant, if another
    /// tenant entered a call while it ran or shortly before.
    pub(crate) fn ran(&self, on_cores: Duration) {
        let latest = self.latest.lock().expect("latest tenants lock");
        let others = latest.iter().flatten().filter(|(tenant, _)| !Arc::ptr_eq(tenant, &self.share));
        if others.into_iter().any(|(_, at)| *at + CONTENDED_WITHIN > self.at) {
            self.share.cpu.lock().expect("credit lock").seconds -= on_cores.as_secs_f64();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_tenant_past_its_share_waits_then_is_refused_while_others_enter() {
        let shares = CallShares::new(4, 2, SECOND, Duration::from_millis(50));
        let held = [shares.enter("a").await.unwrap(), shares.enter("a").await.unwrap()];
        assert!(matches!(shares.enter("a").await, Err(Full::Tenant(2))), "past its share");
        let others = [shares.enter("b").await.unwrap(), shares.enter("c").await.unwrap()];
        assert!(matches!(shares.enter("d").await, Err(Full::Host)), "the host is full");
        drop(held);
        assert!(shares.enter("a").await.is_ok(), "a place of its own came free");
        drop(others);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tenant_whose_calls_ran_past_its_time_waits_for_it_to_come_back() {
        let per_second = Duration::from_millis(100);
        let shares = CallShares::new(4, 2, per_second, Duration::from_millis(500));
        // Alone, a tenant's calls take what they need.
        shares.enter("a").await.unwrap().ran(Duration::from_secs(10));
        assert!(shares.enter("a").await.is_ok(), "alone, nothing is owed");
        // Beside another tenant: a second's worth (100 ms) saved up, then
        // 300 ms more: 300 ms owed, three seconds at 100 ms a second.
        shares.enter("b").await.unwrap();
        shares.enter("a").await.unwrap().ran(Duration::from_millis(400));
        assert!(matches!(shares.enter("a").await, Err(Full::Cores(_))), "owing more than it may wait");
        assert!(shares.enter("b").await.is_ok(), "another tenant's time is its own");
        tokio::time::advance(Duration::from_millis(2_600)).await;
        shares.enter("b").await.unwrap();
        let started = Instant::now();
        assert!(shares.enter("a").await.is_ok(), "owing less than it may wait");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(390) && waited < Duration::from_millis(450), "{waited:?}");
    }
}
