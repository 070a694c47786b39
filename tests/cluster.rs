//! A PostgreSQL cluster of a test's (or a benchmark's) own: `initdb` into a temporary
//! directory and `pg_ctl` on a free port, so a test can stop and start a
//! tenant's database while the host runs. PostgreSQL's binaries come from
//! `ECONOMY_TEST_PG_BIN` (default: Debian's PostgreSQL 15); as root, they
//! run as the `postgres` user, since `initdb` refuses root.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Cluster {
    dir: PathBuf,
    port: u16,
}

fn bin(name: &str) -> String {
    let dir = std::env::var("ECONOMY_TEST_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{dir}/{name}")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as `postgres` when this is root.
fn run(program: &str, args: &[&str]) {
    let status = if is_root() {
        Command::new("runuser").args(["-u", "postgres", "--", &bin(program)]).args(args).status()
    } else {
        Command::new(bin(program)).args(args).status()
    };
    let status = status.unwrap_or_else(|error| panic!("running {program}: {error}"));
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

impl Cluster {
    /// Creates and starts a cluster on a free port.
    pub fn start() -> Self {
        static STARTED: AtomicU64 = AtomicU64::new(0);
        let nth = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("economy-cluster-{}-{nth}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a cluster directory");
        if is_root() {
            let owner = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
            assert!(owner.is_ok_and(|status| status.success()), "the cluster directory goes to postgres");
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = Self { dir, port };
        let data = cluster.data();
        run("initdb", &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
        cluster.resume();
        cluster
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// The URL of the cluster's `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the cluster (its connections are cut).
    pub fn stop(&self) {
        run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the cluster (again).
    pub fn resume(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.display());
        let log = self.dir.join("log").display().to_string();
        run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = if is_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--", &bin("pg_ctl"), "-D", &data, "-m", "immediate", "stop"])
                .output()
        } else {
            Command::new(bin("pg_ctl")).args(["-D", &data, "-m", "immediate", "stop"]).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
