//! `terraform::`: init, validate, fmt, plan (with the saved plan read back
//! through `terraform show -json`), drift, apply, output, and a scaffold of
//! modules/ and environments/. Plans run under `--dry-run`; apply does not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, Map, Module};
use serde_json::Value;

use super::registration::module_func;
use super::tool::{self, ToolCall};
use super::values;
use crate::events::Level;
use crate::failure::{failure, failure_with_hint, FailureKind, RhaiResultOf};
use crate::playbook::parse_duration;
use crate::services::Action;
use crate::state::RunState;

/// Options every call takes, plus the few some calls add.
#[derive(Debug, Default, Clone)]
struct TfOptions {
    vars: Vec<(String, String)>,
    var_files: Vec<String>,
    targets: Vec<String>,
    lock_timeout: Option<String>,
    env: Vec<(String, String)>,
    plan_file: Option<String>,
    refresh_only: bool,
    write: bool,
    backend_config: Vec<(String, String)>,
}

const OPTIONS: &[&str] =
    &["vars", "var_files", "targets", "lock_timeout", "env", "plan_file", "refresh_only", "write", "backend_config"];

fn strings(v: &Dynamic, key: &str) -> Result<Vec<String>, String> {
    values::list(v, false).ok_or_else(|| format!("terraform option `{key}` must be an array"))
}

fn pairs(v: &Dynamic, key: &str) -> Result<Vec<(String, String)>, String> {
    values::pairs(v, scalar).ok_or_else(|| format!("terraform option `{key}` must be a map"))
}

/// A value as terraform's `-var` wants it: strings bare, the rest as JSON (HCL accepts it).
fn scalar(v: &Dynamic) -> String {
    if v.is_string() {
        v.to_string()
    } else {
        serde_json::to_string(v).unwrap_or_else(|_| v.to_string())
    }
}

impl TfOptions {
    fn from_map(map: &Map) -> Result<Self, String> {
        let mut o = Self::default();
        for (k, v) in map {
            match k.as_str() {
                "vars" => o.vars = pairs(v, k)?,
                "var_files" => o.var_files = strings(v, k)?,
                "targets" => o.targets = strings(v, k)?,
                "lock_timeout" => {
                    parse_duration(v).map_err(|e| format!("terraform option `lock_timeout`: {e}"))?;
                    o.lock_timeout = Some(v.to_string());
                }
                "env" => o.env = pairs(v, k)?,
                "plan_file" => o.plan_file = Some(v.to_string()),
                "refresh_only" => {
                    o.refresh_only =
                        v.as_bool().map_err(|_| "terraform option `refresh_only` must be true or false")?;
                }
                "write" => o.write = v.as_bool().map_err(|_| "terraform option `write` must be true or false")?,
                "backend_config" => o.backend_config = pairs(v, k)?,
                other => {
                    return Err(format!("unknown terraform option `{other}`; the options are: {}", OPTIONS.join(", ")))
                }
            }
        }
        Ok(o)
    }

    /// `-var`, `-var-file`, `-target`, `-lock-timeout` for plan and apply.
    fn plan_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for (k, v) in &self.vars {
            args.push(format!("-var={k}={v}"));
        }
        for f in &self.var_files {
            args.push(format!("-var-file={f}"));
        }
        for t in &self.targets {
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
    call.env.extend(o.env.iter().cloned());
    call.read_only = read_only;
    call
}

fn options(map: &Map) -> RhaiResultOf<TfOptions> {
    TfOptions::from_map(map).map_err(|m| failure(FailureKind::Usage, m))
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

fn run_tf(state: &RunState, call: &ToolCall) -> RhaiResultOf<Option<crate::process::Outcome>> {
    match tool::call(&state.services, call)? {
        Some(out) if out.success() => Ok(Some(out)),
        Some(out) => Err(tf_failed(call, &out)),
        None => Ok(None),
    }
}

fn dry(result: &mut Map, dry_run: bool) {
    result.insert("dry_run".into(), dry_run.into());
}

fn init(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let mut args = vec!["init".to_string(), "-input=false".into(), "-no-color".into()];
    for (k, v) in &o.backend_config {
        args.push(format!("-backend-config={k}={v}"));
    }
    // init only prepares the working folder (providers, modules, backend): it
    // runs in dry-run so a plan can follow.
    let out = run_tf(state, &terraform(dir, args, &o, true))?;
    let mut m = Map::new();
    m.insert("ok".into(), true.into());
    dry(&mut m, out.is_none());
    Ok(m)
}

fn validate(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let mut call = terraform(dir, vec!["validate".into(), "-json".into(), "-no-color".into()], &o, true);
    call.quiet = true;
    let Some(out) = tool::call(&state.services, &call)? else { return Ok(Map::new()) };
    let v: Value = serde_json::from_str(&out.stdout).map_err(|_| tf_failed(&call, &out))?;
    let d = rhai::serde::to_dynamic(&v)?;
    let m = d.try_cast::<Map>().unwrap_or_default();
    Ok(m)
}

fn fmt(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let mut args = vec!["fmt".to_string(), "-recursive".into(), "-list=true".into()];
    if !o.write {
        args.push("-check".into());
    }
    let call = terraform(dir, args, &o, !o.write);
    let Some(out) = tool::call(&state.services, &call)? else {
        // `write: true` under --dry-run: list the files it would format.
        let mut check =
            terraform(dir, vec!["fmt".into(), "-recursive".into(), "-list=true".into(), "-check".into()], &o, true);
        check.quiet = true;
        let out = tool::call(&state.services, &check)?;
        if let Some(out) = out.as_ref().filter(|o| !(o.success() || o.code == Some(3))) {
            return Err(tf_failed(&check, out));
        }
        let mut m = Map::new();
        m.insert("ok".into(), true.into());
        m.insert("files".into(), fmt_files(out.map(|o| o.stdout).as_deref().unwrap_or_default()).into());
        dry(&mut m, true);
        return Ok(m);
    };
    if !(out.success() || out.code == Some(3)) {
        return Err(tf_failed(&call, &out));
    }
    let files = fmt_files(&out.stdout);
    let mut m = Map::new();
    m.insert("ok".into(), (files.is_empty() || o.write).into());
    m.insert("files".into(), files.into());
    dry(&mut m, false);
    Ok(m)
}

/// The files `terraform fmt -list=true` names.
fn fmt_files(stdout: &str) -> Array {
    stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| Dynamic::from(l.trim().to_string())).collect()
}

/// Count a plan's resource changes as terraform's summary does.
fn summarize(show: &Value) -> Map {
    let mut add = 0_i64;
    let mut change = 0_i64;
    let mut destroy = 0_i64;
    let mut replace = 0_i64;
    let mut resources = Array::new();
    for rc in show["resource_changes"].as_array().into_iter().flatten() {
        let actions: Vec<&str> =
            rc["change"]["actions"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if actions.iter().all(|a| *a == "no-op" || *a == "read") {
            continue;
        }
        let creates = actions.contains(&"create");
        let deletes = actions.contains(&"delete");
        add += i64::from(creates);
        destroy += i64::from(deletes);
        change += i64::from(actions.contains(&"update"));
        replace += i64::from(creates && deletes);
        let mut r = Map::new();
        r.insert("address".into(), rc["address"].as_str().unwrap_or_default().into());
        r.insert("actions".into(), actions.iter().map(|a| Dynamic::from((*a).to_string())).collect::<Array>().into());
        resources.push(r.into());
    }
    let mut m = Map::new();
    m.insert("add".into(), add.into());
    m.insert("change".into(), change.into());
    m.insert("destroy".into(), destroy.into());
    m.insert("replace".into(), replace.into());
    m.insert("resources".into(), resources.into());
    m
}

fn plan(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let plan_file = o.plan_file.clone().unwrap_or_else(|| "capstan.tfplan".into());
    let mut args = vec!["plan".to_string(), "-input=false".into(), "-no-color".into(), "-detailed-exitcode".into()];
    if o.refresh_only {
        args.push("-refresh-only".into());
    }
    args.push(format!("-out={plan_file}"));
    args.extend(o.plan_args());
    let call = terraform(dir, args, &o, true);
    let Some(out) = tool::call(&state.services, &call)? else { return Ok(Map::new()) };
    let exit_code = out.code.unwrap_or(1);
    if exit_code != 0 && exit_code != 2 {
        return Err(tf_failed(&call, &out));
    }
    let mut show = terraform(dir, vec!["show".into(), "-json".into(), "-no-color".into(), plan_file.clone()], &o, true);
    show.quiet = true;
    let shown = run_tf(state, &show)?.map(|s| s.stdout).unwrap_or_default();
    let parsed: Value = serde_json::from_str(&shown)
        .map_err(|e| failure(FailureKind::Command, format!("cannot read `terraform show -json` of the plan: {e}")))?;
    let mut m = summarize(&parsed);
    m.insert("changed".into(), (exit_code == 2).into());
    m.insert("exit_code".into(), i64::from(exit_code).into());
    let path = Path::new(dir).join(&plan_file);
    m.insert("plan_file".into(), path.to_string_lossy().into_owned().into());
    dry(&mut m, false);
    state.services.log(
        Level::Info,
        format!(
            "terraform plan in {dir}: {} to add, {} to change, {} to destroy{}",
            m["add"],
            m["change"],
            m["destroy"],
            if exit_code == 2 { "" } else { " (no changes)" }
        ),
    );
    Ok(m)
}

fn drift(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut m = plan(state, dir, map)?;
    let drifted = m.get("changed").and_then(|v| v.as_bool().ok()).unwrap_or(false);
    m.insert("drift".into(), drifted.into());
    if drifted {
        state.services.log(Level::Warn, format!("terraform in {dir} has drifted from its configuration"));
    }
    Ok(m)
}

fn apply(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let mut args = vec!["apply".to_string(), "-input=false".into(), "-no-color".into(), "-auto-approve".into()];
    match &o.plan_file {
        // A saved plan already carries its variables and targets.
        Some(plan) => {
            if let Some(t) = &o.lock_timeout {
                args.push(format!("-lock-timeout={t}"));
            }
            args.push(Path::new(plan).file_name().map_or_else(|| plan.clone(), |f| f.to_string_lossy().into_owned()));
        }
        None => args.extend(o.plan_args()),
    }
    let out = run_tf(state, &terraform(dir, args, &o, false))?;
    let mut m = Map::new();
    m.insert("ok".into(), true.into());
    dry(&mut m, out.is_none());
    Ok(m)
}

fn output(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let o = options(map)?;
    let mut call = terraform(dir, vec!["output".into(), "-json".into(), "-no-color".into()], &o, true);
    call.quiet = true;
    let Some(out) = run_tf(state, &call)? else { return Ok(Map::new()) };
    let v: Value = serde_json::from_str(&out.stdout)
        .map_err(|e| failure(FailureKind::Command, format!("cannot read `terraform output -json`: {e}")))?;
    let mut m = Map::new();
    for (name, entry) in v.as_object().into_iter().flatten() {
        m.insert(name.as_str().into(), rhai::serde::to_dynamic(&entry["value"])?);
    }
    Ok(m)
}

/// The files of the layout: modules/NAME/{main,variables,outputs}.tf
/// and environments/ENV/{main.tf,backend.tf,terraform.tfvars}.
pub(crate) fn scaffold_files(provider: &str, envs: &[String], modules: &[String]) -> Vec<(String, String)> {
    let mut files = Vec::new();
    for m in modules {
        files.push((format!("modules/{m}/main.tf"), format!("# {m}: resources of this component.\n")));
        files.push((
            format!("modules/{m}/variables.tf"),
            "variable \"environment\" {\n  type = string\n}\n".to_string(),
        ));
        files.push((format!("modules/{m}/outputs.tf"), format!("# Outputs of {m}.\n")));
    }
    for env in envs {
        let mut main = String::new();
        if provider != "none" {
            let _ = writeln!(main, "provider \"{provider}\" {{}}\n");
        }
        for m in modules {
            let _ = writeln!(
                main,
                "module \"{m}\" {{\n  source      = \"../../modules/{m}\"\n  environment = var.environment\n}}\n"
            );
        }
        let _ = writeln!(main, "variable \"environment\" {{\n  type = string\n}}");
        files.push((format!("environments/{env}/main.tf"), main));
        let backend = match provider {
            "aws" => format!(
                "terraform {{\n  backend \"s3\" {{\n    bucket         = \"CHANGE-ME-terraform-state\"\n    key            = \"{env}/infrastructure.tfstate\"\n    region         = \"us-east-1\"\n    dynamodb_table = \"terraform-locks\"\n    encrypt        = true\n  }}\n}}\n"
            ),
            "google" => format!("terraform {{\n  backend \"gcs\" {{\n    bucket = \"CHANGE-ME-terraform-state\"\n    prefix = \"{env}\"\n  }}\n}}\n"),
            "azurerm" => format!(
                "terraform {{\n  backend \"azurerm\" {{\n    resource_group_name  = \"CHANGE-ME\"\n    storage_account_name = \"CHANGE-ME\"\n    container_name       = \"tfstate\"\n    key                  = \"{env}.tfstate\"\n  }}\n}}\n"
            ),
            _ => format!("terraform {{\n  backend \"local\" {{\n    path = \"../../state/{env}.tfstate\"\n  }}\n}}\n"),
        };
        files.push((format!("environments/{env}/backend.tf"), backend));
        files.push((format!("environments/{env}/terraform.tfvars"), format!("environment = \"{env}\"\n")));
    }
    files
}

fn scaffold(state: &RunState, dir: &str, map: &Map) -> RhaiResultOf<Map> {
    let mut provider = "aws".to_string();
    let mut envs = vec!["staging".to_string(), "production".to_string()];
    let mut modules = vec!["network".to_string()];
    for (k, v) in map {
        match k.as_str() {
            "provider" => provider = v.to_string(),
            "envs" => envs = strings(v, k).map_err(|m| failure(FailureKind::Usage, m))?,
            "modules" => modules = strings(v, k).map_err(|m| failure(FailureKind::Usage, m))?,
            other => {
                return Err(failure(
                    FailureKind::Usage,
                    format!("unknown scaffold option `{other}`; the options are: provider, envs, modules"),
                ))
            }
        }
    }
    let files = scaffold_files(&provider, &envs, &modules);
    let description = format!("scaffold {} terraform files under {dir}", files.len());
    let act = state.services.should_act(&Action { description: &description, read_only: false });
    let mut written = Array::new();
    for (rel, text) in files {
        let path = Path::new(dir).join(&rel);
        if act {
            if path.exists() {
                state.services.log(Level::Info, format!("kept existing {}", path.display()));
            } else {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| failure(FailureKind::Fail, format!("cannot create {}: {e}", parent.display())))?;
                }
                std::fs::write(&path, text)
                    .map_err(|e| failure(FailureKind::Fail, format!("cannot write {}: {e}", path.display())))?;
            }
        }
        written.push(path.to_string_lossy().into_owned().into());
    }
    let mut result = Map::new();
    result.insert("files".into(), written.into());
    result.insert("dry_run".into(), (!act).into());
    Ok(result)
}

type TfFn = fn(&RunState, &str, &Map) -> RhaiResultOf<Map>;

pub fn register(engine: &mut Engine, state: &Arc<RunState>) {
    let mut m = Module::new();
    let functions: [(&str, TfFn, &str); 7] = [
        ("init", init, "`terraform init` in `dir` (runs under --dry-run: it only prepares the folder).\nOption `backend_config` (map).\n```rhai\nterraform::init(\"infra/production\");\n```"),
        ("validate", validate, "`terraform validate -json`: `#{ valid, error_count, warning_count, diagnostics }`.\n```rhai\ngate(\"terraform valid\", terraform::validate(\"infra\").valid);\n```"),
        ("fmt", fmt, "`terraform fmt -check -recursive`: `#{ ok, files }` (files needing formatting);\n`write: true` formats them (not under --dry-run).\n```rhai\ngate(\"formatted\", terraform::fmt(\"infra\").ok);\n```"),
        ("plan", plan, "`terraform plan -detailed-exitcode` into a saved plan, read back with `show -json`:\n`#{ changed, add, change, destroy, replace, resources: [#{ address, actions }], plan_file, exit_code }`.\nOptions: `vars`, `var_files`, `targets`, `lock_timeout`, `env`, `plan_file`, `refresh_only`.\n```rhai\nlet p = terraform::plan(\"infra/production\", #{ vars: #{ image_tag: v } });\n```"),
        ("drift", drift, "A plan whose changes mean drift: the plan's map plus `drift`.\n```rhai\ngate(\"no drift\", !terraform::drift(\"infra/production\").drift);\n```"),
        ("apply", apply, "`terraform apply -auto-approve`, from `plan_file` when given (not under --dry-run).\n```rhai\nterraform::apply(\"infra\", #{ plan_file: p.plan_file });\n```"),
        ("output", output, "`terraform output -json` as a map of name to value.\n```rhai\nlet url = terraform::output(\"infra\").endpoint;\n```"),
    ];
    for (name, f, doc) in functions {
        let s = state.clone();
        module_func(&mut m, name, &["dir: &str", "Map"], doc, move |dir: &str| f(&s, dir, &Map::new()));
        let s = state.clone();
        module_func(&mut m, name, &["dir: &str", "options: Map", "Map"], doc, move |dir: &str, o: Map| f(&s, dir, &o));
    }
    let s = state.clone();
    module_func(
        &mut m,
        "scaffold",
        &["dir: &str", "options: Map", "Map"],
        "Write modules/NAME/{main,variables,outputs}.tf and environments/ENV/{main.tf,\nbackend.tf, terraform.tfvars}, one remote state per environment; existing files are\nkept. Options: `provider` (aws, google, azurerm get their remote backend; `none` writes no provider\nblock; any other name gets a provider block and a local backend),\n`envs`, `modules`. Returns `#{ files, dry_run }`.\n```rhai\nterraform::scaffold(\"infrastructure\", #{ provider: \"aws\", envs: [\"staging\", \"production\"], modules: [\"vpc\", \"eks\"] });\n```",
        move |dir: &str, o: Map| scaffold(&s, dir, &o),
    );
    engine.register_static_module("terraform", m.into());
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
        let m = summarize(&show);
        let n = |k: &str| m[k].as_int().unwrap();
        assert_eq!((n("add"), n("change"), n("destroy"), n("replace")), (2, 1, 2, 1));
        assert_eq!(m["resources"].clone().into_array().unwrap().len(), 4);
    }

    #[test]
    fn scaffold_has_a_backend_per_environment() {
        let files = scaffold_files("aws", &["staging".into(), "production".into()], &["vpc".into()]);
        let backend = files.iter().find(|(p, _)| p == "environments/production/backend.tf").unwrap();
        assert!(backend.1.contains("key            = \"production/infrastructure.tfstate\""));
        assert!(files.iter().any(|(p, _)| p == "modules/vpc/outputs.tf"));
    }
}
