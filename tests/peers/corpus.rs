//! capstan's scanners against detect-secrets, hadolint and checkov on the
//! public corpora in tests/peers/corpora (960 files; provenance and licences
//! in its SOURCES.md), per rule family:
//!
//! - agreement with each peer: the share of the peer's findings capstan also
//!   reports (recall) and the share of capstan's findings a peer also reports
//!   (precision), after the judgements in tests/peers/judgements/*.tsv, where
//!   a peer is wrong on a file and the line says why;
//! - on the labelled sets (detect-secrets' and gitleaks' rule cases,
//!   hadolint's spec cases, checkov's examples): recall and false-positive
//!   rate against the upstream labels, next to the peer's own.
//!
//! The peers' findings are cached in tests/peers/findings/ by
//! scripts/peer-findings (the command and the peer's version are in each
//! file), so the suite does not run three Python tools each time. The table
//! is printed (`cargo test peers -- --nocapture`) and written to
//! target/peers-table.md for the README.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::support::{capstan_bin, repo_root};

/// A rule family: the capstan rules and each peer's rules that mean the same.
struct Family {
    scanner: &'static str,
    name: &'static str,
    capstan: &'static [&'static str],
    /// (peer, its rules); a family may have two peers.
    peers: &'static [(&'static str, &'static [&'static str])],
}

const DS: &str = "detect-secrets";

const FAMILIES: &[Family] = &[
    // secrets, against detect-secrets
    Family { scanner: "secrets", name: "any", capstan: &["secret/*"], peers: &[(DS, &["*"])] },
    Family {
        scanner: "secrets",
        name: "aws",
        capstan: &["secret/aws-access-key-id", "secret/aws-secret-access-key", "secret/aws-bedrock-api-key"],
        peers: &[(DS, &["AWS Access Key"])],
    },
    Family {
        scanner: "secrets",
        name: "private-key",
        capstan: &["secret/private-key"],
        peers: &[(DS, &["Private Key"])],
    },
    Family { scanner: "secrets", name: "github", capstan: &["secret/github-token"], peers: &[(DS, &["GitHub Token"])] },
    Family { scanner: "secrets", name: "gitlab", capstan: &["secret/gitlab-token"], peers: &[(DS, &["GitLab Token"])] },
    Family {
        scanner: "secrets",
        name: "slack",
        capstan: &["secret/slack-token", "secret/slack-webhook"],
        peers: &[(DS, &["Slack Token"])],
    },
    Family {
        scanner: "secrets",
        name: "stripe",
        capstan: &["secret/stripe-key"],
        peers: &[(DS, &["Stripe Access Key"])],
    },
    Family { scanner: "secrets", name: "npm", capstan: &["secret/npm-token"], peers: &[(DS, &["NPM tokens"])] },
    Family {
        scanner: "secrets",
        name: "sendgrid",
        capstan: &["secret/sendgrid-key"],
        peers: &[(DS, &["SendGrid API Key"])],
    },
    Family { scanner: "secrets", name: "jwt", capstan: &["secret/jwt"], peers: &[(DS, &["JSON Web Token"])] },
    Family {
        scanner: "secrets",
        name: "password-in-url",
        capstan: &["secret/password-in-url"],
        peers: &[(DS, &["Basic Auth Credentials"])],
    },
    // detect-secrets has no Google detector: the labels alone judge this one.
    Family {
        scanner: "secrets",
        name: "google",
        capstan: &["secret/google-api-key", "secret/gcp-service-account"],
        peers: &[(DS, &[])],
    },
    Family {
        scanner: "secrets",
        name: "generic",
        capstan: &["secret/password-assignment", "secret/high-entropy"],
        peers: &[(DS, &["Secret Keyword", "Hex High Entropy String", "Base64 High Entropy String"])],
    },
    // Dockerfiles, against hadolint and checkov
    Family {
        scanner: "dockerfile",
        name: "root-user",
        capstan: &["dockerfile/root-user"],
        peers: &[("hadolint", &["DL3002"]), ("checkov", &["CKV_DOCKER_3", "CKV_DOCKER_8"])],
    },
    Family {
        scanner: "dockerfile",
        name: "untagged-base",
        capstan: &["dockerfile/untagged-base"],
        peers: &[("hadolint", &["DL3006"])],
    },
    Family {
        scanner: "dockerfile",
        name: "latest-base",
        capstan: &["dockerfile/latest-base"],
        peers: &[("hadolint", &["DL3007"])],
    },
    // checkov's one check covers both an untagged and a `latest` base.
    Family {
        scanner: "dockerfile",
        name: "base-tag",
        capstan: &["dockerfile/untagged-base", "dockerfile/latest-base"],
        peers: &[("checkov", &["CKV_DOCKER_7"])],
    },
    Family {
        scanner: "dockerfile",
        name: "apt-lists",
        capstan: &["dockerfile/apt-lists-kept"],
        peers: &[("hadolint", &["DL3009"])],
    },
    Family {
        scanner: "dockerfile",
        name: "apk-cache",
        capstan: &["dockerfile/apk-cache-kept"],
        peers: &[("hadolint", &["DL3019"])],
    },
    Family {
        scanner: "dockerfile",
        name: "pip-cache",
        capstan: &["dockerfile/pip-cache-kept"],
        peers: &[("hadolint", &["DL3042"])],
    },
    Family {
        scanner: "dockerfile",
        name: "healthcheck",
        capstan: &["dockerfile/no-healthcheck"],
        peers: &[("checkov", &["CKV_DOCKER_2"])],
    },
    // Kubernetes, against checkov
    Family { scanner: "k8s", name: "privileged", capstan: &["k8s/privileged"], peers: &[("checkov", &["CKV_K8S_16"])] },
    Family {
        scanner: "k8s",
        name: "root-container",
        capstan: &["k8s/root-container"],
        peers: &[("checkov", &["CKV_K8S_23"])],
    },
    Family {
        scanner: "k8s",
        name: "writable-root-fs",
        capstan: &["k8s/writable-root-fs"],
        peers: &[("checkov", &["CKV_K8S_22"])],
    },
    Family {
        scanner: "k8s",
        name: "requests",
        capstan: &["k8s/no-requests"],
        peers: &[("checkov", &["CKV_K8S_10", "CKV_K8S_12"])],
    },
    Family {
        scanner: "k8s",
        name: "limits",
        capstan: &["k8s/no-limits"],
        peers: &[("checkov", &["CKV_K8S_11", "CKV_K8S_13"])],
    },
    Family {
        scanner: "k8s",
        name: "liveness",
        capstan: &["k8s/no-liveness-probe"],
        peers: &[("checkov", &["CKV_K8S_8"])],
    },
    Family {
        scanner: "k8s",
        name: "readiness",
        capstan: &["k8s/no-readiness-probe"],
        peers: &[("checkov", &["CKV_K8S_9"])],
    },
    Family {
        scanner: "k8s",
        name: "latest-image",
        capstan: &["k8s/latest-image"],
        peers: &[("checkov", &["CKV_K8S_14"])],
    },
    Family {
        scanner: "k8s",
        name: "host-network",
        capstan: &["k8s/host-network"],
        peers: &[("checkov", &["CKV_K8S_19"])],
    },
    // Terraform, against checkov
    Family {
        scanner: "terraform",
        name: "open-admin-port",
        capstan: &["terraform/open-admin-port"],
        peers: &[("checkov", &["CKV_AWS_24", "CKV_AWS_25", "CKV_AWS_277"])],
    },
    Family {
        scanner: "terraform",
        name: "iam-wildcard",
        capstan: &["terraform/iam-wildcard"],
        peers: &[("checkov", &["CKV_AWS_1", "CKV_AWS_62", "CKV_AWS_63", "CKV_AWS_355", "CKV_AWS_49"])],
    },
    Family {
        scanner: "terraform",
        name: "hardcoded-credentials",
        capstan: &["terraform/hardcoded-credentials"],
        peers: &[("checkov", &["CKV_AWS_41", "CKV_PAN_1"])],
    },
];

impl Family {
    fn has_capstan_rule(&self, rule: &str) -> bool {
        self.capstan.iter().any(|r| *r == rule || r.strip_suffix('*').is_some_and(|p| rule.starts_with(p)))
    }

    fn peer_rules(&self, peer: &str) -> Option<&'static [&'static str]> {
        self.peers.iter().find(|(p, _)| *p == peer).map(|(_, rules)| *rules)
    }

    fn has_peer_rule(&self, peer: &str, rule: &str) -> bool {
        self.peer_rules(peer).is_some_and(|rules| rules.iter().any(|r| *r == "*" || *r == rule))
    }

    fn label(&self) -> String {
        format!("{}/{}", self.scanner, self.name)
    }
}

/// One finding, capstan's or a peer's: lines are 1-based and inclusive; a
/// peer's `start` of 0 means the whole file.
#[derive(Debug, Clone)]
struct Found {
    file: String,
    start: usize,
    end: usize,
    rule: String,
}

impl Found {
    /// Whether capstan's finding at `line` of `file` is this peer finding.
    /// detect-secrets reports a private key on the line after BEGIN.
    fn covers(&self, file: &str, line: usize) -> bool {
        self.file == file
            && (self.start == 0
                || (self.start..=self.end).contains(&line)
                || (self.rule == "Private Key" && line + 1 == self.start))
    }
}

fn corpora() -> PathBuf {
    repo_root().join("tests/peers/corpora")
}

/// capstan's findings over the whole corpus, from one run of the binary.
fn capstan() -> &'static [Found] {
    static FOUND: OnceLock<Vec<Found>> = OnceLock::new();
    FOUND.get_or_init(|| {
        let out = Command::new(capstan_bin())
            .args(["check", "--json", "--compliance"])
            .arg(corpora())
            .output()
            .expect("capstan runs");
        let findings: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("capstan check --json: {e}\n{}", String::from_utf8_lossy(&out.stderr)));
        findings
            .iter()
            .map(|f| {
                let file = Path::new(f["file"].as_str().unwrap());
                let file = file.strip_prefix(corpora()).unwrap_or(file).to_string_lossy().into_owned();
                let line = f["line"].as_u64().unwrap() as usize;
                Found { file, start: line, end: line, rule: f["rule"].as_str().unwrap().to_string() }
            })
            .collect()
    })
}

/// checkov's checks that report a missing HEALTHCHECK or USER.
const ABSENCE_CHECKS: &[&str] = &["CKV_DOCKER_2", "CKV_DOCKER_3"];

/// A peer's cached findings (scripts/peer-findings).
fn peer(name: &str) -> &'static [Found] {
    static PEERS: OnceLock<BTreeMap<String, Vec<Found>>> = OnceLock::new();
    let all = PEERS.get_or_init(|| {
        ["detect-secrets", "hadolint", "checkov"]
            .iter()
            .map(|p| {
                let path = repo_root().join(format!("tests/peers/findings/{p}.json"));
                let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let found = doc["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| Found {
                        file: f["file"].as_str().unwrap().to_string(),
                        // A check for an instruction that is absent has no line;
                        // checkov gives the file's range, miscounted where a
                        // heredoc is: it is about the whole file.
                        start: if ABSENCE_CHECKS.contains(&f["rule"].as_str().unwrap()) {
                            0
                        } else {
                            f["start"].as_u64().unwrap() as usize
                        },
                        end: f["end"].as_u64().unwrap() as usize,
                        rule: f["rule"].as_str().unwrap().to_string(),
                    })
                    .collect();
                ((*p).to_string(), found)
            })
            .collect()
    });
    &all[name]
}

/// What a judgement says about a finding or a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The peer reports it and it is not a real problem.
    PeerWrong,
    /// The peer does not report it and capstan's finding is real.
    PeerMissed,
    /// The upstream label of a case is wrong.
    LabelWrong,
}

#[derive(Debug)]
struct Judgement {
    peer: String,
    file: String,
    /// None for `*`: the whole file.
    line: Option<usize>,
    family: String,
    verdict: Verdict,
}

impl Judgement {
    fn applies(&self, peer: &str, family: &Family, file: &str, line: usize, verdict: Verdict) -> bool {
        self.verdict == verdict
            && self.peer == peer
            && self.family == family.name
            && self.file == file
            && self.line.is_none_or(|l| l == line)
    }
}

/// Every judgement in tests/peers/judgements/*.tsv; a malformed line fails
/// the test with its file and line.
fn judgements() -> &'static [Judgement] {
    static ALL: OnceLock<Vec<Judgement>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = repo_root().join("tests/peers/judgements");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        files.sort();
        let mut out = Vec::new();
        for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "tsv")) {
            let text = std::fs::read_to_string(path).unwrap();
            for (n, row) in text.lines().enumerate() {
                if row.trim().is_empty() || row.starts_with('#') {
                    continue;
                }
                let at = format!("{}:{}", path.display(), n + 1);
                let cols: Vec<&str> = row.split('\t').collect();
                assert_eq!(cols.len(), 6, "{at}: peer, file, line, family, verdict, reason (tab-separated): {row}");
                assert!(
                    ["detect-secrets", "hadolint", "checkov", "labels"].contains(&cols[0]),
                    "{at}: peer {}",
                    cols[0]
                );
                assert!(corpora().join(cols[1]).is_file(), "{at}: no such file in the corpora: {}", cols[1]);
                assert!(FAMILIES.iter().any(|f| f.name == cols[3]), "{at}: no family {}", cols[3]);
                assert!(cols[5].split_whitespace().count() >= 4, "{at}: the reason must say why: {row}");
                let verdict = match cols[4] {
                    "peer-wrong" => Verdict::PeerWrong,
                    "peer-missed" => Verdict::PeerMissed,
                    "label-wrong" => Verdict::LabelWrong,
                    other => panic!("{at}: verdict {other} (peer-wrong, peer-missed or label-wrong)"),
                };
                let line = if cols[2] == "*" {
                    None
                } else {
                    Some(cols[2].parse().unwrap_or_else(|_| panic!("{at}: line {} (a number or *)", cols[2])))
                };
                out.push(Judgement {
                    peer: cols[0].to_string(),
                    file: cols[1].to_string(),
                    line,
                    family: cols[3].to_string(),
                    verdict,
                });
            }
        }
        out
    })
}

/// Whether a judgement covers a finding of `rule` (capstan's or the peer's,
/// as the verdict says). A secret judged in its own family (`aws`) is judged
/// in `any` too, the family whose rules hold it.
fn judged(peer: &str, family: &Family, found: &Found, verdict: Verdict) -> bool {
    let (file, line, rule) = (found.file.as_str(), found.start, found.rule.as_str());
    judgements().iter().any(|j| {
        j.applies(peer, family, file, line, verdict)
            || (family.name == "any"
                && FAMILIES.iter().filter(|f| f.scanner == family.scanner && f.name != "any").any(|f| {
                    let holds = if verdict == Verdict::PeerWrong {
                        f.has_peer_rule(peer, rule)
                    } else {
                        f.has_capstan_rule(rule)
                    };
                    holds && j.applies(peer, f, file, line, verdict)
                }))
    })
}

/// A peer's findings of a family, and capstan's.
fn peer_of(family: &Family, name: &str) -> Vec<&'static Found> {
    peer(name).iter().filter(|f| family.has_peer_rule(name, &f.rule)).collect()
}

fn capstan_of(family: &Family) -> Vec<&'static Found> {
    capstan().iter().filter(|f| family.has_capstan_rule(&f.rule)).collect()
}

/// Agreement of capstan with one peer on one family.
struct Agreement {
    family: String,
    peer: &'static str,
    /// The peer's findings that stand after the judgements.
    peer_true: usize,
    peer_wrong: usize,
    recall: f64,
    /// Recall of every finding of the peer, before any judgement.
    raw_recall: f64,
    missed: Vec<String>,
}

/// Precision of capstan on one family, against all its peers together.
struct Confirmed {
    family: String,
    findings: usize,
    /// Findings no peer reports but a judgement says are real.
    judged_real: usize,
    precision: f64,
    /// The share a peer reports too, before any judgement.
    raw_precision: f64,
    unconfirmed: Vec<String>,
}

fn ratio(num: usize, den: usize) -> f64 {
    if den == 0 {
        1.0
    } else {
        num as f64 / den as f64
    }
}

fn agreement(family: &Family, name: &'static str) -> Agreement {
    let ours = capstan_of(family);
    let theirs = peer_of(family, name);
    let (wrong, standing): (Vec<_>, Vec<_>) =
        theirs.into_iter().partition(|p| judged(name, family, p, Verdict::PeerWrong));
    // detect-secrets reports one secret under several detectors (a Slack
    // token is also a Secret Keyword); capstan reports it once, under its
    // specific rule, as gitleaks does. So a generic finding is matched by any
    // capstan secret on its line.
    let matching: Vec<&Found> = if family.name == "generic" {
        capstan().iter().filter(|c| c.rule.starts_with("secret/")).collect()
    } else {
        ours
    };
    let found = |p: &&&Found| matching.iter().any(|c| p.covers(&c.file, c.start));
    let missed: Vec<String> =
        standing.iter().filter(|p| !found(p)).map(|p| format!("{}:{} {}", p.file, p.start, p.rule)).collect();
    let raw_found = standing.iter().chain(&wrong).filter(found).count();
    Agreement {
        family: family.label(),
        peer: name,
        peer_true: standing.len(),
        peer_wrong: wrong.len(),
        recall: ratio(standing.len() - missed.len(), standing.len()),
        raw_recall: ratio(raw_found, standing.len() + wrong.len()),
        missed,
    }
}

fn precision(family: &Family) -> Confirmed {
    let ours = capstan_of(family);
    let mut judged_real = 0;
    let mut unconfirmed = Vec::new();
    let raw_confirmed = ours
        .iter()
        .filter(|c| {
            family.peers.iter().any(|(name, _)| peer_of(family, name).iter().any(|p| p.covers(&c.file, c.start)))
        })
        .count();
    for c in &ours {
        let confirmed = family.peers.iter().any(|(name, _)| {
            peer_of(family, name)
                .iter()
                .any(|p| p.covers(&c.file, c.start) && !judged(name, family, p, Verdict::PeerWrong))
        });
        if confirmed {
            continue;
        }
        if family.peers.iter().any(|(name, _)| judged(name, family, c, Verdict::PeerMissed)) {
            judged_real += 1;
        } else {
            unconfirmed.push(format!("{}:{} {}", c.file, c.start, c.rule));
        }
    }
    Confirmed {
        family: family.label(),
        findings: ours.len(),
        judged_real,
        precision: ratio(ours.len() - unconfirmed.len(), ours.len()),
        raw_precision: ratio(raw_confirmed, ours.len()),
        unconfirmed,
    }
}

/// One labelled case: a file that is, or is not, an instance of a family.
struct Case {
    file: String,
    family: &'static Family,
    positive: bool,
    /// The peer whose own result on the case is the bar, if any.
    peer: Option<&'static str>,
}

fn family(scanner: &str, name: &str) -> &'static Family {
    FAMILIES.iter().find(|f| f.scanner == scanner && f.name == name).unwrap_or_else(|| panic!("{scanner}/{name}"))
}

/// Every labelled case in the corpora, with its upstream label.
fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (set, prefix) in [
        ("detect-secrets/plugin_cases/labels.json", "detect-secrets/plugin_cases"),
        ("gitleaks/rule_cases/labels.json", "gitleaks/rule_cases"),
    ] {
        let labels: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(corpora().join(set)).unwrap()).unwrap();
        for (file, label) in labels.as_object().unwrap() {
            let family = family("secrets", label["family"].as_str().unwrap());
            // Where detect-secrets has no detector, the labels alone set the bar.
            let peer = family.peer_rules(DS).is_some_and(|r| !r.is_empty()).then_some(DS);
            out.push(Case {
                file: format!("{prefix}/{file}"),
                family,
                positive: label["secret"].as_bool().unwrap(),
                peer,
            });
        }
    }
    // hadolint's spec cases: DLxxxx-NN-catch or -ok, a Dockerfile each.
    let hadolint_rules = [
        ("DL3002", "root-user"),
        ("DL3006", "untagged-base"),
        ("DL3007", "latest-base"),
        ("DL3009", "apt-lists"),
        ("DL3019", "apk-cache"),
        ("DL3042", "pip-cache"),
    ];
    for dir in subdirs(&corpora().join("hadolint/spec_cases")) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let Some((_, fam)) = hadolint_rules.iter().find(|(code, _)| name.starts_with(code)) else { continue };
        out.push(Case {
            file: format!("hadolint/spec_cases/{name}/Dockerfile"),
            family: family("dockerfile", fam),
            positive: name.ends_with("-catch"),
            peer: Some("hadolint"),
        });
    }
    // checkov's examples: a failure*/ or success*/ folder with a Dockerfile,
    // or *-FAILED*.yaml / *-PASSED*.yaml; only checks that are one family.
    let checkov_examples = [
        ("dockerfile", "example_RootUser", "root-user"),
        ("dockerfile", "example_UserExists", "root-user"),
        ("dockerfile", "example_HealthcheckExists", "healthcheck"),
        ("dockerfile", "example_ReferenceLatestTag", "base-tag"),
        ("k8s", "example_PrivilegedContainers", "privileged"),
        ("k8s", "example_RootContainers", "root-container"),
        ("k8s", "example_ReadOnlyFilesystem", "writable-root-fs"),
        ("k8s", "example_ImageTagFixed", "latest-image"),
    ];
    for (scanner, example, fam) in checkov_examples {
        let folder = if scanner == "k8s" { "kubernetes" } else { scanner };
        let root = corpora().join("checkov").join(folder).join(example);
        let mut files = Vec::new();
        walk(&root, &mut files);
        for path in files {
            let rel = path.strip_prefix(corpora()).unwrap().to_string_lossy().into_owned();
            let name = path.strip_prefix(&root).unwrap().to_string_lossy().into_owned();
            let positive = name.starts_with("failure") || name.contains("FAILED");
            let negative = name.starts_with("success") || name.contains("PASSED");
            if positive != negative {
                out.push(Case { file: rel, family: family(scanner, fam), positive, peer: Some("checkov") });
            }
        }
    }
    out
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
    out.sort();
}

/// How a tool does on the labelled cases of one family.
#[derive(Default)]
struct Score {
    positives: usize,
    negatives: usize,
    caught: usize,
    false_alarms: usize,
    missed: Vec<String>,
    alarms: Vec<String>,
    /// Cases whose upstream label a judgement turned.
    relabelled: usize,
}

impl Score {
    fn add(&mut self, file: &str, positive: bool, flagged: bool) {
        match (positive, flagged) {
            (true, true) => self.caught += 1,
            (true, false) => self.missed.push(file.to_string()),
            (false, true) => {
                self.false_alarms += 1;
                self.alarms.push(file.to_string());
            }
            (false, false) => {}
        }
        if positive {
            self.positives += 1;
        } else {
            self.negatives += 1;
        }
    }

    fn recall(&self) -> f64 {
        ratio(self.caught, self.positives)
    }

    fn fp_rate(&self) -> f64 {
        if self.negatives == 0 {
            0.0
        } else {
            self.false_alarms as f64 / self.negatives as f64
        }
    }
}

/// capstan's and the peer's scores on the labelled cases, per family.
fn labelled() -> BTreeMap<(String, &'static str), (Score, Score)> {
    let mut out: BTreeMap<(String, &'static str), (Score, Score)> = BTreeMap::new();
    for case in cases() {
        let peer_name = case.peer.unwrap_or("labels");
        let flagged_by_capstan = capstan().iter().any(|f| f.file == case.file && case.family.has_capstan_rule(&f.rule));
        let flagged_by_peer = case
            .peer
            .is_some_and(|p| peer(p).iter().any(|f| f.file == case.file && case.family.has_peer_rule(p, &f.rule)));
        let whole = Found { file: case.file.clone(), start: 0, end: 0, rule: String::new() };
        let relabelled = judged("labels", case.family, &whole, Verdict::LabelWrong);
        let positive = case.positive != relabelled;
        let entry = out.entry((case.family.label(), peer_name)).or_default();
        entry.0.relabelled += usize::from(relabelled);
        entry.0.add(&case.file, positive, flagged_by_capstan);
        entry.1.add(&case.file, positive, flagged_by_peer);
    }
    out
}

fn table() -> (String, Vec<String>) {
    let mut failures = Vec::new();
    let mut md = String::from(
        "| family | peer | peer's findings (judged wrong) | capstan's recall of them (before judgements) | capstan's findings (judged real) | precision (before judgements) |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for family in FAMILIES {
        let p = precision(family);
        for (name, rules) in family.peers {
            if rules.is_empty() {
                continue;
            }
            let a = agreement(family, name);
            let _ = writeln!(
                md,
                "| {} | {} | {} ({}) | {:.2} ({:.2}) | {} ({}) | {:.2} ({:.2}) |",
                a.family,
                a.peer,
                a.peer_true,
                a.peer_wrong,
                a.recall,
                a.raw_recall,
                p.findings,
                p.judged_real,
                p.precision,
                p.raw_precision
            );
            if a.recall < 0.90 {
                failures.push(format!(
                    "{} vs {}: recall {:.2} < 0.90; missed:\n    {}",
                    a.family,
                    a.peer,
                    a.recall,
                    a.missed.join("\n    ")
                ));
            }
        }
        if p.precision < 0.80 {
            failures.push(format!(
                "{}: precision {:.2} < 0.80; no peer confirms:\n    {}",
                p.family,
                p.precision,
                p.unconfirmed.join("\n    ")
            ));
        }
    }
    md.push_str(
        "\n| family | labelled set | cases +/- (labels judged wrong) | capstan recall | peer recall | capstan FP rate | peer FP rate |\n| --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for ((family, peer_name), (ours, theirs)) in labelled() {
        // A set with no peer (the labels alone) shows no peer figures.
        let theirs_shown = |x: f64| if peer_name == "labels" { "-".to_string() } else { format!("{x:.2}") };
        let _ = writeln!(
            md,
            "| {family} | {peer_name} | {}/{} ({}) | {:.2} | {} | {:.2} | {} |",
            ours.positives,
            ours.negatives,
            ours.relabelled,
            ours.recall(),
            theirs_shown(theirs.recall()),
            ours.fp_rate(),
            theirs_shown(theirs.fp_rate())
        );
        // Without a peer, the bars are the issue's floors: 0.90 and 0.10.
        let (recall_bar, fp_bar) =
            if peer_name == "labels" { (0.90, 0.10) } else { (theirs.recall().min(0.90), theirs.fp_rate().max(0.10)) };
        if ours.recall() < recall_bar {
            failures.push(format!(
                "{family} on {peer_name}'s cases: recall {:.2} < {recall_bar:.2}; missed:\n    {}",
                ours.recall(),
                ours.missed.join("\n    ")
            ));
        }
        if ours.fp_rate() > fp_bar {
            failures.push(format!(
                "{family} on {peer_name}'s cases: FP rate {:.2} > {fp_bar:.2}; false alarms:\n    {}",
                ours.fp_rate(),
                ours.alarms.join("\n    ")
            ));
        }
    }
    (md, failures)
}

/// The per-family table holds the issue's bars: recall of each peer's true
/// findings >= 0.90 and precision >= 0.80 per family; on the labelled sets,
/// recall >= min(0.90, the peer's) and FP rate <= max(0.10, the peer's).
#[test]
fn every_family_is_at_peer_level_on_the_public_corpora() {
    assert!(capstan().len() > 1000, "capstan found only {} things in 960 files", capstan().len());
    for p in ["detect-secrets", "hadolint", "checkov"] {
        assert!(peer(p).len() > 100, "{p}'s cached findings are missing: run scripts/peer-findings");
    }
    let (md, failures) = table();
    println!("{md}");
    let _ = std::fs::write(repo_root().join("target/peers-table.md"), &md);
    assert!(failures.is_empty(), "{md}\n{}", failures.join("\n"));
}

/// A judgement that no longer matches anything is stale: it would hide a
/// change in what capstan or a peer reports.
#[test]
fn every_judgement_is_about_a_finding_or_a_case_that_exists() {
    let cases = cases();
    let mut stale = Vec::new();
    for j in judgements() {
        let family = FAMILIES.iter().find(|f| f.name == j.family).unwrap();
        let line_ok = |start: usize| j.line.is_none_or(|l| l == start);
        let exists = match j.verdict {
            Verdict::PeerWrong => peer_of(family, &j.peer).iter().any(|p| p.file == j.file && line_ok(p.start)),
            Verdict::PeerMissed => capstan_of(family).iter().any(|c| c.file == j.file && line_ok(c.start)),
            Verdict::LabelWrong => cases.iter().any(|c| c.file == j.file && c.family.name == j.family),
        };
        if !exists {
            stale.push(format!("{} {} {:?} {} {:?}", j.peer, j.file, j.line, j.family, j.verdict));
        }
    }
    assert!(stale.is_empty(), "judgements about nothing:\n{}", stale.join("\n"));
}

/// The SARIF of the whole corpus (thousands of findings of every rule) is
/// valid against the official SARIF 2.1.0 schema.
#[test]
fn sarif_of_the_corpora_matches_the_official_schema() {
    let dir = tempfile::tempdir().unwrap();
    let sarif = dir.path().join("corpora.sarif");
    let out = Command::new(capstan_bin())
        .arg("check")
        .arg("--sarif")
        .arg(&sarif)
        .arg("--compliance")
        .arg(corpora())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "findings exit 1: {}", String::from_utf8_lossy(&out.stderr));
    let check = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(repo_root().join("tests/schemas/sarif-schema-2.1.0.json"))
        .arg(&sarif)
        .output()
        .expect("check-jsonschema runs (scripts/install-test-deps installs it from PyPI)");
    assert!(
        check.status.success(),
        "the SARIF schema rejects capstan's SARIF:\n{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let results = doc["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), capstan().len(), "one SARIF result per finding");
}

/// The schema check can fail: a SARIF without the driver's name is refused.
#[test]
fn the_sarif_schema_rejects_a_driver_without_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.sarif");
    std::fs::write(&bad, r#"{"version":"2.1.0","runs":[{"tool":{"driver":{}},"results":[]}]}"#).unwrap();
    let check = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(repo_root().join("tests/schemas/sarif-schema-2.1.0.json"))
        .arg(&bad)
        .output()
        .expect("check-jsonschema runs");
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stdout).contains("'name' is a required property"));
}
