//! Writes the documents lint is tested on as JSON files, for comparing with other tools
//! (docs/lint.md: the parliament comparison). Ignored by default; run:
//!
//! ```text
//! MLSPACE_POLICY_DUMP=target/policy-dump cargo test -p mlspace-policy --test dump -- --ignored
//! ```
//!
//! It writes `bundled/*.json` (the manifests' documents with placeholders resolved) and
//! `cases/CHECK.bad.json` / `cases/CHECK.good.json` (tests/cases) with `CHECK.lint.txt`
//! (what lint reports on the bad one), plus `kinds.tsv`
//! (file, kind) for tools that need to know the policy kind.

mod cases;
mod common;

use std::fmt::Write as _;
use std::path::PathBuf;

#[test]
#[ignore = "writes files; run by hand for tool comparisons"]
fn dump() {
    let Ok(dir) = std::env::var("MLSPACE_POLICY_DUMP") else {
        panic!("set MLSPACE_POLICY_DUMP to the directory to write");
    };
    let dir = PathBuf::from(dir);
    let mut kinds = String::new();
    let mut write =
        |sub: &str, name: &str, kind: mlspace_policy::PolicyKind, doc: &serde_json::Value| {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path).unwrap();
            let file = format!("{}.json", name.replace([' ', '/'], "-"));
            std::fs::write(path.join(&file), serde_json::to_string_pretty(doc).unwrap()).unwrap();
            writeln!(kinds, "{sub}/{file}\t{kind:?}").unwrap();
        };
    for (name, kind, doc) in common::bundled_documents() {
        write("bundled", name.trim_end_matches(".json"), kind, &doc);
    }
    for case in cases::cases() {
        write(
            "cases",
            &format!("{}.bad", case.check),
            case.kind,
            &case.bad,
        );
        write(
            "cases",
            &format!("{}.good", case.check),
            case.kind,
            &case.good,
        );
        let report: String = mlspace_policy::lint(&case.bad, case.kind)
            .iter()
            .filter(|f| f.check == case.check)
            .map(|f| format!("{}: {f}\n", f.pointer))
            .collect();
        std::fs::write(
            dir.join("cases").join(format!("{}.lint.txt", case.check)),
            report,
        )
        .unwrap();
    }
    std::fs::write(dir.join("kinds.tsv"), kinds).unwrap();
}
