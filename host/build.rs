//! Builds the default rules component (`economy-core`) so the host can embed it.

fn main() {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("host/ sits in the workspace root");
    let [economy_core] = build_support::build_components(
        root,
        &["economy-core"],
        &["wit", "economy-core/src", "economy-core/Cargo.toml"],
    )
    .try_into()
    .expect("one component");
    println!("cargo:rustc-env=ECONOMY_CORE_WASM={}", economy_core.display());
}
