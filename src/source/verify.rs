//! Commit signature verification, as `git verify-commit` does it with `gpg.format = ssh`:
//! the head commit must carry an SSH signature (SSHSIG, namespace `git`) made by a key listed
//! in an allowed-signers file (git's `gpg.ssh.allowedSignersFile`, the format of
//! `ssh-keygen -Y verify`).
//!
//! One check is stricter than git: the committer's email must match a principal of the line
//! that lists the key (`ssh-keygen -Y verify -I <committer email>`), so a listed key cannot
//! sign in someone else's name. A line with the principal `*` accepts any committer.
//! `valid-after` / `valid-before` are compared with the committer time (as git does) and read
//! as UTC. Certificate authorities (`cert-authority`) and OpenPGP / X.509 signatures are not
//! supported: such commits are refused.

use std::fmt;
use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PublicKey, SshSig};

/// The SSHSIG namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// Why a commit is not accepted, or the allowed-signers file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The allowed-signers file cannot be read.
    #[error("cannot read the allowed signers file {path}")]
    SignersIo {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line of the allowed-signers file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    SignersLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The commit has no signature.
    #[error("the commit is not signed")]
    Unsigned,
    /// The commit is signed, but not with SSH.
    #[error(
        "the commit has an {0} signature; only SSH signatures (gpg.format = ssh) are verified"
    )]
    UnsupportedFormat(&'static str),
    /// The signature cannot be decoded.
    #[error("the commit signature is malformed: {0}")]
    Malformed(String),
    /// The signature was made for another purpose than git (e.g. `ssh-keygen -Y sign -n file`).
    #[error("the signature is in namespace {0:?}, not \"git\"")]
    WrongNamespace(String),
    /// The signing key is not in the allowed-signers file.
    #[error("the signing key {fingerprint} is not in the allowed signers file")]
    UnknownKey {
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
    },
    /// The signature does not match the commit (tampered content or a forged signature).
    #[error("the signature by key {fingerprint} does not match the commit")]
    BadSignature {
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
    },
    /// The key is listed, but with `namespaces=` that exclude git.
    #[error("the key {fingerprint} is not allowed to sign in namespace \"git\"")]
    NamespaceNotAllowed {
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
    },
    /// The key is listed, but not for the committer.
    #[error("the key {fingerprint} is not allowed for committer {email:?}")]
    PrincipalMismatch {
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
        /// The committer email.
        email: String,
    },
    /// The key is listed, but `valid-after` / `valid-before` exclude the commit time.
    #[error(
        "the key {fingerprint} was not valid at the commit time ({time} seconds since the epoch)"
    )]
    Expired {
        /// SHA-256 fingerprint of the key.
        fingerprint: String,
        /// Committer time.
        time: i64,
    },
    /// The commit could not be read from the repository.
    #[error("cannot read the commit signature: {0}")]
    Git(String),
}

/// Every [`VerifyError::reason`], for pre-creating metric series.
pub const REASONS: [&str; 8] = [
    "allowed_signers",
    "unsigned",
    "unsupported_format",
    "malformed",
    "wrong_namespace",
    "unknown_key",
    "bad_signature",
    "not_allowed",
];

impl VerifyError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::SignersIo { .. } | VerifyError::SignersLine { .. } => REASONS[0],
            VerifyError::Unsigned => REASONS[1],
            VerifyError::UnsupportedFormat(_) => REASONS[2],
            VerifyError::Malformed(_) | VerifyError::Git(_) => REASONS[3],
            VerifyError::WrongNamespace(_) => REASONS[4],
            VerifyError::UnknownKey { .. } => REASONS[5],
            VerifyError::BadSignature { .. } => REASONS[6],
            VerifyError::NamespaceNotAllowed { .. }
            | VerifyError::PrincipalMismatch { .. }
            | VerifyError::Expired { .. } => REASONS[7],
        }
    }
}

/// One line of an allowed-signers file.
#[derive(Clone)]
struct Entry {
    /// Comma-separated patterns (`*`, `?`, `!negation`).
    principals: String,
    options: Options,
    key: PublicKey,
}

/// The options of a line.
#[derive(Clone, Default)]
struct Options {
    /// `namespaces=` patterns; `None`: any namespace.
    namespaces: Option<String>,
    cert_authority: bool,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// A parsed allowed-signers file.
#[derive(Clone)]
pub struct AllowedSigners {
    entries: Vec<Entry>,
}

impl fmt::Debug for AllowedSigners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AllowedSigners")
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// Who signed an accepted commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// SHA-256 fingerprint of the signing key.
    pub fingerprint: String,
    /// The principals of the allowed-signers line that accepted it.
    pub principals: String,
}

/// What is needed to verify one commit.
#[derive(Debug, Clone, Copy)]
pub struct SignedCommit<'a> {
    /// The armored signature (`gpgsig` header), if any.
    pub signature: Option<&'a [u8]>,
    /// The commit object without its `gpgsig` header: what was signed.
    pub signed_data: &'a [u8],
    /// Committer email.
    pub committer_email: &'a str,
    /// Committer time, seconds since the epoch.
    pub committer_time: i64,
}

impl AllowedSigners {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<AllowedSigners, VerifyError> {
        let text = std::fs::read_to_string(path).map_err(|source| VerifyError::SignersIo {
            path: path.to_path_buf(),
            source,
        })?;
        AllowedSigners::parse(&text, path)
    }

    /// Parse the text of an allowed-signers file (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<AllowedSigners, VerifyError> {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line).map_err(|message| VerifyError::SignersLine {
                path: path.to_path_buf(),
                line: i + 1,
                message,
            })?;
            entries.push(entry);
        }
        Ok(AllowedSigners { entries })
    }

    /// Number of keys listed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file lists no key (every commit is then refused).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Accept `commit` only when it is SSH-signed in namespace git by a listed key, allowed
    /// for the committer's email at the commit time.
    pub fn verify(&self, commit: &SignedCommit<'_>) -> Result<Verified, VerifyError> {
        let armored = commit.signature.ok_or(VerifyError::Unsigned)?;
        let armored = std::str::from_utf8(armored)
            .map_err(|_| VerifyError::Malformed("the signature is not UTF-8".into()))?
            .trim();
        if armored.starts_with("-----BEGIN PGP SIGNATURE-----") {
            return Err(VerifyError::UnsupportedFormat("OpenPGP"));
        }
        if armored.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            return Err(VerifyError::UnsupportedFormat("X.509"));
        }
        let sig = SshSig::from_pem(armored).map_err(|e| VerifyError::Malformed(e.to_string()))?;
        if sig.namespace() != GIT_NAMESPACE {
            return Err(VerifyError::WrongNamespace(sig.namespace().to_string()));
        }
        let key = PublicKey::from(sig.public_key().clone());
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();

        // Certificate authorities sign certificates, which SSHSIG decoding here does not
        // accept, so a CA line can never vouch for a plain key.
        let listed: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| !e.options.cert_authority && e.key.key_data() == key.key_data())
            .collect();
        if listed.is_empty() {
            return Err(VerifyError::UnknownKey { fingerprint });
        }
        key.verify(GIT_NAMESPACE, commit.signed_data, &sig)
            .map_err(|_| VerifyError::BadSignature {
                fingerprint: fingerprint.clone(),
            })?;

        let listed: Vec<&Entry> = listed
            .into_iter()
            .filter(|e| {
                e.options
                    .namespaces
                    .as_deref()
                    .is_none_or(|ns| match_list(GIT_NAMESPACE, ns))
            })
            .collect();
        if listed.is_empty() {
            return Err(VerifyError::NamespaceNotAllowed { fingerprint });
        }
        let listed: Vec<&Entry> = listed
            .into_iter()
            .filter(|e| match_list(commit.committer_email, &e.principals))
            .collect();
        if listed.is_empty() {
            return Err(VerifyError::PrincipalMismatch {
                fingerprint,
                email: commit.committer_email.to_string(),
            });
        }
        let t = commit.committer_time;
        let valid = listed.into_iter().find(|e| {
            e.options.valid_after.is_none_or(|a| t >= a)
                && e.options.valid_before.is_none_or(|b| t <= b)
        });
        match valid {
            Some(e) => Ok(Verified {
                fingerprint,
                principals: e.principals.clone(),
            }),
            None => Err(VerifyError::Expired {
                fingerprint,
                time: t,
            }),
        }
    }
}

/// Verify `commit` of `repo` against the allowed-signers file `path`, read now so that a
/// rotated key takes effect at the next sync.
pub(crate) fn verify_commit(
    repo: &git2::Repository,
    commit: &git2::Commit<'_>,
    path: &Path,
) -> Result<Verified, VerifyError> {
    let signers = AllowedSigners::load(path)?;
    let (signature, data) = match repo.extract_signature(&commit.id(), None) {
        Ok((s, d)) => (Some(s), d),
        Err(e) if e.code() == git2::ErrorCode::NotFound => (None, git2::Buf::new()),
        Err(e) => return Err(VerifyError::Git(e.message().to_string())),
    };
    let committer = commit.committer();
    let email = String::from_utf8_lossy(committer.email_bytes());
    signers.verify(&SignedCommit {
        signature: signature.as_deref(),
        signed_data: &data,
        committer_email: &email,
        committer_time: committer.when().seconds(),
    })
}

/// Split off the next whitespace-delimited token, where double quotes protect whitespace.
fn next_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => return (&s[..i], s[i..].trim_start()),
            _ => {}
        }
    }
    (s, "")
}

fn parse_line(line: &str) -> Result<Entry, String> {
    let (principals, rest) = next_token(line);
    let principals = principals.trim_matches('"').to_string();
    let (second, after) = next_token(rest);
    if second.is_empty() {
        return Err("expected principals, optional options, a key type and a key".into());
    }
    let mut options = Options::default();
    // Key types never hold '=' or ','; options always do, or are the one flag.
    let key_text = if second.contains(['=', ',']) || second.eq_ignore_ascii_case("cert-authority") {
        parse_options(second, &mut options)?;
        after
    } else {
        rest
    };
    if key_text.is_empty() {
        return Err("missing the public key".into());
    }
    let key = PublicKey::from_openssh(key_text)
        .map_err(|e| format!("cannot parse the public key: {e}"))?;
    Ok(Entry {
        principals,
        options,
        key,
    })
}

fn parse_options(text: &str, o: &mut Options) -> Result<(), String> {
    let mut quoted = false;
    let mut start = 0;
    let mut opts = Vec::new();
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                opts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("unterminated quote in the options".into());
    }
    opts.push(&text[start..]);
    for opt in opts {
        let (name, value) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.trim_matches('"'))),
            None => (opt, None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("cert-authority", None) => o.cert_authority = true,
            ("namespaces", Some(v)) => o.namespaces = Some(v.to_string()),
            ("valid-after", Some(v)) => o.valid_after = Some(parse_time(v)?),
            ("valid-before", Some(v)) => o.valid_before = Some(parse_time(v)?),
            _ => return Err(format!("unknown option {opt:?}")),
        }
    }
    Ok(())
}

/// `YYYYMMDD[HHMM[SS]][Z]` as seconds since the epoch, read as UTC.
fn parse_time(s: &str) -> Result<i64, String> {
    let bad = || format!("bad time {s:?}: expected YYYYMMDD[HHMM[SS]][Z]");
    let digits = s.strip_suffix(['Z', 'z']).unwrap_or(s);
    if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let num =
        |r: std::ops::Range<usize>| digits.get(r).map_or(0, |d| d.parse::<i64>().unwrap_or(0));
    let (y, mo, d) = (num(0..4), num(4..6), num(6..8));
    let (h, mi, sec) = (num(8..10), num(10..12), num(12..14));
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 59 {
        return Err(bad());
    }
    Ok(days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + sec)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// OpenSSH pattern-list matching: comma-separated globs; a matching `!pattern` refuses.
fn match_list(s: &str, list: &str) -> bool {
    let mut matched = false;
    for p in list.split(',') {
        match p.strip_prefix('!') {
            Some(neg) if glob(s.as_bytes(), neg.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(s.as_bytes(), p.as_bytes()),
        }
    }
    matched
}

/// `*` (any run) and `?` (one byte) wildcards.
fn glob(s: &[u8], p: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(&s[i..], rest)),
        Some((b'?', rest)) => !s.is_empty() && glob(&s[1..], rest),
        Some((c, rest)) => s.first() == Some(c) && glob(&s[1..], rest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssh_key::private::Ed25519Keypair;
    use ssh_key::{LineEnding, PrivateKey};

    fn key() -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&rand::random()))
    }

    fn line(principals: &str, options: &str, k: &PrivateKey) -> String {
        let public = k.public_key().to_openssh().unwrap();
        format!("{principals} {options} {public}\n")
    }

    fn sign(k: &PrivateKey, namespace: &str, data: &[u8]) -> String {
        k.sign(namespace, HashAlg::Sha512, data)
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap()
    }

    const DATA: &[u8] = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@example.com> 1700000000 +0000\ncommitter A <a@example.com> 1700000000 +0000\n\nchange\n";

    fn commit<'a>(sig: Option<&'a str>, email: &'a str, time: i64) -> SignedCommit<'a> {
        SignedCommit {
            signature: sig.map(str::as_bytes),
            signed_data: DATA,
            committer_email: email,
            committer_time: time,
        }
    }

    fn signers(text: &str) -> AllowedSigners {
        AllowedSigners::parse(text, Path::new("allowed_signers")).unwrap()
    }

    #[test]
    fn parses_comments_options_and_quoted_values() {
        let (a, b) = (key(), key());
        let text = format!(
            "# team keys\n\n{}{}   \n",
            line("a@example.com,*@ops.example.com", "", &a),
            line(
                "b@example.com",
                "namespaces=\"git,file\",valid-after=\"20240101\",VALID-BEFORE=20991231235959Z",
                &b
            ),
        );
        let s = signers(&text);
        assert_eq!(s.len(), 2);
        assert_eq!(s.entries[1].options.namespaces.as_deref(), Some("git,file"));
        assert_eq!(s.entries[1].options.valid_after, Some(1_704_067_200));
        assert_eq!(s.entries[0].principals, "a@example.com,*@ops.example.com");
        assert!(signers("").is_empty());
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let a = key();
        let cases = [
            ("only-principals".to_string(), "expected principals"),
            (
                "x@y ssh-ed25519 AAAAnotbase64!!".to_string(),
                "cannot parse the public key",
            ),
            (line("x@y", "bogus=1", &a), "unknown option"),
            (line("x@y", "valid-after=\"2024\"", &a), "bad time"),
            (line("x@y", "valid-after=20241301", &a), "bad time"),
            (
                "x@y namespaces=\"git\"".to_string(),
                "missing the public key",
            ),
        ];
        for (bad, want) in cases {
            let text = format!("# ok\n{}{bad}\n", line("a@example.com", "", &a));
            let err = AllowedSigners::parse(&text, Path::new("/etc/signers")).unwrap_err();
            let VerifyError::SignersLine { line, message, .. } = &err else {
                panic!("{err:?}")
            };
            assert_eq!(*line, 3, "{bad}");
            assert!(message.contains(want), "{bad}: {message}");
            assert!(err.to_string().starts_with("/etc/signers:3: "), "{err}");
        }
    }

    #[test]
    fn accepts_a_listed_key_for_its_committer() {
        let a = key();
        let s = signers(&line("a@example.com,ops@example.com", "", &a));
        let sig = sign(&a, "git", DATA);
        let ok = s.verify(&commit(Some(&sig), "ops@example.com", 0)).unwrap();
        assert_eq!(
            ok.fingerprint,
            a.public_key().fingerprint(HashAlg::Sha256).to_string()
        );
        // Without the trailing newline, as git stores it in the commit header.
        assert!(s
            .verify(&commit(Some(sig.trim_end()), "a@example.com", 0))
            .is_ok());
        // A glob for everyone, and one with a negation.
        let s = signers(&line("*", "", &a));
        assert!(s.verify(&commit(Some(&sig), "anyone@else", 0)).is_ok());
        let s = signers(&line("*@example.com,!bad@example.com", "", &a));
        assert!(s.verify(&commit(Some(&sig), "good@example.com", 0)).is_ok());
        assert!(matches!(
            s.verify(&commit(Some(&sig), "bad@example.com", 0)),
            Err(VerifyError::PrincipalMismatch { .. })
        ));
    }

    #[test]
    fn refusals_are_distinct() {
        let (a, b) = (key(), key());
        let s = signers(&line("a@example.com", "", &a));
        let sig = sign(&a, "git", DATA);
        let check = |sig: Option<&str>, email: &str| s.verify(&commit(sig, email, 0)).unwrap_err();

        assert!(matches!(
            check(None, "a@example.com"),
            VerifyError::Unsigned
        ));
        let other = sign(&b, "git", DATA);
        let err = check(Some(&other), "a@example.com");
        assert!(
            matches!(&err, VerifyError::UnknownKey { fingerprint } if *fingerprint == b.public_key().fingerprint(HashAlg::Sha256).to_string()),
            "{err}"
        );
        let file_ns = sign(&a, "file", DATA);
        assert!(
            matches!(check(Some(&file_ns), "a@example.com"), VerifyError::WrongNamespace(ns) if ns == "file")
        );
        let tampered = sign(&a, "git", b"something else");
        assert!(matches!(
            check(Some(&tampered), "a@example.com"),
            VerifyError::BadSignature { .. }
        ));
        assert!(matches!(
            check(Some(&sig), "b@example.com"),
            VerifyError::PrincipalMismatch { .. }
        ));
        let pgp = "-----BEGIN PGP SIGNATURE-----\n\niQ==\n-----END PGP SIGNATURE-----\n";
        assert!(matches!(
            check(Some(pgp), "a@example.com"),
            VerifyError::UnsupportedFormat("OpenPGP")
        ));
        assert!(matches!(
            check(Some("garbage"), "a@example.com"),
            VerifyError::Malformed(_)
        ));
        let reasons: std::collections::BTreeSet<&str> = [
            check(None, "a@example.com"),
            check(Some(&other), "a@example.com"),
            check(Some(&tampered), "a@example.com"),
        ]
        .iter()
        .map(VerifyError::reason)
        .collect();
        assert_eq!(reasons.len(), 3);
    }

    #[test]
    fn namespaces_validity_and_cert_authority() {
        let a = key();
        let sig = sign(&a, "git", DATA);
        let only_file = signers(&line("*", "namespaces=\"file\"", &a));
        assert!(matches!(
            only_file.verify(&commit(Some(&sig), "x@y", 0)),
            Err(VerifyError::NamespaceNotAllowed { .. })
        ));
        let ca = signers(&line("*", "cert-authority", &a));
        assert!(matches!(
            ca.verify(&commit(Some(&sig), "x@y", 0)),
            Err(VerifyError::UnknownKey { .. })
        ));
        let window = signers(&line("*", "valid-after=20240101,valid-before=20250101", &a));
        let jan_2024 = 1_704_067_200;
        assert!(window
            .verify(&commit(Some(&sig), "x@y", jan_2024 + 10))
            .is_ok());
        for t in [jan_2024 - 1, jan_2024 + 366 * 86_400 + 1] {
            assert!(matches!(
                window.verify(&commit(Some(&sig), "x@y", t)),
                Err(VerifyError::Expired { .. })
            ));
        }
        // A second line for the same key can allow what the first does not.
        let two = format!(
            "{}{}",
            line("*", "namespaces=\"file\"", &a),
            line("*", "", &a)
        );
        assert!(signers(&two).verify(&commit(Some(&sig), "x@y", 0)).is_ok());
    }

    #[test]
    fn times_and_patterns() {
        assert_eq!(parse_time("19700101").unwrap(), 0);
        assert_eq!(parse_time("20000301000000Z").unwrap(), 951_868_800);
        assert_eq!(parse_time("202402291230").unwrap(), 1_709_209_800);
        assert!(parse_time("2024022912").is_err());
        assert!(match_list("a@b.c", "x,*@b.c"));
        assert!(!match_list("a@b.c", "*@b.c,!a@*"));
        assert!(match_list("ab", "a?"));
        assert!(!match_list("abc", "a?"));
    }
}
