//! The pure paths, each timed beside a baseline in the same run: `cargo bench -p fixd-bench`.
//! Criterion reports each benchmark; a table at the end gives each path's time, its rate where
//! one means something, and its ratio to its baseline (see `BENCHMARKS.md`).
//!
//! | path | baseline |
//! |---|---|
//! | `methodology::compute` on a replayed hour of four venues | sorting the same trades by price |
//! | BCS encoding and decoding of each gossip kind | the same message in JSON |
//! | proof-bundle verification at n = 7 and 31 | `verify_strict` of the bundle's signatures alone |
//! | the node's gossip validation of 1,000 distinct votes | `verify_strict` of each, and `verify_batch` of all, on their signed bytes |

// Figures for people to read: rates and ratios are floating point, nothing else is.
#![allow(clippy::float_arithmetic)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use alloy_primitives::B256;
use criterion::{Criterion, Throughput};
use ed25519_dalek::{Signature, VerifyingKey};
use fixd_bench::{Fixture, replayed_hour};
use fixd_node::network::validation::{FarRounds, ValidationContext, Verdict, verdict};
use fixd_proto::certify::verify_bundle;
use fixd_proto::gossip::GossipMessage;
use fixd_proto::signing::{Signed, VerifyItem, signing_bytes, verify_many};

/// Votes per ingest benchmark.
const VOTES: usize = 1_000;

/// A line of the summary: `path` against `baseline` (criterion ids, `group/function`), and how
/// many items one iteration handles (for a rate).
struct Row {
    what: String,
    path: String,
    baseline: String,
    items: u64,
}

fn main() {
    let mut c = Criterion::default()
        .output_directory(&output_dir())
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut rows = Vec::new();
    methodology(&mut c, &mut rows);
    encoding(&mut c, &mut rows);
    bundles(&mut c, &mut rows);
    ingest(&mut c, &mut rows);
    c.final_summary();
    print_table(&rows);
}

/// Where criterion writes its estimates (read back for the table).
fn output_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

fn methodology(c: &mut Criterion, rows: &mut Vec<Row>) {
    let (spec, trades) = replayed_hour();
    let mut group = c.benchmark_group("methodology");
    group.throughput(Throughput::Elements(trades.len() as u64));
    group.bench_function("compute_hour", |b| {
        b.iter(|| fixd_proto::methodology::compute(black_box(&spec), black_box(&trades)))
    });
    group.bench_function("sort_by_price", |b| {
        b.iter(|| {
            let mut sorted = black_box(&trades).clone();
            sorted.sort_unstable_by_key(|t| t.price);
            sorted
        })
    });
    group.finish();
    rows.push(Row {
        what: format!("methodology::compute, one hour of 4 venues ({} trades)", trades.len()),
        path: "methodology/compute_hour".into(),
        baseline: "methodology/sort_by_price".into(),
        items: trades.len() as u64,
    });
}

fn encoding(c: &mut Criterion, rows: &mut Vec<Row>) {
    let fixture = Fixture::new(7);
    let mut group = c.benchmark_group("bcs");
    for (kind, message) in fixture.every_kind() {
        let bytes = message.encode();
        let json = serde_json::to_vec(&message).expect("json");
        group.bench_function(format!("encode_{kind}"), |b| b.iter(|| black_box(&message).encode()));
        group.bench_function(format!("encode_json_{kind}"), |b| {
            b.iter(|| serde_json::to_vec(black_box(&message)).expect("json"))
        });
        group.bench_function(format!("decode_{kind}"), |b| {
            b.iter(|| GossipMessage::decode(black_box(&bytes)).expect("bcs"))
        });
        group.bench_function(format!("decode_json_{kind}"), |b| {
            b.iter(|| serde_json::from_slice::<GossipMessage>(black_box(&json)).expect("json"))
        });
        for step in ["encode", "decode"] {
            rows.push(Row {
                what: format!("BCS {step} {kind} ({} B; JSON {} B)", bytes.len(), json.len()),
                path: format!("bcs/{step}_{kind}"),
                baseline: format!("bcs/{step}_json_{kind}"),
                items: 1,
            });
        }
    }
    group.finish();
}

fn bundles(c: &mut Criterion, rows: &mut Vec<Row>) {
    let mut group = c.benchmark_group("bundle");
    for n in [7, 31] {
        let fixture = Fixture::new(n);
        let bundle = fixture.bundle();
        // The bundle's signatures alone: each observation, the proposal, each vote.
        let precommit = bundle.certificate.precommit();
        let mut signed: Vec<(fixd_proto::signing::PublicKey, fixd_proto::signing::Signature, Vec<u8>)> =
            bundle.observations.iter().map(|o| raw(o, &fixture.network_id)).collect();
        signed.push(raw(&bundle.certificate.proposal, &fixture.network_id));
        let vote_bytes = signing_bytes(&fixture.network_id, &precommit);
        signed.extend(bundle.certificate.votes.iter().map(|e| (e.signer, e.signature, vote_bytes.clone())));
        group.bench_function(format!("verify_n{n}"), |b| {
            b.iter(|| verify_bundle(black_box(&bundle)).expect("valid"))
        });
        group.bench_function(format!("signatures_n{n}"), |b| {
            b.iter(|| {
                for (signer, signature, bytes) in black_box(&signed) {
                    fixd_proto::signing::verify_one(signer, signature, bytes).expect("valid");
                }
            })
        });
        rows.push(Row {
            what: format!("proof bundle, n = {n} ({} signatures)", signed.len()),
            path: format!("bundle/verify_n{n}"),
            baseline: format!("bundle/signatures_n{n}"),
            items: 1,
        });
    }
    group.finish();
}

/// A signed message's signer, signature and signed bytes.
fn raw<T: fixd_proto::signing::Signable>(
    signed: &Signed<T>,
    network_id: &B256,
) -> (fixd_proto::signing::PublicKey, fixd_proto::signing::Signature, Vec<u8>) {
    (signed.signer, signed.signature, signing_bytes(network_id, &signed.payload))
}

fn ingest(c: &mut Criterion, rows: &mut Vec<Row>) {
    let fixture = Fixture::new(7);
    let votes = fixture.votes(VOTES);
    let encoded: Vec<Vec<u8>> = votes.iter().map(|v| GossipMessage::Vote(v.clone()).encode()).collect();
    let bytes: Vec<Vec<u8>> = votes.iter().map(|v| signing_bytes(&fixture.network_id, &v.payload)).collect();
    let keys: Vec<VerifyingKey> =
        votes.iter().map(|v| VerifyingKey::from_bytes(&v.signer.0.0).expect("key")).collect();
    let signatures: Vec<Signature> = votes.iter().map(|v| Signature::from_bytes(&v.signature.0.0)).collect();
    let far = FarRounds::new(16);
    let id = fixture.spec.id();
    let seen = |_: &B256| false;
    let known = |s: &B256| *s == id;
    let wanted = |_: &GossipMessage| Ok(fixd_decision::driver::Wanted::Now);
    let ctx = ValidationContext {
        network_id: &fixture.network_id,
        committee: &fixture.committee,
        now: fixture.spec.observe_at(),
        max_message_bytes: 65_536,
        max_clock_skew_secs: 5,
        topic: Some(fixd_node::network::messages::MessageKind::Vote),
        is_seen: &seen,
        is_known_settlement: &known,
        wanted: &wanted,
        far: &far,
    };
    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(VOTES as u64));
    group.bench_function("validate", |b| {
        b.iter(|| {
            for message in black_box(&encoded) {
                assert!(matches!(verdict(message, &ctx), Verdict::Accept(_)));
            }
        })
    });
    group.bench_function("verify_strict", |b| {
        b.iter(|| {
            for ((key, signature), message) in keys.iter().zip(&signatures).zip(black_box(&bytes)) {
                key.verify_strict(message, signature).expect("valid");
            }
        })
    });
    group.bench_function("verify_batch", |b| {
        b.iter(|| {
            let messages: Vec<&[u8]> = black_box(&bytes).iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&messages, &signatures, &keys).expect("valid")
        })
    });
    group.bench_function("verify_many", |b| {
        b.iter(|| {
            let items: Vec<VerifyItem<'_>> = votes
                .iter()
                .zip(black_box(&bytes))
                .map(|(v, message)| VerifyItem { signer: &v.signer, signature: &v.signature, message })
                .collect();
            assert!(verify_many(&items).iter().all(Result::is_ok));
        })
    });
    group.finish();
    for (what, path) in [
        ("gossip ingest: the node's validation", "ingest/validate"),
        ("gossip ingest: fixd's verify_many (batch, strict verdicts)", "ingest/verify_many"),
        ("gossip ingest: raw verify_strict", "ingest/verify_strict"),
    ] {
        rows.push(Row {
            what: format!("{what}, {VOTES} votes"),
            path: path.into(),
            baseline: "ingest/verify_batch".into(),
            items: VOTES as u64,
        });
    }
}

/// Criterion's mean estimate of `id` (`group/function`), nanoseconds per iteration.
fn mean_ns(id: &str) -> Option<f64> {
    let path = output_dir().join(id).join("new/estimates.json");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| path | time | per second | baseline | baseline time | path / baseline |");
    println!("|---|---:|---:|---|---:|---:|");
    for row in rows {
        let (Some(path), Some(baseline)) = (mean_ns(&row.path), mean_ns(&row.baseline)) else {
            println!("| {} | n/a (run without --test) | | {} | | |", row.what, row.baseline);
            continue;
        };
        let rate = row.items as f64 * 1e9 / path;
        println!(
            "| {} | {} | {} | {} | {} | {:.2} |",
            row.what,
            human(path),
            if row.items > 1 { format!("{rate:.0}/s") } else { format!("{:.0}/s", 1e9 / path) },
            row.baseline,
            human(baseline),
            path / baseline
        );
    }
}

/// Nanoseconds as ns, µs, ms or s.
fn human(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.2} µs", n / 1e3),
        n if n < 1e9 => format!("{:.2} ms", n / 1e6),
        n => format!("{:.2} s", n / 1e9),
    }
}
