//! G5: the approvals needed to enter the target stage.
//!
//! Which records count: those for the target stage and the candidate's
//! commit; of those, each approver's latest (at equal times a reject wins
//! over a withdrawal, and a withdrawal over an approval: the more cautious
//! reading). Then authors are dropped when self-approval is forbidden,
//! records strictly older than `now - ttl` expire, and withdrawals drop out.
//!
//! Whether the rule holds is a bipartite matching of approvers to role
//! slots: with overlapping roles, a greedy pass can use the one person who
//! could fill a scarce role for a plentiful one.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};

use super::minus;
use crate::decision::{Blocker, Shortfall, Warning};
use crate::evidence::{ApprovalDecision, ApprovalRecord, Evidence};
use crate::policy::{ApprovalRule, Stage};

/// Apply G5 with `rule`, the approval rule of the target `stage`.
pub(super) fn evaluate(
    rule: &ApprovalRule,
    stage: &Stage,
    evidence: &Evidence,
    now: DateTime<Utc>,
    blockers: &mut Vec<Blocker>,
    warnings: &mut Vec<Warning>,
) {
    let candidate = &evidence.candidate;
    let records = &evidence.approvals;
    let latest = latest_per_approver(records, &stage.name, &candidate.sha);
    // A ttl reaching back before the earliest instant expires nothing.
    let oldest_valid = rule.ttl.and_then(|ttl| minus(now, ttl).map(|at| (at, ttl)));

    let roles = rule.require.len();
    let mut held = RoleSets::new(roles);
    for record in latest.iter().filter_map(|&i| records.get(i)) {
        let approver = &record.approver;
        if rule.forbid_self_approval && candidate.is_author(approver) {
            if record.decision == ApprovalDecision::Approve {
                warnings.push(Warning::SelfApprovalIgnored { approver: approver.clone() });
            }
            continue;
        }
        if let Some((oldest, ttl)) = oldest_valid
            && record.at < oldest
        {
            let (approver, at) = (approver.clone(), record.at);
            match record.decision {
                ApprovalDecision::Approve => warnings.push(Warning::ApprovalExpired { approver, at, ttl }),
                ApprovalDecision::Reject => warnings.push(Warning::RejectionExpired { approver, at, ttl }),
                ApprovalDecision::Withdraw => {}
            }
            continue;
        }
        if record.decision == ApprovalDecision::Withdraw {
            continue;
        }
        if !rule.require.keys().any(|role| record.roles.contains(role)) {
            warnings.push(Warning::ApproverWithoutRole { approver: approver.clone(), decision: record.decision });
            continue;
        }
        match record.decision {
            ApprovalDecision::Approve => held.push(rule.require.keys().map(|role| record.roles.contains(role))),
            ApprovalDecision::Reject => blockers.push(Blocker::Rejected {
                approver: approver.clone(),
                roles: rule.require.keys().filter(|role| record.roles.contains(role)).cloned().collect(),
                at: record.at,
            }),
            ApprovalDecision::Withdraw => {}
        }
    }

    let need: Vec<u32> = rule.require.values().copied().collect();
    let have = max_assignment(&need, &held);
    let short: Vec<Shortfall> = rule
        .require
        .iter()
        .zip(have)
        .filter(|((_, need), have)| have < *need)
        .map(|((role, &need), have)| Shortfall { role: role.clone(), need, have })
        .collect();
    if !short.is_empty() {
        blockers.push(Blocker::ApprovalsMissing { stage: stage.name.clone(), short });
    }
}

/// The indices of each approver's deciding record for `stage` and `sha`, in
/// the order of `records`.
fn latest_per_approver(records: &[ApprovalRecord], stage: &str, sha: &str) -> Vec<usize> {
    let mut latest: Vec<usize> =
        (0..records.len()).filter(|&i| records[i].stage == stage && records[i].sha == sha).collect();
    // Per approver, the deciding record first: latest, then most cautious,
    // then (for identical records) the one listed last.
    latest.sort_unstable_by_key(|&i| {
        let r = &records[i];
        (r.approver.as_str(), Reverse((r.at, caution(r.decision), i)))
    });
    latest.dedup_by(|later, first| records[*later].approver == records[*first].approver);
    latest.sort_unstable();
    latest
}

/// At equal times, the record that wins: reject, then withdraw, then approve.
fn caution(decision: ApprovalDecision) -> u8 {
    match decision {
        ApprovalDecision::Approve => 0,
        ApprovalDecision::Withdraw => 1,
        ApprovalDecision::Reject => 2,
    }
}

/// For each approver, which roles of the rule they hold: one bit set per
/// approver, `words` 64-bit words long.
#[derive(Debug)]
struct RoleSets {
    roles: usize,
    words: usize,
    bits: Vec<u64>,
}

impl RoleSets {
    fn new(roles: usize) -> Self {
        Self { roles, words: roles.div_ceil(64), bits: Vec::new() }
    }

    /// Add an approver holding the roles for which `holds` yields true.
    fn push(&mut self, holds: impl IntoIterator<Item = bool>) {
        let start = self.bits.len();
        self.bits.resize(start + self.words, 0);
        for (role, held) in holds.into_iter().enumerate().take(self.roles) {
            if held {
                self.bits[start + role / 64] |= 1u64 << (role % 64);
            }
        }
    }

    /// How many approvers there are.
    fn len(&self) -> usize {
        self.bits.len().checked_div(self.words).unwrap_or(0)
    }

    fn holds(&self, approver: usize, role: usize) -> bool {
        self.bits.get(approver * self.words + role / 64).is_some_and(|w| w & (1u64 << (role % 64)) != 0)
    }
}

const NOBODY: usize = usize::MAX;

/// A maximum assignment of approvers to slots, `need[r]` slots of role `r`,
/// each approver filling at most one slot of a role they hold: how many
/// slots of each role it fills.
///
/// Kuhn's algorithm with role capacities: each approver in turn looks for an
/// augmenting path (breadth-first, so no recursion) through roles that are
/// full to one with a free slot, moving each approver on the path one role
/// along. All slots of a role are alike, so a role is visited once per search.
fn max_assignment(need: &[u32], held: &RoleSets) -> Vec<u32> {
    let roles = need.len();
    let approvers = held.len();
    let mut fill = vec![0u32; roles];
    let total: u64 = need.iter().map(|&n| u64::from(n)).sum();
    if approvers == 0 || total == 0 {
        return fill;
    }
    let mut role_of = vec![NOBODY; approvers];
    let mut reached_by = vec![NOBODY; roles];
    let mut queue = Vec::with_capacity(roles);
    let mut filled = 0u64;

    for start in 0..approvers {
        if filled == total {
            break;
        }
        reached_by.fill(NOBODY);
        queue.clear();
        let reach = |approver: usize, queue: &mut Vec<usize>, reached_by: &mut [usize]| {
            for role in 0..roles {
                if reached_by[role] == NOBODY && need[role] > 0 && held.holds(approver, role) {
                    reached_by[role] = approver;
                    queue.push(role);
                }
            }
        };
        reach(start, &mut queue, &mut reached_by);
        let mut free = None;
        let mut head = 0;
        while let Some(&role) = queue.get(head) {
            head += 1;
            if fill[role] < need[role] {
                free = Some(role);
                break;
            }
            for (other, _) in role_of.iter().enumerate().filter(|(_, r)| **r == role) {
                reach(other, &mut queue, &mut reached_by);
            }
        }
        let Some(free) = free else { continue };
        // Walk the path back: each approver on it moves into the role it reached.
        let mut role = free;
        for _ in 0..=roles {
            let Some(&approver) = reached_by.get(role) else { break };
            let Some(slot) = role_of.get_mut(approver) else { break };
            let previous = std::mem::replace(slot, role);
            if approver == start {
                break;
            }
            role = previous;
        }
        fill[free] += 1;
        filled += 1;
    }
    fill
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sets(approvers: &[&[bool]]) -> RoleSets {
        let mut held = RoleSets::new(approvers.first().map_or(0, |a| a.len()));
        for holds in approvers {
            held.push(holds.iter().copied());
        }
        held
    }

    #[test]
    fn a_greedy_choice_is_undone_by_an_augmenting_path() {
        // alice holds both roles and comes first; bob only the first.
        let held = sets(&[&[true, true], &[true, false]]);
        assert_eq!(max_assignment(&[1, 1], &held), vec![1, 1]);
    }

    #[test]
    fn one_person_fills_one_slot() {
        let held = sets(&[&[true, true]]);
        assert_eq!(max_assignment(&[1, 1], &held).iter().sum::<u32>(), 1);
    }

    #[test]
    fn more_than_64_roles_are_tracked() {
        let mut held = RoleSets::new(70);
        held.push((0..70).map(|r| r == 69));
        let mut need = vec![0; 70];
        need[69] = 1;
        assert_eq!(max_assignment(&need, &held)[69], 1);
    }

    /// The largest number of slots any assignment fills, by trying them all.
    fn brute_force(need: &[u32], held: &[Vec<bool>]) -> u32 {
        fn go(i: usize, need: &mut [u32], held: &[Vec<bool>]) -> u32 {
            let Some(holds) = held.get(i) else { return 0 };
            let mut best = go(i + 1, need, held);
            for role in 0..need.len() {
                if holds[role] && need[role] > 0 {
                    need[role] -= 1;
                    best = best.max(1 + go(i + 1, need, held));
                    need[role] += 1;
                }
            }
            best
        }
        go(0, &mut need.to_vec(), held)
    }

    proptest! {
        #[test]
        fn the_assignment_is_maximum_and_within_need(
            (need, held) in (1usize..5).prop_flat_map(|roles| (
                prop::collection::vec(0u32..3, roles),
                prop::collection::vec(prop::collection::vec(any::<bool>(), roles), 0..7),
            ))
        ) {
            let mut sets = RoleSets::new(need.len());
            for holds in &held {
                sets.push(holds.iter().copied());
            }
            let fill = max_assignment(&need, &sets);
            for (have, need) in fill.iter().zip(&need) {
                prop_assert!(have <= need);
            }
            prop_assert_eq!(fill.iter().sum::<u32>(), brute_force(&need, &held));
        }
    }
}
