//! The `deploy.rhai` `capstan init` writes: the five phases, filled with
//! the stack's own commands (lint before tests before the release build, so
//! the cheap checks fail first) and deploy steps for what the repository
//! deploys with. The image is built once and the same pushed reference is
//! what every deploy step uses.

use std::fmt::Write as _;

use super::detect::{Command, Project};

/// A Rhai string literal (JSON's escapes are Rhai's).
fn lit(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn argv(c: &Command) -> String {
    format!("[{}]", c.argv.iter().map(|a| lit(a)).collect::<Vec<_>>().join(", "))
}

/// One `step` running a command in the repository's root.
fn command_step(out: &mut String, indent: &str, c: &Command, options: &str) {
    let _ = writeln!(out, "{indent}step({}, {options}|| run({}, #{{ cwd: here }}));", lit(&c.name), argv(c));
}

/// A group of commands as one step with a sub-step each (`lint/cargo fmt`).
fn group(out: &mut String, name: &str, commands: &[Command]) {
    if commands.is_empty() {
        return;
    }
    let _ = writeln!(out, "    step({}, || {{", lit(name));
    for c in commands {
        command_step(out, "        ", c, "");
    }
    out.push_str("    });\n");
}

/// Everything that `init` decided the playbook deploys, as the template needs it.
pub struct Targets<'a> {
    pub image: bool,
    pub terraform: &'a [String],
    pub charts: &'a [String],
    /// Manifest files or folders to apply; the second is the workload to wait for.
    pub manifests: &'a [(String, String)],
    /// The Deployment `init` wrote itself, whose container `app` gets the pushed image.
    pub own_deployment: bool,
}

fn header(out: &mut String, p: &Project, t: &Targets) {
    let _ = writeln!(out, "// deploy.rhai: build, test and deploy {}. Written by `capstan init` from", p.name);
    let _ = writeln!(out, "// what the repository holds: {}.", p.summary);
    out.push_str(
        "//
//   capstan check deploy.rhai                 compile and lint; nothing runs
//   capstan run deploy.rhai --dry-run         every command is shown; only plans and scans run
//   capstan run deploy.rhai --to plan         install, lint, test and build for real; deploy nothing
//   capstan run deploy.rhai --param version=1.4.2 --param env=production --approve production
//
// Fail fast: `plan` lints first, then runs the unit tests, then the release
// build. `do` builds one image, pushes it once, and deploys that pushed
// reference everywhere; production needs an approval.
// `capstan ci deploy.rhai --platform github` turns the phases into CI jobs.

import \"capstan/gates\" as gates;   // quality_gates.yaml: load and evaluate

// Params: `--param K=V` gives strings, `--params-file F` (YAML or JSON) typed values.
",
    );
    let _ = writeln!(out, "let service = param(\"service\", {});", lit(&p.name));
    out.push_str("let version = param(\"version\", \"dev\");\nlet env = param(\"env\", \"staging\");\n");
    if t.image {
        out.push_str("let registry = param(\"registry\", \"registry.example.com\");\n");
    }
    if !t.charts.is_empty() || !t.manifests.is_empty() {
        out.push_str("let namespace = param(\"namespace\", service);\n");
    }
    out.push_str("\nlet here = playbook_dir();   // the repository's root, where this playbook lives\n");
    out.push_str("let gates_list = gates::load(`${here}/quality_gates.yaml`);\n");
    if t.image {
        out.push_str("let image = `${registry}/${service}:${version}`;\n");
        out.push_str("// Set by the push in `do`: the one artifact every deploy step uses.\n");
        out.push_str("let artifact = image;\n");
    }
    if !t.terraform.is_empty() {
        out.push_str("// Set by `plan`, applied by `do`: one saved plan per Terraform folder.\nlet plans = #{};\n");
    }
    out.push('\n');
}

fn init_phase(out: &mut String, p: &Project) {
    out.push_str("phase(\"init\", || {\n");
    if !p.commands.tools.is_empty() {
        let tools: Vec<String> = p.commands.tools.iter().map(|t| lit(t)).collect();
        let _ = writeln!(
            out,
            "    // A dry run only shows the commands, so it needs no toolchain.\n    if !dry_run() {{ require_tools([{}]); }}",
            tools.join(", ")
        );
    }
    let _ = writeln!(out, "    info({});", lit(&p.summary));
    out.push_str("    info(`${service} ${version} to ${env}`);\n");
    if !p.commands.setup.is_empty() {
        out.push_str("    // Dependencies: every CI job prepares its own checkout again.\n");
        for c in &p.commands.setup {
            command_step(out, "    ", c, "#{ every_job: true }, ");
        }
    }
    out.push_str("});\n\n");
}

fn plan_phase(out: &mut String, p: &Project, t: &Targets) {
    let artifacts: Vec<String> = t.terraform.iter().map(|d| lit(&format!("{d}/capstan.tfplan"))).collect();
    if artifacts.is_empty() {
        out.push_str("phase(\"plan\", || {\n");
    } else {
        let _ = writeln!(out, "phase(\"plan\", #{{ artifacts: [{}] }}, || {{", artifacts.join(", "));
    }
    out.push_str("    // Cheapest first: a formatting slip fails in seconds, before the tests run.\n");
    group(out, "lint", &p.commands.lint);
    group(out, "test", &p.commands.test);
    group(out, "build", &p.commands.build);
    for chart in t.charts {
        let _ = writeln!(out, "    step(\"helm lint\", || helm::lint(`${{here}}/{chart}`));");
    }
    for dir in t.terraform {
        let d = format!("`${{here}}/{dir}`");
        let _ = writeln!(
            out,
            "    // init, validate and plan change nothing: they run under --dry-run too.
    step(\"terraform init\", || terraform::init({d}));
    step(\"terraform validate\", || {{
        let v = terraform::validate({d});
        gate(\"configuration is valid\", v.valid, `run \"terraform validate\" in {dir}`);
    }});
    plans[{key}] = step(\"terraform plan\", || terraform::plan({d}));
    info(`{dir}: ${{plans[{key}].add}} to add, ${{plans[{key}].change}} to change, ${{plans[{key}].destroy}} to destroy`);",
            key = lit(dir),
        );
    }
    let commands = [&p.commands.lint, &p.commands.test, &p.commands.build];
    if commands.iter().all(|c| c.is_empty()) && t.charts.is_empty() && t.terraform.is_empty() {
        out.push_str("    info(\"nothing to lint, test or build\");\n");
    }
    out.push_str("});\n\n");
}

fn do_phase(out: &mut String, t: &Targets) {
    out.push_str("phase(\"do\", || {\n");
    let mut tools = Vec::new();
    if t.image {
        tools.push("\"docker\"");
    }
    if !t.terraform.is_empty() {
        tools.push("\"terraform\"");
    }
    if !t.charts.is_empty() {
        tools.push("\"helm\"");
    }
    if !t.manifests.is_empty() {
        tools.push("\"kubectl\"");
    }
    let _ = writeln!(out, "    // A dry run only shows these commands, so it needs none of them here.");
    let _ = writeln!(out, "    if !dry_run() {{ require_tools([{}]); }}", tools.join(", "));
    if t.image {
        out.push_str(
            "    // Built once, pushed once: staging and production run the same bytes.
    // The last image pushed (`:latest`, which carries its layer cache inline)
    // is the layer cache of a fresh CI runner.
    let latest = `${registry}/${service}:latest`;
    step(\"docker build\", || docker::build(here, #{
        tags: [image, latest], cache_from: [latest],
        build_args: #{ VERSION: version, BUILDKIT_INLINE_CACHE: \"1\" },
    }));
    let pushed = step(\"docker push\", #{ retries: 2, retry_delay: \"5s\" }, || docker::push(image));
    step(\"docker push latest\", #{ retries: 2, retry_delay: \"5s\" }, || docker::push(latest));
    artifact = pushed.reference;
    info(`artifact ${artifact}`);
",
        );
    }
    out.push_str(
        "    // Gated promotion: production needs a person's yes (`--approve production` in CI).
    if env == \"production\" {
        approve(\"production\", `deploy ${service} ${version} to production?`);
    }
",
    );
    for dir in t.terraform {
        let key = lit(dir);
        let _ = writeln!(
            out,
            "    if {key} in plans && plans[{key}].changed {{
        approve(\"apply\", `{dir}: apply ${{plans[{key}].add}} to add, ${{plans[{key}].change}} to change, ${{plans[{key}].destroy}} to destroy`);
        // Applying the saved plan applies exactly what was reviewed.
        step(\"terraform apply\", || terraform::apply(`${{here}}/{dir}`, #{{ plan_file: plans[{key}].plan_file }}));
    }}"
        );
    }
    for chart in t.charts {
        let set = if t.image {
            "set: #{ image: #{ repository: `${registry}/${service}`, tag: version } }, "
        } else {
            "set: #{ image: #{ tag: version } }, "
        };
        let _ = writeln!(
            out,
            "    step(\"helm upgrade\", || helm::upgrade(service, `${{here}}/{chart}`, #{{ {set}namespace: namespace, wait: true, atomic: true, timeout: \"10m\" }}));"
        );
    }
    for (path, workload) in t.manifests {
        let _ = writeln!(
            out,
            "    step(\"kubectl apply\", #{{ undo: || kubectl::rollout_undo({w}, #{{ namespace: namespace }}) }},
        || kubectl::apply(`${{here}}/{path}`, #{{ namespace: namespace }}));",
            w = lit(workload)
        );
        if t.own_deployment && t.image {
            let _ = writeln!(
                out,
                "    step(\"kubectl set image\", || kubectl::set_image({w}, \"app\", artifact, #{{ namespace: namespace }}));",
                w = lit(workload)
            );
        }
        // rollout status only reads, so it would run under --dry-run and find nothing applied.
        let _ = writeln!(
            out,
            "    if dry_run() {{
        info(\"would wait for the rollout of {w}\");
    }} else {{
        step(\"rollout status\", || kubectl::rollout_status({l}, #{{ namespace: namespace, timeout: \"5m\" }}));
    }}",
            w = workload,
            l = lit(workload)
        );
    }
    out.push_str("});\n\n");
}

fn compliance_phase(out: &mut String, t: &Targets, dockerfile: bool) {
    out.push_str("phase(\"compliance\", || {\n    // The scanners only read: they run under --dry-run too.\n    let findings = [];\n");
    if dockerfile {
        out.push_str("    findings += compliance::dockerfile(`${here}/Dockerfile`);\n");
    }
    for (path, _) in t.manifests {
        let _ = writeln!(out, "    findings += compliance::k8s(`${{here}}/{path}`);");
    }
    for chart in t.charts {
        let _ =
            writeln!(out, "    findings += compliance::k8s_text(helm::template(service, `${{here}}/{chart}`, #{{}}));");
    }
    for dir in t.terraform {
        let _ = writeln!(out, "    findings += compliance::terraform(`${{here}}/{dir}`);");
    }
    out.push_str(
        "    for f in findings { warn(`${f.file}:${f.line}: ${f.rule} (${f.severity}): ${f.message}`); }
    let serious = findings.filter(|f| f.severity == \"high\" || f.severity == \"critical\");
    gate(\"no high findings\", serious.len() == 0, \"fix the findings above\");
    let secrets = compliance::secrets(here);
    for f in secrets { warn(`${f.file}:${f.line}: ${f.rule}`); }
    let measured = #{
        secret_findings: secrets.len(),
        critical_findings: findings.filter(|f| f.severity == \"critical\").len() + secrets.len(),
        high_findings: findings.filter(|f| f.severity == \"high\").len(),
        rollback_documented: if fs::exists(`${here}/docs/ROLLBACK.md`) { 1 } else { 0 },
    };
    let readiness = gates::evaluate(gates_list, measured, #{ phase: \"compliance\" });
    gate(\"compliance gates\", readiness.decision != \"not ready\", \"fix the findings above\");
});

phase(\"archive\", || report::write(`${here}/reports`));

on_failure(|err| warn(`${service} ${version} failed in ${err.phase}: ${err.message}; see docs/ROLLBACK.md`));
",
    );
}

/// The playbook's text.
pub fn render(p: &Project, t: &Targets, dockerfile: bool) -> String {
    let mut out = String::new();
    header(&mut out, p, t);
    init_phase(&mut out, p);
    plan_phase(&mut out, p, t);
    do_phase(&mut out, t);
    compliance_phase(&mut out, t, dockerfile);
    out
}
