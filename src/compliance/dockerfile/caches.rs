//! Package-manager caches left in a layer: apt lists after an `update`
//! (hadolint DL3009), the apk cache after `apk add` without `--no-cache`
//! (DL3019), pip's cache after `pip install` without `--no-cache-dir`
//! (DL3042). A cache or tmpfs mount at or above the cache directory keeps it
//! out of the layer, and so does deleting it later in the same RUN; a later
//! RUN is too late, the layer already holds it.
//!
//! Stages as hadolint scopes them: apt lists count in the final stage and in
//! stages another stage is built `FROM`, whose layers end up in that image;
//! apk and pip caches count in every stage.

use std::collections::HashMap;

use super::finding;
use super::parse::{pairs, Instruction};
use super::shell::{self, Command};
use super::stages::{lineage, Stage};
use crate::compliance::Finding;

const APT_LISTS: &str = "/var/lib/apt/lists";
const APK_CACHE: &str = "/var/cache/apk";
const PIP_CACHE: &str = "/root/.cache/pip";

pub fn check(stages: &[Stage<'_>], file: &str, out: &mut Vec<Finding>) {
    for (index, stage) in stages.iter().enumerate() {
        let apt_counts = index + 1 == stages.len() || stages.iter().any(|s| s.parent == Some(index));
        let mut env = inherited_env(stages, index);
        for ins in stage.body {
            match ins.keyword.as_str() {
                "ENV" | "ARG" => env.extend(pairs(&ins.args)),
                "RUN" => {
                    let script = shell::run_script(ins);
                    let commands = shell::commands(&script);
                    if apt_counts {
                        apt_lists(ins, &commands, file, out);
                    }
                    apk_cache(ins, &commands, file, out);
                    pip_cache(ins, &script, &commands, &env, file, out);
                }
                _ => {}
            }
        }
    }
}

/// ENV and ARG values set by the stages this one is built on, oldest first.
fn inherited_env(stages: &[Stage<'_>], index: usize) -> HashMap<String, String> {
    let mut ancestors: Vec<&Stage<'_>> = lineage(stages, index).skip(1).collect();
    ancestors.reverse();
    let mut env = HashMap::new();
    for ins in ancestors.iter().flat_map(|s| s.body).filter(|i| i.keyword == "ENV" || i.keyword == "ARG") {
        env.extend(pairs(&ins.args));
    }
    env
}

/// A cache or tmpfs mount at `dir` or at one of its parents.
fn mounted_over(ins: &Instruction, dir: &str) -> bool {
    ins.mounts().iter().any(|m| (m.kind == "cache" || m.kind == "tmpfs") && contains(&m.target, dir))
}

/// `parent` is `path` or one of its ancestors.
fn contains(parent: &str, path: &str) -> bool {
    let parent = parent.trim_end_matches('/');
    path.strip_prefix(parent).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// An `rm` (or `find ... -delete`) of `dir`, of one of its parents or of what
/// is inside it, after command `after`. Relative paths are resolved against
/// the RUN's `cd`s; a trailing `*` matches as the shell would.
fn removed_after(commands: &[Command], after: usize, dir: &str) -> bool {
    let mut cwd: Option<String> = None;
    for (n, c) in commands.iter().enumerate() {
        match c.name.as_str() {
            "cd" => {
                cwd = match (c.args.first(), cwd) {
                    (Some(to), _) if to.starts_with('/') => Some(to.clone()),
                    (Some(to), Some(from)) => Some(format!("{}/{to}", from.trim_end_matches('/'))),
                    _ => None,
                };
            }
            "rm" | "find" if n > after && (c.name == "rm" || c.has_arg("-delete")) => {
                let removes = |arg: &String| {
                    let path = match (&cwd, arg.starts_with('/')) {
                        (Some(from), false) => format!("{}/{arg}", from.trim_end_matches('/')),
                        _ => arg.clone(),
                    };
                    let stem = path.trim_end_matches('*');
                    contains(&path, dir)
                        || path.starts_with(&format!("{dir}/"))
                        || (stem.len() < path.len() && stem.starts_with('/') && dir.starts_with(stem))
                };
                if c.args.iter().any(removes) {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

fn apt_lists(ins: &Instruction, commands: &[Command], file: &str, out: &mut Vec<Finding>) {
    let update =
        commands.iter().rposition(|c| matches!(c.name.as_str(), "apt-get" | "apt" | "aptitude") && c.has_arg("update"));
    if let Some(at) = update {
        // `apt-get dist-clean` (apt 2.7.8, Debian trixie) deletes the lists too.
        let dist_clean = commands[at + 1..].iter().any(|c| {
            matches!(c.name.as_str(), "apt-get" | "apt") && (c.has_arg("dist-clean") || c.has_arg("distclean"))
        });
        if !dist_clean && !removed_after(commands, at, APT_LISTS) && !mounted_over(ins, APT_LISTS) {
            out.push(finding(
                "dockerfile/apt-lists-kept",
                file,
                ins.line,
                "apt lists kept: add `rm -rf /var/lib/apt/lists/*` after the install in the same RUN".into(),
            ));
        }
    }
}

fn apk_cache(ins: &Instruction, commands: &[Command], file: &str, out: &mut Vec<Finding>) {
    let add = commands.iter().rposition(|c| c.name == "apk" && c.has_arg("add") && !c.has_arg("--no-cache"));
    if let Some(at) = add {
        if !removed_after(commands, at, APK_CACHE) && !mounted_over(ins, APK_CACHE) {
            out.push(finding("dockerfile/apk-cache-kept", file, ins.line, "apk add without --no-cache".into()));
        }
    }
}

/// `pip`, `pip3`, `pip3.12 install`, `python3 -m pip install`; not pipx or pipenv.
fn is_pip_install(c: &Command) -> bool {
    let pip = c.name.strip_prefix("pip").is_some_and(|v| v.chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
    let module = c.name.starts_with("python") && c.args.windows(3).any(|w| w == ["-m", "pip", "install"]);
    (pip && c.has_arg("install")) || module
}

fn pip_cache(
    ins: &Instruction,
    script: &str,
    commands: &[Command],
    env: &HashMap<String, String>,
    file: &str,
    out: &mut Vec<Finding>,
) {
    let install =
        commands.iter().rposition(|c| is_pip_install(c) && !c.args.iter().any(|a| a.starts_with("--no-cache-dir")));
    let Some(at) = install else { return };
    // pip turns its cache off for any value of PIP_NO_CACHE_DIR, `false` and
    // `0` included (pip's `_handle_no_cache_dir` keeps that for compatibility).
    let env_off = env.get("PIP_NO_CACHE_DIR").is_some_and(|v| !v.is_empty());
    let inline_off = script.match_indices("PIP_NO_CACHE_DIR=").any(|(at, m)| {
        script[at + m.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '"' || c == '\'')
    });
    let purged = commands[at + 1..]
        .iter()
        .any(|c| c.name.starts_with("pip") && c.args.starts_with(&["cache".into(), "purge".into()]))
        || commands[at + 1..].iter().any(|c| c.name == "rm" && c.args.iter().any(|a| a.contains(".cache/pip")));
    let mounted = ins.mounts().iter().any(|m| {
        (m.kind == "cache" || m.kind == "tmpfs")
            && (contains(&m.target, PIP_CACHE)
                || m.target.trim_end_matches('/').ends_with("/.cache/pip")
                || m.target.trim_end_matches('/').ends_with("/.cache"))
    });
    if !(env_off || inline_off || purged || mounted) {
        out.push(finding(
            "dockerfile/pip-cache-kept",
            file,
            ins.line,
            "pip install without --no-cache-dir (or PIP_NO_CACHE_DIR, or a cache mount)".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan_text;

    fn hits(text: &str, rule: &str) -> Vec<usize> {
        scan_text(text, "Dockerfile").into_iter().filter(|f| f.rule == rule).map(|f| f.line).collect()
    }

    const APT: &str = "dockerfile/apt-lists-kept";
    const APK: &str = "dockerfile/apk-cache-kept";
    const PIP: &str = "dockerfile/pip-cache-kept";

    #[test]
    fn apt_update_without_removing_the_lists_in_the_same_run() {
        assert_eq!(hits("FROM debian:12\nRUN apt-get update\n", APT), [2]);
        assert_eq!(hits("FROM debian:12\nRUN apt update && apt install -y x\n", APT), [2]);
        assert_eq!(hits("FROM debian:12\nRUN aptitude update && aptitude install x\n", APT), [2]);
        assert_eq!(
            hits("FROM debian:12\nRUN apt-get update && apt-get install -y x\nRUN rm -rf /var/lib/apt/lists/*\n", APT),
            [2]
        );
        assert!(hits(
            "FROM debian:12\nRUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\n",
            APT
        )
        .is_empty());
        assert!(hits("FROM debian:12\nRUN apt-get install -y x\n", APT).is_empty());
        // Removing before the update leaves the fresh lists behind.
        assert_eq!(hits("FROM debian:12\nRUN rm -rf /var/lib/apt/lists/* && apt-get update\n", APT), [2]);
        assert!(
            hits("FROM debian:13\nRUN apt-get update && apt-get install -y x && apt-get dist-clean\n", APT).is_empty()
        );
        assert!(hits("FROM debian:12\nRUN apt-get update && cd /var/lib && rm -rf apt dpkg\n", APT).is_empty());
        for cleanup in
            ["rm -rf /var/lib/apt/lists", "rm -rf /var/lib/apt/lists*", "find /var/lib/apt/lists -type f -delete"]
        {
            assert!(hits(&format!("FROM debian:12\nRUN apt-get update && {cleanup}\n"), APT).is_empty(), "{cleanup}");
        }
        assert_eq!(hits("FROM debian:12\nRUN apt-get update && find /var/lib/apt/lists -type f\n", APT), [2]);
        assert_eq!(hits("FROM debian:12\nRUN apt-get update && rm -rf *\n", APT), [2]);
        assert_eq!(hits("FROM debian:12\nRUN apt-get update && cd /tmp && rm -rf lists\n", APT), [2]);
        // Mentioning the command is not running it.
        assert!(hits("FROM debian:12\nRUN echo 'apt-get update'\n", APT).is_empty());
    }

    #[test]
    fn a_comment_inside_the_run_does_not_hide_the_cleanup() {
        let text = "FROM debian:12\nRUN set -ex; \\\n\tapt-get update; \\\n# a comment\n\tapt-get install -y x; \\\n\trm -rf /var/lib/apt/lists/*\n";
        assert!(hits(text, APT).is_empty());
        let text = "FROM debian:12\nRUN apt-get update \\\n# a comment\n && apt-get install -y x\n";
        assert_eq!(hits(text, APT), [2]);
    }

    #[test]
    fn apt_cache_mounts_keep_the_lists_out() {
        for target in ["/var/lib/apt/lists", "/var/lib/apt", "/var/lib/apt/lists/"] {
            for kind in ["cache", "tmpfs"] {
                let text = format!("FROM debian:12\nRUN --mount=type={kind},target={target} apt-get update\n");
                assert!(hits(&text, APT).is_empty(), "{text}");
            }
        }
        assert_eq!(hits("FROM debian:12\nRUN --mount=type=cache,target=/var/cache/apt apt-get update\n", APT), [2]);
        assert_eq!(hits("FROM debian:12\nRUN --mount=type=bind,target=/var/lib/apt/lists apt-get update\n", APT), [2]);
    }

    #[test]
    fn apt_lists_count_in_the_final_stage_and_in_stages_built_on() {
        let discarded = "FROM debian:12 AS build\nRUN apt-get update && apt-get install -y gcc\nFROM scratch\nCOPY --from=build /a /a\n";
        assert!(hits(discarded, APT).is_empty());
        let base = "FROM debian:12 AS base\nRUN apt-get update && apt-get install -y gcc\nFROM base\nRUN true\n";
        assert_eq!(hits(base, APT), [2]);
    }

    #[test]
    fn a_heredoc_run_is_checked_like_any_other() {
        let text = "FROM debian:12\nRUN <<EOF\napt-get update\napt-get install -y git\nEOF\nUSER app\n";
        assert_eq!(hits(text, APT), [2]);
        let text = "FROM python:3.12\nRUN <<EOF\npip install flask\nEOF\n";
        assert_eq!(hits(text, PIP), [2]);
    }

    #[test]
    fn apk_add_needs_no_cache_in_any_position() {
        assert_eq!(hits("FROM alpine:3\nRUN apk add x\n", APK), [2]);
        assert_eq!(hits("FROM alpine:3\nRUN apk --update add x\n", APK), [2]);
        assert_eq!(hits("FROM alpine:3\nRUN apk add --update x\n", APK), [2]);
        assert!(hits("FROM alpine:3\nRUN apk --no-cache add x\n", APK).is_empty());
        assert!(hits("FROM alpine:3\nRUN apk add --no-cache -U x\n", APK).is_empty());
        assert!(hits("FROM alpine:3\nRUN --mount=type=cache,target=/var/cache/apk apk add -U x\n", APK).is_empty());
        assert_eq!(hits("FROM alpine:3\nRUN --mount=type=cache,target=/var/cache/foo apk add -U x\n", APK), [2]);
        assert!(hits("FROM alpine:3\nRUN apk update && apk add x && rm -rf /var/cache/apk/*\n", APK).is_empty());
        // Every stage counts for apk, as for hadolint.
        assert_eq!(hits("FROM alpine:3 AS b\nRUN apk add x\nFROM scratch\n", APK), [2]);
    }

    #[test]
    fn pip_install_in_all_its_spellings() {
        for cmd in [
            "pip install x",
            "pip2 install x",
            "pip3 install x",
            "pip3.12 install x",
            "python3 -m pip install x",
            "/usr/local/bin/pip install x",
            "sudo pip install x",
            "pip install -r req.txt",
        ] {
            assert_eq!(hits(&format!("FROM python:3.12\nRUN {cmd}\n"), PIP), [2], "{cmd}");
        }
        for cmd in [
            "pip install --no-cache-dir x",
            "pip --no-cache-dir install x",
            "python -m pip install --no-cache-dir x",
            "pipx install x",
            "pipenv install x",
            "pip wheel x",
            "pip install x && pip cache purge",
        ] {
            assert!(hits(&format!("FROM python:3.12\nRUN {cmd}\n"), PIP).is_empty(), "{cmd}");
        }
    }

    #[test]
    fn pip_no_cache_dir_in_the_environment() {
        // pip disables its cache for any value, `0` and `false` too.
        for value in ["1", "true", "on", "0", "false", "off"] {
            assert!(
                hits(&format!("FROM python:3.12\nENV PIP_NO_CACHE_DIR={value}\nRUN pip install x\n"), PIP).is_empty()
            );
            assert!(hits(&format!("FROM python:3.12\nRUN PIP_NO_CACHE_DIR={value} pip install x\n"), PIP).is_empty());
            assert!(hits(&format!("FROM python:3.12\nRUN export PIP_NO_CACHE_DIR={value} && pip install x\n"), PIP)
                .is_empty());
        }
        assert!(hits("FROM python:3.12\nENV PIP_NO_CACHE_DIR 1\nRUN pip install x\n", PIP).is_empty());
        assert!(hits("FROM python:3.12\nARG PIP_NO_CACHE_DIR=1\nRUN pip install x\n", PIP).is_empty());
        // Inherited from the stage it is built on, not from a sibling.
        assert!(
            hits("FROM python:3.12 AS base\nENV PIP_NO_CACHE_DIR=1\nFROM base\nRUN pip install x\n", PIP).is_empty()
        );
        assert_eq!(
            hits("FROM python:3.12 AS a\nENV PIP_NO_CACHE_DIR=1\nFROM python:3.12\nRUN pip install x\n", PIP),
            [4]
        );
        // Set after the install is too late.
        assert_eq!(hits("FROM python:3.12\nRUN pip install x\nENV PIP_NO_CACHE_DIR=1\n", PIP), [2]);
    }

    #[test]
    fn pip_cache_mounts_keep_the_cache_out() {
        for target in ["/root/.cache/pip", "/root/.cache", "/home/app/.cache/pip"] {
            let text = format!("FROM python:3.12\nRUN --mount=type=cache,target={target} pip install x\n");
            assert!(hits(&text, PIP).is_empty(), "{target}");
        }
        assert_eq!(hits("FROM python:3.12\nRUN --mount=type=bind,target=/root/.cache/pip pip install x\n", PIP), [2]);
    }
}
