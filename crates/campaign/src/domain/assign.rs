//! Stable assignment of users to the global control group, a campaign's holdout and its variants.
//!
//! Every assignment is a SHA-256 hash of a purpose salt, the tenant, (the campaign,) and the user, so
//! it is the same on every replica and after every restart, and needs nothing stored. Each purpose has
//! its own salt: being held out of a campaign says nothing about which variant a user would have seen,
//! nor about being in the control group.

use sha2::{Digest, Sha256};

const CONTROL_SALT: &[u8] = b"socialops.control.v1";
const HOLDOUT_SALT: &[u8] = b"socialops.holdout.v1";
const VARIANT_SALT: &[u8] = b"socialops.variant.v1";

/// Whether the user is in the tenant's global control group, which gets no marketing from any
/// campaign. The same users stay in it when the share grows: a user in at 5 % is still in at 10 %.
pub fn in_control_group(tenant: &str, user: &str, share: f64) -> bool {
    unit(hash(CONTROL_SALT, &[tenant, user])) < share
}

/// Whether the user is held out of one campaign (measured, never sent to).
pub fn in_holdout(tenant: &str, campaign: &str, user: &str, share: f64) -> bool {
    unit(hash(HOLDOUT_SALT, &[tenant, campaign, user])) < share
}

/// The user's variant, chosen with probability proportional to its weight. All weights zero means
/// equal weights; an empty list has no variant to pick and yields `""`.
pub fn pick_variant<'a>(
    tenant: &str,
    campaign: &str,
    user: &str,
    weights: &[(&'a str, u32)],
) -> &'a str {
    let Some(&(last, _)) = weights.last() else {
        return "";
    };
    let total: u64 = weights.iter().map(|&(_, w)| u64::from(w)).sum();
    let h = hash(VARIANT_SALT, &[tenant, campaign, user]);
    if total == 0 {
        let index = scale(h, weights.len() as u64);
        return weights[usize::try_from(index).unwrap_or(0)].0;
    }
    let mut point = scale(h, total);
    for &(name, weight) in weights {
        let weight = u64::from(weight);
        if point < weight {
            return name;
        }
        point -= weight;
    }
    last
}

/// Each part is length-prefixed so that ("ab", "c") and ("a", "bc") hash apart.
fn hash(salt: &[u8], parts: &[&str]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(head)
}

/// The hash as a number in [0, 1), from its top 53 bits (all an f64 holds exactly).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The hash mapped onto 0..n by multiplying rather than by remainder, which keeps it uniform.
fn scale(h: u64, n: u64) -> u64 {
    ((u128::from(h) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: usize = 100_000;

    fn user(i: usize) -> String {
        format!("user-{i}")
    }

    #[test]
    fn assignments_are_stable() {
        let weights = [("a", 1), ("b", 1), ("c", 1)];
        for i in 0..1_000 {
            let u = user(i);
            assert_eq!(
                in_control_group("t1", &u, 0.1),
                in_control_group("t1", &u, 0.1)
            );
            assert_eq!(
                in_holdout("t1", "c1", &u, 0.2),
                in_holdout("t1", "c1", &u, 0.2)
            );
            assert_eq!(
                pick_variant("t1", "c1", &u, &weights),
                pick_variant("t1", "c1", &u, &weights)
            );
        }
        // Pinned values: a change of hashing would silently move every user to another group.
        assert_eq!(hash(CONTROL_SALT, &["t1", "u1"]), 3_511_595_753_618_920_944);
        assert_eq!(
            hash(VARIANT_SALT, &["t1", "c1", "u1"]),
            16_391_519_785_076_008_011
        );
        assert_eq!(pick_variant("t1", "c1", "u1", &weights), "c");
        assert_ne!(
            hash(CONTROL_SALT, &["ab", "c"]),
            hash(CONTROL_SALT, &["a", "bc"])
        );
    }

    #[test]
    fn control_group_is_the_same_for_every_campaign_and_grows_monotonically() {
        let mut in_small = 0;
        for i in 0..USERS {
            let u = user(i);
            let small = in_control_group("t1", &u, 0.05);
            let large = in_control_group("t1", &u, 0.10);
            assert!(!small || large, "{u} left the group when it grew");
            in_small += usize::from(small);
        }
        assert!(in_small > 0);
        assert!(!in_control_group("t1", "u1", 0.0));
    }

    #[test]
    fn shares_are_respected_within_tolerance() {
        for share in [0.01, 0.05, 0.15] {
            let n = (0..USERS)
                .filter(|&i| in_control_group("t1", &user(i), share))
                .count();
            let got = n as f64 / USERS as f64;
            assert!((got - share).abs() < 0.005, "control {share}: {got}");
        }
        for share in [0.1, 0.5] {
            let n = (0..USERS)
                .filter(|&i| in_holdout("t1", "c1", &user(i), share))
                .count();
            let got = n as f64 / USERS as f64;
            assert!((got - share).abs() < 0.01, "holdout {share}: {got}");
        }
    }

    #[test]
    fn tenants_and_campaigns_get_different_groups() {
        let same_tenant = (0..USERS)
            .filter(|&i| {
                let u = user(i);
                in_control_group("t1", &u, 0.1) == in_control_group("t2", &u, 0.1)
            })
            .count();
        // Independent 10 % groups agree on 0.1² + 0.9² = 82 % of users.
        assert!((same_tenant as f64 / USERS as f64 - 0.82).abs() < 0.01);
        let same_campaign = (0..USERS)
            .filter(|&i| {
                let u = user(i);
                in_holdout("t1", "c1", &u, 0.1) == in_holdout("t1", "c2", &u, 0.1)
            })
            .count();
        assert!((same_campaign as f64 / USERS as f64 - 0.82).abs() < 0.01);
    }

    #[test]
    fn variant_weights_are_respected() {
        let weights = [("a", 70), ("b", 20), ("c", 10), ("never", 0)];
        let mut counts = [0usize; 4];
        for i in 0..USERS {
            let name = pick_variant("t1", "c1", &user(i), &weights);
            let index = weights.iter().position(|&(n, _)| n == name).unwrap();
            counts[index] += 1;
        }
        for (index, &(name, weight)) in weights.iter().enumerate() {
            let got = counts[index] as f64 / USERS as f64;
            let want = f64::from(weight) / 100.0;
            assert!((got - want).abs() < 0.01, "{name}: {got} against {want}");
        }
        assert_eq!(counts[3], 0);
    }

    #[test]
    fn degenerate_weights() {
        assert_eq!(pick_variant("t1", "c1", "u1", &[]), "");
        assert_eq!(pick_variant("t1", "c1", "u1", &[("only", 0)]), "only");
        let zeros = [("a", 0), ("b", 0)];
        let a = (0..10_000)
            .filter(|&i| pick_variant("t1", "c1", &user(i), &zeros) == "a")
            .count();
        assert!((a as f64 / 10_000.0 - 0.5).abs() < 0.03);
    }

    #[test]
    fn variant_is_independent_of_holdout_and_control_group() {
        let weights = [("a", 1), ("b", 1)];
        let (mut held, mut held_a, mut control, mut control_held) = (0, 0, 0, 0);
        for i in 0..USERS {
            let u = user(i);
            let is_held = in_holdout("t1", "c1", &u, 0.5);
            let is_a = pick_variant("t1", "c1", &u, &weights) == "a";
            let is_control = in_control_group("t1", &u, 0.5);
            held += usize::from(is_held);
            held_a += usize::from(is_held && is_a);
            control += usize::from(is_control);
            control_held += usize::from(is_control && is_held);
        }
        // Half of the held-out users would have seen "a", and half of the control group is held out.
        assert!((held_a as f64 / held as f64 - 0.5).abs() < 0.01);
        assert!((control_held as f64 / control as f64 - 0.5).abs() < 0.01);
    }
}
