//! Builds rules components from a build script: a nested cargo for
//! `wasm32-wasip2` with the workspace's `guest` profile, in its own target
//! directory (the outer build holds the lock on the usual one).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `packages` of the workspace at `root` and returns each one's
/// `.wasm`, in order. Tells cargo to rerun when their sources change.
pub fn build_components(root: &Path, packages: &[&str], watched: &[&str]) -> Vec<PathBuf> {
    for path in watched {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let target_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("guests");
    let mut command = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "guest"])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["--package", package]);
    }
    // The outer build's flags and wrappers are for the host target, not the guest.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_MAKEFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("cargo runs");
    assert!(
        status.success(),
        "building {packages:?} for wasm32-wasip2 failed; is the target installed? (rustup target add wasm32-wasip2)"
    );
    packages
        .iter()
        .map(|package| target_dir.join("wasm32-wasip2/guest").join(format!("{}.wasm", package.replace('-', "_"))))
        .collect()
}
