//! The system harness in a reduced form, so that it cannot rot, on the tests' `fixd` build: the
//! API section with a second of load per endpoint at four connections, the restart section with
//! 200 settlements stored, and the latency section with 100 settlements on seven members. It checks that every section runs, every request is
//! answered and every settlement is published alike on every node and on-chain, never a timing.

use std::process::Command;

#[test]
fn the_api_and_restart_sections_answer_every_request_and_print_their_tables() {
    let stdout = bench(&[
        "--sections",
        "api,restart",
        "--seconds",
        "1",
        "--connections",
        "4",
        "--challenge-secs",
        "15",
        "--stored",
        "200",
    ]);
    let rows: Vec<&str> =
        stdout.lines().filter(|l| l.starts_with("| settlement") || l.starts_with("| status")).collect();
    assert_eq!(rows.len(), 4, "one row per endpoint:\n{stdout}");
    for row in rows {
        let rate: f64 = row.split('|').nth(3).unwrap().trim().parse().unwrap();
        assert!(rate > 0.0, "{row}");
    }
    // The restart section: node-0 held 200 settlements, served its list, and came back.
    assert!(stdout.contains("## Restart with 200 settlements stored"), "{stdout}");
    for what in
        ["first page of `GET /v1/settlements`", "spawn → API serving", "spawn → following the network"]
    {
        assert!(stdout.lines().any(|l| l.starts_with(&format!("| {what}"))), "no {what} row:\n{stdout}");
    }
}

/// The latency section at n = 7 with 100 settlements, ten maturing each second: the harness
/// fails unless every settlement is certified and published once on all seven nodes with one
/// value, the value the contract holds (`latency::check_agreement`), in batches.
#[test]
fn the_latency_section_publishes_100_settlements_alike_on_seven_members() {
    let stdout =
        bench(&["--sections", "latency", "--nodes", "7", "--settlements", "100", "--per-second", "10"]);
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| 7 |"))
        .unwrap_or_else(|| panic!("no row for n = 7:\n{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(cells[2], "100", "{row}");
    // One fetch per venue per window: the 100 settlements share 10 windows, so node-0 asks a
    // venue far fewer than 100 times (a window takes a page or two, and retries).
    let (windows, requests): (usize, usize) = (cells[10].parse().unwrap(), cells[11].parse().unwrap());
    assert_eq!(windows, 10, "{row}");
    assert!(requests < 100, "node-0 sent {requests} requests to one venue for {windows} windows: {row}");
    // Batched publication: each member publishes the reports of its turns that are ready
    // together in one transaction, so the 100 settlements take fewer than 100.
    let transactions: usize = cells[12].parse().unwrap();
    assert!((1..100).contains(&transactions), "{transactions} publication transactions: {row}");
    for cell in &cells[3..10] {
        let figure: f64 = cell.split_whitespace().next().unwrap().parse().unwrap_or_else(|_| panic!("{row}"));
        assert!(figure.is_finite() && figure >= 0.0, "{row}");
    }
}

/// The burst section with 200 settlements maturing in one second on four members, whose
/// decisions run at most 40 at once: every one certified and published alike on every node,
/// node-0 never ran more than 40 decisions and held others back (waves), then node-0
/// restarted on its data directory still shows every one of them published and builds no
/// driver for them (`latency::restart_settled`).
#[test]
fn the_burst_section_settles_200_at_once_in_waves_and_a_restarted_member_still_shows_them() {
    let stdout = bench(&["--sections", "burst", "--burst", "200", "--max-running-decisions", "40"]);
    let burst = stdout
        .lines()
        .find(|l| l.starts_with("| 200 |") && l.contains(" MiB |") && l.split('|').count() == 11)
        .unwrap_or_else(|| panic!("no burst row for 200:\n{stdout}"));
    let cells: Vec<&str> = burst.split('|').map(str::trim).collect();
    let transactions: usize = cells[5].parse().unwrap_or_else(|_| panic!("{burst}"));
    assert!((1..200).contains(&transactions), "{transactions} publication transactions: {burst}");
    let (running, waiting): (u64, u64) = (
        cells[8].parse().unwrap_or_else(|_| panic!("{burst}")),
        cells[9].parse().unwrap_or_else(|_| panic!("{burst}")),
    );
    assert!((1..=40).contains(&running), "node-0 ran {running} decisions at once, at most 40: {burst}");
    assert!(waiting > 0, "the burst's decisions did not wait for room: {burst}");
    let restart = stdout
        .lines()
        .find(|l| l.starts_with("| 200 |") && l.split('|').count() == 7)
        .unwrap_or_else(|| panic!("no restart row for 200:\n{stdout}"));
    let cells: Vec<&str> = restart.split('|').map(str::trim).collect();
    let (serving, following): (f64, f64) = (
        cells[2].trim_end_matches(" ms").parse().unwrap_or_else(|_| panic!("{restart}")),
        cells[3].trim_end_matches(" ms").parse().unwrap_or_else(|_| panic!("{restart}")),
    );
    assert!(serving > 0.0 && following >= serving, "{restart}");
    // Every settlement is settled 64 blocks deep: the restarted member builds no driver for any
    // (it built one for each before it skipped the settled ones).
    assert_eq!(cells[5], "0", "drivers built after the restart: {restart}");
}

/// Runs `fixd-bench` with `args`, on the tests' `fixd`; its stdout, once it succeeded.
fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_fixd-bench"))
        .args(args)
        .env("FIXD_BIN", fixd_testkit::harness::fixd_bin())
        .output()
        .expect("fixd-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "fixd-bench {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr).lines().rev().take(40).collect::<Vec<_>>().join("\n")
    );
    stdout
}
