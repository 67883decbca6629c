//! `terraform::`: init, validate, fmt, plan (with the saved plan read back
//! through `terraform show -json`), drift, apply, output, and a scaffold of
//! modules/ and environments/ (the layout is in `templates`). Plans run
//! under `--dry-run`; apply does not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Dynamic, ImmutableString as Str, Map};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::options::{List, Text};
use super::registration::{docs, Api};
use super::tool::{self, ToolCall};
use super::values::to_map;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::services::{Action, Services};

/// Options every call takes, plus the few some calls add.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TfOptions {
    vars: BTreeMap<String, TfValue>,
    var_files: List,
    targets: List,
    #[serde(deserialize_with = "lock_timeout")]
    lock_timeout: Option<String>,
    env: BTreeMap<String, TfValue>,
    plan_file: Option<Text>,
    refresh_only: bool,
    write: bool,
    backend_config: BTreeMap<String, TfValue>,
}

/// A value as terraform's `-var` wants it: strings bare, the rest as JSON (HCL accepts it).
#[derive(Debug, Clone, Default)]
struct TfValue(String);

impl<'de> Deserialize<'de> for TfValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = Dynamic::deserialize(deserializer)?;
        Ok(TfValue(if v.is_string() {
            v.to_string()
        } else {
            serde_json::to_string(&v).unwrap_or_else(|_| v.to_string())
        }))
    }
}

/// A lock timeout is a duration, passed on as written.
fn lock_timeout<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let v = Dynamic::deserialize(deserializer)?;
    parse_duration(&v).map_err(serde::de::Error::custom)?;
    Ok(Some(v.to_string()))
}

impl TfOptions {
    /// `-var`, `-var-file`, `-target`, `-lock-timeout` for plan and apply.
    fn plan_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (k, v) in &self.vars {
            args.push(format!("-var={k}={}", v.0));
        }
        for f in &self.var_files.0 {
            args.push(format!("-var-file={f}"));
        }
        for t in &self.targets.0 {
            args.push(format!("-target={t}"));
        }
        if let Some(t) = &self.lock_timeout {
            args.push(format!("-lock-timeout={t}"));
        }
        args
    }
}

fn terraform(dir: &str, args: Vec<String>, o: &TfOptions, read_only: bool) -> ToolCall {
    let mut call = ToolCall::new("terraform", args);
    call.cwd = Some(PathBuf::from(dir));
    call.env = vec![("TF_IN_AUTOMATION".into(), "1".into()), ("TF_INPUT".into(), "0".into())];
    call.env.extend(o.env.iter().map(|(k, v)| (k.clone(), v.0.clone())));
    call.read_only = read_only;
    call
}

/// Turn terraform's stderr into a clear error; a held state lock names its holder.
fn tf_failed(call: &ToolCall, out: &crate::process::Outcome) -> Box<rhai::EvalAltResult> {
    let text = format!("{}\n{}", out.stderr, out.stdout);
    if text.contains("Error acquiring the state lock") {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "?".into())
        };
        return failure_with_hint(
            FailureKind::Command,
            format!(
                "terraform state is locked by {} ({}, since {}, lock ID {})",
                field("Who:"),
                field("Operation:"),
                field("Created:"),
                field("ID:")
            ),
            "wait for that run to finish, pass `lock_timeout: \"5m\"` to wait for it, or `terraform force-unlock ID` if it died",
        );
    }
    tool::failed(call, out, Some("terraform's diagnostics are above; the step log has its full output".into()))
}

fn run_tf(services: &Services, call: &ToolCall) -> RhaiResultOf<Option<crate::process::Outcome>> {
    match tool::call(services, call)? {
        Some(out) if out.success() => Ok(Some(out)),
        Some(out) => Err(tf_failed(call, &out)),
        None => Ok(None),
    }
}

/// What `init` and `apply` return.
#[derive(Serialize)]
struct Done {
    ok: bool,
    dry_run: bool,
}

fn init(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["init".to_string(), "-input=false".into(), "-no-color".into()];
    for (k, v) in &o.backend_config {
        args.push(format!("-backend-config={k}={}", v.0));
    }
    // init only prepares the working folder (providers, modules, backend): it
    // runs in dry-run so a plan can follow, and again in every CI job, whose
    // fresh checkout has no `.terraform/`.
    crate::services::frame::mark_prepares();
    let out = run_tf(services, &terraform(dir, args, o, true))?;
    to_map(&Done { ok: true, dry_run: out.is_none() })
}

fn validate(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    let mut call = terraform(dir, vec!["validate".into(), "-json".into(), "-no-color".into()], o, true);
    call.quiet = true;
    let Some(out) = tool::call(services, &call)? else { return Ok(Map::new()) };
    let v: Value = serde_json::from_str(&out.stdout).map_err(|_| tf_failed(&call, &out))?;
    Ok(rhai::serde::to_dynamic(&v)?.try_cast::<Map>().unwrap_or_default())
}

/// What `fmt` returns: the files needing formatting (or formatted).
#[derive(Serialize)]
struct Formatted {
    ok: bool,
    files: Vec<String>,
    dry_run: bool,
}

fn fmt(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["fmt".to_string(), "-recursive".into(), "-list=true".into()];
    if !o.write {
        args.push("-check".into());
    }
    let call = terraform(dir, args, o, !o.write);
    let Some(out) = tool::call(services, &call)? else {
        // `write: true` under --dry-run: list the files it would format.
        let mut check =
            terraform(dir, vec!["fmt".into(), "-recursive".into(), "-list=true".into(), "-check".into()], o, true);
        check.quiet = true;
        let out = tool::call(services, &check)?;
        if let Some(out) = out.as_ref().filter(|o| !(o.success() || o.code == Some(3))) {
            return Err(tf_failed(&check, out));
        }
        let files = fmt_files(out.map(|o| o.stdout).as_deref().unwrap_or_default());
        return to_map(&Formatted { ok: true, files, dry_run: true });
    };
    if !(out.success() || out.code == Some(3)) {
        return Err(tf_failed(&call, &out));
    }
    let files = fmt_files(&out.stdout);
    to_map(&Formatted { ok: files.is_empty() || o.write, files, dry_run: false })
}

/// The files `terraform fmt -list=true` names.
fn fmt_files(stdout: &str) -> Vec<String> {
    stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()).collect()
}

/// One resource a plan changes.
#[derive(Serialize, Debug)]
struct Resource {
    address: String,
    actions: Vec<String>,
}

/// A plan's counts, as terraform's summary gives them.
#[derive(Serialize, Debug, Default)]
struct Summary {
    add: i64,
    change: i64,
    destroy: i64,
    replace: i64,
    resources: Vec<Resource>,
}

/// What `plan` returns (and `drift`, with `drift` set).
#[derive(Serialize)]
struct SavedPlan {
    #[serde(flatten)]
    summary: Summary,
    changed: bool,
    exit_code: i64,
    plan_file: String,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    drift: Option<bool>,
}

/// Count a plan's resource changes as terraform's summary does.
fn summarize(show: &Value) -> Summary {
    let mut summary = Summary::default();
    for rc in show["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<&str> =
            rc["change"]["actions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if actions.iter().all(|a| *a == "no-op" || *a == "read") {
            continue;
        }
        let creates = actions.contains(&"create");
        let deletes = actions.contains(&"delete");
        summary.add += i64::from(creates);
        summary.destroy += i64::from(deletes);
        summary.change += i64::from(actions.contains(&"update"));
        summary.replace += i64::from(creates && deletes);
        summary.resources.push(Resource {
            address: rc["address"].as_str().unwrap_or_default().to_string(),
            actions: actions.iter().map(ToString::to_string).collect(),
        });
    }
    summary
}

/// The plan; `None` under --dry-run, which runs no plan.
fn plan(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Option<SavedPlan>> {
    let plan_file = o.plan_file.as_ref().map_or_else(|| "capstan.tfplan".into(), |p| p.0.clone());
    let mut args = vec!["plan".to_string(), "-input=false".into(), "-no-color".into(), "-detailed-exitcode".into()];
    if o.refresh_only {
        args.push("-refresh-only".into());
    }
    args.push(format!("-out={plan_file}"));
    args.extend(o.plan_args());
    let call = terraform(dir, args, o, true);
    let Some(out) = tool::call(services, &call)? else { return Ok(None) };
    let exit_code = out.code.unwrap_or(1);
    if exit_code != 0 && exit_code != 2 {
        return Err(tf_failed(&call, &out));
    }
    let mut show = terraform(dir, vec!["show".into(), "-json".into(), "-no-color".into(), plan_file.clone()], o, true);
    show.quiet = true;
    let shown = run_tf(services, &show)?.map(|s| s.stdout).unwrap_or_default();
    let parsed: Value = serde_json::from_str(&shown)
        .map_err(|e| failure(FailureKind::Command, format!("cannot read `terraform show -json` of the plan: {e}")))?;
    let summary = summarize(&parsed);
    services.log(
        Level::Info,
        format!(
            "terraform plan in {dir}: {} to add, {} to change, {} to destroy{}",
            summary.add,
            summary.change,
            summary.destroy,
            if exit_code == 2 { "" } else { " (no changes)" }
        ),
    );
    Ok(Some(SavedPlan {
        summary,
        changed: exit_code == 2,
        exit_code: i64::from(exit_code),
        plan_file: Path::new(dir).join(&plan_file).to_string_lossy().into_owned(),
        dry_run: false,
        drift: None,
    }))
}

fn drift(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    let Some(mut plan) = plan(services, dir, o)? else {
        return Ok(Map::from([("drift".into(), false.into())]));
    };
    plan.drift = Some(plan.changed);
    if plan.changed {
        services.log(Level::Warn, format!("terraform in {dir} has drifted from its configuration"));
    }
    to_map(&plan)
}

fn apply(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    let mut args = vec!["apply".to_string(), "-input=false".into(), "-no-color".into(), "-auto-approve".into()];
    match &o.plan_file {
        // A saved plan already carries its variables and targets.
        Some(Text(plan)) => {
            if let Some(t) = &o.lock_timeout {
                args.push(format!("-lock-timeout={t}"));
            }
            args.push(Path::new(plan).file_name().map_or_else(|| plan.clone(), |f| f.to_string_lossy().into_owned()));
        }
        None => args.extend(o.plan_args()),
    }
    let out = run_tf(services, &terraform(dir, args, o, false))?;
    to_map(&Done { ok: true, dry_run: out.is_none() })
}

fn output(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    let mut call = terraform(dir, vec!["output".into(), "-json".into(), "-no-color".into()], o, true);
    call.quiet = true;
    let Some(out) = run_tf(services, &call)? else { return Ok(Map::new()) };
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| failure(FailureKind::Command, format!("cannot read `terraform output -json`: {e}")))?;
    let values: BTreeMap<&String, &Value> =
        v.as_object().into_iter().flatten().map(|(name, entry)| (name, &entry["value"])).collect();
    to_map(&values)
}

#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ScaffoldOptions {
    provider: Text,
    envs: List,
    modules: List,
}

impl Default for ScaffoldOptions {
    fn default() -> Self {
        Self {
            provider: Text("aws".into()),
            envs: List(vec!["staging".into(), "production".into()]),
            modules: List(vec!["network".into()]),
        }
    }
}

#[derive(Serialize)]
struct Scaffolded {
    files: Vec<String>,
    dry_run: bool,
}

fn scaffold(services: &Services, dir: &str, o: &ScaffoldOptions) -> RhaiResultOf<Map> {
    let files = crate::templates::terraform::files(&o.provider.0, &o.envs.0, &o.modules.0);
    let description = format!("scaffold {} terraform files under {dir}", files.len());
    let act = services.should_act(&Action { description: &description, read_only: false });
    let mut written = Vec::new();
    for (rel, text) in files {
        let path = Path::new(dir).join(&rel);
        if act {
            if path.exists() {
                services.log(Level::Info, format!("kept existing {}", path.display()));
            } else {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| failure(FailureKind::Fail, format!("cannot create {}: {e}", parent.display())))?;
                }
                std::fs::write(&path, text)
                    .map_err(|e| failure(FailureKind::Fail, format!("cannot write {}: {e}", path.display())))?;
            }
        }
        written.push(path.to_string_lossy().into_owned());
    }
    to_map(&Scaffolded { files: written, dry_run: !act })
}

/// `terraform::plan`: the plan as a map, empty under --dry-run.
fn planned(services: &Services, dir: &str, o: &TfOptions) -> RhaiResultOf<Map> {
    plan(services, dir, o)?.map_or_else(|| Ok(Map::new()), |p| to_map(&p))
}

/// A `terraform::` command: the folder it runs in and the options every command takes.
type Command = fn(&Services, &str, &TfOptions) -> RhaiResultOf<Map>;

/// The commands, by name, with their docs: they all take `(dir, #{...})`.
const COMMANDS: [(&str, Command, &str); 7] = [
    (
        "init",
        init,
        docs! {
            /// `terraform init` in `dir` (runs under --dry-run: it only prepares the folder).
            /// Option `backend_config` (map).
            /// ```rhai
            /// terraform::init("infra/production");
            /// ```
        },
    ),
    (
        "validate",
        validate,
        docs! {
            /// `terraform validate -json`: `#{ valid, error_count, warning_count, diagnostics }`.
            /// ```rhai
            /// gate("terraform valid", terraform::validate("infra").valid);
            /// ```
        },
    ),
    (
        "fmt",
        fmt,
        docs! {
            /// `terraform fmt -check -recursive`: `#{ ok, files }` (files needing formatting);
            /// `write: true` formats them (not under --dry-run).
            /// ```rhai
            /// gate("formatted", terraform::fmt("infra").ok);
            /// ```
        },
    ),
    (
        "plan",
        planned,
        docs! {
            /// `terraform plan -detailed-exitcode` into a saved plan, read back with `show -json`:
            /// `#{ changed, add, change, destroy, replace, resources: [#{ address, actions }], plan_file, exit_code }`.
            /// Options: `vars`, `var_files`, `targets`, `lock_timeout`, `env`, `plan_file`, `refresh_only`.
            /// ```rhai
            /// let p = terraform::plan("infra/production", #{ vars: #{ image_tag: v } });
            /// ```
        },
    ),
    (
        "drift",
        drift,
        docs! {
            /// A plan whose changes mean drift: the plan's map plus `drift`.
            /// ```rhai
            /// gate("no drift", !terraform::drift("infra/production").drift);
            /// ```
        },
    ),
    (
        "apply",
        apply,
        docs! {
            /// `terraform apply -auto-approve`, from `plan_file` when given (not under --dry-run).
            /// ```rhai
            /// terraform::apply("infra", #{ plan_file: p.plan_file });
            /// ```
        },
    ),
    (
        "output",
        output,
        docs! {
            /// `terraform output -json` as a map of name to value.
            /// ```rhai
            /// let url = terraform::output("infra").endpoint;
            /// ```
        },
    ),
];

pub fn register(api: &mut Api<'_, Arc<Services>>) {
    for (name, command, doc) in COMMANDS {
        api.opts1(name, &["dir: &str", "Map"], doc, move |svc, dir: Str, o: TfOptions| command(svc, &dir, &o));
    }
    api.opts_only1(
        "scaffold",
        &["dir: &str", "Map"],
        docs! {
            /// Write modules/NAME/{main,variables,outputs}.tf and environments/ENV/{main.tf,
            /// backend.tf, terraform.tfvars}, one remote state per environment; existing files are
            /// kept. Options: `provider` (aws, google, azurerm get their remote backend; `none` writes no provider
            /// block; any other name gets a provider block and a local backend),
            /// `envs`, `modules`. Returns `#{ files, dry_run }`.
            /// ```rhai
            /// terraform::scaffold("infrastructure", #{ provider: "aws", envs: ["staging", "production"], modules: ["vpc", "eks"] });
            /// ```
        },
        |svc, dir: Str, o: ScaffoldOptions| scaffold(svc, &dir, &o),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_summary_counts_like_terraform() {
        let show = serde_json::json!({ "resource_changes": [
            { "address": "a", "change": { "actions": ["create"] } },
            { "address": "b", "change": { "actions": ["delete", "create"] } },
            { "address": "c", "change": { "actions": ["update"] } },
            { "address": "d", "change": { "actions": ["no-op"] } },
            { "address": "e", "change": { "actions": ["delete"] } },
        ]});
        let s = summarize(&show);
        assert_eq!((s.add, s.change, s.destroy, s.replace), (2, 1, 2, 1));
        assert_eq!(s.resources.len(), 4);
    }
}
