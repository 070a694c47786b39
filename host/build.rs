//! Builds the default rules component (`economy-core`) for `wasm32-wasip2`
//! so the host can embed it. The nested cargo uses its own target directory
//! (the outer build holds a lock on ours) and the workspace's `guest` profile.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace root");
    for watched in ["wit", "economy-core/src", "economy-core/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("guest");
    let wasm = build_guest(root, "economy-core", &target_dir);
    println!("cargo:rustc-env=ECONOMY_CORE_WASM={}", wasm.display());
}

fn build_guest(root: &Path, package: &str, target_dir: &Path) -> PathBuf {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--package",
            package,
            "--target",
            "wasm32-wasip2",
            "--profile",
            "guest",
        ])
        .arg("--target-dir")
        .arg(target_dir);
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
        "building the {package} component failed; is the target installed? (rustup target add wasm32-wasip2)"
    );
    target_dir
        .join("wasm32-wasip2/guest")
        .join(format!("{}.wasm", package.replace('-', "_")))
}
