//! `economy-host module new NAME`: a rules module's own crate, outside any
//! workspace, ready to build (its release build is the small one the
//! server takes), to test locally (`economy-host module test`) and to
//! upload.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

const CARGO_TOML: &str = include_str!("../templates/module/Cargo.toml.template");
const CARGO_CONFIG: &str = include_str!("../templates/module/cargo-config.toml");
const GITIGNORE: &str = include_str!("../templates/module/gitignore");
const LIB_RS: &str = include_str!("../templates/module/lib.rs");
const SCENARIO: &str = include_str!("../templates/module/scenario.json");
const README: &str = include_str!("../templates/module/README.md");

/// Writes the crate `name` into `parent/name` (which must not exist) and
/// returns its folder. With `sdk`, the crate takes `economy-core` from that
/// folder (the SDK of the release artifacts) instead of crates.io.
pub fn new_module(parent: &Path, name: &str, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.len() <= 64;
    if !valid {
        bail!("a module's name is a crate name: lowercase letters, digits, - and _, starting with a letter");
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let patch = match sdk {
        Some(sdk) => {
            let sdk = sdk.canonicalize().with_context(|| format!("the SDK folder {}", sdk.display()))?;
            if !sdk.join("Cargo.toml").is_file() {
                bail!("{} holds no Cargo.toml: give the SDK's folder (dist/sdk/economy-core)", sdk.display());
            }
            let path = sdk.display().to_string().replace('\\', "/");
            format!(
                "\n# economy-core from the release artifacts' SDK, not crates.io.\n[patch.crates-io]\neconomy-core = {{ path = \"{path}\" }}\n"
            )
        }
        None => String::new(),
    };
    let fill = |template: &str| {
        template.replace("{{name}}", name).replace("{{file}}", &name.replace('-', "_")).replace("{{patch}}", &patch)
    };
    let files = [
        ("Cargo.toml", fill(CARGO_TOML)),
        (".cargo/config.toml", CARGO_CONFIG.to_owned()),
        (".gitignore", GITIGNORE.to_owned()),
        ("src/lib.rs", fill(LIB_RS)),
        ("scenarios/half-price.json", SCENARIO.to_owned()),
        ("README.md", fill(README)),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().context("a folder")?)?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(dir)
}
