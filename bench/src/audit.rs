//! Conservation, checked after the load against the database itself: every
//! acknowledged purchase debited exactly once, every balance equal to its
//! ledger, nothing negative.

use crate::load::Run;
use crate::server::{INITIAL_GEMS, Shop};
use anyhow::ensure;
use economy_tests::database::TestPool;
use std::collections::BTreeMap;

/// Gems the clients saw charged, per player identity.
#[derive(Default)]
pub struct Expected {
    charged: BTreeMap<String, i64>,
    purchases: u64,
}

impl Expected {
    /// Counts a run's purchases and charges.
    pub fn add(&mut self, run: &Run) {
        self.purchases += run.purchases;
        for (identity, charged) in &run.charged {
            *self.charged.entry(identity.clone()).or_default() += charged;
        }
    }
}

/// Checks the bench tenant's players (other tenants may share its database).
pub async fn check(pool: &TestPool, shop: &Shop, expected: &Expected) -> anyhow::Result<()> {
    let rows: Vec<(String, i64)> = pool
        .rows(
            "SELECT u.identity, b.balance FROM users u JOIN balances b ON b.user_id = u.id AND b.currency_code = 'gems'
             WHERE u.tenant_id = (SELECT id FROM tenants WHERE slug = 'bench')",
        )
        .await;
    let mut mismatched = 0;
    for (identity, balance) in &rows {
        let charged = expected.charged.get(identity).copied().unwrap_or(0);
        if INITIAL_GEMS - balance != charged {
            mismatched += 1;
        }
    }
    let ledger_mismatches: i64 = pool
        .scalar(
            "SELECT count(*) FROM balances b WHERE b.balance <> (SELECT COALESCE(sum(delta), 0) FROM ledger l
             WHERE l.user_id = b.user_id AND l.currency_code = b.currency_code)
             AND b.user_id IN (SELECT id FROM users WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'bench'))",
        )
        .await;
    let negative: i64 = pool
        .scalar(
            "SELECT (SELECT count(*) FROM balances WHERE balance < 0) + (SELECT count(*) FROM inventory WHERE quantity < 0)",
        )
        .await;
    let recorded: i64 = pool
        .scalar(
            "SELECT count(*) FROM purchases
             WHERE user_id IN (SELECT id FROM users WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'bench'))",
        )
        .await;
    println!(
        "\nconservation: {} players, {} acknowledged purchases, {} recorded; {} balances off their acknowledged charges, \
         {} balances off their ledger, {} negative",
        shop.spread.len() + shop.hot.len(),
        expected.purchases,
        recorded,
        mismatched,
        ledger_mismatches,
        negative
    );
    ensure!(mismatched == 0, "{mismatched} balances differ from what the clients were charged");
    ensure!(ledger_mismatches == 0 && negative == 0, "ledger or sign invariant broken");
    ensure!(recorded as u64 == expected.purchases, "purchases recorded differ from purchases acknowledged");
    Ok(())
}
