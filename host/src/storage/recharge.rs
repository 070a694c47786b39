//! Regenerating balances, settled in memory: what accrued up to a moment,
//! by the rules the README states. A snapshot settles what it reads (its
//! commit writes the settled row with a `recharge` ledger entry), and
//! SQLite settles every balance this way when a recharge changes.

use super::{BalanceRow, RechargeTerms};
use chrono::{DateTime, TimeDelta, Utc};

/// A balance settled at a moment: the row to store, and what it gained.
#[derive(Debug, PartialEq, Eq)]
pub struct Settled {
    pub row: BalanceRow,
    pub gained: i64,
}

/// The balance `row` settled at `now`: below its max it gains `amount` for
/// each whole period its clock ran (up to the max); the clock advances by
/// those periods and stops (none) at the max. A clock starts no earlier
/// than the recharge's `since`. None if nothing changes.
pub fn settle(row: BalanceRow, terms: &RechargeTerms, now: DateTime<Utc>) -> Option<Settled> {
    let start = row.recharged_at.unwrap_or(terms.since).max(terms.since);
    let period_micros = terms.period_seconds.checked_mul(1_000_000)?;
    let periods = if row.balance >= terms.max {
        0
    } else {
        let elapsed = ((now - start).num_microseconds().unwrap_or(i64::MAX) / period_micros).max(0);
        elapsed.min((terms.max - row.balance + terms.amount - 1) / terms.amount)
    };
    let reached = row.balance + periods * terms.amount;
    // No more periods than the time elapsed holds: the product fits.
    let clock = (reached < terms.max).then(|| start + TimeDelta::microseconds(periods * period_micros));
    let stopped = (row.balance < terms.max).then_some(start);
    if periods == 0 && row.recharged_at == stopped {
        return None;
    }
    let balance = reached.min(terms.max.max(row.balance));
    Some(Settled { row: BalanceRow { balance, recharged_at: clock }, gained: balance - row.balance })
}

/// Where the clock of a regenerating balance stands after a change left it
/// at `balance`: it runs only below the max, from where it stood (or from
/// `now`, if it was stopped).
pub fn clock_after(
    balance: i64,
    clock: Option<DateTime<Utc>>,
    terms: &RechargeTerms,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    (balance < terms.max).then(|| clock.unwrap_or(now))
}

/// When the next recharge lands for a balance at `row`: one period after
/// its clock, for a balance below its max.
pub fn next_recharge_at(row: BalanceRow, terms: &RechargeTerms) -> Option<DateTime<Utc>> {
    let start = row.recharged_at.unwrap_or(terms.since).max(terms.since);
    (row.balance < terms.max).then(|| start + TimeDelta::seconds(terms.period_seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).expect("a time")
    }

    fn energy(balance: i64, recharged_at: Option<i64>) -> BalanceRow {
        BalanceRow { balance, recharged_at: recharged_at.map(at) }
    }

    const TERMS: RechargeTerms = RechargeTerms { amount: 2, period_seconds: 10, max: 5, since: DateTime::UNIX_EPOCH };

    #[test]
    fn a_balance_gains_whole_periods_up_to_its_max_and_its_clock_stops_there() {
        // 25 s: two whole periods, +4, and the clock moves on by 20 s.
        assert_eq!(settle(energy(0, Some(0)), &TERMS, at(25)), Some(Settled { row: energy(4, Some(20)), gained: 4 }));
        // The max is reached: the clock stops, and the balance stays at max.
        assert_eq!(settle(energy(4, Some(0)), &TERMS, at(100)), Some(Settled { row: energy(5, None), gained: 1 }));
        // Less than a period: nothing changes.
        assert_eq!(settle(energy(1, Some(0)), &TERMS, at(9)), None);
        // At or above max, a running clock stops without a gain.
        assert_eq!(settle(energy(7, Some(0)), &TERMS, at(100)), Some(Settled { row: energy(7, None), gained: 0 }));
        // A stopped clock below max starts at the recharge's `since`.
        let since = RechargeTerms { since: at(50), ..TERMS };
        assert_eq!(settle(energy(0, None), &since, at(55)), Some(Settled { row: energy(0, Some(50)), gained: 0 }));
    }

    #[test]
    fn a_change_runs_the_clock_only_below_the_max() {
        assert_eq!(clock_after(5, Some(at(3)), &TERMS, at(9)), None);
        assert_eq!(clock_after(4, Some(at(3)), &TERMS, at(9)), Some(at(3)));
        assert_eq!(clock_after(4, None, &TERMS, at(9)), Some(at(9)));
        assert_eq!(next_recharge_at(energy(4, Some(3)), &TERMS), Some(at(13)));
        assert_eq!(next_recharge_at(energy(5, None), &TERMS), None);
    }
}
