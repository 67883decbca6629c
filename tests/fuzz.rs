//! Fuzzing: playbooks and params files from the seed corpus in
//! tests/corpus/fuzz/, mutated (byte flips, splices of Rhai keywords and
//! capstan primitives, deep nesting, huge numbers, invalid UTF-8,
//! truncation, duplicated blocks), go through `check`, `list` and
//! `run --dry-run`. No case may panic, abort or outlive its wall-clock bound.
//!
//! The bulk runs in this process (`capstan::cli::in_process`), each case on
//! a worker thread with the script stack and under `catch_unwind`; a few
//! hundred go through the real binary, which catches the aborts (a stack
//! overflow, exit 134) that `catch_unwind` cannot.
//!
//! The seed is fixed; `CAPSTAN_FUZZ_SEED` picks another, `CAPSTAN_FUZZ_CASES`
//! another number of in-process cases, `CAPSTAN_FUZZ_BINARY_CASES` of binary
//! cases. A failing case is written under the target dir's tmp folder.

use std::os::unix::process::ExitStatusExt;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use capstan::cli::in_process::{self, Finished, Limits, ParamsFile};
use capstan::state::TopLevelBudget;

use crate::support::{capstan_bin, repo_root};

const DEFAULT_SEED: u64 = 0x00ca_b57a_2024_0011;
const DEFAULT_CASES: usize = 10_000;
const DEFAULT_BINARY_CASES: usize = 300;
/// A case that takes longer than this is a hang: its own bounds (below) are
/// a fraction of it.
const CASE_BOUND: Duration = Duration::from_secs(5);

/// Lower than the product's budgets so that thousands of cases fit in CI;
/// the mechanisms that enforce them are the product's.
fn fuzz_limits() -> Limits {
    Limits {
        top_level: TopLevelBudget { operations: 20_000, time: Duration::from_millis(250) },
        run_time: Duration::from_millis(300),
        undo_time: Some(Duration::from_millis(200)),
    }
}

/// Words a mutation splices in: Rhai's keywords and operators, capstan's
/// primitives and step options, and shapes that stress the parser.
const RHAI_TOKENS: &[&str] = &[
    "let ",
    "const ",
    "fn ",
    "return ",
    "if ",
    "else ",
    "while ",
    "loop ",
    "for ",
    " in ",
    "do ",
    "until ",
    "break;",
    "continue;",
    "switch ",
    "try ",
    "catch ",
    "throw ",
    "import ",
    "export ",
    " as ",
    "private ",
    "this",
    "global::",
    "Fn(\"f\")",
    "call(",
    "curry(",
    "is_def_var(\"x\")",
    "type_of(",
    "print(",
    "debug(",
    "true",
    "false",
    "()",
    "=>",
    "?.",
    "??",
    "!in",
    "..",
    "..=",
    "::",
    "**",
    "<<",
    ">>",
    "+=",
    "-=",
    "*=",
    "/=",
    "%",
    "&&",
    "||",
    "!",
    "|x|",
    "|| ",
    "|a, b| a + b",
    "#{",
    "#{}",
    "}",
    "[",
    "]",
    "(",
    ")",
    "{",
    ";",
    ",",
    ".",
    "`${",
    "`",
    "\"",
    "'",
    "\\",
    "\\u{1F600}",
    "\\x41",
    "/*",
    "*/",
    "//",
    "\n",
    " ",
    "phase",
    "step",
    "parallel",
    "gate",
    "approve",
    "lock",
    "on_failure",
    "fail",
    "info",
    "warn",
    "error",
    "event",
    "require_tools",
    "sleep",
    "now()",
    "dry_run()",
    "param",
    "secret",
    "env",
    "run",
    "sh",
    "undo",
    "retries",
    "retry_delay",
    "timeout",
    "allow_failure",
    "when",
    "check",
    "stdin",
    "cwd",
    "quiet",
    "detach",
    "fs::read(\"/dev/null\")",
    "json::parse(\"[1,\")",
    "json::parse(\"{}\")",
    "yaml::parse(\"a: [\")",
    "playbook_dir()",
    "phase(\"p\", || {});",
    "phase(\"do\", || {});",
    "step(\"s\", || 1);",
    "step(\"s\", #{ undo: || fail(\"u\") }, || 1);",
    "step(\"s\", #{ timeout: \"1ms\" }, || sleep(\"1s\"));",
    "step(\"s\", #{ retries: 99999999999 }, || fail(\"x\"));",
    "parallel([|| 1, || fail(\"b\")]);",
    "on_failure(|e| fail(e.message));",
    "param(\"n\", 1)",
    "param(\"x\")",
    "secret(\"HOME\")",
    "secret(\"CAPSTAN_FUZZ_UNSET\")",
    "run([\"true\"])",
    "sh(\"exit 1\")",
    "loop {}",
    "while true {}",
    "fn f(x) { f(x + 1) } f(0);",
    "let a = [1]; for i in 0..20000 { a = [a]; }",
    "\"x\".pad(99999999, \"y\")",
    "[1].pad(99999999, 0)",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999999999",
    "1e308",
    "1e-400",
    "0x7fffffffffffffff",
    "0b",
    "0o777",
    "1_000_000",
    "9223372036854775807 + 1",
    "1 / 0",
    "1 % 0",
    "-9223372036854775808 / -1",
    "2 ** 63",
    "\"\\u{D800}\"",
];

/// Whole statements a mutation inserts at the start of a line: they keep
/// the playbook compiling often enough to reach the executor, with values
/// and options at their edges.
const STATEMENTS: &[&str] = &[
    "step(\"deep\", || { let a = [1]; for i in 0..20000 { a = [a]; } 1 });",
    "step(\"deep value\", || { let a = [1]; for i in 0..5000 { a = [a]; } a });",
    "step(\"deep map\", || { let m = #{}; for i in 0..5000 { m = #{ a: m }; } m });",
    "let f = || 1; for i in 0..2000 { let g = f; f = || g.call(); } f.call();",
    "fn r(n) { r(n + 1) } r(0);",
    "step(\"u\", #{ undo: || loop {} }, || 1); fail(\"then undo\");",
    "step(\"u\", #{ undo: || fail(\"undo fails\") }, || 1); fail(\"x\");",
    "on_failure(|e| loop {});",
    "on_failure(|e| fail(e));",
    "parallel([|| loop {}, || fail(\"branch\")]);",
    "parallel([|| step(\"a\", || 1), || step(\"a\", || 2)]);",
    "parallel([1, 2]);",
    "parallel([]);",
    "step(\"pad\", || \"x\".pad(17000000, \"y\"));",
    "step(\"pad\", || \"x\".pad(1000000, \"y\"));",
    "step(\"grow\", || { let s = \"x\"; for i in 0..30 { s += s; } s });",
    "step(\"arr\", || { let a = []; a.pad(999999, #{ k: [1, 2] }); a });",
    "let s = secret(\"HOME\"); step(s, || s + s);",
    "step(\"n\", || parse_int(\"12\") * 9223372036854775807);",
    "step(\"f\", || 1.0 / 0.0);",
    "step(\"nan\", || (0.0 / 0.0).to_string());",
    "gate(\"g\", false, \"hint\");",
    "gate(\"\", 1, ());",
    "approve(\"a\", \"m\");",
    "lock(\"l\"); lock(\"l\");",
    "lock(\"../../x\");",
    "event(\"e\", #{ a: (), b: [1.5, #{}], c: || 1 });",
    "step(\"\", || 1);",
    "step(\"a/b/../c\", || 1);",
    "step(\"\\u{0}\\n\\t\", || 1);",
    "step(\"x\", || step(\"x\", || step(\"x\", || 1)));",
    "for i in 0..100 { step(\"same\", || i); }",
    "phase(\"dup\", || {}); phase(\"dup\", || {});",
    "phase(\"\", || {});",
    "phase(\"inner\", || phase(\"nested\", || {}));",
    "phase(1, 2);",
    "phase(\"x\");",
    "param(\"p\", ());",
    "param(\"\", 1);",
    "param(\"name\", #{ nested: [1, #{}] });",
    "param(\"tags\", [1]);",
    "secret(\"\");",
    "secret(\"CAPSTAN_FUZZ_UNSET\");",
    "on_failure(1);",
    "on_failure(|| 1); on_failure(|a, b| 1);",
    "sleep(-1);",
    "sleep(1e300);",
    "sleep(\"9999999999999h\");",
    "sleep(\"5ms\");",
    "step(\"t\", #{ timeout: \"-1s\" }, || 1);",
    "step(\"t\", #{ timeout: 0 }, || sleep(\"10ms\"));",
    "step(\"t\", #{ timeout: \"1ms\" }, || loop {});",
    "step(\"r\", #{ retries: -1 }, || fail(\"r\"));",
    "step(\"r\", #{ retries: 3, retry_delay: 1e300 }, || fail(\"r\"));",
    "step(\"r\", #{ retries: 3, retry_delay: \"1ms\" }, || fail(\"r\"));",
    "step(\"w\", #{ when: 1 }, || 1);",
    "step(\"w\", #{ when: false }, || 1);",
    "step(\"o\", #{ bogus: 1 }, || 1);",
    "step(\"a\", #{ allow_failure: true }, || fail(\"allowed\"));",
    "step(1, || 1);",
    "step(\"c\", 1);",
    "run([]);",
    "run([\"\"]);",
    "run([\"echo\", 1, (), [2]]);",
    "run(\"echo\");",
    "sh(\"\");",
    "run([\"a\\u{0}b\"]);",
    "sh(\"echo x\", #{ stdin: \"x\".pad(100000, \"y\"), timeout: \"1ms\", env: #{ \"\": \"v\", \"A=B\": 1 } });",
    "sh(\"echo x\", #{ cwd: \"/nonexistent\", check: 1, quiet: \"yes\" });",
    "run([\"true\"], #{ detach: true });",
    "json::parse(\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\");",
    "let j = \"[\"; for i in 0..14 { j += j; } json::parse(j);",
    "let y = \"- \"; for i in 0..12 { y += y; } yaml::parse(y);",
    "yaml::parse(\"a: &a [*a]\");",
    "yaml::parse(\"a: &a [x, x]\\nb: &b [*a, *a, *a, *a]\\nc: &c [*b, *b, *b, *b]\\nd: [*c, *c, *c, *c]\");",
    "json::stringify(#{ a: || 1 });",
    "fs::read(\"/proc/self/status\");",
    "fs::read(\"/dev/null\");",
    "fs::read(\"\");",
    "throw #{ a: 1 };",
    "throw ();",
    "fail(());",
    "fail(#{ message: 1 });",
    "info(()); info([1]); info(#{ a: [] }); warn(1.5); error(true); debug(|| 1);",
    "require_tools([\"definitely-not-installed\", 1]);",
    "let x = 9223372036854775807; x += 1;",
    "let x = -9223372036854775808; x = x / -1;",
    "let x = 2 ** 64;",
    "let x = 1 << 64;",
    "let r = 0..9223372036854775807; for i in r { if i > 3 { break; } }",
    "let big = []; big.pad(2000000, 0);",
    "let m = #{}; for i in 0..200000 { m[`${i}`] = i; }",
    "let s = \"x\"; s.pad(20000000, \"y\"); s.pad(100000, \"z\");",
    "\"abc\".sub_string(-5, 9999999999);",
    "[1, 2, 3][-9999999];",
    "\"abc\"[9999999999];",
    "let a = [1]; a.extract(5, -1);",
    "let f = Fn(\"nope\"); f.call();",
    "let f = |x| x; f.curry(1).curry(2).call();",
    "import \"lib\" as lib; lib::double(9223372036854775807);",
    "import \"lib\" as lib; lib::greet();",
    "import \"fuzz\" as me;",
    "import \"../../../../etc/passwd\" as p;",
    "import \"capstan/canary\" as canary;",
    "let x = playbook_dir(); let t = now(); let d = dry_run(); let e = env(\"HOME\");",
];

/// Words for params files: JSON and YAML syntax, anchors, tags.
const PARAMS_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    "\"",
    "'",
    "\n",
    "  ",
    "- ",
    "? ",
    "&a ",
    "*a",
    "!!binary ",
    "!!str ",
    "!!int ",
    "!!map ",
    "!!set ",
    "<<: *a",
    "~",
    "null",
    "true",
    "yes",
    "1e999",
    "-0",
    "0x10",
    "9223372036854775808",
    "---\n",
    "...\n",
    "|\n  ",
    ">\n  ",
    "%YAML 1.2\n",
    "#",
    "\\u0000",
    "\\ud800",
    "\t",
    "name: ",
    "replicas: ",
];

// ---- a small deterministic generator ----

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// `SplitMix64`.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

// ---- the corpus and the mutations ----

struct Corpus {
    playbooks: Vec<(String, Vec<u8>)>,
    params: Vec<(String, Vec<u8>)>,
    lib: Vec<u8>,
}

fn corpus() -> Corpus {
    let dir = repo_root().join("tests/corpus/fuzz");
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    entries.sort();
    let mut corpus = Corpus { playbooks: Vec::new(), params: Vec::new(), lib: Vec::new() };
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("rhai") if name == "lib.rhai" => corpus.lib = bytes,
            Some("rhai") => corpus.playbooks.push((name, bytes)),
            Some("json" | "yaml" | "yml") => corpus.params.push((name, bytes)),
            _ => {}
        }
    }
    assert!(corpus.playbooks.len() >= 4 && corpus.params.len() >= 2, "the seed corpus is in {}", dir.display());
    corpus
}

/// Apply one to four mutations to `input`. Half the time they are gentle
/// (whole statements, duplicated lines), which keeps the source compiling
/// often enough to reach the executor; otherwise anything goes.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, tokens: &[&str], statements: &[&str], donors: &[&[u8]]) {
    let gentle = !statements.is_empty() && rng.below(2) == 0;
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        if gentle {
            let starts: Vec<usize> = std::iter::once(0)
                .chain(input.iter().enumerate().filter(|(_, b)| **b == b'\n').map(|(i, _)| i + 1))
                .collect();
            let line = *rng.pick(&starts);
            if rng.below(4) == 0 {
                // Duplicate a line (a phase, a step, a param).
                let end = input[line..].iter().position(|b| *b == b'\n').map_or(input.len(), |n| line + n + 1);
                let copy = input[line..end].to_vec();
                input.splice(line..line, copy);
            } else {
                let statement = format!("{}\n", rng.pick(statements));
                input.splice(line..line, statement.into_bytes());
            }
            continue;
        }
        match rng.below(13) {
            // Flip a byte, or set it to something odd.
            0 => {
                if let Some(b) = input.get_mut(at) {
                    *b = match rng.below(3) {
                        0 => *b ^ (1 << rng.below(8)),
                        1 => *rng.pick(&[0u8, b'\n', b'"', b'`', b'{', b'}', b'(', b')', b'[', b']', b';', 0x7f]),
                        _ => rng.next() as u8,
                    };
                }
            }
            // Splice a dictionary word in, or over a word.
            1..=3 => {
                let word = rng.pick(tokens).as_bytes();
                if rng.below(2) == 0 {
                    input.splice(at..at, word.iter().copied());
                } else {
                    let end = word_end(input, at);
                    input.splice(at..end, word.iter().copied());
                }
            }
            // Delete a span.
            4 => {
                let end = (at + 1 + rng.below(40)).min(input.len());
                if at < end {
                    input.drain(at..end);
                }
            }
            // Duplicate a span (a phase, a step, a line) in place.
            5 => {
                let end = (at + 1 + rng.below(400)).min(input.len());
                if at < end {
                    let copy = input[at..end].to_vec();
                    let to = rng.below(input.len() + 1);
                    input.splice(to..to, copy);
                }
            }
            // Deep nesting, closed or not.
            6 => {
                let depth = [10, 100, 129, 1_000, 20_000][rng.below(5)];
                let (open, close): (&[u8], &[u8]) =
                    *rng.pick(&[(&b"["[..], &b"]"[..]), (b"(", b")"), (b"{", b"}"), (b"#{a:", b"}"), (b"||", b"")]);
                let mut nest = open.repeat(depth);
                if rng.below(2) == 0 {
                    nest.push(b'1');
                    nest.extend(close.repeat(depth));
                }
                input.splice(at..at, nest);
            }
            // A huge number or a long literal.
            7 => {
                let text = match rng.below(3) {
                    0 => "9".repeat(1 + rng.below(400)),
                    1 => format!("\"{}\"", "x".repeat(rng.below(100_000))),
                    _ => format!("{}.{}e{}", rng.next(), rng.next(), rng.next() as i16),
                };
                input.splice(at..at, text.into_bytes());
            }
            // Invalid or unusual UTF-8.
            8 => {
                const ODD: &[&[u8]] = &[
                    &[0xff],
                    &[0xc0, 0x80],
                    &[0xed, 0xa0, 0x80],
                    &[0xe2, 0x82],
                    &[0xf4, 0x90, 0x80, 0x80],
                    "\u{feff}".as_bytes(),
                    "\u{202e}".as_bytes(),
                    "\u{e9}".as_bytes(),
                    "\u{1F600}".as_bytes(),
                    &[0],
                    b"\r",
                ];
                let bytes = rng.pick(ODD);
                input.splice(at..at, bytes.iter().copied());
            }
            // Truncate.
            9 => input.truncate(at),
            // Splice a span of another seed.
            10 => {
                let donor = *rng.pick(donors);
                if !donor.is_empty() {
                    let from = rng.below(donor.len());
                    let end = (from + 1 + rng.below(200)).min(donor.len());
                    input.splice(at..at, donor[from..end].iter().copied());
                }
            }
            // Repeat the whole input (duplicated phases and params).
            11 => {
                let copy = input.clone();
                input.extend(copy);
            }
            // Swap two bytes.
            _ => {
                let other = rng.below(input.len() + 1);
                if at < input.len() && other < input.len() {
                    input.swap(at, other);
                }
            }
        }
    }
}

/// Where the identifier-ish run of bytes starting at `at` ends.
fn word_end(input: &[u8], at: usize) -> usize {
    let mut end = at;
    while end < input.len() && (input[end].is_ascii_alphanumeric() || input[end] == b'_') {
        end += 1;
    }
    end.max((at + 1).min(input.len()))
}

#[derive(Clone, Copy, Debug)]
enum Command {
    Check,
    List { json: bool },
    DryRun,
}

struct Case {
    index: usize,
    command: Command,
    seed_name: String,
    source: Vec<u8>,
    /// Name (its extension says the format) and text of the params file.
    params: Option<(String, Vec<u8>)>,
}

/// Case `index` of the run seeded with `seed`: the same pair gives the same
/// case whatever the number of workers.
fn make_case(corpus: &Corpus, seed: u64, index: usize) -> Case {
    let mut rng = Rng::new(seed ^ (index as u64).wrapping_mul(0xa076_1d64_78bd_642f));
    let (seed_name, seed_source) = &corpus.playbooks[index % corpus.playbooks.len()];
    let command = match (index / corpus.playbooks.len()) % 4 {
        0 => Command::Check,
        1 => Command::List { json: rng.below(2) == 0 },
        _ => Command::DryRun,
    };
    let mut source = seed_source.clone();
    let donors: Vec<&[u8]> =
        corpus.playbooks.iter().map(|(_, b)| b.as_slice()).chain([corpus.lib.as_slice()]).collect();
    // The first round runs the seeds as they are.
    let pristine = index < corpus.playbooks.len() * 4;
    if !pristine {
        mutate(&mut rng, &mut source, RHAI_TOKENS, STATEMENTS, &donors);
    }
    let params = match command {
        Command::DryRun if pristine || rng.below(3) != 0 => {
            let (name, text) = rng.pick(&corpus.params);
            let mut text = text.clone();
            if !pristine && rng.below(2) == 0 {
                let donors: Vec<&[u8]> = corpus.params.iter().map(|(_, b)| b.as_slice()).collect();
                mutate(&mut rng, &mut text, PARAMS_TOKENS, &[], &donors);
            }
            // A YAML file fed as JSON and the other way round, now and then.
            let name = if !pristine && rng.below(8) == 0 {
                if Path::new(name).extension().is_some_and(|e| e == "json") {
                    "params.yaml".to_string()
                } else {
                    "params.json".to_string()
                }
            } else {
                name.clone()
            };
            Some((name, text))
        }
        _ => None,
    };
    Case { index, command, seed_name: seed_name.clone(), source, params }
}

/// Run one case in this process; `root` is the worker's playbook folder.
fn run_case(case: &Case, root: &Path) -> Finished {
    let playbook = root.join("fuzz.rhai");
    let limits = fuzz_limits();
    match case.command {
        Command::Check => in_process::check(&playbook, &case.source, &limits),
        Command::List { json } => in_process::list(&playbook, &case.source, json, &limits),
        Command::DryRun => {
            let journal = root.join("journal");
            let params_path = case.params.as_ref().map(|(name, _)| root.join(name));
            let params = case
                .params
                .as_ref()
                .zip(params_path.as_deref())
                .map(|((_, text), path)| ParamsFile { path, text: text.as_slice() });
            let finished = in_process::dry_run(&playbook, &case.source, params, &journal, &limits);
            let _ = std::fs::remove_dir_all(&journal);
            finished
        }
    }
}

/// Keep a failing case where it can be replayed by hand.
fn save_failure(case: &Case, why: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures").join(format!("case-{}", case.index));
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("fuzz.rhai"), &case.source);
    if let Some((name, text)) = &case.params {
        let _ = std::fs::write(dir.join(name), text);
    }
    let _ = std::fs::write(dir.join("why.txt"), why);
    format!(
        "case {} ({:?} on a mutation of {}): {why}\n   input saved in {}",
        case.index,
        case.command,
        case.seed_name,
        dir.display()
    )
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

fn seed() -> u64 {
    env_number("CAPSTAN_FUZZ_SEED").unwrap_or(DEFAULT_SEED)
}

/// What a worker is on: the case and when it started.
type Current = Arc<Mutex<Option<(usize, Instant)>>>;

#[test]
fn fuzz_in_process_cases_never_panic_or_hang() {
    let seed = seed();
    let requested = env_number("CAPSTAN_FUZZ_CASES");
    let cases = requested.map_or(DEFAULT_CASES, |n| n as usize);
    let corpus = Arc::new(corpus());
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, 2);
    let (tx, rx) = mpsc::channel::<(usize, Duration, Result<Finished, String>)>();
    let mut current: Vec<Current> = Vec::new();
    let mut roots = Vec::new();
    for w in 0..workers {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("lib.rhai"), &corpus.lib).unwrap();
        let dir = root.path().to_path_buf();
        roots.push(root);
        let slot: Current = Arc::default();
        current.push(slot.clone());
        let (tx, corpus) = (tx.clone(), corpus.clone());
        std::thread::Builder::new()
            .name(format!("fuzz-{w}"))
            .stack_size(capstan::engine::limits::SCRIPT_STACK)
            .spawn(move || {
                for index in (w..cases).step_by(workers) {
                    let case = make_case(&corpus, seed, index);
                    let start = Instant::now();
                    *slot.lock().unwrap() = Some((index, start));
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| run_case(&case, &dir)))
                        .map_err(|p| panic_text(p.as_ref()));
                    let result = result.map_err(|why| save_failure(&case, &format!("panicked: {why}")));
                    if tx.send((index, start.elapsed(), result)).is_err() {
                        return;
                    }
                }
                *slot.lock().unwrap() = None;
            })
            .unwrap();
    }
    drop(tx);

    let started = Instant::now();
    let mut times: Vec<Duration> = Vec::with_capacity(cases);
    let mut failures: Vec<String> = Vec::new();
    let mut codes = std::collections::BTreeMap::<i32, usize>::new();
    let mut pristine_ok = 0;
    let mut slowest: Vec<(Duration, usize)> = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok((index, took, result)) => {
                times.push(took);
                slowest.push((took, index));
                slowest.sort_by(|a, b| b.cmp(a));
                slowest.truncate(5);
                match result {
                    Ok(finished) => {
                        *codes.entry(finished.code).or_default() += 1;
                        if index < corpus.playbooks.len() * 4 && finished.code == 0 {
                            pristine_ok += 1;
                        }
                        if !matches!(finished.code, 0..=4) {
                            let case = make_case(&corpus, seed, index);
                            failures.push(save_failure(&case, &format!("exit {}", finished.code)));
                        }
                    }
                    Err(why) => failures.push(why),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        for slot in &current {
            if let Some((index, since)) = *slot.lock().unwrap() {
                if since.elapsed() > CASE_BOUND {
                    let case = make_case(&corpus, seed, index);
                    let why = save_failure(&case, &format!("still running after {CASE_BOUND:?}"));
                    panic!("fuzz (seed {seed:#x}) hung:\n{why}");
                }
            }
        }
    }
    let total = started.elapsed();
    times.sort();
    let median = times.get(times.len() / 2).copied().unwrap_or_default();
    let max = times.last().copied().unwrap_or_default();
    let slow = times.iter().filter(|t| **t > Duration::from_millis(100)).count();
    println!(
        "fuzz: seed {seed:#x}, {} in-process cases in {total:.1?} on {workers} workers; \
         per case median {median:.1?}, max {max:.1?}, {slow} over 100ms; exit codes {codes:?}; slowest (time, case) {slowest:?}",
        times.len()
    );
    assert!(
        failures.is_empty(),
        "fuzz (seed {seed:#x}) found {} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(times.len(), cases, "every case reported back");
    if requested.is_none() {
        assert!(times.len() >= 10_000, "at least 10,000 cases run");
    }
    // The harness really runs playbooks: some of the seeds, as they are, succeed.
    assert!(pristine_ok >= corpus.playbooks.len(), "the unmutated seeds mostly exit 0 ({pristine_ok})");
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(ToString::to_string)
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a non-text panic)".into())
}

/// The real binary on a smaller number of cases: an abort (a signal, exit
/// 134) or a panic message fails, and so does a case still running after
/// its bound.
#[test]
fn fuzz_binary_cases_never_abort() {
    let seed = seed() ^ 0xb1;
    let cases = env_number("CAPSTAN_FUZZ_BINARY_CASES").map_or(DEFAULT_BINARY_CASES, |n| n as usize);
    let corpus = corpus();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("lib.rhai"), &corpus.lib).unwrap();
    let mut failures = Vec::new();
    let started = Instant::now();
    for index in 0..cases {
        let case = make_case(&corpus, seed, index + corpus.playbooks.len() * 4);
        std::fs::write(dir.path().join("fuzz.rhai"), &case.source).unwrap();
        let mut command = std::process::Command::new(capstan_bin());
        command.current_dir(dir.path()).env("NO_COLOR", "1").env_remove("GITHUB_ACTIONS");
        match case.command {
            Command::Check | Command::List { .. } if index % 2 == 0 => {
                command.args(["check", "fuzz.rhai"]);
            }
            Command::List { .. } => {
                command.args(["list", "fuzz.rhai"]);
            }
            _ => {
                command.args(["run", "--dry-run", "fuzz.rhai", "--log-format", "json", "--timeout", "2s"]);
                command.args(["--undo-timeout", "1s", "--journal-dir", "journal"]);
                if let Some((name, text)) = &case.params {
                    std::fs::write(dir.path().join(name), text).unwrap();
                    command.args(["--params-file", name]);
                }
            }
        }
        let output = run_bounded(&mut command, Duration::from_secs(20));
        let why = match &output {
            None => Some("still running after 20s".to_string()),
            Some(out) if out.status.signal().is_some() => Some(format!("killed by signal {:?}", out.status.signal())),
            Some(out) if !matches!(out.status.code(), Some(0..=4)) => Some(format!("exit {:?}", out.status.code())),
            Some(out) if String::from_utf8_lossy(&out.stderr).contains("panicked") => {
                Some(format!("panicked: {}", String::from_utf8_lossy(&out.stderr)))
            }
            Some(_) => None,
        };
        if let Some(why) = why {
            failures.push(save_failure(&case, &why));
        }
        let _ = std::fs::remove_dir_all(dir.path().join("journal"));
    }
    println!("fuzz: seed {seed:#x}, {cases} binary cases in {:.1?}", started.elapsed());
    assert!(
        failures.is_empty(),
        "fuzz (seed {seed:#x}) found {} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Run `command` to the end, or kill it after `bound` and return `None`.
fn run_bounded(command: &mut std::process::Command, bound: Duration) -> Option<std::process::Output> {
    use std::process::Stdio;
    let mut child =
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start capstan");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let readers = (
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut out, &mut buf);
            buf
        }),
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = std::io::Read::read_to_end(&mut err, &mut buf);
            buf
        }),
    );
    let deadline = Instant::now() + bound;
    loop {
        if let Some(status) = child.try_wait().expect("wait for capstan") {
            let stdout = readers.0.join().unwrap_or_default();
            let stderr = readers.1.join().unwrap_or_default();
            return Some(std::process::Output { status, stdout, stderr });
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Run `f` on a thread with the script stack; `None` if it panicked or did
/// not finish within `bound`.
fn on_script_thread<T: Send + 'static>(bound: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .stack_size(capstan::engine::limits::SCRIPT_STACK)
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    rx.recv_timeout(bound).ok()
}

/// Inputs the fuzz suite once broke capstan with, in tests/corpus/fuzz/found/:
/// each goes through every command as it is, every time.
#[test]
fn fuzz_found_inputs_stay_fixed() {
    let dir = repo_root().join("tests/corpus/fuzz/found");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).collect();
    found.sort();
    assert!(!found.is_empty());
    let corpus = corpus();
    for path in found {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read(&path).unwrap();
        let commands = [Command::Check, Command::List { json: false }, Command::List { json: true }, Command::DryRun];
        for (i, command) in commands.into_iter().enumerate() {
            let params = matches!(command, Command::DryRun).then(|| corpus.params[i % corpus.params.len()].clone());
            let case = Case { index: i, command, seed_name: name.clone(), source: source.clone(), params };
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().to_path_buf();
            let started = Instant::now();
            let finished = on_script_thread(CASE_BOUND, move || run_case(&case, &dir));
            let finished = finished
                .unwrap_or_else(|| panic!("{name} ({command:?}): panicked or still running after {CASE_BOUND:?}"));
            assert!(
                matches!(finished.code, 0..=4),
                "{name} ({command:?}): exit {}\n{}",
                finished.code,
                finished.output
            );
            assert!(started.elapsed() < Duration::from_secs(3), "{name} ({command:?}) took {:?}", started.elapsed());
            println!("{name} {command:?} {:?} {}", started.elapsed(), finished.output.lines().next().unwrap_or(""));
        }
    }
}

/// Found by the fuzz suite: a top level blocked in a primitive (`sleep`)
/// never reached Rhai's operation counter, so its time budget did not hold
/// and `capstan check` waited forever. The budget is a deadline every wait honours.
#[test]
fn fuzz_found_top_level_blocked_in_sleep_ends_at_its_time_budget() {
    let limits = Limits {
        top_level: TopLevelBudget { operations: 1_000_000, time: Duration::from_millis(500) },
        run_time: Duration::from_secs(60),
        undo_time: None,
    };
    let source = b"sleep(\"1h\");\nphase(\"p\", || {});\n".to_vec();
    for command in ["check", "list", "dry-run"] {
        let source = source.clone();
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let finished = on_script_thread(Duration::from_secs(10), move || {
            let path = root.path().join("p.rhai");
            match command {
                "check" => in_process::check(&path, &source, &limits),
                "list" => in_process::list(&path, &source, false, &limits),
                _ => in_process::dry_run(&path, &source, None, &root.path().join("journal"), &limits),
            }
        })
        .unwrap_or_else(|| panic!("{command}: still running after 10s"));
        assert_eq!(finished.code, 2, "{command}: {}", finished.output);
        assert!(finished.output.contains("top level"), "{command}: {}", finished.output);
        assert!(finished.output.contains("p.rhai:1:"), "{command}: {}", finished.output);
        assert!(started.elapsed() < Duration::from_secs(3), "{command} took {:?}", started.elapsed());
    }
}

/// Found by the fuzz suite: Rhai drops a stop raised inside the `to_string`
/// of a `${...}`, and capstan asked only every 256 operations, so a loop of
/// a length dividing 256 could land there at every check and never stop.
#[test]
fn fuzz_found_stop_raised_inside_interpolation_still_stops_the_top_level() {
    let source = std::fs::read(repo_root().join("tests/corpus/fuzz/found/stop-inside-interpolation.rhai")).unwrap();
    let limits = Limits {
        top_level: TopLevelBudget { operations: 100_000, time: Duration::from_secs(30) },
        run_time: Duration::from_secs(30),
        undo_time: None,
    };
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let finished = on_script_thread(Duration::from_secs(60), move || {
        in_process::list(&root.path().join("p.rhai"), &source, false, &limits)
    })
    .expect("list ends");
    assert_eq!(finished.code, 2, "{}", finished.output);
    assert!(finished.output.contains("top level did not finish"), "{}", finished.output);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
