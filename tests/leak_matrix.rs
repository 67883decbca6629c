//! The leak matrix: secrets of every shape, through every output capstan has,
//! in every encoding a tool is likely to print them in: no occurrence at all.
//!
//! Per shape, one playbook prints the secret every way (a child's stdout and
//! stderr, indented, encoded by Python, in a step name, a phase name, a
//! param default, a step value as a string, number, float and map key, an
//! event, an undo, a webhook, an error), and is run once per group of
//! outputs. Then every stream and every file left in the playbook's folder
//! is scanned for every form of the secret.
//!
//! Not scanned, by design:
//! - `::add-mask::` lines of `--log-format github`: they hand the secret to
//!   the GitHub runner, which never shows them and masks the value after.
//! - Forms shorter than the redactor's minimum (4 characters): none of these
//!   shapes has one.
//! - Base64 of a text that merely contains the secret (`user:secret`), and
//!   percent-encoding with lower-case hex: the redactor cannot know them.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::support::http::Server;
use crate::support::{capstan_bin, Playbook, Run};

const PLAYBOOK: &str = r#"
let s = secret("LEAK");
param("token", s);

fn number(s) { try { return parse_int(s); } catch { return 0; } }
fn float(s) { try { return parse_float(s); } catch { return 0.0; } }

phase(`ship-${s}`, || {
    info(`raw ${s}`);
    step("stdout", || run(["printf", "%s\n", s]));
    step("stderr", || sh("printf '%s\n' \"$LEAK\" >&2"));
    step("indented", || sh("printf '%s\n' \"$LEAK\" | sed 's/^/    /'"));
    step("encoded", || run(["python3", "encode.py"]));
    step(`named-${s}`, || 1);
    step("number", || number(s));
    step("float", || float(s));
    step("value", || { let m = #{ token: s, list: [s] }; m[s] = number(s); m });
    step("argv", || run(["printf", "%s\n", "--password", s, `--token=${s}`]));
    step("undo", #{ undo: || info(`undo ${s}`) }, || 1);
    event("used", #{ token: s, n: number(s), f: float(s) });
    notify::webhook(webhook, #{ password: s, note: `pw ${s}` });
    step("fails", || fail(`bad ${s}`));
});
on_failure(|e| report::write("reports"));
"#;

/// Prints the secret in the encodings tools use.
const ENCODER: &str = r#"
import base64, binascii, json, os, urllib.parse
secret = os.environ["LEAK"]
for v in [secret, secret.strip()] + secret.splitlines():
    b = v.encode()
    print(base64.b64encode(b).decode(), base64.urlsafe_b64encode(b).decode())
    print(urllib.parse.quote(v, safe=""), urllib.parse.quote(v), urllib.parse.quote_plus(v))
    print(binascii.hexlify(b).decode(), binascii.hexlify(b).decode().upper())
    print(json.dumps(v), json.dumps(v, ensure_ascii=False), json.dumps({"k": v}))
"#;

/// `param("token", secret(...))`: what `capstan ci` turns into a pipeline.
const CI_PLAYBOOK: &str = r#"param("token", secret("LEAK")); phase("do", || step("s", || 1));"#;

const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Every form of the secret to look for, with the encoding's name.
fn forms(secret: &str) -> Vec<(String, String)> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut bases = vec![("value", secret.to_string()), ("trimmed", secret.trim().to_string())];
    if secret.trim().contains('\n') {
        bases.extend(secret.lines().map(|l| ("line", l.trim().to_string())));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (what, v) in bases {
        let hex = v.bytes().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        let json = serde_json::to_string(&v).unwrap();
        let encoded = [
            ("raw", v.clone()),
            ("base64", STANDARD.encode(&v)),
            ("base64 unpadded", STANDARD.encode(&v).trim_end_matches('=').to_string()),
            ("base64 url", URL_SAFE.encode(&v)),
            ("base64 url unpadded", URL_SAFE_NO_PAD.encode(&v)),
            ("url", utf8_percent_encode(&v, NON_ALPHANUMERIC).to_string()),
            ("url unreserved", utf8_percent_encode(&v, UNRESERVED).to_string()),
            ("form", utf8_percent_encode(&v, UNRESERVED).to_string().replace("%20", "+")),
            ("hex", hex.clone()),
            ("HEX", hex.to_ascii_uppercase()),
            ("json", json[1..json.len() - 1].to_string()),
            ("json ascii", ascii_json(&v)),
            // Not forms the redactor masks: a leak into these files would
            // show only this way.
            ("xml", v.replace('&', "&amp;").replace('<', "&lt;").replace('"', "&quot;").replace('\'', "&apos;")),
            ("yaml single-quoted", v.replace('\'', "''")),
            ("shell single-quoted", v.replace('\'', r"'\''")),
        ];
        for (encoding, form) in encoded {
            if form.chars().count() >= 4 && !out.iter().any(|(_, f)| *f == form) {
                out.push((format!("{what} {encoding}"), form));
            }
        }
    }
    out
}

/// `json.dumps(v)` in Python: non-ASCII as `\uXXXX`.
fn ascii_json(v: &str) -> String {
    let json = serde_json::to_string(v).unwrap();
    let mut out = String::new();
    for c in json[1..json.len() - 1].chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{u:04x}");
            }
        }
    }
    out
}

/// What was captured: a name for each output, and its text.
#[derive(Default)]
struct Outputs(Vec<(String, String)>);

impl Outputs {
    fn add(&mut self, sink: impl Into<String>, text: impl Into<String>) {
        self.0.push((sink.into(), text.into()));
    }

    fn run(&mut self, sink: &str, run: &Run) {
        self.add(format!("{sink} stdout"), run.stdout.clone());
        self.add(format!("{sink} stderr"), run.stderr.clone());
    }

    /// Every file under `dir`, by its path relative to it.
    fn files(&mut self, root: &Path, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                self.files(root, &path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                let name = path.strip_prefix(root).unwrap_or(&path).display().to_string();
                self.add(format!("file {name}"), String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
}

fn capstan(p: &Playbook, args: &[&str], secret: &str) -> Command {
    let mut c = Command::new(capstan_bin());
    c.current_dir(p.dir.path()).args(args).env_remove("GITHUB_ACTIONS").env("NO_COLOR", "1").env("LEAK", secret);
    c.env("XDG_STATE_HOME", p.path("state"));
    c
}

fn output(mut c: Command) -> Run {
    Run::from(c.output().expect("run capstan"))
}

fn matrix(secret: &str) {
    let server = Server::start(vec![]);
    let source = format!("let webhook = {:?};\n{PLAYBOOK}", server.url);
    let p = Playbook::new(&source).file("encode.py", ENCODER).file("ci.rhai", CI_PLAYBOOK);
    let mut outputs = Outputs::default();

    let mut json = capstan(&p, &["run", "deploy.rhai", "--log-format", "json", "-v"], secret);
    json.args(["--junit", "junit.xml", "--notify", &server.url]);
    let r = output(json);
    r.code(1);
    assert!(r.stdout.contains("\"line\":\"***\""), "the child's line is masked, not missing: {}", r.stdout);
    outputs.run("json", &r);
    for format in ["plain", "human"] {
        let r = output(capstan(&p, &["run", "deploy.rhai", "--log-format", format, "-v"], secret));
        r.code(1);
        outputs.run(format, &r);
    }
    std::fs::write(p.path("github-output"), "").unwrap();
    let mut github = capstan(&p, &["run", "deploy.rhai", "--log-format", "github", "-v"], secret);
    github.env("GITHUB_STEP_SUMMARY", p.path("github-summary.md")).env("GITHUB_OUTPUT", p.path("github-output"));
    let r = output(github);
    r.code(1);
    assert!(r.stdout.contains("::add-mask::"), "{}", r.stdout);
    let shown: Vec<&str> = r.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect();
    outputs.add("github stdout", shown.join("\n"));
    outputs.add("github stderr", r.stderr.clone());
    let r = output(capstan(&p, &["run", "deploy.rhai", "--dry-run", "--log-format", "plain", "-v"], secret));
    assert!(r.all().contains("would run: printf"), "{}", r.all());
    outputs.run("dry-run", &r);

    for args in [&["runs", "show", "last"][..], &["runs", "show", "last", "--json"], &["runs"]] {
        let r = output(capstan(&p, args, secret));
        r.code(0);
        outputs.run(&args.join(" "), &r);
    }
    for args in [&["list", "deploy.rhai"][..], &["list", "deploy.rhai", "--json"]] {
        let r = output(capstan(&p, args, secret));
        r.code(0);
        outputs.run(&args.join(" "), &r);
    }
    // The phase's name holds the secret: no job can select it (exit 2).
    let r = output(capstan(&p, &["ci", "deploy.rhai", "--platform", "github"], secret));
    r.code(2);
    outputs.run("ci deploy.rhai", &r);
    for platform in ["github", "gitlab", "jenkins", "circleci"] {
        let r = output(capstan(&p, &["ci", "ci.rhai", "--platform", platform], secret));
        r.code(0);
        outputs.run(&format!("ci --platform {platform}"), &r);
    }

    let mut repl = capstan(&p, &["repl", "deploy.rhai"], secret);
    repl.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = repl.spawn().expect("start the repl");
    let input = "s\nsecret(\"LEAK\")\n#{ k: s, n: number(s) }\n[s, float(s)]\nparse_int(s)\nthrow s\n";
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let r = Run::from(child.wait_with_output().unwrap());
    r.code(0);
    assert!(r.stdout.contains("***"), "{}", r.stdout);
    outputs.run("repl", &r);

    for (i, body) in server.bodies().into_iter().enumerate() {
        outputs.add(format!("webhook body {i}"), body);
    }
    outputs.files(p.dir.path(), p.dir.path());
    for needed in ["summary.json", "junit.xml", "report.json", "report.md", "github-summary.md", ".log"] {
        assert!(outputs.0.iter().any(|(sink, _)| sink.ends_with(needed)), "no {needed} was written");
    }

    let mut leaks = Vec::new();
    for (sink, text) in &outputs.0 {
        for (encoding, form) in forms(secret) {
            let count = text.matches(&form).count();
            if count > 0 {
                leaks.push(format!("{sink}: {count} × {encoding}"));
            }
        }
    }
    assert!(leaks.is_empty(), "the secret leaked:\n{}", leaks.join("\n"));
}

/// A 200-character secret from a fixed pseudo-random sequence.
fn long_secret() -> String {
    let alphabet: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".chars().collect();
    (0..200u64).map(|i| alphabet[usize::try_from((i * 7919 + 13) % 66).unwrap_or(0)]).collect()
}

macro_rules! shapes {
    ($($name:ident => $value:expr,)*) => {
        $(
            #[test]
            fn $name() {
                matrix(&$value);
            }
        )*
    };
}

shapes! {
    quotes => String::from(r#"q"uo"te-s3cret"#),
    backslashes => String::from(r"back\slash\s3cret"),
    newline => String::from("line-one-s3c\nline-two-s3c"),
    trailing_newline => String::from("trailing-s3cret\n"),
    unicode => String::from("ünïcødé-s3crét-🔑"),
    apostrophe => String::from("it's-a-s3cret"),
    numeric => String::from("73219054"),
    eight_chars => String::from("k9Xq2mPz"),
    two_hundred_chars => long_secret(),
}
