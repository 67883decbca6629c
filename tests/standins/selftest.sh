#!/usr/bin/env bash
# Exercises the helm and kubectl stand-ins end to end, without the Rust side.
# Usage: tests/standins/selftest.sh     (exit status 0 = every check passed)
# Delegation checks run only when a real helm / kubectl is on PATH; otherwise they are
# reported as skipped.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
REAL_HELM=$(command -v helm || true)
REAL_KUBECTL=$(command -v kubectl || true)
case "$REAL_HELM" in "$HERE"/*) REAL_HELM= ;; esac
case "$REAL_KUBECTL" in "$HERE"/*) REAL_KUBECTL= ;; esac
export PATH="$HERE:$PATH" CAPSTAN_STANDIN_STATE="$T/state" KUBECONFIG="$T/kubeconfig"
export HELM_CACHE_HOME="$T/helm/cache" HELM_CONFIG_HOME="$T/helm/config" HELM_DATA_HOME="$T/helm/data"
unset CAPSTAN_STANDIN_CONTEXT CAPSTAN_STANDIN_FAIL_UPGRADE CAPSTAN_STANDIN_FAIL_ROLLBACK \
      CAPSTAN_STANDIN_FAIL_ROLLOUT CAPSTAN_STANDIN_SLEEP CAPSTAN_REAL_HELM CAPSTAN_REAL_KUBECTL
cd "$T"
PASS=0 FAIL=0

ok()   { PASS=$((PASS + 1)); }
bad()  { FAIL=$((FAIL + 1)); echo "FAIL: $*"; echo "  cmd: ${LAST[*]}"; echo "  rc=$RC"
         sed 's/^/  out: /' "$T/out" | head -20; sed 's/^/  err: /' "$T/err" | head -20; }
# run CMD... : run it, keep rc / stdout / stderr for the expect_* helpers
run()  { LAST=("$@"); "$@" >"$T/out" 2>"$T/err" </dev/null; RC=$?; }
runin() { local input=$1; shift; LAST=("$@"); "$@" >"$T/out" 2>"$T/err" <<<"$input"; RC=$?; }
rc()   { [ "$RC" = "$1" ] && ok || bad "expected exit $1"; }
out()  { grep -qF -- "$1" "$T/out" && ok || bad "stdout lacks: $1"; }
err()  { grep -qxF -- "$1" "$T/err" && ok || bad "stderr lacks the line: $1"; }
errhas() { grep -qF -- "$1" "$T/err" && ok || bad "stderr lacks: $1"; }
# js 'PYTHON EXPR' : evaluate with j = parsed stdout (JSON), f(path) = a parsed state file
js()   { python3 - "$1" "$T/out" "$CAPSTAN_STANDIN_STATE" <<'EOF' && ok || bad "json check: $1"
import json, os, sys
expr, out, state = sys.argv[1:]
def f(p): return json.load(open(os.path.join(state, p)))
try:
    j = json.load(open(out))
except ValueError:
    j = None
sys.exit(0 if eval(expr) else 1)
EOF
}

# ------------------------------------------------------------------ helm
mkdir -p chart
printf 'apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: "1.0.0"\n' > chart/Chart.yaml
printf 'replicaCount: 1\nimage:\n  tag: v0\n' > chart/values.yaml
printf 'image:\n  repository: nginx\n  tag: from-file\n' > vals.yaml

CAPSTAN_STANDIN_STATE= run helm history web;       rc 1; errhas "CAPSTAN_STANDIN_STATE is not set"
run helm upgrade --foo web ./chart;                 rc 1; err "Error: unknown flag: --foo"
run helm upgrade web ./chart -x;                    rc 1; err "Error: unknown shorthand flag: 'x' in -x"
run helm upgrade web;                               rc 1; err 'Error: "helm upgrade" requires 2 arguments'
run helm history;                                   rc 1; err 'Error: "helm history" requires 1 argument'
run helm upgrade web ./chart --timeout xx;          rc 1
err 'Error: invalid argument "xx" for "--timeout" flag: time: invalid duration "xx"'
run helm upgrade web ./chart -n prod;               rc 1; err 'Error: UPGRADE FAILED: "web" has no deployed releases'
run helm upgrade web ./nochart --install;           rc 1; err 'Error: path "./nochart" not found'
run helm upgrade web ./chart --install -n prod -f vals.yaml --set image.tag=v1,replicaCount=2 \
    --wait --timeout 5m0s
rc 0; out 'Release "web" does not exist. Installing it now.'; out "REVISION: 1"
js 'f("helm/prod/web/1.json")["info"]["status"] == "deployed"'
js 'f("helm/prod/web/1.json")["config"] == {"image": {"repository": "nginx", "tag": "v1"}, "replicaCount": 2}'
run helm upgrade web ./chart --namespace=prod --set image.tag=v2 -o json
rc 0; js 'j["version"] == 2 and j["info"]["description"] == "Upgrade complete"'
run helm history web -nprod -o json
rc 0; js '[r["status"] for r in j] == ["superseded", "deployed"]'
js 'set(j[0]) == {"revision", "updated", "status", "chart", "app_version", "description"}'
js 'j[1]["chart"] == "web-0.1.0" and j[1]["app_version"] == "1.0.0" and j[0]["description"] == "Install complete"'
run helm status web -n prod -o json
rc 0; js 'j["name"] == "web" and j["namespace"] == "prod" and j["version"] == 2'
js 'j["info"]["status"] == "deployed" and j["chart"]["metadata"]["version"] == "0.1.0" and j["config"]["image"]["tag"] == "v2"'
js '{"first_deployed", "last_deployed", "description"} <= set(j["info"]) and j["chart"]["metadata"]["appVersion"] == "1.0.0"'
run helm upgrade web ./chart -n prod --set failDeploy=true --wait
rc 1; err 'Error: UPGRADE FAILED: context deadline exceeded'
js 'f("helm/prod/web/3.json")["info"]["status"] == "failed" and f("helm/prod/web/2.json")["info"]["status"] == "deployed"'
js 'f("helm/prod/web/3.json")["info"]["description"] == "Upgrade \"web\" failed: context deadline exceeded"'
run helm upgrade web ./chart -n prod --set failDeploy=true,image.tag=v3 --atomic --timeout 30s
rc 1; errhas 'Error: UPGRADE FAILED: release web failed, and has been rolled back due to atomic being set'
js 'f("helm/prod/web/4.json")["info"]["status"] == "failed"'
js 'f("helm/prod/web/5.json")["info"]["status"] == "deployed" and f("helm/prod/web/5.json")["info"]["description"] == "Rollback to 2"'
js 'f("helm/prod/web/5.json")["config"]["image"]["tag"] == "v2" and f("helm/prod/web/2.json")["info"]["status"] == "superseded"'
CAPSTAN_STANDIN_FAIL_UPGRADE=1 run helm upgrade web ./chart -n prod --set image.tag=v4
rc 1; errhas 'Error: UPGRADE FAILED:'; js 'f("helm/prod/web/6.json")["info"]["status"] == "failed"'
run helm rollback web 1 -n prod --wait --timeout 1m
rc 0; out "Rollback was a success! Happy Helming!"
js 'f("helm/prod/web/7.json")["info"]["description"] == "Rollback to 1" and f("helm/prod/web/7.json")["config"]["image"]["tag"] == "v1"'
run helm rollback web 99 -n prod;                   rc 1; err "Error: release has no 99 version"
run helm rollback nope;                             rc 1; err "Error: release: not found"
run helm status nope;                               rc 1; err "Error: release: not found"
CAPSTAN_STANDIN_FAIL_ROLLBACK=1 run helm rollback web -n prod
rc 1; js 'f("helm/prod/web/8.json")["info"]["status"] == "failed"'
run helm history web -n prod --max 2
rc 0; out "REVISION"; out "Rollback to 1"
run helm upgrade api oci://127.0.0.1:15000/charts/api --version 1.2.3 --install \
    --set 'a.b.c=1,d=true,list={x,y},esc=a\,b,zero=007' --set-string e=5 -o json
rc 0; js 'j["chart"]["metadata"]["name"] == "api" and j["chart"]["metadata"]["version"] == "1.2.3"'
js 'j["config"] == {"a": {"b": {"c": 1}}, "d": True, "list": ["x", "y"], "esc": "a,b", "zero": "007", "e": "5"}'
run helm upgrade api oci://127.0.0.1:15000/charts/api --set a -o json
rc 1; err 'Error: failed parsing --set data: key "a" has no value'
run helm upgrade api oci://127.0.0.1:15000/charts/api --reuse-values --set 'arr[1].name=b' -o yaml
rc 0; out "version: 2"; out "- name: b"
run helm install api oci://127.0.0.1:15000/charts/api; rc 1; err "Error: INSTALLATION FAILED: cannot re-use a name that is still in use"
run helm install other ./chart -n prod --dry-run;   rc 0; out "STATUS: pending-install"
run helm ls -n prod -q;                             rc 0; out "web"
run helm list -o json;                              rc 0; js '[r["name"] for r in j] == ["api"] and j[0]["revision"] == "2"'
run helm list -A -o json;                           rc 0; js 'sorted(r["name"] for r in j) == ["api", "web"]'
run helm uninstall api;                             rc 0; out 'release "api" uninstalled'
run helm history api;                               rc 1; err "Error: release: not found"
run helm upgrade Bad_Name ./chart --install;        rc 1; errhas "invalid release name"
run helm frob;                                      rc 1; errhas 'Error: unknown command "frob" for "helm"'
run python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["argv"])' \
    "$CAPSTAN_STANDIN_STATE/calls.jsonl"
rc 0; out "['frob']"
js 'all({"tool", "argv", "cwd", "time"} <= set(json.loads(l)) for l in open(os.path.join(state, "calls.jsonl")))'

if [ -n "$REAL_HELM" ]; then
    run helm create mychart;                        rc 0
    run helm lint mychart;                          rc 0
    run helm template rel mychart --set image.tag=9.9.9; rc 0; out "kind: Deployment"; out ":9.9.9"
    run helm version;                               rc 0; out "Version:"
    CAPSTAN_REAL_HELM=/nonexistent run helm version; rc 1; errhas "CAPSTAN_REAL_HELM"
    mkdir -p pybin; ln -sf "$(python3 -c 'import sys; print(sys.executable)')" pybin/python3
    PATH="$HERE:$T/pybin" run helm template rel mychart; rc 1; errhas "no real helm was found"
else
    echo "skipped: helm delegation checks (no real helm on PATH)"
fi

# ------------------------------------------------------------------ kubectl
cat > deploy.yaml <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: app
          image: nginx:1.0
          ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
EOF
sed 's/nginx:1.0/nginx:2.0/' deploy.yaml > deploy2.yaml

CAPSTAN_STANDIN_STATE= run kubectl get pods;        rc 1; errhas "CAPSTAN_STANDIN_STATE is not set"
run kubectl get pods --foo;                         rc 1; err "error: unknown flag: --foo"; err "See 'kubectl get --help' for usage."
run kubectl rollout status deployment/web --timeout=xx; rc 1
err 'error: invalid argument "xx" for "--timeout" flag: time: invalid duration "xx"'
run kubectl get;                                    rc 1; errhas "Required resource not specified"
run kubectl apply;                                  rc 1; err "error: must specify one of -f and -k"
run kubectl apply -f nofile.yaml;                   rc 1; err 'error: the path "nofile.yaml" does not exist'
run kubectl apply -f deploy.yaml
rc 0; out "deployment.apps/web created"; out "service/web created"
js 'f("kube/standin/default/deployment/web.json")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"'
run kubectl apply -f deploy.yaml;                   rc 0; out "deployment.apps/web unchanged"; out "service/web unchanged"
run kubectl apply -f deploy2.yaml;                  rc 0; out "deployment.apps/web configured"; out "service/web unchanged"
run kubectl get deployment web -o json
rc 0; js 'j["kind"] == "Deployment" and j["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"'
js 'j["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2.0" and j["status"]["readyReplicas"] == 2'
run kubectl get deploy -o json;                     rc 0; js 'j["kind"] == "List" and j["apiVersion"] == "v1" and len(j["items"]) == 1'
run kubectl get pods -o json;                       rc 0; js 'j["kind"] == "List" and j["items"] == []'
run kubectl get svc/web -o name;                    rc 0; out "service/web"
run kubectl get deployments.apps nope -o json;      rc 1; err 'Error from server (NotFound): deployments.apps "nope" not found'
run kubectl get ing nope;                           rc 1; err 'Error from server (NotFound): ingresses.networking.k8s.io "nope" not found'
run kubectl get frobs;                              rc 1; err 'error: the server doesn'"'"'t have a resource type "frobs"'
run kubectl get deploy -l app=web -o yaml;          rc 0; out "name: web"
run kubectl get deploy;                             rc 0; out "READY"; out "2/2"
run kubectl rollout status deployment/web --timeout 10s; rc 0; out 'deployment "web" successfully rolled out'
run kubectl set image deployment/web app=nginx:broken;   rc 0; out "deployment.apps/web image updated"
start=$(date +%s.%N)
run kubectl rollout status deployment web --timeout=1s;  rc 1; err "error: timed out waiting for the condition"
python3 -c "import sys; d = $(date +%s.%N) - $start; sys.exit(0 if 0.9 <= d < 4 else 1)" && ok || bad "rollout status waited the wrong time"
run kubectl rollout undo deployment/web;            rc 0; out "deployment.apps/web rolled back"
run kubectl get deploy web -o json
js 'j["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2.0" and j["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"'
run kubectl rollout status deploy/web;              rc 0
run kubectl rollout undo deployment/web --to-revision=1; rc 0; out "rolled back"
run kubectl rollout undo deployment/web --to-revision=5; rc 0; out "skipped rollback (current template already matches revision 5)"
run kubectl rollout undo deployment/web --to-revision=42; rc 1; err "error: unable to find specified revision 42 in history"
run kubectl rollout history deployment/web;         rc 0; out "REVISION  CHANGE-CAUSE"
js 'True' ; grep -qE '^5 ' "$T/out" && ! grep -qE '^1 ' "$T/out" && ok || bad "rollout history revisions"
run kubectl set image deployment/web nope=x:1;      rc 1; err 'error: unable to find container named "nope"'
run kubectl patch deployment web -p '{"spec":{"replicas":3}}' --type merge
rc 0; out "deployment.apps/web patched"
run kubectl get deploy web -o json
js 'j["spec"]["replicas"] == 3 and j["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"'
run kubectl patch deploy/web -p '{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:3.0"}]}}}}'
rc 0; out "patched"
run kubectl get deploy web -o json
js 'j["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "nginx:3.0", "ports": [{"containerPort": 80}]}]'
js 'j["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "6"'
run kubectl patch deployment web --type=json -p '[{"op":"replace","path":"/spec/replicas","value":1},{"op":"add","path":"/metadata/labels/tier","value":"fe"}]'
rc 0; out "patched"
run kubectl patch deployment web --type json -p '[{"op":"replace","path":"/spec/replicas","value":1}]'
rc 0; out "deployment.apps/web patched (no change)"
run kubectl patch deployment web;                   rc 1; err "error: must specify --patch or --patch-file containing the contents of the patch"
run kubectl patch deployment web -p '{}' --type foo; rc 1; err 'error: --type must be one of [json merge strategic], not "foo"'
run kubectl annotate deployment web team=a note=x;  rc 0; out "deployment.apps/web annotated"
run kubectl annotate deployment/web team=b;         rc 1
err "error: --overwrite is false but found the following declared annotation(s): 'team' already has a value (a)"
run kubectl annotate deployment web team=b --overwrite note-; rc 0
run kubectl get deploy web -o json
js 'j["metadata"]["annotations"]["team"] == "b" and "note" not in j["metadata"]["annotations"] and j["metadata"]["labels"]["tier"] == "fe"'
run kubectl annotate deployment web;                rc 1; err "error: at least one annotation update is required"
run kubectl config current-context;                 rc 0; out "standin"
run kubectl config current-context --context kind-x; rc 0; out "kind-x"
CAPSTAN_STANDIN_CONTEXT=envctx run kubectl config current-context; rc 0; out "envctx"
run kubectl get deploy web --context other;         rc 1; errhas "NotFound"
runin "$(cat deploy.yaml)" kubectl apply -n staging -f -
rc 0; out "deployment.apps/web created"; js 'os.path.exists(os.path.join(state, "kube/standin/staging/deployment/web.json"))'
runin "" kubectl apply -f -;                       rc 1; err "error: no objects passed to apply"
mkdir -p manifests && cp deploy.yaml manifests/a.yaml
run kubectl --context=ctx2 -n qa apply -f manifests; rc 0; out "deployment.apps/web created"
run kubectl get deploy web -n qa --context ctx2 -o json; rc 0; js 'j["metadata"]["namespace"] == "qa"'
run kubectl apply -n staging -f deploy2.yaml --dry-run=client; rc 0; out "deployment.apps/web configured (dry run)"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\n' > cm.yaml
run kubectl apply -n staging -f cm.yaml;            rc 1; errhas 'does not match the namespace "staging"'
run kubectl get deploy web -n staging -o=json;      rc 0; js 'j["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.0"'
run python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readlines()[-1])["argv"])' \
    "$CAPSTAN_STANDIN_STATE/calls.jsonl"
rc 0; out "['get', 'deploy', 'web', '-n', 'staging', '-o=json']"

if [ -n "$REAL_KUBECTL" ]; then
    mkdir -p kust && cp deploy.yaml kust/deploy.yaml
    printf 'resources: [deploy.yaml]\nnameSuffix: -canary\nimages:\n- name: nginx\n  newTag: "9.9"\n' > kust/kustomization.yaml
    run kubectl kustomize kust;                     rc 0; out "name: web-canary"; out "nginx:9.9"
    run kubectl create deployment x --image=foo:1 --dry-run=client -o yaml; rc 0; out "kind: Deployment"
    run kubectl apply -k kust;                      rc 0; out "deployment.apps/web-canary created"
    CAPSTAN_REAL_KUBECTL=/nonexistent run kubectl kustomize kust; rc 1; errhas "CAPSTAN_REAL_KUBECTL"
    mkdir -p pybin; ln -sf "$(python3 -c 'import sys; print(sys.executable)')" pybin/python3
    PATH="$HERE:$T/pybin" run kubectl kustomize kust; rc 1; errhas "no real kubectl was found"
else
    echo "skipped: kubectl delegation checks (no real kubectl on PATH)"
fi
run kubectl create deployment y --image=foo:1;      rc 1; errhas "dry-run=client"

echo "selftest: $PASS checks passed, $FAIL failed"
[ "$FAIL" = 0 ]
