//! What a tenant's admin sees of its rules modules at work: the failures
//! of their calls, a dry run of a module before it is activated, and the
//! probation of a newly activated module, which is rolled back by itself
//! when it fails most of its first calls.

use super::Economy;
use super::error::EconomyError;
use crate::domain::Quantity;
use crate::rules::Rules;
use crate::runtime::{self, CallFailure, PriceQuote, RuleError};
use crate::storage::{ControlStore, ModuleEvent, ModuleEventKind, User};
use chrono::Utc;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How many calls a newly activated module is watched for.
const PROBATION_CALLS: u32 = 20;
/// A tenant's failures are recorded at most this often per host (all are
/// logged): a module failing every call under load must not turn each of
/// its requests into a write.
const FAILURE_RECORD_INTERVAL: Duration = Duration::from_secs(1);
/// How many events the admin's list shows.
const MODULE_EVENTS_SHOWN: i64 = 50;

/// A quote asked of a module that need not be active.
#[derive(Clone, Debug)]
pub struct DryRun {
    pub item_id: Uuid,
    pub currency_code: String,
    pub store_id: Option<Uuid>,
    pub quantity: Quantity,
    /// The player the quote is for (none: a player with no history).
    pub player: Option<User>,
}

/// What a module answered a dry run, and what the call cost.
#[derive(Debug)]
pub struct DryRunOutcome {
    pub module_sha256: String,
    pub fuel_used: Option<u64>,
    pub answer: DryRunAnswer,
}

#[derive(Debug)]
pub enum DryRunAnswer {
    Quoted(Quote),
    /// The rules refused (an error they return to callers).
    Refused(EconomyError),
    /// The module trapped or ran out of a limit: why.
    Failed(String),
}

/// A price quote, as the rules gave it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Quote {
    pub unit_price: i64,
    pub total: i64,
    pub purchasable: bool,
}

/// The calls of each tenant's module this host watches.
#[derive(Default)]
pub(super) struct ModuleWatch {
    tenants: Mutex<HashMap<Uuid, Watched>>,
    /// How many tenants have a module on probation: while none does, a
    /// successful call takes no lock.
    on_probation: AtomicUsize,
}

#[derive(Default)]
struct Watched {
    last_recorded: Option<Instant>,
    probation: Option<Probation>,
}

/// A newly activated module's first calls.
struct Probation {
    sha256: String,
    /// What was active before it (none: the built-in rules).
    previous: Option<String>,
    calls: u32,
    failures: u32,
}

/// How a module's call ended, as the watch counts it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ended {
    /// It answered (a refusal of the rules is an answer).
    Answered,
    /// It trapped or ran out of a limit.
    Failed,
    /// Its answer, already counted, failed the host's re-check: one more
    /// failure, not one more call.
    Rejected,
}

/// What a call's outcome asks of the service.
#[derive(Default)]
struct Verdict {
    record: bool,
    /// Put this module back (none: the built-in rules) in place of the
    /// failing one.
    roll_back_to: Option<Option<String>>,
    failures: u32,
    calls: u32,
}

impl ModuleWatch {
    /// Watches the first calls of `sha256`, just activated in place of
    /// `previous`.
    fn start_probation(&self, tenant_id: Uuid, sha256: &str, previous: Option<String>) {
        let mut tenants = self.tenants.lock().expect("module watch lock");
        let watched = tenants.entry(tenant_id).or_default();
        if watched.probation.is_none() {
            self.on_probation.fetch_add(1, Ordering::Relaxed);
        }
        watched.probation = Some(Probation { sha256: sha256.to_owned(), previous, calls: 0, failures: 0 });
    }

    fn end_probation(&self, tenant_id: Uuid) {
        let mut tenants = self.tenants.lock().expect("module watch lock");
        if let Some(watched) = tenants.get_mut(&tenant_id) {
            Self::end(&self.on_probation, watched);
        }
    }

    fn end(on_probation: &AtomicUsize, watched: &mut Watched) {
        if watched.probation.take().is_some() {
            on_probation.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts how a call of `sha256` ended.
    fn called(&self, tenant_id: Uuid, sha256: &str, ended: Ended) -> Verdict {
        let failed = ended != Ended::Answered;
        if !failed && self.on_probation.load(Ordering::Relaxed) == 0 {
            return Verdict::default();
        }
        let mut tenants = self.tenants.lock().expect("module watch lock");
        let watched = tenants.entry(tenant_id).or_default();
        let mut verdict = Verdict::default();
        if failed && watched.last_recorded.is_none_or(|at| at.elapsed() >= FAILURE_RECORD_INTERVAL) {
            watched.last_recorded = Some(Instant::now());
            verdict.record = true;
        }
        let Some(probation) = watched.probation.as_mut().filter(|probation| probation.sha256 == sha256) else {
            return verdict;
        };
        probation.calls += u32::from(ended != Ended::Rejected);
        probation.failures += u32::from(failed);
        (verdict.calls, verdict.failures) = (probation.calls, probation.failures);
        if probation.failures * 2 > PROBATION_CALLS {
            verdict.roll_back_to = Some(probation.previous.clone());
            Self::end(&self.on_probation, watched);
        } else if probation.calls >= PROBATION_CALLS {
            Self::end(&self.on_probation, watched);
        }
        verdict
    }
}

impl Economy {
    /// The guest's answer as the service's: its rule errors become theirs; a
    /// trap or an exhausted limit is `ModuleFailed`, recorded as the
    /// module's fault; a storage failure while it ran is the host's.
    pub(super) fn module_answer<T>(
        &self,
        tenant_id: Uuid,
        sha256: &str,
        operation: &'static str,
        result: Result<Result<T, RuleError>, CallFailure>,
    ) -> Result<T, EconomyError> {
        match result {
            Ok(answer) => {
                self.module_called(tenant_id, sha256, operation, Ended::Answered, None);
                answer.map_err(EconomyError::from)
            }
            Err(CallFailure::Module(failure)) => {
                tracing::error!(module = %sha256, error = %failure.message, fault = "module", "rules module failed");
                self.module_called(tenant_id, sha256, operation, Ended::Failed, Some(&failure.message));
                Err(EconomyError::ModuleFailed)
            }
            Err(CallFailure::Host(failure)) => {
                tracing::warn!(module = %sha256, error = %failure, fault = "host", "storage failed while the rules module ran");
                Err(failure.into())
            }
        }
    }

    /// A module that answered but broke the host's re-check.
    pub(super) fn module_misbehaved(
        &self,
        tenant_id: Uuid,
        sha256: &str,
        operation: &'static str,
        reason: &str,
    ) -> EconomyError {
        tracing::error!(module = %sha256, reason, fault = "module", "rules module returned an outcome the host refused");
        let reason = format!("the host refused its outcome: {reason}");
        self.module_called(tenant_id, sha256, operation, Ended::Rejected, Some(&reason));
        EconomyError::ModuleFailed
    }

    /// Records a failure for the admin (at most one a second per tenant),
    /// and rolls a module on probation back once most of its first calls
    /// have failed. Both happen after the request, which never waits on
    /// them nor fails with them: what fails is logged.
    fn module_called(
        &self,
        tenant_id: Uuid,
        sha256: &str,
        operation: &'static str,
        ended: Ended,
        failure: Option<&str>,
    ) {
        let verdict = self.watch.called(tenant_id, sha256, ended);
        let record = failure.filter(|_| verdict.record).map(|reason| ModuleEvent {
            id: Uuid::now_v7(),
            kind: ModuleEventKind::Failure,
            module_sha256: sha256.to_owned(),
            operation: Some(operation.to_owned()),
            reason: reason.to_owned(),
            created_at: Utc::now(),
        });
        if record.is_none() && verdict.roll_back_to.is_none() {
            return;
        }
        let (control, rules, sha256) = (self.control.clone(), self.rules.clone(), sha256.to_owned());
        tokio::spawn(async move {
            if let Some(event) = record
                && let Err(error) = control.record_module_event(tenant_id, &event).await
            {
                tracing::warn!(%error, module = %sha256, "recording a module failure failed");
            }
            if let Some(previous) = verdict.roll_back_to.clone() {
                roll_back(control.as_ref(), &rules, tenant_id, &sha256, previous, &verdict).await;
            }
        });
    }

    /// Starts watching a module just activated in place of `previous`
    /// (none: the built-in rules); activating the built-in rules ends it.
    pub(super) fn watch_activation(&self, tenant_id: Uuid, sha256: Option<&str>, previous: Option<String>) {
        match sha256 {
            Some(sha256) if previous.as_deref() != Some(sha256) => {
                self.watch.start_probation(tenant_id, sha256, previous)
            }
            Some(_) => {}
            None => self.watch.end_probation(tenant_id),
        }
    }

    /// The tenant's latest module events, newest first.
    pub async fn module_events(&self, tenant_id: Uuid) -> Result<Vec<ModuleEvent>, EconomyError> {
        Ok(self.control.module_events(tenant_id, MODULE_EVENTS_SHOWN).await?)
    }

    /// Quotes with module `sha256` of the tenant (one it uploaded, active
    /// or not, or the built-in rules), on a snapshot of the player that is
    /// never committed: nothing is written, and the call's outcome counts
    /// for nothing.
    pub async fn dry_run(&self, tenant_id: Uuid, sha256: &str, run: &DryRun) -> Result<DryRunOutcome, EconomyError> {
        let builtin = self.rules.runtime().default_module();
        let module = match builtin.sha256 == sha256 {
            true => builtin,
            false => self.rules.uploaded_module(tenant_id, sha256).await?,
        };
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let user = run.player.clone().unwrap_or(User { id: Uuid::nil(), tenant_id, identity: String::new() });
        let store = self.tenant_store(tenant_id).await?;
        let snapshot = self.snapshot(&store, &tenant, &user, false, true);
        let request = runtime::PurchaseRequest {
            item_id: run.item_id.to_string(),
            currency_code: run.currency_code.clone(),
            store_id: run.store_id.map(|id| id.to_string()),
            quantity: run.quantity.get(),
        };
        let call = runtime::Call { module: &module, ..tenant.call(&user, Uuid::now_v7()) };
        let invocation = self.rules.runtime().quote(call, snapshot, request).await;
        let answer = match invocation.result {
            Ok(Ok(PriceQuote { unit_price, total, purchasable })) => {
                DryRunAnswer::Quoted(Quote { unit_price, total, purchasable })
            }
            Ok(Err(refusal)) => DryRunAnswer::Refused(refusal.into()),
            Err(CallFailure::Module(failure)) => DryRunAnswer::Failed(failure.message),
            Err(CallFailure::Host(failure)) => return Err(failure.into()),
        };
        Ok(DryRunOutcome { module_sha256: module.sha256.clone(), fuel_used: invocation.fuel_used, answer })
    }

    /// A dry run of `sha256` on the tenant's first priced item (by key),
    /// the sample an upload answers with; none if no item has a price.
    pub(super) async fn sample_run(&self, tenant_id: Uuid, sha256: &str) -> Result<Option<Sample>, EconomyError> {
        let tenant = self.rules.for_tenant(tenant_id).await?;
        let mut items: Vec<_> = tenant.catalog.items().filter(|item| !item.prices.is_empty()).collect();
        items.sort_by(|a, b| a.key.cmp(&b.key));
        let Some(item) = items.first() else { return Ok(None) };
        let run = DryRun {
            item_id: item.id,
            currency_code: item.prices[0].currency_code.clone(),
            store_id: None,
            quantity: Quantity::try_from(1).map_err(EconomyError::internal)?,
            player: None,
        };
        let outcome = self.dry_run(tenant_id, sha256, &run).await?;
        Ok(Some(Sample { item_key: item.key.clone(), currency_code: run.currency_code, outcome }))
    }
}

/// The call an upload makes to show what a module costs.
#[derive(Debug)]
pub struct Sample {
    pub item_key: String,
    pub currency_code: String,
    pub outcome: DryRunOutcome,
}

/// Puts `previous` back in place of the failing `sha256`, unless the admin
/// has activated something else meanwhile, and records that it did.
async fn roll_back(
    control: &dyn ControlStore,
    rules: &Rules,
    tenant_id: Uuid,
    sha256: &str,
    previous: Option<String>,
    verdict: &Verdict,
) {
    match control.replace_active_module(tenant_id, sha256, previous.as_deref()).await {
        Ok(true) => {}
        Ok(false) => return,
        Err(error) => {
            tracing::error!(%error, module = %sha256, "rolling back a failing module failed");
            return;
        }
    }
    // Applied here before it is told: once the admin sees the rollback, this
    // host runs the restored rules.
    if let Err(error) = rules.refresh(&[tenant_id]).await {
        tracing::warn!(%error, "applying a module rollback on this host failed; the next refresh will");
    }
    let restored = previous.as_deref().unwrap_or("the built-in rules");
    let Verdict { failures, calls, .. } = verdict;
    tracing::warn!(module = %sha256, restored, failures, calls, "rolled back a newly activated module that kept failing");
    let event = ModuleEvent {
        id: Uuid::now_v7(),
        kind: ModuleEventKind::RolledBack,
        module_sha256: sha256.to_owned(),
        operation: None,
        reason: format!("failed {failures} of its first {calls} calls; {restored} put back"),
        created_at: Utc::now(),
    };
    if let Err(error) = control.record_module_event(tenant_id, &event).await {
        tracing::warn!(%error, module = %sha256, "recording a module rollback failed");
    }
}
