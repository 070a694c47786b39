//! The command line's own refusals (the scenarios it runs are tested with
//! the shared scenarios, in the workspace's tests).

use std::process::Command;

#[test]
fn a_missing_component_is_refused_with_its_path() {
    let output = Command::new(env!("CARGO_BIN_EXE_economy-runner"))
        .args(["no-such-module.wasm", "no-such-scenario.json"])
        .output()
        .expect("economy-runner runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no-such-module.wasm"), "{stderr}");
}
