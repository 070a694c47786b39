//! What one tenant's database outage costs the others. The bench tenant
//! (in the server's default database) buys beside a second tenant whose
//! data lives in a PostgreSQL cluster of its own; then that cluster stops,
//! and both keep buying. The bench tenant's rate during the outage, against
//! its rate before, is the figure.

use crate::audit;
use crate::load::{self, Measurement, Op};
use crate::server::{Server, Shop};
use economy_tests::cluster::Cluster;
use std::time::Duration;

/// Players of the tenant whose database goes down.
const OTHER_PLAYERS: usize = 200;

pub async fn run(
    server: &Server,
    shop: &Shop,
    clients: usize,
    duration: Duration,
    rows: &mut Vec<Measurement>,
    ledger: &mut audit::Expected,
) -> anyhow::Result<()> {
    let cluster = Cluster::start();
    let other = server.set_up_tenant("other", Some(&cluster.url()), OTHER_PLAYERS).await?;
    // The other tenant's clients keep sending throughout, a quarter as many.
    let other_clients = (clients / 4).max(1);
    let mut rates = Vec::new();
    for (phase, stop_first) in [("before the outage", false), ("during the outage", true)] {
        if stop_first {
            cluster.stop();
        }
        let (ours, theirs) = tokio::join!(
            load::run(shop, &shop.spread, Op::Purchase, clients, duration),
            load::run(&other, &other.spread, Op::Purchase, other_clients, duration),
        );
        ledger.add(&ours);
        let measured = ours.measurement("economy-host", &format!("spread, {phase}"));
        rates.push(measured.throughput);
        rows.push(measured);
        println!("{}", rows.last().expect("a row"));
        rows.push(theirs.measurement("economy-host (tenant on its own database)", &format!("spread, {phase}")));
        println!("{}", rows.last().expect("a row"));
    }
    cluster.resume();
    println!("\nthe other tenants during the outage: {:.0}% of their rate before it", 100.0 * rates[1] / rates[0]);
    Ok(())
}
