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

use chrono::{DateTime, Utc};

use super::scratch::Scratch;
use super::{longer_than, same};
use crate::decision::{Blocker, Shortfall, Warning};
use crate::evidence::{ApprovalDecision, ApprovalRecord, Evidence};
use crate::policy::{ApprovalRule, Role, Stage};

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
    let holds = |record: &ApprovalRecord, role: &Role| record.roles.iter().any(|r| same(r, role));

    let mut held = RoleSets::new(rule.require.len());
    for record in latest.iter().filter_map(|&i| records.get(i)) {
        let approver = &record.approver;
        if rule.forbid_self_approval && candidate.authors.iter().any(|a| same(a, approver)) {
            if record.decision == ApprovalDecision::Approve {
                warnings.push(Warning::SelfApprovalIgnored { approver: approver.clone() });
            }
            continue;
        }
        if let Some(ttl) = rule.ttl
            && longer_than(record.at, now, ttl)
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
        if !rule.require.keys().any(|role| holds(record, role)) {
            warnings.push(Warning::ApproverWithoutRole { approver: approver.clone(), decision: record.decision });
            continue;
        }
        match record.decision {
            ApprovalDecision::Approve => held.push(rule.require.keys().map(|role| holds(record, role))),
            ApprovalDecision::Reject => blockers.push(Blocker::Rejected {
                approver: approver.clone(),
                roles: rule.require.keys().filter(|role| holds(record, role)).cloned().collect(),
                at: record.at,
            }),
            ApprovalDecision::Withdraw => {}
        }
    }

    let mut need = Scratch::<u32, 8>::empty(0);
    for &count in rule.require.values() {
        need.push(count);
    }
    let have = max_assignment(&need, &held);
    if have.iter().zip(need.iter()).any(|(have, need)| have < need) {
        let short = rule
            .require
            .iter()
            .zip(have.iter())
            .filter(|((_, need), have)| *have < *need)
            .map(|((role, &need), &have)| Shortfall { role: role.clone(), need, have })
            .collect();
        blockers.push(Blocker::ApprovalsMissing { stage: stage.name.clone(), short });
    }
}

/// Above this many records, approvers are grouped
/// by sorting rather than by looking each one up among those seen so far.
const GROUP_BY_LOOKUP: usize = 32;

/// The index of each approver's deciding record for `stage` and `sha`:
/// their latest, at equal times the most cautious, and of identical ones
/// the last listed. In the order the approvers first appear.
fn latest_per_approver(records: &[ApprovalRecord], stage: &str, sha: &str) -> Scratch<usize, 16> {
    if records.len() > GROUP_BY_LOOKUP {
        return latest_by_sorting(records, stage, sha);
    }
    let mut latest = Scratch::<usize, 16>::empty(0);
    for (i, record) in records.iter().enumerate().filter(|(_, r)| same(&r.stage, stage) && same(&r.sha, sha)) {
        match latest.iter().position(|&j| same(&records[j].approver, &record.approver)) {
            Some(seen) => {
                if decides_over(record, &records[latest[seen]]) {
                    latest[seen] = i;
                }
            }
            None => latest.push(i),
        }
    }
    latest
}

/// [`latest_per_approver`] for many records: O(n log n) whatever the number
/// of distinct approvers.
fn latest_by_sorting(records: &[ApprovalRecord], stage: &str, sha: &str) -> Scratch<usize, 16> {
    let mut all: Vec<usize> =
        (0..records.len()).filter(|&i| same(&records[i].stage, stage) && same(&records[i].sha, sha)).collect();
    // Per approver, their first record first, then the deciding one.
    all.sort_by(|&x, &y| records[x].approver.cmp(&records[y].approver).then(x.cmp(&y)));
    let mut groups: Vec<(usize, usize)> = Vec::new(); // (first index, deciding index)
    for &i in &all {
        match groups.last_mut() {
            Some((_, deciding)) if same(&records[*deciding].approver, &records[i].approver) => {
                if decides_over(&records[i], &records[*deciding]) {
                    *deciding = i;
                }
            }
            _ => groups.push((i, i)),
        }
    }
    groups.sort_unstable();
    let mut latest = Scratch::<usize, 16>::empty(0);
    for (_, deciding) in groups {
        latest.push(deciding);
    }
    latest
}

/// Whether `later` (listed after `earlier`, same approver) decides instead of it.
fn decides_over(later: &ApprovalRecord, earlier: &ApprovalRecord) -> bool {
    (later.at, caution(later.decision)) >= (earlier.at, caution(earlier.decision))
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
    bits: Scratch<u64, 16>,
}

impl RoleSets {
    fn new(roles: usize) -> Self {
        Self { roles, words: roles.div_ceil(64), bits: Scratch::empty(0) }
    }

    /// Add an approver holding the roles for which `holds` yields true.
    fn push(&mut self, holds: impl IntoIterator<Item = bool>) {
        let start = self.bits.len();
        for _ in 0..self.words {
            self.bits.push(0);
        }
        for (role, held) in holds.into_iter().enumerate().take(self.roles) {
            if held && let Some(word) = self.bits.get_mut(start + role / 64) {
                *word |= 1u64 << (role % 64);
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
/// Augmenting paths found from the roles' side: each round one breadth-first
/// search starts from every approver not yet assigned at once, reaches the
/// roles they hold, and from a full role the roles its assigned approvers
/// hold, until it reaches a role with a free slot; the approvers on the path
/// each move one role along. All slots of a role are alike, so a role is
/// visited once per search. A round that reaches no free slot proves the
/// assignment maximum (no augmenting path exists), so there are at most
/// `min(slots, approvers) + 1` rounds, each linear in the approvers: with
/// 100,000 approvers who can only fill a role that is already full, one
/// failed round ends the search (one search per approver would look at
/// every approver each time).
fn max_assignment(need: &[u32], held: &RoleSets) -> Scratch<u32, 8> {
    let roles = need.len();
    let approvers = held.len();
    let mut fill = Scratch::<u32, 8>::filled(roles, 0);
    let total: u64 = need.iter().map(|&n| u64::from(n)).sum();
    let wanted = need.iter().filter(|&&n| n > 0).count();
    if approvers == 0 || total == 0 {
        return fill;
    }
    let mut role_of = Scratch::<usize, 16>::filled(approvers, NOBODY);
    // The approvers assigned to each role: at most `need[r]`.
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); roles];
    let mut reached_by = Scratch::<usize, 8>::filled(roles, NOBODY);
    let mut queue = Scratch::<usize, 8>::empty(0);
    let mut filled = 0u64;

    while filled < total {
        reached_by.fill(NOBODY);
        queue.truncate(0);
        let reach = |approver: usize, queue: &mut Scratch<usize, 8>, reached_by: &mut [usize]| {
            for role in 0..roles {
                if reached_by[role] == NOBODY && need[role] > 0 && held.holds(approver, role) {
                    reached_by[role] = approver;
                    queue.push(role);
                }
            }
        };
        for approver in (0..approvers).filter(|&a| role_of[a] == NOBODY) {
            if queue.len() == wanted {
                break;
            }
            reach(approver, &mut queue, &mut reached_by);
        }
        let mut free = None;
        let mut head = 0;
        while let Some(&role) = queue.get(head) {
            head += 1;
            if fill[role] < need[role] {
                free = Some(role);
                break;
            }
            for &other in &members[role] {
                reach(other, &mut queue, &mut reached_by);
            }
        }
        let Some(free) = free else { break };
        // Walk the path back: each approver on it moves into the role it
        // reached; the first one on it was not assigned before.
        let mut role = free;
        for _ in 0..=roles {
            let Some(&approver) = reached_by.get(role) else { break };
            let Some(slot) = role_of.get_mut(approver) else { break };
            let previous = std::mem::replace(slot, role);
            members[role].push(approver);
            if previous == NOBODY {
                break;
            }
            members[previous].retain(|&a| a != approver);
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
        assert_eq!(&*max_assignment(&[1, 1], &held), &[1, 1]);
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

    fn record(approver: usize, decision: usize, minute: u32) -> ApprovalRecord {
        let decision = [ApprovalDecision::Approve, ApprovalDecision::Reject, ApprovalDecision::Withdraw][decision];
        ApprovalRecord {
            approver: ["ann", "ben", "cy", "dora"][approver].into(),
            roles: vec![],
            stage: "prod".into(),
            sha: "abc".into(),
            decision,
            at: chrono::DateTime::from_timestamp(i64::from(minute) * 60, 0).unwrap_or_default(),
        }
    }

    proptest! {
        #[test]
        fn grouping_by_lookup_and_by_sorting_agree(
            records in prop::collection::vec((0usize..4, 0usize..3, 0u32..4), 0..40)
        ) {
            let records: Vec<_> = records.into_iter().map(|(a, d, m)| record(a, d, m)).collect();
            let lookup = latest_per_approver(&records, "prod", "abc");
            let sorting = latest_by_sorting(&records, "prod", "abc");
            prop_assert_eq!(&*lookup, &*sorting);
        }

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
