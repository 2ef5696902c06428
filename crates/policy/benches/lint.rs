//! Speed of the catalogue load, lint and access delta.
//!
//! Run: `cargo bench -p mlspace-policy --bench lint`; figures go to docs/lint.md.
//! - catalogue/parse: parsing the embedded catalogue (done once per process).
//! - lint/manifests: lint of every policy document of `manifests/` (managed policies,
//!   trust policies, bucket policies), catalogue loaded.
//! - lint/5000-documents: 5,000 documents made from the bundled ones.
//! - delta/bundled-create: access delta of creating every bundled document.
//! - delta/bundled-rewritten: every bundled document against itself written differently.

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mlspace_policy::catalog::Catalogue;
use mlspace_policy::{access_delta, catalogue, lint, PolicyKind};
use serde_json::Value;

/// `n` documents cycling through the bundled ones, each with its names made distinct.
fn documents(n: usize) -> Vec<(PolicyKind, Value)> {
    let base = common::bundled_documents();
    (0..n)
        .map(|i| {
            let (_, kind, doc) = &base[i % base.len()];
            let text = doc.to_string().replace("mlspace", &format!("mlspace{i}"));
            (*kind, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let data = include_str!("../data/iam-catalog.tsv");
    let mut g = c.benchmark_group("catalogue");
    g.sample_size(20);
    g.bench_function("parse", |b| {
        b.iter(|| Catalogue::parse(black_box(data)).unwrap())
    });
    g.finish();
    catalogue();

    let manifests = common::bundled_documents();
    let mut g = c.benchmark_group("lint");
    g.sample_size(20);
    g.throughput(Throughput::Elements(manifests.len() as u64));
    g.bench_function("manifests", |b| {
        b.iter(|| {
            manifests
                .iter()
                .map(|(_, kind, doc)| lint(black_box(doc), *kind).len())
                .sum::<usize>()
        })
    });
    let many = documents(5_000);
    g.sample_size(10);
    g.throughput(Throughput::Elements(many.len() as u64));
    g.bench_function("5000-documents", |b| {
        b.iter(|| {
            many.iter()
                .map(|(kind, doc)| lint(black_box(doc), *kind).len())
                .sum::<usize>()
        })
    });
    g.finish();

    let rewritten: Vec<(Value, Value)> = manifests
        .iter()
        .filter(|(_, kind, _)| matches!(kind, PolicyKind::Identity | PolicyKind::Boundary))
        .map(|(_, _, doc)| (doc.clone(), common::rewrite(doc)))
        .collect();
    let mut g = c.benchmark_group("delta");
    g.sample_size(20);
    g.bench_function("bundled-create", |b| {
        b.iter(|| {
            manifests
                .iter()
                .map(|(_, _, doc)| access_delta(None, Some(black_box(doc))).added.len())
                .sum::<usize>()
        })
    });
    g.bench_function("bundled-rewritten", |b| {
        b.iter(|| {
            rewritten
                .iter()
                .map(|(a, b)| {
                    access_delta(Some(black_box(a)), Some(black_box(b)))
                        .added
                        .len()
                })
                .sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
