//! Which replica should reconcile which Environment: rendezvous (highest random weight)
//! hashing with bounded loads, as a pure function of the Environments of the revision and the
//! live replicas.
//!
//! Every replica computes the same [`assign`] from the same membership (the replicas that
//! heartbeat in the state store), so no replica coordinates with another: each takes the
//! leases of its own share and gives back the others. The leases, with their fencing tokens,
//! stay what keeps two replicas from writing for one Environment; the assignment only decides
//! who asks for which lease.
//!
//! - **Rendezvous**: an Environment ranks the replicas by a hash of (Environment, replica) and
//!   goes to the first with room. When a replica leaves, only its Environments move (each to
//!   its next choice); when one joins, it takes only the Environments that rank it first,
//!   within its bound.
//! - **Bounded load**: no replica gets more than `bound = max(⌈1.05·n/m⌉, ⌈n/m⌉ + 1)`
//!   Environments (n Environments, m replicas), nor more than its own cap
//!   (`--max-environments-per-replica`). Environments are placed in the order of their own
//!   hash, so no name prefix crowds one replica. With 60 Environments on 3 replicas the bound
//!   is 21, so every replica owns 18 to 21.
//! - **Caps**: when the bound leaves Environments over (replicas capped below it), a second
//!   pass places them on any replica still under its own cap; what still does not fit is
//!   owned by nobody, and the stale-reconcile alert names it.
//!
//! The hash is SHA-256, not `std`'s hasher: replicas of different builds must agree, and
//! `std` does not promise a stable hash across releases.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// A live replica as the assignment sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its identity (the lease holder id).
    pub id: String,
    /// The most Environments it takes (`--max-environments-per-replica`), if capped.
    pub cap: Option<usize>,
}

/// Environment name → the replica that should reconcile it; Environments that fit nowhere
/// are absent.
pub type Assignment = BTreeMap<String, String>;

/// The most Environments one of `replicas` replicas gets out of `environments` before caps.
pub fn bound(environments: usize, replicas: usize) -> usize {
    if replicas == 0 {
        return 0;
    }
    let even = environments.div_ceil(replicas);
    let five_percent = (environments * 105).div_ceil(replicas * 100);
    five_percent.max(even + 1)
}

/// The replica each Environment goes to. Deterministic: the same Environments and members
/// (in any order, duplicates ignored) give the same assignment.
pub fn assign<'a>(
    environments: impl IntoIterator<Item = &'a str>,
    members: &[Member],
) -> Assignment {
    let mut members: Vec<&Member> = members.iter().collect();
    members.sort_by(|a, b| a.id.cmp(&b.id));
    members.dedup_by(|a, b| a.id == b.id);
    let mut envs: Vec<&str> = environments.into_iter().collect();
    envs.sort_unstable();
    envs.dedup();
    // Placement order: by the Environment's own hash, ties (none in practice) by name.
    envs.sort_by_key(|e| (score(e, ""), *e));

    let mut out = Assignment::new();
    if members.is_empty() {
        return out;
    }
    let b = bound(envs.len(), members.len());
    let mut load = vec![0usize; members.len()];
    let ranked: Vec<(&str, Vec<usize>)> = envs
        .iter()
        .map(|e| {
            let mut order: Vec<usize> = (0..members.len()).collect();
            order.sort_by_key(|&i| (std::cmp::Reverse(score(e, &members[i].id)), i));
            (*e, order)
        })
        .collect();
    let mut left = Vec::new();
    for (env, order) in &ranked {
        let room = |i: usize, load: &[usize]| load[i] < b.min(members[i].cap.unwrap_or(usize::MAX));
        match order.iter().copied().find(|&i| room(i, &load)) {
            Some(i) => {
                load[i] += 1;
                out.insert(env.to_string(), members[i].id.clone());
            }
            None => left.push((env, order)),
        }
    }
    // Capped replicas left some over: anyone under its own cap takes them, in rank order.
    for (env, order) in left {
        let room = |i: usize, load: &[usize]| members[i].cap.is_none_or(|c| load[i] < c);
        if let Some(i) = order.iter().copied().find(|&i| room(i, &load)) {
            load[i] += 1;
            out.insert(env.to_string(), members[i].id.clone());
        }
    }
    out
}

/// The rendezvous weight of `env` on `replica` (with `""`, the Environment's own placement
/// order).
fn score(env: &str, replica: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(env.as_bytes());
    h.update([0]);
    h.update(replica.as_bytes());
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("a SHA-256 digest has 8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize) -> Vec<Member> {
        (0..n)
            .map(|i| Member {
                id: format!("replica-{i}"),
                cap: None,
            })
            .collect()
    }

    fn envs(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("mlspace-{i:04}")).collect()
    }

    fn loads(a: &Assignment) -> BTreeMap<&str, usize> {
        let mut m = BTreeMap::new();
        for r in a.values() {
            *m.entry(r.as_str()).or_insert(0) += 1;
        }
        m
    }

    #[test]
    fn sixty_environments_on_three_replicas_are_twenty_each_within_two() {
        let e = envs(60);
        let a = assign(e.iter().map(String::as_str), &members(3));
        assert_eq!(a.len(), 60);
        for (r, n) in loads(&a) {
            assert!((18..=22).contains(&n), "{r} owns {n}");
        }
    }

    #[test]
    fn every_size_is_placed_within_the_bound() {
        for m in 1..=12 {
            for n in [0, 1, 5, 59, 60, 61, 200, 1000] {
                let e = envs(n);
                let a = assign(e.iter().map(String::as_str), &members(m));
                assert_eq!(a.len(), n, "{n} on {m}");
                let b = bound(n, m);
                assert!(
                    loads(&a).values().all(|&l| l <= b),
                    "{n} on {m}: {:?}",
                    loads(&a)
                );
            }
        }
    }

    #[test]
    fn the_same_inputs_in_any_order_give_the_same_assignment() {
        let e = envs(100);
        let mut m = members(4);
        let a = assign(e.iter().map(String::as_str), &m);
        m.reverse();
        m.push(m[0].clone());
        let mut r = e.clone();
        r.reverse();
        assert_eq!(assign(r.iter().map(String::as_str), &m), a);
    }

    #[test]
    fn a_replica_leaving_moves_its_environments_and_few_others() {
        let e = envs(300);
        let m = members(4);
        let before = assign(e.iter().map(String::as_str), &m);
        let after = assign(e.iter().map(String::as_str), &m[..3]);
        let gone = &m[3].id;
        let moved_others = e
            .iter()
            .filter(|x| &before[*x] != gone && before[*x] != after[*x])
            .count();
        assert!(after.values().all(|r| r != gone));
        // Its 75 or so must move; the bound displaces only a few more.
        assert!(moved_others <= 30, "{moved_others} of the others moved");
    }

    #[test]
    fn a_replica_joining_takes_about_its_share() {
        let e = envs(300);
        let m = members(4);
        let before = assign(e.iter().map(String::as_str), &m[..3]);
        let after = assign(e.iter().map(String::as_str), &m);
        let moved = e.iter().filter(|x| before[*x] != after[*x]).count();
        let to_new = after.values().filter(|r| **r == m[3].id).count();
        // Those that rank it first (about a quarter), within its bound.
        assert!(
            (60..=bound(300, 4)).contains(&to_new),
            "the new replica took {to_new}"
        );
        assert!(moved <= to_new + 30, "{moved} moved for {to_new} taken");
    }

    #[test]
    fn caps_are_kept_and_what_fits_nowhere_is_left_unassigned() {
        let e = envs(60);
        let mut m = members(3);
        m[0].cap = Some(5);
        let a = assign(e.iter().map(String::as_str), &m);
        assert_eq!(a.len(), 60);
        let l = loads(&a);
        assert_eq!(l["replica-0"], 5);
        assert!(l["replica-1"] + l["replica-2"] == 55);
        for x in &mut m {
            x.cap = Some(10);
        }
        let a = assign(e.iter().map(String::as_str), &m);
        assert_eq!(a.len(), 30, "three replicas capped at 10 own 30");
        assert!(loads(&a).values().all(|&l| l == 10));
    }

    #[test]
    fn no_replica_no_owner() {
        assert!(assign(["a", "b"], &[]).is_empty());
        assert_eq!(bound(10, 0), 0);
    }
}
