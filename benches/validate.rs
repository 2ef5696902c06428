//! Validation speed: load, template and validate (lint included: every policy document
//! against the IAM catalogue, every role's escalation paths) the bundled manifests and
//! generated sets of 1,000, 5,000 and 10,000 resources (policies, roles using them, buckets
//! and tables); and the access delta of creating the whole bundled set.
//! Run: `cargo bench --bench validate`; figures go to docs/benchmarks.md.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// Write a manifest set of `n` resources into `dir`.
pub fn generate(dir: &Path, n: usize) {
    let mut out = String::from(
        "apiVersion: mlspace-gitops/v1\nkind: Environment\nmetadata: {name: bench}\nspec:\n  region: us-east-1\n  account: \"123456789012\"\n  params: {KEY_ID: abc}\n  tags: {system: MLSpace}\n",
    );
    let quarter = n / 4;
    for i in 0..quarter {
        out.push_str(&format!(
            "---\napiVersion: mlspace-gitops/v1\nkind: ManagedPolicy\nmetadata: {{name: bench-policy-{i}}}\nspec:\n  path: /bench/\n  document:\n    Version: '2012-10-17'\n    Statement:\n      - Effect: Allow\n        Action: [s3:GetObject, s3:PutObject, kms:Decrypt]\n        Resource: ['arn:{{AWS_PARTITION}}:s3:::data-{{AWS_ACCOUNT}}/{i}/*', 'arn:{{AWS_PARTITION}}:kms:{{AWS_REGION}}:{{AWS_ACCOUNT}}:key/{{KEY_ID}}']\n        Condition: {{StringEquals: {{'aws:PrincipalTag/team': t{i}}}}}\n"
        ));
        out.push_str(&format!(
            "---\napiVersion: mlspace-gitops/v1\nkind: Role\nmetadata: {{name: bench-role-{i}}}\nspec:\n  assumeRolePolicy:\n    Version: '2012-10-17'\n    Statement:\n      - Effect: Allow\n        Principal: {{Service: sagemaker.amazonaws.com}}\n        Action: sts:AssumeRole\n  managedPolicies: [bench-policy-{i}, 'arn:aws:iam::aws:policy/ReadOnlyAccess']\n  permissionsBoundary: bench-policy-0\n  inlinePolicies:\n    logs: {{Version: '2012-10-17', Statement: [{{Effect: Allow, Action: 'logs:*', Resource: '*'}}]}}\n"
        ));
        out.push_str(&format!(
            "---\napiVersion: mlspace-gitops/v1\nkind: Bucket\nmetadata: {{name: 'bench-{i}-{{AWS_ACCOUNT}}'}}\nspec:\n  versioning: true\n  encryption: {{sseAlgorithm: AES256}}\n  publicAccessBlock: true\n"
        ));
        out.push_str(&format!(
            "---\napiVersion: mlspace-gitops/v1\nkind: Table\nmetadata: {{name: bench-table-{i}}}\nspec:\n  partitionKey: {{name: pk, type: S}}\n  sortKey: {{name: sk, type: S}}\n  globalSecondaryIndexes:\n    - {{name: ReverseLookup, partitionKey: {{name: sk, type: S}}, projection: {{type: KEYS_ONLY}}}}\n"
        ));
    }
    std::fs::write(dir.join("resources.yaml"), out).unwrap();
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("validate");
    g.sample_size(10);
    for n in [1_000usize, 5_000, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), n);
        let loaded =
            mlspace_gitops::manifest::load_dir(dir.path()).expect("generated set is valid");
        assert_eq!(loaded.desired.resources.len(), n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| mlspace_gitops::manifest::load_dir(dir.path()).unwrap())
        });
    }
    g.finish();
}

/// The bundled manifests: what `mlspace-gitops lint` does after reading the files, and the
/// access delta of every bundled resource from nothing (a create plan's).
fn bundled(c: &mut Criterion) {
    use mlspace_gitops::access::{resource_access, Side};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests");
    let mut g = c.benchmark_group("bundled");
    g.bench_function("lint", |b| {
        b.iter(|| mlspace_gitops::manifest::load_dir(&dir).unwrap())
    });
    let loaded = mlspace_gitops::manifest::load_dir(&dir).unwrap();
    let d = &loaded.desired;
    let at = mlspace_gitops::kinds::Place {
        partition: &d.environment.partition,
        account: &d.environment.account,
        region: &d.environment.region,
    };
    g.bench_function("access-delta-create", |b| {
        b.iter(|| {
            let new = Side::of_specs(
                d.resources
                    .iter()
                    .map(|r| (r.kind, r.name.as_str(), &r.spec)),
                at,
            );
            let old = Side::default();
            let mut n = 0;
            for r in &d.resources {
                n += resource_access(&(r.kind, r.name.clone()), &old, &new).len();
            }
            assert!(n > 0);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bundled);
criterion_main!(benches);
