//! Builds the rules components the tests upload: the example modules and
//! the hostile ones. Their paths reach the tests as `*_WASM` variables.

fn main() {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().expect("tests/ sits in the workspace root");
    let packages = [
        "sale-pricing",
        "tiered-pricing",
        "vip-pricing",
        "hostile-rules",
        "wrong-world",
        "mistyped-rules",
        "legacy-rules",
    ];
    let watched = ["wit", "economy-core/src", "modules", "tests/modules"];
    for (package, wasm) in packages.iter().zip(build_support::build_components(root, &packages, &watched)) {
        println!("cargo:rustc-env={}_WASM={}", package.replace('-', "_").to_uppercase(), wasm.display());
    }
}
