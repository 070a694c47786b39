//! Request rate limits, per tenant, counted on this host: a token bucket
//! for each player's writes and for each of the tenant's keys (see
//! [`RateLimits`]). Over a limit, a request is refused before it does
//! anything, with the time until the next one would be let through.

use super::Economy;
use super::error::EconomyError;
use crate::storage::{KeyKind, RateLimits, User};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Buckets kept at most; past it, the full ones (whose owners are idle) are
/// dropped, and if that is not enough, all: forgetting a bucket only lets
/// its owner start again with a full one.
const KEPT_BUCKETS: usize = 200_000;

/// Who a bucket counts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Counted {
    /// One of the tenant's keys (its players' PlayFab calls count on the
    /// client key).
    Key(Uuid, KeyKind),
    /// One player's writes.
    PlayerWrites(Uuid),
    /// A tenant's module uploads.
    Uploads(Uuid),
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
pub(super) struct RateLimiter {
    buckets: Mutex<HashMap<Counted, Bucket>>,
}

impl RateLimiter {
    /// Takes one token of `counted`'s bucket, which holds `burst` and fills
    /// at `per_second`; else how long until one is there.
    fn take(&self, counted: Counted, burst: f64, per_second: f64) -> Result<(), Duration> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() >= KEPT_BUCKETS && !buckets.contains_key(&counted) {
            buckets
                .retain(|_, bucket| bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second < burst);
            if buckets.len() >= KEPT_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets.entry(counted).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
    }
}

impl Economy {
    /// Lets a request made with `tenant_id`'s key of `kind` through, or
    /// refuses it over the tenant's limit.
    pub async fn admit_key(&self, tenant_id: Uuid, kind: KeyKind) -> Result<(), EconomyError> {
        let Some(limits) = self.rate_limits(tenant_id).await? else { return Ok(()) };
        let per_second = f64::from(limits.key_requests_per_second);
        let taken = self.limiter.take(Counted::Key(tenant_id, kind), per_second, per_second);
        taken.map_err(EconomyError::RateLimited)
    }

    /// Lets a write of `user` through, or refuses it over its tenant's
    /// limit.
    pub(super) async fn admit_write(&self, user: &User) -> Result<(), EconomyError> {
        let Some(limits) = self.rate_limits(user.tenant_id).await? else { return Ok(()) };
        let per_minute = f64::from(limits.player_writes_per_minute);
        let burst = (per_minute / 4.0).max(1.0);
        let taken = self.limiter.take(Counted::PlayerWrites(user.id), burst, per_minute / 60.0);
        taken.map_err(EconomyError::RateLimited)
    }

    /// Lets a module upload of `tenant_id` through, within the host's rate
    /// of uploads per tenant (whatever the tenant's own limits: each costs a
    /// compilation, tens of milliseconds of a core).
    pub(super) fn admit_upload(&self, tenant_id: Uuid) -> Result<(), EconomyError> {
        let per_minute = f64::from(self.settings.uploads_per_minute);
        let taken = self.limiter.take(Counted::Uploads(tenant_id), (per_minute / 2.0).max(1.0), per_minute / 60.0);
        taken.map_err(EconomyError::RateLimited)
    }

    async fn rate_limits(&self, tenant_id: Uuid) -> Result<Option<RateLimits>, EconomyError> {
        Ok(self.rules.for_tenant(tenant_id).await?.settings().rate_limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_then_its_rate() {
        let limiter = RateLimiter::default();
        let counted = Counted::PlayerWrites(Uuid::nil());
        for _ in 0..3 {
            assert!(limiter.take(counted, 3.0, 1.0).is_ok());
        }
        let wait = limiter.take(counted, 3.0, 1.0).expect_err("the burst is spent");
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.take(Counted::PlayerWrites(Uuid::max()), 3.0, 1.0).is_ok(), "another's bucket is its own");
        std::thread::sleep(Duration::from_millis(1_050));
        assert!(limiter.take(counted, 3.0, 1.0).is_ok(), "a second later, one more");
    }
}
