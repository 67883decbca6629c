//! What the running container gets: the last stage's USER and HEALTHCHECK,
//! including those it inherits from the stages it is built on. A USER or
//! HEALTHCHECK in a discarded build stage does not reach the image.

use super::finding;
use super::parse::Instruction;
use super::stages::{lineage, Stage};
use crate::compliance::Finding;

/// The last `keyword` instruction in effect for the final image.
fn last_in_effect<'a>(stages: &[Stage<'a>], keyword: &str) -> Option<&'a Instruction> {
    let last = stages.len().checked_sub(1)?;
    lineage(stages, last).find_map(|s| s.body.iter().rev().find(|i| i.keyword == keyword))
}

/// `root`, `0`, `root:group`, `0:0`: uid 0 whatever the group.
fn is_root(user: &str) -> bool {
    matches!(user.split(':').next().unwrap_or_default().trim(), "root" | "0")
}

pub fn root_user(stages: &[Stage<'_>], file: &str, out: &mut Vec<Finding>) {
    let Some(last) = stages.last() else { return };
    match last_in_effect(stages, "USER") {
        None => out.push(finding(
            "dockerfile/root-user",
            file,
            last.line(),
            "no USER: the container runs as root; add a non-root USER".into(),
        )),
        Some(user) if is_root(&user.args) => out.push(finding(
            "dockerfile/root-user",
            file,
            user.line,
            format!("`USER {}`: the container runs as root", user.args),
        )),
        Some(_) => {}
    }
}

pub fn healthcheck(stages: &[Stage<'_>], file: &str, out: &mut Vec<Finding>) {
    let Some(last) = stages.last() else { return };
    // `HEALTHCHECK NONE` switches off an inherited check: there is none.
    let none = |h: &Instruction| h.args.split_whitespace().next().is_some_and(|w| w.eq_ignore_ascii_case("none"));
    if last_in_effect(stages, "HEALTHCHECK").is_none_or(none) {
        out.push(finding(
            "dockerfile/no-healthcheck",
            file,
            last.line(),
            "no HEALTHCHECK in the final stage: orchestrators cannot tell a hung container".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan_text;

    fn lines(text: &str, rule: &str) -> Vec<usize> {
        scan_text(text, "Dockerfile").into_iter().filter(|f| f.rule == rule).map(|f| f.line).collect()
    }

    #[test]
    fn root_in_every_spelling_is_root() {
        for user in ["root", "0", "root:root", "0:0", "root:staff"] {
            let text = format!("FROM debian:12\nUSER {user}\nHEALTHCHECK CMD true\n");
            assert_eq!(lines(&text, "dockerfile/root-user"), [2], "{user}");
        }
        assert!(lines("FROM debian:12\nUSER 10001:0\n", "dockerfile/root-user").is_empty());
    }

    #[test]
    fn only_the_final_stage_and_what_it_inherits_counts() {
        // A build stage's root does not reach the final image.
        assert!(lines("FROM debian:12 AS base\nUSER root\nFROM scratch\nUSER app\n", "dockerfile/root-user").is_empty());
        // The final stage inherits the USER of the stage it is built on.
        assert_eq!(lines("FROM debian:12 AS base\nUSER root\nRUN x\nFROM base\nRUN y\n", "dockerfile/root-user"), [2]);
        assert!(lines("FROM debian:12 AS base\nUSER app\nFROM base\n", "dockerfile/root-user").is_empty());
        // A USER in a discarded stage leaves the final scratch image running as root.
        assert_eq!(
            lines("FROM debian:12 AS b\nUSER app\nFROM scratch\nCOPY --from=b /a /a\n", "dockerfile/root-user"),
            [3]
        );
    }

    #[test]
    fn healthcheck_is_looked_for_in_the_final_image() {
        let rule = "dockerfile/no-healthcheck";
        assert_eq!(lines("FROM a:1 AS b\nHEALTHCHECK CMD true\nFROM c:1\nUSER app\n", rule), [3]);
        assert!(lines("FROM a:1 AS b\nHEALTHCHECK CMD true\nFROM b\nUSER app\n", rule).is_empty());
        assert_eq!(lines("FROM a:1 AS b\nHEALTHCHECK CMD true\nFROM b\nHEALTHCHECK NONE\n", rule), [3]);
        assert!(lines("", rule).is_empty());
    }
}
