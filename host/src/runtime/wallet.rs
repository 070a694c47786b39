//! Host side of `economy:plugin/wallet`: the user's balances.

use super::bindings::economy::plugin::wallet::{Host, WalletError};
use super::bindings::types::LedgerReason as WitReason;
use super::state::{RequestState, storage};
use crate::domain::MAX_AMOUNT;
use crate::storage::{LedgerReason, WalletRefusal};

/// The longest ledger reference a guest may write.
const MAX_REFERENCE_CHARS: usize = 128;

impl Host for RequestState {
    async fn balance(&mut self, currency_code: String) -> wasmtime::Result<Option<i64>> {
        self.charge_import()?;
        Ok(storage!(self.snapshot.balance(&currency_code)))
    }

    async fn debit(
        &mut self,
        code: String,
        amount: i64,
        reason: WitReason,
        reference: String,
    ) -> wasmtime::Result<Result<i64, WalletError>> {
        self.change(code, amount, true, reason, reference).await
    }

    async fn credit(
        &mut self,
        code: String,
        amount: i64,
        reason: WitReason,
        reference: String,
    ) -> wasmtime::Result<Result<i64, WalletError>> {
        self.change(code, amount, false, reason, reference).await
    }
}

impl RequestState {
    async fn change(
        &mut self,
        code: String,
        amount: i64,
        debit: bool,
        reason: WitReason,
        reference: String,
    ) -> wasmtime::Result<Result<i64, WalletError>> {
        self.charge_change(if debit { "wallet.debit" } else { "wallet.credit" })?;
        if amount <= 0 || amount > MAX_AMOUNT {
            return Ok(Err(WalletError::InvalidAmount));
        }
        if reference.chars().count() > MAX_REFERENCE_CHARS {
            wasmtime::bail!("ledger reference longer than {MAX_REFERENCE_CHARS} characters");
        }
        let delta = if debit { -amount } else { amount };
        let refusal = match storage!(self.snapshot.change_balance(&code, delta, to_reason(reason), Some(&reference))) {
            Ok(balance_after) => {
                let entries = if debit { &mut self.journal.debits } else { &mut self.journal.credits };
                entries.push((code, amount));
                return Ok(Ok(balance_after));
            }
            Err(refusal) => refusal,
        };
        Ok(Err(match refusal {
            WalletRefusal::UnknownCurrency => WalletError::UnknownCurrency,
            WalletRefusal::InsufficientBalance => WalletError::InsufficientBalance,
            WalletRefusal::MaxBalanceExceeded => WalletError::MaxBalanceExceeded,
        }))
    }
}

fn to_reason(reason: WitReason) -> LedgerReason {
    match reason {
        WitReason::Purchase => LedgerReason::Purchase,
        WitReason::Grant => LedgerReason::Grant,
        WitReason::Consume => LedgerReason::Consume,
        WitReason::Recharge => LedgerReason::Recharge,
        WitReason::Refund => LedgerReason::Refund,
        WitReason::Admin => LedgerReason::Admin,
    }
}
