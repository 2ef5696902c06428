//! Golden files: output pinned in the repository, rewritten under `UPDATE_GOLDEN=1` and then
//! reviewed with `git diff`.

use std::path::Path;

use super::root;

/// Whether this run rewrites the golden files instead of comparing with them.
pub fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some()
}

/// Compare `got` with the golden file `path` (relative to the repository root), or rewrite it
/// when [`updating`]. `tests` names the tests that write it (a filter of the `it` binary, for
/// the hint on how to regenerate it). Err says where the texts first differ.
pub fn compare(path: &Path, got: &str, tests: &str) -> Result<(), String> {
    compare_with(path, got, tests, first_hunk)
}

/// [`compare`], showing a difference with `show(expected, got)`.
pub fn compare_with(
    path: &Path,
    got: &str,
    tests: &str,
    show: fn(&str, &str) -> String,
) -> Result<(), String> {
    let file = root().join(path);
    if updating() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, got).unwrap();
        return Ok(());
    }
    match std::fs::read_to_string(&file) {
        Ok(expected) if expected == got => Ok(()),
        Ok(expected) => Err(header(path, &expected, got, tests) + &show(&expected, got)),
        Err(e) => Err(format!(
            "{}: {e}\nCreate it with: UPDATE_GOLDEN=1 cargo test --test it {tests}",
            file.display()
        )),
    }
}

/// [`compare`], panicking with the hint.
pub fn check(path: impl AsRef<Path>, got: &str, tests: &str) {
    if let Err(hint) = compare(path.as_ref(), got, tests) {
        panic!("{hint}");
    }
}

/// A short, readable account of where two texts first differ: which file, how to regenerate
/// it, and the first hunk, with context.
pub fn diff_hint(path: &Path, expected: &str, got: &str, tests: &str) -> String {
    header(path, expected, got, tests) + &first_hunk(expected, got)
}

fn header(path: &Path, expected: &str, got: &str, tests: &str) -> String {
    format!(
        "the output differs from {} ({} lines expected, {} produced).\n\
         If the change is intended: UPDATE_GOLDEN=1 cargo test --test it {tests}, then review \
         `git diff {}`.\n",
        path.display(),
        expected.lines().count(),
        got.lines().count(),
        path.display()
    )
}

/// The first hunk in which `got` differs from `expected`, with context; for texts of any
/// length.
fn first_hunk(expected: &str, got: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let first = e
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(e.len().min(g.len()));
    // End of the first hunk: the nearest (i, j) from which three lines agree again
    // (or both texts end), searched within a window.
    const WINDOW: usize = 300;
    let agree = |i: usize, j: usize| {
        (0..3).all(|k| match (e.get(i + k), g.get(j + k)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => true,
            _ => false,
        })
    };
    let (ee, ge) = (0..=2 * WINDOW)
        .flat_map(|d| (0..=d).map(move |a| (first + a, first + d - a)))
        .find(|&(i, j)| i <= e.len() && j <= g.len() && agree(i, j))
        .unwrap_or((e.len(), g.len()));
    let mut out = format!(
        "First difference:\n@@ golden line {}, output line {} @@\n",
        first + 1,
        first + 1
    );
    for l in &e[first.saturating_sub(3)..first] {
        out.push_str(&format!("  {l}\n"));
    }
    const MAX: usize = 40;
    for (sign, lines) in [('-', &e[first..ee]), ('+', &g[first..ge])] {
        for l in lines.iter().take(MAX) {
            out.push_str(&format!("{sign} {l}\n"));
        }
        if lines.len() > MAX {
            out.push_str(&format!("{sign} ... {} more\n", lines.len() - MAX));
        }
    }
    for l in e[ee..].iter().take(3) {
        out.push_str(&format!("  {l}\n"));
    }
    out
}
