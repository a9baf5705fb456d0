//! The system harness in a reduced form, so that it cannot rot: a second of load per endpoint at
//! four connections, on the tests' `fixd` build. It checks that every section runs and every
//! request is answered, never a timing.

use std::process::Command;

#[test]
fn the_api_section_answers_every_request_and_prints_its_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_fixd-bench"))
        .args(["--seconds", "1", "--connections", "4", "--challenge-secs", "15"])
        .env("FIXD_BIN", fixd_testkit::harness::fixd_bin())
        .output()
        .expect("fixd-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "fixd-bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr).lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    let rows: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("| settlement") || l.starts_with("| status")).collect();
    assert_eq!(rows.len(), 4, "one row per endpoint:\n{stdout}");
    for row in rows {
        let rate: f64 = row.split('|').nth(3).unwrap().trim().parse().unwrap();
        assert!(rate > 0.0, "{row}");
    }
}
