//! Validation speed: load, template and validate generated manifest sets of 1,000, 5,000
//! and 10,000 resources (policies, roles using them, buckets and tables).
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

criterion_group!(benches, bench);
criterion_main!(benches);
