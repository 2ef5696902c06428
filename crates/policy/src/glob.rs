//! Wildcard patterns as IAM uses them (`*` any run, `?` one character), and the three
//! questions lint and access delta ask of them: does a pattern match a text, can two
//! patterns match a common text, and does one pattern match everything the other does.
//!
//! Patterns are sequences of tokens, each one character ([`Tok::One`]) or any run of
//! characters ([`Tok::Many`]) drawn from a [`Class`]. Besides IAM's own wildcards this
//! expresses the `${Name}` parts of the catalogue's ARN templates: one or more characters,
//! without `/` for names (such as a bucket name) that cannot hold one.
//!
//! Both pairwise questions are answered by a search over pairs of token positions, so they
//! cost O(n·m) at worst and much less in practice: literal prefixes and suffixes are
//! compared first.

/// A set of characters one token may stand for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Exactly this byte.
    Lit(u8),
    /// Any character.
    Any,
    /// Any character but `/`.
    NotSlash,
}

impl Class {
    fn meets(self, other: Class) -> bool {
        match (self, other) {
            (Class::Lit(a), Class::Lit(b)) => a == b,
            (Class::Lit(c), Class::NotSlash) | (Class::NotSlash, Class::Lit(c)) => c != b'/',
            _ => true,
        }
    }

    /// Whether every character of `self` is in `other`.
    fn within(self, other: Class) -> bool {
        match (self, other) {
            (_, Class::Any) => true,
            (Class::Lit(a), Class::Lit(b)) => a == b,
            (Class::Lit(c), Class::NotSlash) => c != b'/',
            (Class::NotSlash, Class::NotSlash) => true,
            _ => false,
        }
    }
}

/// One pattern element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Exactly one character of the class.
    One(Class),
    /// Zero or more characters of the class.
    Many(Class),
}

/// A tokenized pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
}

/// `${Name}` parts of ARN templates whose values cannot contain `/` (AWS naming rules).
/// Other names (object keys, paths, log group names) may, so they match any text.
const NO_SLASH_NAMES: &[&str] = &[
    "BucketName",
    "TableName",
    "FunctionName",
    "KeyId",
    "Account",
    "Region",
    "Partition",
];

impl Pattern {
    /// A pattern as written in a policy: `*` and `?` are wildcards, a policy variable
    /// `${...}` stands for any text (it is substituted at request time).
    pub(crate) fn policy(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut toks = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'*' => toks.push(Tok::Many(Class::Any)),
                b'?' => toks.push(Tok::One(Class::Any)),
                b'$' if bytes.get(i + 1) == Some(&b'{') => {
                    if let Some(len) = text[i..].find('}') {
                        toks.push(Tok::Many(Class::Any));
                        i += len + 1;
                        continue;
                    }
                    toks.push(Tok::One(Class::Lit(b'$')));
                }
                c => toks.push(Tok::One(Class::Lit(c))),
            }
            i += 1;
        }
        Self { toks }
    }

    /// A catalogue ARN template part: `${Name}` is one or more characters; `*` in a
    /// template is literal text of the template and taken as any run.
    pub(crate) fn template(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut toks = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'$' && bytes.get(i + 1) == Some(&b'{') {
                if let Some(len) = text[i..].find('}') {
                    let name = &text[i + 2..i + len];
                    let class = if NO_SLASH_NAMES.contains(&name) {
                        Class::NotSlash
                    } else {
                        Class::Any
                    };
                    toks.push(Tok::One(class));
                    toks.push(Tok::Many(class));
                    i += len + 1;
                    continue;
                }
            }
            toks.push(match bytes[i] {
                b'*' => Tok::Many(Class::Any),
                c => Tok::One(Class::Lit(c)),
            });
            i += 1;
        }
        Self { toks }
    }

    /// Whether the pattern has no wildcard: it stands for one text.
    pub(crate) fn is_literal(&self) -> bool {
        self.toks
            .iter()
            .all(|t| matches!(t, Tok::One(Class::Lit(_))))
    }

    /// Whether the pattern matches every text (e.g. `*`).
    pub(crate) fn matches_everything(&self) -> bool {
        self.toks.contains(&Tok::Many(Class::Any))
            && self.toks.iter().all(|t| matches!(t, Tok::Many(_)))
    }

    /// Whether the pattern can match the empty text.
    pub(crate) fn can_be_empty(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Many(_)))
    }

    /// Whether some text matches both patterns.
    pub(crate) fn intersects(&self, other: &Pattern) -> bool {
        let (a, b) = trim_literals(&self.toks, &other.toks, Class::meets);
        let Some((a, b)) = a.zip(b) else {
            return false;
        };
        search(a, b, |x, y, out| step_intersect(a, b, x, y, out))
    }

    /// Whether every text matched by `specific` is matched by `self`.
    ///
    /// Sound but not complete: `true` is always right, `false` may be returned for exotic
    /// pairs (e.g. `a*` versus `a*b*` with overlapping classes). That is the safe side for
    /// callers, which use it to drop findings or grants only when coverage is certain.
    pub(crate) fn covers(&self, specific: &Pattern) -> bool {
        if self.matches_everything() {
            return true;
        }
        let (a, b) = trim_literals(&self.toks, &specific.toks, |x, y| y.within(x));
        let Some((a, b)) = a.zip(b) else {
            return false;
        };
        search(a, b, |x, y, out| step_cover(a, b, x, y, out))
    }
}

/// Strips the literal prefix and suffix both patterns share (per `fits` on classes);
/// `None` when a literal pair differs, which settles the question negatively.
fn trim_literals<'a>(
    mut a: &'a [Tok],
    mut b: &'a [Tok],
    fits: impl Fn(Class, Class) -> bool,
) -> (Option<&'a [Tok]>, Option<&'a [Tok]>) {
    while let (Some(Tok::One(x)), Some(Tok::One(y))) = (a.first(), b.first()) {
        if !fits(*x, *y) {
            return (None, None);
        }
        a = &a[1..];
        b = &b[1..];
    }
    while let (Some(Tok::One(x)), Some(Tok::One(y))) = (a.last(), b.last()) {
        if !fits(*x, *y) {
            return (None, None);
        }
        a = &a[..a.len() - 1];
        b = &b[..b.len() - 1];
    }
    (Some(a), Some(b))
}

/// Visited position pairs (a bit set) and the pairs still to visit.
type Scratch = (Vec<u64>, Vec<(usize, usize)>);

thread_local! {
    /// Scratch space of [`search`], reused so that a search allocates nothing.
    static SCRATCH: std::cell::RefCell<Scratch> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Depth-first search over position pairs from (0, 0) to the end of both, with `next`
/// pushing the successor pairs; each pair is visited once.
fn search(a: &[Tok], b: &[Tok], next: impl Fn(usize, usize, &mut Vec<(usize, usize)>)) -> bool {
    if a.is_empty() && b.is_empty() {
        return true;
    }
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let (seen, stack) = &mut *scratch;
        let width = b.len() + 1;
        let cells = (a.len() + 1) * width;
        seen.clear();
        seen.resize(cells.div_ceil(64), 0);
        stack.clear();
        stack.push((0, 0));
        while let Some((i, j)) = stack.pop() {
            if i == a.len() && j == b.len() {
                return true;
            }
            let cell = i * width + j;
            let (word, bit) = (cell / 64, 1u64 << (cell % 64));
            if seen[word] & bit != 0 {
                continue;
            }
            seen[word] |= bit;
            next(i, j, stack);
        }
        false
    })
}

/// Moves that keep a[..i] and b[..j] spelling the same text.
fn step_intersect(a: &[Tok], b: &[Tok], i: usize, j: usize, out: &mut Vec<(usize, usize)>) {
    let (x, y) = (a.get(i), b.get(j));
    if let Some(Tok::Many(_)) = x {
        out.push((i + 1, j));
    }
    if let Some(Tok::Many(_)) = y {
        out.push((i, j + 1));
    }
    match (x, y) {
        (Some(Tok::One(p)), Some(Tok::One(q))) if p.meets(*q) => out.push((i + 1, j + 1)),
        (Some(Tok::One(p)), Some(Tok::Many(q))) if p.meets(*q) => out.push((i + 1, j)),
        (Some(Tok::Many(p)), Some(Tok::One(q))) if p.meets(*q) => out.push((i, j + 1)),
        _ => {}
    }
}

/// Moves that let the general pattern `a` absorb the specific pattern `b` token by token.
fn step_cover(a: &[Tok], b: &[Tok], i: usize, j: usize, out: &mut Vec<(usize, usize)>) {
    match (a.get(i), b.get(j)) {
        (Some(Tok::Many(g)), s) => {
            out.push((i + 1, j));
            if let Some(Tok::One(c) | Tok::Many(c)) = s {
                if c.within(*g) {
                    out.push((i, j + 1));
                }
            }
        }
        (Some(Tok::One(g)), Some(Tok::One(c))) if c.within(*g) => out.push((i + 1, j + 1)),
        _ => {}
    }
}

/// Case-insensitive (ASCII) match of an IAM action pattern (`*`, `?`) against a name.
pub(crate) fn wild_match_ci(pattern: &str, text: &str) -> bool {
    let p = pattern.as_bytes();
    let t = text.as_bytes();
    // Classic two-pointer match with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi].eq_ignore_ascii_case(&t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Whether the text has an IAM wildcard.
pub(crate) fn has_wildcard(text: &str) -> bool {
    text.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::policy(s)
    }

    #[test]
    fn wild_match_is_case_insensitive_and_handles_stars() {
        assert!(wild_match_ci("Get*", "getobject"));
        assert!(wild_match_ci("*Object*", "PutObjectAcl"));
        assert!(wild_match_ci("G?tObject", "GetObject"));
        assert!(wild_match_ci("*", ""));
        assert!(!wild_match_ci("Get*", "PutObject"));
        assert!(!wild_match_ci("GetObject", "GetObjectAcl"));
        assert!(wild_match_ci("a*b*c", "aXbYbZc"));
    }

    #[test]
    fn intersection_of_policy_patterns() {
        assert!(p("role/MLSpace*").intersects(&p("role/*")));
        assert!(p("role/MLSpace*").intersects(&p("role/MLSpace-x")));
        assert!(!p("role/MLSpace*").intersects(&p("policy/*")));
        assert!(p("a*c").intersects(&p("ab*")));
        assert!(!p("a*c").intersects(&p("b*")));
        assert!(p("*").intersects(&p("")));
        assert!(!p("?").intersects(&p("")));
        assert!(p("b/${aws:username}/*").intersects(&p("b/alice/x")));
    }

    #[test]
    fn templates_require_text_and_respect_slashes() {
        let bucket = Pattern::template("${BucketName}");
        assert!(bucket.intersects(&p("mlspace-data")));
        assert!(bucket.intersects(&p("mlspace-*")));
        assert!(!bucket.intersects(&p("mlspace-data/*")));
        assert!(!bucket.intersects(&p("")));
        let object = Pattern::template("${BucketName}/${ObjectName}");
        assert!(object.intersects(&p("mlspace-data/a/b/c")));
        assert!(object.intersects(&p("*")));
        assert!(!object.intersects(&p("mlspace-data")));
        let region = Pattern::template("${Region}");
        assert!(!region.intersects(&p("")));
        assert!(Pattern::template("").intersects(&p("")));
        assert!(!Pattern::template("").intersects(&p("us-east-1")));
    }

    #[test]
    fn coverage_is_sound() {
        assert!(p("*").covers(&p("anything/*")));
        assert!(p("role/*").covers(&p("role/MLSpace*")));
        assert!(p("role/ML*").covers(&p("role/MLSpace?x")));
        assert!(!p("role/MLSpace*").covers(&p("role/*")));
        assert!(!p("role/?").covers(&p("role/*")));
        assert!(p("a").covers(&p("a")));
        assert!(!p("a").covers(&p("b")));
        assert!(p("a*").covers(&p("a*b*")));
    }

    #[test]
    fn literal_and_everything() {
        assert!(p("abc").is_literal());
        assert!(!p("a*").is_literal());
        assert!(p("*").matches_everything());
        assert!(p("**").matches_everything());
        assert!(!p("*a").matches_everything());
        assert!(p("*").can_be_empty());
        assert!(!p("a").can_be_empty());
    }
}
