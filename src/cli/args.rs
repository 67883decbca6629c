//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  capstan run deploy.rhai --param version=1.4.2
  capstan run deploy.rhai --dry-run --phase plan
  capstan run deploy.rhai --from do --log-format json --timeout 30m
  capstan check deploy.rhai lib/*.rhai
  capstan list deploy.rhai --json
  capstan repl deploy.rhai
  capstan new checkout --template canary
  capstan init --dry-run
  capstan ci deploy.rhai --platform github -o .github/workflows/deploy.yml
  capstan doc step";

#[derive(Debug, Parser)]
#[command(name = "capstan", version, about = "Run phased deployment playbooks written in Rhai", after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Write the command's data (JSON lines of `run --log-format json`, `list`,
    /// `doc`, `runs`, `stats`, `check --json`) to FILE instead of stdout
    #[arg(short = 'o', long = "output", value_name = "FILE", global = true)]
    pub output: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Run a playbook's phases
    #[command(after_help = "\
Examples:
  capstan run deploy.rhai --param version=1.4.2 --param env=staging
  capstan run deploy.rhai --params-file prod.yaml --dry-run
  capstan run deploy.rhai --phase plan --phase compliance
  capstan run deploy.rhai --from do --to archive --timeout 45m

Exit codes: 0 ok, 1 failed (undo done), 2 usage or script error (nothing ran),
3 blocked, 4 failed and an undo failed too, 130 interrupted.")]
    Run(RunArgs),
    /// Compile and lint playbooks; nothing runs
    #[command(
        after_help = "Exit codes: 0 clean, 1 findings, 2 does not compile.\n\nExamples:\n  capstan check deploy.rhai lib/common.rhai\n  capstan check --compliance . --sarif capstan.sarif"
    )]
    Check(CheckArgs),
    /// Show the phases, params and secrets a playbook declares
    #[command(after_help = "Example:\n  capstan list deploy.rhai --json")]
    List(ListArgs),
    /// Past runs from the journal: list them, or show one as a tree
    #[command(
        after_help = "Examples:\n  capstan runs\n  capstan runs show last\n  capstan runs show 20261122T093015123Z-3f2a --json"
    )]
    Runs(RunsArgs),
    /// Delivery statistics over the runs: deployments, change failure rate,
    /// time to restore, lead time, step durations and flaky steps
    #[command(after_help = "\
Examples:
  capstan stats
  capstan stats --since 7d --playbook deploy.rhai
  capstan stats --json
  CAPSTAN_STATE=postgres://capstan@db/capstan capstan stats --prometheus capstan.prom")]
    Stats(StatsArgs),
    /// Show the script API: every function with its signature and documentation
    #[command(
        after_help = "Examples:\n  capstan doc\n  capstan doc run\n  capstan doc --definitions .rhai/definitions"
    )]
    Doc(DocArgs),
    /// Interactive session with every primitive loaded
    #[command(after_help = "\
Examples:
  capstan repl
  capstan repl deploy.rhai --param version=1.4.2
  capstan repl deploy.rhai --dry-run

Inside: `:help` lists the commands; `:phases`, `:run PHASE`, `:doc NAME`,
`:dry-run on|off`, `:quit`. Ctrl-C cancels the running command, Ctrl-D quits.")]
    Repl(ReplArgs),
    /// Start a new service's playbook from a template
    #[command(after_help = "\
Examples:
  capstan new checkout
  capstan new checkout --template canary
  capstan new infra --template terraform")]
    New(NewArgs),
    /// Analyse a repository and write its playbook, Dockerfile and manifests
    #[command(after_help = "\
Examples:
  capstan init
  capstan init path/to/repo --dry-run
  capstan init --k8s --json
  capstan init --force

Exit codes: 0 written (or shown), 2 nothing recognised or bad arguments.")]
    Init(InitArgs),
    /// Generate a CI pipeline that runs the playbook's phases as jobs
    #[command(after_help = "\
Examples:
  capstan ci deploy.rhai --platform github -o .github/workflows/deploy.yml
  capstan ci deploy.rhai --platform gitlab -o .gitlab-ci.yml
  capstan ci deploy.rhai --platform jenkins -o Jenkinsfile
  capstan ci deploy.rhai --platform circleci -o .circleci/config.yml

Installing capstan in the jobs (--install):
  default: cargo install capstan-cli --version VERSION --locked (cached between jobs)
  a prebuilt binary, downloaded onto PATH:
    capstan ci deploy.rhai --platform github \\
      --install 'curl -fsSL https://example.com/capstan.tgz | tar -xz -C /usr/local/bin'
  a container image that has capstan and the playbook's tools (no install step):
    capstan ci deploy.rhai --platform gitlab \\
      --image registry.example/deploy-tools:1 --install ''

Jobs run in --image (GitLab, CircleCI; default rust:1, which has cargo but not
terraform, docker, helm or kubectl) or on --runs-on (GitHub; default
ubuntu-latest). A phase's `artifacts` travel to the later jobs with the journal.")]
    Ci(CiArgs),
    /// Print the man page (roff)
    #[command(after_help = "Example:\n  capstan man | man -l -")]
    Man,
    /// Print a shell completion script
    #[command(after_help = "Example:\n  capstan completions bash > /etc/bash_completion.d/capstan")]
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// human on a terminal, plain otherwise
    Auto,
    Human,
    Plain,
    Json,
    /// plain lines plus GitHub Actions workflow commands (default when `GITHUB_ACTIONS=true`)
    Github,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // command-line flags
pub struct RunArgs {
    /// The playbook file
    pub playbook: PathBuf,
    /// Run only this phase (repeatable)
    #[arg(long = "phase", value_name = "P")]
    pub phases: Vec<String>,
    /// Start at this phase
    #[arg(long, value_name = "P")]
    pub from: Option<String>,
    /// Stop after this phase
    #[arg(long, value_name = "P")]
    pub to: Option<String>,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Show what would change without changing anything
    #[arg(long)]
    pub dry_run: bool,
    /// How to report progress
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Where `.capstan/runs/` goes [default: the playbook's folder]
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Where runs keep their journals and locks, shared between machines:
    /// `file://DIR` (this machine's journal folder, the default),
    /// `postgres://USER@HOST:PORT/DB` or `s3://BUCKET/PREFIX?endpoint=URL`
    #[arg(long, value_name = "URL", env = "CAPSTAN_STATE", hide_env_values = true)]
    pub state: Option<String>,
    /// Stop the whole run after this long (e.g. 30m), then undo
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Time undo and `on_failure` handlers get once the run has failed or its
    /// --timeout expired [default with --timeout: 5m]
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub undo_timeout: Option<std::time::Duration>,
    #[command(flatten)]
    pub guards: GuardArgs,
    /// Continue a failed or crashed run: completed steps are not run again.
    /// A run name (--run-name) continues the newest run of that name
    #[arg(long, value_name = "RUN_ID|NAME|last")]
    pub resume: Option<String>,
    /// Name the run, so a later `--resume NAME` finds it (a CI pipeline's
    /// jobs name their run after the pipeline: `--run-name "gl-$CI_PIPELINE_ID"`)
    #[arg(long, value_name = "NAME", conflicts_with = "resume")]
    pub run_name: Option<String>,
    /// Write a `JUnit` XML report here
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// POST `run_started` and `run_finished` as JSON to this URL (repeatable)
    #[arg(long = "notify", value_name = "URL")]
    pub notify: Vec<String>,
    /// Show every child output line and debug messages
    #[arg(short, long)]
    pub verbose: bool,
    /// Show only failures and the result
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// SSH handshakes in flight at once (keep it below sshd's `MaxStartups`)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub ssh_starts: u16,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Playbooks to check
    #[arg(required_unless_present = "compliance")]
    pub playbooks: Vec<PathBuf>,
    /// Run the compliance scanners on a file or folder instead (secrets, Dockerfiles,
    /// Kubernetes manifests); repeatable
    #[arg(long, value_name = "PATH")]
    pub compliance: Vec<PathBuf>,
    /// With --compliance: also write the findings as SARIF 2.1.0 to FILE
    #[arg(long, value_name = "FILE", requires = "compliance")]
    pub sarif: Option<PathBuf>,
    /// Findings as JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    pub playbook: PathBuf,
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub inventory: InventoryArgs,
}

#[derive(Debug, Args)]
pub struct DocArgs {
    /// One function (e.g. `step`), or a namespace's functions (e.g. `inventory`)
    pub name: Option<String>,
    /// Write editor definition files (`.d.rhai`) into this folder
    #[arg(long, value_name = "DIR")]
    pub definitions: Option<PathBuf>,
    /// The API reference as Markdown
    #[arg(long, conflicts_with = "definitions")]
    pub markdown: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub action: Option<RunsAction>,
    /// Where `.capstan/runs/` is [default: the current folder]
    #[arg(long, value_name = "DIR", global = true)]
    pub journal_dir: Option<PathBuf>,
    /// List the runs of every machine in this state store (`file://DIR`,
    /// `postgres://USER@HOST:PORT/DB` or `s3://BUCKET/PREFIX?endpoint=URL`)
    #[arg(long, value_name = "URL", env = "CAPSTAN_STATE", hide_env_values = true, global = true)]
    pub state: Option<String>,
    /// As JSON
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The window: runs that ended in the last DUR; trends compare it with
    /// the DUR before
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, default_value = "30d")]
    pub since: std::time::Duration,
    /// Only this playbook (its path, file name, or name without `.rhai`)
    #[arg(long, value_name = "P")]
    pub playbook: Option<String>,
    /// Where `.capstan/runs/` is [default: the current folder]
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Read the runs of every machine in this state store (`file://DIR`,
    /// `postgres://USER@HOST:PORT/DB` or `s3://BUCKET/PREFIX?endpoint=URL`)
    #[arg(long, value_name = "URL", env = "CAPSTAN_STATE", hide_env_values = true)]
    pub state: Option<String>,
    /// As JSON
    #[arg(long)]
    pub json: bool,
    /// Also write the figures to FILE in the Prometheus text format (for
    /// `node_exporter`'s textfile collector)
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RunsAction {
    /// One line per run, newest last
    List,
    /// One run as a tree: phases, steps, gates, undo, errors
    Show {
        /// A run id, or `last`
        run: String,
        /// Also write the run as a self-contained HTML page (timeline, a chart per analysed metric)
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // command-line flags
pub struct ReplArgs {
    /// A playbook whose top level is evaluated first: its params, secrets and phases are there
    pub playbook: Option<PathBuf>,
    #[command(flatten)]
    pub inputs: InputArgs,
    #[command(flatten)]
    pub inventory: InventoryArgs,
    /// Start with dry-run on (`:dry-run off` turns it off)
    #[arg(long)]
    pub dry_run: bool,
    /// Where `.capstan/runs/` goes [default: the playbook's folder, or the current one]
    #[arg(long, value_name = "DIR")]
    pub journal_dir: Option<PathBuf>,
    /// Where runs keep their journals and locks, shared between machines:
    /// `file://DIR` (this machine's journal folder, the default),
    /// `postgres://USER@HOST:PORT/DB` or `s3://BUCKET/PREFIX?endpoint=URL`
    #[arg(long, value_name = "URL", env = "CAPSTAN_STATE", hide_env_values = true)]
    pub state: Option<String>,
    #[command(flatten)]
    pub guards: GuardArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Template {
    /// The five phases, a build and a health check
    Basic,
    /// A canary rollout behind a load balancer, with automatic rollback
    Canary,
    /// Terraform plan, approval and apply
    Terraform,
    /// Build an image, push it, run it, check it
    Container,
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The folder to create (it may exist if it is empty)
    pub dir: PathBuf,
    #[arg(long, value_enum, default_value_t = Template::Basic)]
    pub template: Template,
    /// The service's name [default: the folder's name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// With the terraform template: the provider of the scaffold. aws, google and azurerm
    /// get a remote state backend (their init needs the provider and credentials); `none`
    /// writes no provider block and a local backend, which works offline
    #[arg(long, value_name = "PROVIDER", default_value = "none")]
    pub provider: String,
    /// Write into a folder that is not empty; files of the template are overwritten
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
#[allow(clippy::struct_excessive_bools)] // command-line flags
pub struct InitArgs {
    /// The repository's root
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Say what would be written; write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Replace files that exist (they are listed as replaced)
    #[arg(long)]
    pub force: bool,
    /// Print what was detected and written as JSON on stdout
    #[arg(long)]
    pub json: bool,
    /// Write Kubernetes manifests under deploy/k8s even when the repository shows no sign of Kubernetes
    #[arg(long)]
    pub k8s: bool,
    /// The service's name [default: the manifest's, else the folder's]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Platform {
    Github,
    Gitlab,
    Jenkins,
    Circleci,
}

#[derive(Debug, Args)]
pub struct CiArgs {
    /// The playbook the pipeline runs
    pub playbook: PathBuf,
    #[arg(long, value_enum)]
    pub platform: Platform,
    /// The shell line that installs capstan in each job; '' for none (an image that has it)
    #[arg(long, value_name = "CMD")]
    pub install: Option<String>,
    /// The container image the jobs run in (GitLab, `CircleCI`)
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
    /// The runner label the jobs run on (GitHub)
    #[arg(long, value_name = "LABEL")]
    pub runs_on: Option<String>,
    /// Share the run between jobs through this state store instead of
    /// carrying the journal as an artifact: a `postgres://` or `s3://` URL
    /// without a password, or `secret` to read the URL from the CI secret
    /// `CAPSTAN_STATE`
    #[arg(long, value_name = "URL|secret")]
    pub state: Option<String>,
}

/// Params, as `run` and `repl` take them.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// A parameter, NAME=VALUE (repeatable)
    #[arg(long = "param", value_name = "K=V")]
    pub params: Vec<String>,
    /// Parameters from a JSON or YAML file (typed values)
    #[arg(long, value_name = "FILE")]
    pub params_file: Option<PathBuf>,
}

/// The hosts `inventory()` gives the playbook, as `run`, `list` and `repl` take them.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// An Ansible inventory (INI, or YAML by a .yml/.yaml name) whose hosts
    /// `inventory()` returns
    #[arg(short = 'i', long = "inventory", value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Only these hosts of the inventory: an Ansible host pattern
    /// (`web`, `web:db`, `web:&prod`, `web:!web03`, `web0*`, `~regex`)
    #[arg(long, value_name = "PATTERN", requires = "inventory")]
    pub limit: Option<String>,
}

/// Approvals and locks, as `run` and `repl` take them.
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Give every approval (`approve(...)`) without asking
    #[arg(long)]
    pub yes: bool,
    /// Give one approval by name (repeatable)
    #[arg(long = "approve", value_name = "NAME")]
    pub approvals: Vec<String>,
    /// Hold this exclusive lock while capstan runs; exit 3 if another run holds it
    #[arg(long = "lock", value_name = "NAME")]
    pub locks: Vec<String>,
    /// Wait this long in line for a held --lock instead of exiting 3 (e.g. 10m)
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration)]
    pub lock_wait: Option<std::time::Duration>,
    /// With a shared --state: how long a lock's lease lasts unless renewed
    /// (the run renews it every third of this)
    #[arg(long, value_name = "DUR", value_parser = humantime::parse_duration, default_value = "60s")]
    pub lock_ttl: std::time::Duration,
}
