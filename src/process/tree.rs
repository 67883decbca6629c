//! Whole process trees. Killing a child's process group misses descendants
//! that moved to a session or group of their own (`setsid`, a daemonising
//! server), so every child capstan starts also carries a tag in its
//! environment, `CAPSTAN_TREE`, that its descendants inherit wherever they
//! move. A tree is its process group, every process with its tag, and every
//! descendant of those. capstan is also a child subreaper: a descendant whose
//! parent exits is adopted by capstan, not by init, so it stays visible and
//! capstan reaps it.
//!
//! Tags name the run (a token unique to this capstan process) and the child:
//! `<token>.<n>`, or `<token>~<n>` for a step that said `detach: true`,
//! whose background processes outlive the run. A nested capstan appends its
//! own tag after its parent's (`outer:inner`), so the outer run still finds
//! the inner one's children.
//!
//! What escapes: a descendant that clears its environment (`env -i`) and
//! whose parent has already exited. It is adopted by capstan while capstan
//! runs but carries no tag that says which step it belongs to.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use nix::sys::signal::{kill, killpg, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

/// The environment variable that carries a process's tree tags.
pub const TAG_VAR: &str = "CAPSTAN_TREE";

/// Sweeps to repeat while a tree still has members (each sweep stops, then
/// kills, what it found; a member forking during a sweep is caught by the next).
const SWEEPS: usize = 8;

/// One started child: its process group and its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    pub pgid: i32,
    pub tag: String,
}

impl Tree {
    /// SIGKILL every member of the tree.
    pub fn kill(&self) {
        kill_all(std::slice::from_ref(self));
    }
}

/// SIGKILL every member of these trees, in one sweep of /proc.
///
/// A tree's process group counts only while its leader has not been waited
/// for: after that its number may be reused by an unrelated group (pids wrap
/// at 32768 on many machines). The group's remaining members carry the tag.
pub fn kill_all(trees: &[Tree]) {
    if trees.is_empty() {
        return;
    }
    let groups: HashSet<i32> = {
        let direct = DIRECT.lock().unwrap_or_else(PoisonError::into_inner);
        trees.iter().map(|t| t.pgid).filter(|&g| g > 1 && direct.as_ref().is_some_and(|d| d.contains(&g))).collect()
    };
    kill_groups_and_tags(&groups, trees);
}

/// The reaper's view: capstan is gone, and the trees it listed are the
/// ones still running, so their groups are theirs.
pub fn kill_listed(trees: &[Tree]) {
    let groups: HashSet<i32> = trees.iter().map(|t| t.pgid).filter(|&g| g > 1).collect();
    kill_groups_and_tags(&groups, trees);
}

fn kill_groups_and_tags(groups: &HashSet<i32>, trees: &[Tree]) {
    for &pgid in groups {
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let tags: HashSet<&str> = trees.iter().map(|t| t.tag.as_str()).collect();
    kill_matching(|p| groups.contains(&p.pgid) || p.has_tag(|t| tags.contains(t)));
}

/// A token unique to this capstan process, the prefix of its tags.
pub fn run_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        format!("{}-{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
    })
}

/// A fresh tag for a child about to start.
pub fn new_tag(detached: bool) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}{}{n}", run_token(), if detached { '~' } else { '.' })
}

/// The `CAPSTAN_TREE` value a child gets: tags capstan itself inherited
/// (when it runs inside another capstan's step), then its own.
pub fn env_value(tag: &str) -> String {
    match std::env::var(TAG_VAR) {
        Ok(outer) if !outer.is_empty() => format!("{outer}:{tag}"),
        _ => tag.to_string(),
    }
}

/// Kill what the run's children left running in the background, except
/// what detached steps started. Called when the run ends or is interrupted.
/// Returns how many processes were killed.
pub fn kill_leftovers() -> usize {
    kill_leftovers_of(run_token())
}

/// The same, for the run whose token is given (the reaper's view).
pub fn kill_leftovers_of(token: &str) -> usize {
    let prefix = format!("{token}.");
    kill_matching(|p| p.has_tag(|t| t.starts_with(&prefix)))
}

/// Become a child subreaper (Linux). Failing is not fatal: trees are still
/// found by tag, but orphans are reaped by init instead.
pub fn become_subreaper() {
    match nix::sys::prctl::set_child_subreaper(true) {
        Ok(()) => SUBREAPER.store(true, Ordering::Relaxed),
        Err(e) => tracing::debug!("cannot become a child subreaper: {e}"),
    }
}

/// Set by [`become_subreaper`]. Only then are children capstan did not
/// spawn itself its to reap: embedded in another program (a test harness),
/// the library must not reap that program's children.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Children capstan spawned itself and waits for through their `Child`:
/// the sweep must not reap those from under them.
static DIRECT: Mutex<Option<HashSet<i32>>> = Mutex::new(None);

/// Spawn a direct child so the sweep of adopted orphans leaves it alone.
pub fn spawn(command: &mut std::process::Command) -> std::io::Result<std::process::Child> {
    let mut direct = DIRECT.lock().unwrap_or_else(PoisonError::into_inner);
    let child = command.spawn()?;
    direct.get_or_insert_with(HashSet::new).insert(child.id() as i32);
    Ok(child)
}

/// A direct child was waited for; its pid may be reused.
pub fn forget(pid: i32) {
    if let Some(set) = DIRECT.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
        set.remove(&pid);
    }
}

/// Reap adopted orphans that have exited, so they do not linger as zombies.
pub fn reap_adopted() {
    if !SUBREAPER.load(Ordering::Relaxed) {
        return;
    }
    let direct = DIRECT.lock().unwrap_or_else(PoisonError::into_inner);
    let me = std::process::id() as i32;
    for p in scan() {
        if p.ppid == me && p.zombie && !direct.as_ref().is_some_and(|d| d.contains(&p.pid)) {
            let _ = waitpid(Pid::from_raw(p.pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Stop, then kill, every live process that matches or descends from one
/// that does; repeat until none is left. Returns how many were killed.
fn kill_matching(matches: impl Fn(&Proc) -> bool) -> usize {
    let me = std::process::id() as i32;
    // Killed already: dying, but possibly not yet a zombie in /proc.
    let mut killed: HashSet<i32> = HashSet::new();
    for _ in 0..SWEEPS {
        let procs = scan();
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        for p in &procs {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        let mut members: Vec<i32> = procs.iter().filter(|p| matches(p)).map(|p| p.pid).collect();
        let mut seen: HashSet<i32> = members.iter().copied().collect();
        let mut i = 0;
        while i < members.len() {
            for &c in children.get(&members[i]).into_iter().flatten() {
                if seen.insert(c) {
                    members.push(c);
                }
            }
            i += 1;
        }
        let fresh: Vec<Pid> = members
            .into_iter()
            .filter(|&pid| pid != me && pid > 1 && !killed.contains(&pid))
            .filter(|pid| procs.iter().any(|p| p.pid == *pid && !p.zombie))
            .map(Pid::from_raw)
            .collect();
        if fresh.is_empty() {
            break;
        }
        // Frozen first, so none of them forks a new member between our
        // reading /proc and the kill.
        for &pid in &fresh {
            let _ = kill(pid, Signal::SIGSTOP);
        }
        for &pid in &fresh {
            if kill(pid, Signal::SIGKILL).is_ok() {
                killed.insert(pid.as_raw());
            }
        }
    }
    reap_adopted();
    killed.len()
}

/// What /proc says about one process.
struct Proc {
    pid: i32,
    ppid: i32,
    pgid: i32,
    zombie: bool,
    /// The raw `CAPSTAN_TREE` value from its environment, if any.
    tags: Option<String>,
}

impl Proc {
    fn has_tag(&self, want: impl Fn(&str) -> bool) -> bool {
        self.tags.as_deref().is_some_and(|t| t.split(':').any(want))
    }
}

/// Every process we may see, with its parent, group and tags. Processes of
/// other users have unreadable environments and carry no tags for us.
fn scan() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (state, ppid, pgid) = parse_stat(&stat)?;
            let tags = std::fs::read(entry.path().join("environ")).ok().and_then(|env| tags_in(&env));
            Some(Proc { pid, ppid, pgid, zombie: state == 'Z' || state == 'X', tags })
        })
        .collect()
}

/// State, parent and process group from a `/proc/PID/stat` line. The command
/// name in parentheses may itself hold spaces and parentheses.
fn parse_stat(stat: &str) -> Option<(char, i32, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some((state, ppid, pgid))
}

fn tags_in(environ: &[u8]) -> Option<String> {
    let key = format!("{TAG_VAR}=");
    environ
        .split(|&b| b == 0)
        .find_map(|var| var.strip_prefix(key.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let stat = "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 95";
        assert_eq!(parse_stat(stat), Some(('S', 17, 4242)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn tags_are_found_among_the_environment() {
        let env = b"PATH=/bin\0CAPSTAN_TREE=outer.1:inner.2\0HOME=/root\0";
        assert_eq!(tags_in(env).as_deref(), Some("outer.1:inner.2"));
        assert_eq!(tags_in(b"PATH=/bin\0"), None);
        let p = Proc { pid: 2, ppid: 1, pgid: 2, zombie: false, tags: tags_in(env) };
        assert!(p.has_tag(|t| t == "inner.2"));
        assert!(p.has_tag(|t| t.starts_with("outer.")));
        assert!(!p.has_tag(|t| t == "inner"));
    }

    #[test]
    fn detached_tags_do_not_share_the_leftover_prefix() {
        let normal = new_tag(false);
        let detached = new_tag(true);
        let prefix = format!("{}.", run_token());
        assert!(normal.starts_with(&prefix));
        assert!(!detached.starts_with(&prefix));
    }
}
