//! SSH host-key verification against an OpenSSH `known_hosts` file.
//!
//! libgit2 hands the certificate callback the server's raw host key; this module decides
//! whether the file trusts it. Supported line forms: `host[,alias...] keytype base64key`,
//! `[host]:port` for non-default ports, `*`/`?` wildcards and `!negations`, hashed
//! `|1|salt|hash` names (HMAC-SHA1 of the name, as `ssh-keygen -H` writes) and `@revoked`.
//! `@cert-authority` lines are ignored: host certificates are not supported.

use std::path::Path;

use sha2::{Digest, Sha256};

/// What the known_hosts file says about a presented host key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A line for this host has exactly this key.
    Trusted,
    /// The host is listed, but with other keys (their types given).
    Mismatch(Vec<String>),
    /// No line names this host.
    Unknown,
    /// The key is marked `@revoked`.
    Revoked,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// Comma-separated patterns, lower-cased.
    Patterns(Vec<String>),
    /// `|1|salt|hash`: HMAC-SHA1 keyed with salt over the host name.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key_type: String,
    key: Vec<u8>,
}

/// A parsed known_hosts file.
#[derive(Debug, Clone, Default)]
pub(crate) struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Parse the file's text; malformed lines are skipped, as OpenSSH does.
    pub fn parse(text: &str) -> KnownHosts {
        let entries = text.lines().filter_map(parse_line).collect();
        KnownHosts { entries }
    }

    /// Judge `key` (the raw SSH wire-format public key) presented by `host` on `port`.
    pub fn check(&self, host: &str, port: u16, key: &[u8]) -> Verdict {
        let name = lookup_name(host, port);
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.marker != Marker::CertAuthority && e.hosts.matches(&name))
            .collect();
        if matching
            .iter()
            .any(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Verdict::Revoked;
        }
        let listed: Vec<&&Entry> = matching
            .iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if listed.iter().any(|e| e.key == key) {
            Verdict::Trusted
        } else if listed.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Mismatch(listed.iter().map(|e| e.key_type.clone()).collect())
        }
    }
}

/// Check a presented host key against the known_hosts text read from `file`; the error
/// says why the connection is refused.
pub(crate) fn verify(
    text: &str,
    file: &Path,
    host: &str,
    port: u16,
    key_type: &str,
    key: &[u8],
) -> Result<(), String> {
    let name = lookup_name(host, port);
    let presented = format!("{key_type} key {}", fingerprint(key));
    match KnownHosts::parse(text).check(host, port, key) {
        Verdict::Trusted => Ok(()),
        Verdict::Unknown => Err(format!(
            "ssh host {name} is not in the known_hosts file {} (it presented a {presented}); \
             refusing to connect. Add the host's key to that file (for example from \
             `ssh-keyscan -p {port} {host}`, after checking the fingerprint out of band)",
            file.display()
        )),
        Verdict::Mismatch(types) => Err(format!(
            "ssh host key verification failed for {name}: it presented a {presented}, which \
             does not match its {} key(s) in {}; refusing to connect (the host key changed \
             or someone is intercepting the connection)",
            types.join("/"),
            file.display()
        )),
        Verdict::Revoked => Err(format!(
            "ssh host {name} presented a {presented} that is marked @revoked in {}; refusing \
             to connect",
            file.display()
        )),
    }
}

/// The name OpenSSH looks up: the bare host on port 22, `[host]:port` otherwise.
fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:<unpadded base64>`, the fingerprint form `ssh-keygen -l` prints.
pub(crate) fn fingerprint(key: &[u8]) -> String {
    format!("SHA256:{}", base64_encode(&Sha256::digest(key), false))
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let key_type = fields.next()?.to_string();
    let key = base64_decode(fields.next()?)?;
    let hosts = if let Some(hashed) = first.strip_prefix("|1|") {
        let (salt, hash) = hashed.split_once('|')?;
        Hosts::Hashed {
            salt: base64_decode(salt)?,
            hash: base64_decode(hash)?,
        }
    } else if first.starts_with('|') {
        // An unknown hashing scheme can never match.
        return None;
    } else {
        Hosts::Patterns(first.split(',').map(|p| p.to_ascii_lowercase()).collect())
    };
    Some(Entry {
        marker,
        hosts,
        key_type,
        key,
    })
}

impl Hosts {
    fn matches(&self, name: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => hmac_sha1(salt, name.as_bytes()).as_slice() == hash,
            Hosts::Patterns(patterns) => {
                let mut positive = false;
                for p in patterns {
                    match p.strip_prefix('!') {
                        // A matching negation excludes the line whatever else matches.
                        Some(neg) if glob(neg.as_bytes(), name.as_bytes()) => return false,
                        Some(_) => {}
                        None => positive |= glob(p.as_bytes(), name.as_bytes()),
                    }
                }
                positive
            }
        }
    }
}

/// `*` (any run) and `?` (one character) wildcard match, as in ssh patterns.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was and the text position it currently swallows up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// HMAC (RFC 2104) over SHA-1, the construction of hashed known_hosts names.
fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..20].copy_from_slice(&sha1(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    inner.extend_from_slice(message);
    let mut outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    outer.extend_from_slice(&sha1(&inner));
    sha1(&outer)
}

/// SHA-1 (FIPS 180-4). Only used to recognise hashed host names, never for trust: the key
/// itself is compared byte for byte.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (o, v) in out.chunks_exact_mut(4).zip(h) {
        o.copy_from_slice(&v.to_be_bytes());
    }
    out
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (padding optional); `None` on any other character.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // One leftover character cannot encode a byte.
    (bits < 6).then_some(out)
}

fn base64_encode(data: &[u8], pad: bool) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        if pad {
            out.push_str(&"=="[..2 - (chunk.len() - 1)]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made-up keys: a real-looking ed25519 blob (generated for this test, never used by any
    // host) and arbitrary bytes standing in for others.
    const ED25519: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIGE1OU50MAwF0jvQdyN24Pyj88OiYLk9JBjP2zx2BCf/";

    fn ed() -> Vec<u8> {
        base64_decode(ED25519).unwrap()
    }

    fn other() -> Vec<u8> {
        b"\0\0\0\x07ssh-rsa\0\0\0\x03\x01\0\x01made-up-modulus".to_vec()
    }

    fn line(hosts: &str, key: &[u8]) -> String {
        format!("{hosts} ssh-ed25519 {}\n", base64_encode(key, true))
    }

    #[test]
    fn sha1_and_hmac_known_answers() {
        assert_eq!(
            hex::encode(sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex::encode(sha1(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex::encode(sha1(&[b'a'; 1000])),
            "291e9a6c66994949b57ba5e650361e98fc36b1ba"
        );
        // RFC 2202 test cases 1 and 2.
        assert_eq!(
            hex::encode(hmac_sha1(&[0x0b; 20], b"Hi There")),
            "b617318655057264e28bc0b6fb378c8ef146be00"
        );
        assert_eq!(
            hex::encode(hmac_sha1(b"Jefe", b"what do ya want for nothing?")),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn base64_round_trip() {
        for data in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar"] {
            let enc = base64_encode(data, true);
            assert_eq!(base64_decode(&enc).unwrap(), data, "{enc}");
        }
        assert_eq!(base64_encode(b"foobar", true), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fooba", true), "Zm9vYmE=");
        assert_eq!(base64_encode(b"foob", false), "Zm9vYg");
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z").is_none());
    }

    #[test]
    fn fingerprint_matches_ssh_keygen() {
        assert_eq!(
            fingerprint(&ed()),
            "SHA256:rzWcQN1RpGDbFhIduW4wZZr4cRfzo3dx8uWLBHHYwB0"
        );
    }

    #[test]
    fn plain_host_and_aliases() {
        let kh = KnownHosts::parse(&format!(
            "# comment\n\n{}",
            line("git.example.com,10.0.0.5", &ed())
        ));
        assert_eq!(kh.check("git.example.com", 22, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("GIT.Example.COM", 22, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("10.0.0.5", 22, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("other.example.com", 22, &ed()), Verdict::Unknown);
        // A non-default port needs a `[host]:port` line.
        assert_eq!(kh.check("git.example.com", 2222, &ed()), Verdict::Unknown);
    }

    #[test]
    fn mismatched_key_is_refused() {
        let kh = KnownHosts::parse(&line("git.example.com", &ed()));
        assert_eq!(
            kh.check("git.example.com", 22, &other()),
            Verdict::Mismatch(vec!["ssh-ed25519".into()])
        );
        let err = verify(
            &line("git.example.com", &ed()),
            Path::new("/etc/kh"),
            "git.example.com",
            22,
            "ssh-rsa",
            &other(),
        )
        .unwrap_err();
        assert!(
            err.contains("verification failed for git.example.com"),
            "{err}"
        );
        assert!(err.contains("/etc/kh"), "{err}");
    }

    #[test]
    fn one_of_several_keys_matches() {
        let text = format!(
            "git.example.com ssh-rsa {}\n{}",
            base64_encode(&other(), true),
            line("git.example.com", &ed())
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.check("git.example.com", 22, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("git.example.com", 22, &other()), Verdict::Trusted);
    }

    #[test]
    fn bracketed_port_form() {
        let kh = KnownHosts::parse(&line("[git.example.com]:2222", &ed()));
        assert_eq!(kh.check("git.example.com", 2222, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("git.example.com", 22, &ed()), Verdict::Unknown);
        assert_eq!(kh.check("git.example.com", 2223, &ed()), Verdict::Unknown);
    }

    #[test]
    fn hashed_entries_written_by_ssh_keygen() {
        // `ssh-keygen -H` output for "example.com" and "[example.com]:2222".
        let text = format!(
            "|1|BNIE+80yJDccq743IrkAp8U7lTA=|DoaRuzY311CceeCqhEwFeKTJFSg= ssh-ed25519 {ED25519}\n\
             |1|QG+AiVy284S9qOWPFnN3kUbxAW4=|Ogo8ixDxFDE9fmuGQu7Tfe5vkYU= ssh-ed25519 {ED25519}\n"
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.check("example.com", 22, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("example.com", 2222, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("example.org", 22, &ed()), Verdict::Unknown);
        assert_eq!(
            kh.check("example.com", 22, &other()),
            Verdict::Mismatch(vec!["ssh-ed25519".into()])
        );
    }

    #[test]
    fn wildcards_and_negation() {
        let kh = KnownHosts::parse(&line("*.example.com,!evil.example.com", &ed()));
        assert_eq!(kh.check("git.example.com", 22, &ed()), Verdict::Trusted);
        assert_eq!(kh.check("evil.example.com", 22, &ed()), Verdict::Unknown);
        assert_eq!(kh.check("example.com", 22, &ed()), Verdict::Unknown);
        assert!(glob(b"git?.example.*", b"git1.example.org"));
        assert!(!glob(b"git?.example.*", b"git12.example.org"));
        assert!(glob(b"*a*b", b"xxaxxab"));
    }

    #[test]
    fn revoked_and_cert_authority_lines() {
        let text = format!(
            "@revoked * ssh-ed25519 {ED25519}\n{}@cert-authority *.example.com ssh-rsa {}\n",
            line("git.example.com", &ed()),
            base64_encode(&other(), true)
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.check("git.example.com", 22, &ed()), Verdict::Revoked);
        // The CA line does not vouch for anything.
        assert_eq!(
            kh.check("git.example.com", 22, &other()),
            Verdict::Mismatch(vec!["ssh-ed25519".into()])
        );
    }

    #[test]
    fn malformed_lines_are_skipped() {
        let text = format!(
            "garbage\nhost ssh-ed25519 not*base64\n|2|x|y ssh-ed25519 {ED25519}\n@weird h ssh-ed25519 {ED25519}\n{}",
            line("git.example.com", &ed())
        );
        let kh = KnownHosts::parse(&text);
        assert_eq!(kh.entries.len(), 1);
        assert_eq!(kh.check("git.example.com", 22, &ed()), Verdict::Trusted);
    }

    #[test]
    fn unknown_host_message_says_what_to_do() {
        let err = verify(
            "",
            Path::new("/etc/kh"),
            "git.example.com",
            2222,
            "ssh-ed25519",
            &ed(),
        )
        .unwrap_err();
        assert!(
            err.contains("[git.example.com]:2222 is not in the known_hosts file /etc/kh"),
            "{err}"
        );
        assert!(
            err.contains("SHA256:rzWcQN1RpGDbFhIduW4wZZr4cRfzo3dx8uWLBHHYwB0"),
            "{err}"
        );
    }
}
