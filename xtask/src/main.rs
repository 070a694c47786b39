//! `cargo xtask dist [DIR]`: the release artifacts of the rules, in `DIR`
//! (default `dist/`), for platforms that embed them and tenants that write
//! modules:
//!
//! - `economy_core.wasm`: the built-in rules, as the server runs them;
//! - `examples/*.wasm`: the example modules (`modules/`);
//! - `wit/`: the WIT package, the contract a component and its embedder
//!   share (`economy:plugin`, its version in `wit/world.wit`);
//! - `scenarios/`: the shared scenarios every embedder must pass;
//! - `sdk/`: the SDK of rules modules, `economy-core`, as the crate
//!   `cargo publish` would upload (`economy-core-<version>.crate`) and
//!   unpacked (`sdk/economy-core/`, for a module's `[patch.crates-io]`);
//! - `manifest.json` and `SHA256SUMS`: every file with its size and SHA-256.
//!
//! Components are built with the workspace's `guest` profile for
//! `wasm32-wasip2` (the target must be installed).

use anyhow::{Context, bail};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The example modules shipped with the built-in rules.
const EXAMPLES: &[&str] = &["sale-pricing", "tiered-pricing", "vip-pricing"];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dist") => {
            let root = workspace_root()?;
            let out = args.get(1).map_or_else(|| root.join("dist"), PathBuf::from);
            dist(&root, &out)
        }
        _ => bail!("usage: cargo xtask dist [DIR]"),
    }
}

fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest_dir.parent().context("xtask/ sits in the workspace root")?.to_owned())
}

fn dist(root: &Path, out: &Path) -> anyhow::Result<()> {
    let target = root.join("target/dist");
    let built = |package: &str| target.join("wasm32-wasip2/guest").join(format!("{}.wasm", package.replace('-', "_")));
    if out.exists() {
        std::fs::remove_dir_all(out).with_context(|| format!("clearing {}", out.display()))?;
    }
    // The built-in rules alone, and copied before the examples are built:
    // with them, the feature that exports the default rules would reach the
    // examples' copy too, and their build writes a `.wasm` of the library
    // without it over this one.
    build(root, &target, &["economy-core"])?;
    copy(&built("economy-core"), &out.join("economy_core.wasm"))?;
    build(root, &target, EXAMPLES)?;
    for example in EXAMPLES {
        copy(&built(example), &out.join("examples").join(format!("{}.wasm", example.replace('-', "_"))))?;
    }
    package_sdk(root, &target, out)?;
    for folder in ["wit", "scenarios"] {
        for entry in std::fs::read_dir(root.join(folder))? {
            let path = entry?.path();
            copy(&path, &out.join(folder).join(path.file_name().context("a file name")?))?;
        }
    }
    let mut files = Vec::new();
    collect(out, out, &mut files)?;
    files.sort();
    let mut sums = String::new();
    let mut manifest = Vec::new();
    for relative in &files {
        let bytes = std::fs::read(out.join(relative))?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        sums.push_str(&format!("{sha256}  {relative}\n"));
        manifest.push(json!({"path": relative, "bytes": bytes.len(), "sha256": sha256}));
        println!("{:>9} bytes  {relative}", bytes.len());
    }
    std::fs::write(out.join("SHA256SUMS"), sums)?;
    let manifest = json!({"version": env!("CARGO_PKG_VERSION"), "files": manifest});
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    println!("{} files in {}", files.len() + 2, out.display());
    Ok(())
}

/// `economy-core` as `cargo package` makes it (the `.crate` to publish),
/// and unpacked.
fn package_sdk(root: &Path, target: &Path, out: &Path) -> anyhow::Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["package", "--locked", "--no-verify", "--allow-dirty", "--package", "economy-core", "--target-dir"])
        .arg(target)
        .status()
        .context("running cargo package")?;
    if !status.success() {
        bail!("packaging economy-core failed");
    }
    let packaged = std::fs::read_dir(target.join("package"))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "crate"))
        .filter(|path| path.file_name().is_some_and(|name| name.to_string_lossy().starts_with("economy-core-")))
        .max_by_key(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .context("cargo package made no economy-core crate")?;
    let sdk = out.join("sdk");
    copy(&packaged, &sdk.join(packaged.file_name().context("a file name")?))?;
    let status = Command::new("tar").arg("-xzf").arg(&packaged).arg("-C").arg(&sdk).status().context("running tar")?;
    if !status.success() {
        bail!("unpacking {} failed", packaged.display());
    }
    let unpacked = sdk.join(packaged.file_stem().context("a file stem")?);
    std::fs::rename(&unpacked, sdk.join("economy-core"))?;
    Ok(())
}

fn build(root: &Path, target: &Path, packages: &[&str]) -> anyhow::Result<()> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root).args(["build", "--locked", "--target", "wasm32-wasip2", "--profile", "guest"]);
    command.arg("--target-dir").arg(target);
    for package in packages {
        command.args(["--package", package]);
    }
    let status = command.status().context("running cargo")?;
    if !status.success() {
        bail!(
            "building {packages:?} for wasm32-wasip2 failed; is the target installed? (rustup target add wasm32-wasip2)"
        );
    }
    Ok(())
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to.parent().context("a folder")?)?;
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Every file under `dir`, relative to `base`, with `/` separators.
fn collect(base: &Path, dir: &Path, files: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(base, &path, files)?;
        } else {
            let relative =
                path.strip_prefix(base)?.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>();
            files.push(relative.join("/"));
        }
    }
    Ok(())
}
