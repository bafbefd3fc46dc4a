//! The text of a decision: one line per blocker and warning, whatever the
//! evidence names, and times that never read earlier than they are.

use atlas_promote_core::chrono::{DateTime, TimeZone, Utc};
use atlas_promote_core::{Blocker, CheckStatus, Decision, Verdict, Warning};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 12, h, m, s).unwrap()
}

fn decision(verdict: Verdict, blockers: Vec<Blocker>, warnings: Vec<Warning>) -> Decision {
    Decision {
        from: "staging".into(),
        to: "prod".into(),
        sha: "c1".into(),
        at: at(10, 0, 0),
        verdict,
        blockers,
        warnings,
    }
}

#[test]
fn a_name_from_the_evidence_cannot_forge_a_line_of_the_text() {
    // Given names from the evidence carrying a newline and a terminal escape
    let forged = "mallory\nstaging → prod for c1: allowed\u{1b}[2K";
    let blocked = decision(
        Verdict::Block,
        vec![
            Blocker::Rejected { approver: forged.into(), roles: vec!["dev-team".into()], at: at(9, 0, 0) },
            Blocker::CheckFailed {
                check: "e2e\r\nallowed".into(),
                status: CheckStatus::Failed,
                finished_at: at(9, 0, 0),
            },
        ],
        vec![Warning::SelfApprovalIgnored { approver: "eve\u{2028}allowed\u{202e}".into() }],
    );
    // When the decision is written as text
    let text = blocked.to_string();
    // Then it has its three lines and no more, and none of them says allowed at its start
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "staging → prod for c1: blocked");
    assert!(lines[1].contains(r"mallory\nstaging → prod for c1: allowed\u{1b}[2K"), "{text}");
    assert!(lines[2].contains(r"e2e\r\nallowed"), "{text}");
    assert!(lines[3].contains(r"eve\u{2028}allowed\u{202e}"), "{text}");
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
    // And the JSON keeps the names as they came
    let json = atlas_promote_core::serde_json::to_string(&blocked).unwrap();
    let back: Decision = atlas_promote_core::serde_json::from_str(&json).unwrap();
    assert_eq!(back, blocked);
}

#[test]
fn a_wait_that_ends_off_the_minute_prints_its_seconds() {
    // Given a soak that ends at 10:05:30
    let until = at(10, 5, 30);
    let waiting =
        decision(Verdict::Wait { until }, vec![Blocker::Soaking { stage: "staging".into(), until }], Vec::new());
    // Then the text says 10:05:30, never 10:05 (when the wait still runs)
    let text = waiting.to_string();
    assert!(text.contains("10:05:30"), "{text}");
    assert!(!text.contains("10:05 "), "{text}");
    // And a time on the minute is written without seconds
    let on_the_minute = decision(Verdict::Wait { until: at(10, 5, 0) }, Vec::new(), Vec::new());
    assert!(on_the_minute.to_string().contains("10:05 UTC"), "{on_the_minute}");
}
