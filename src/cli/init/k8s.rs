//! The Kubernetes manifests `capstan init` writes under `deploy/k8s/`: a
//! Deployment with the three probes, requests and limits and a locked-down
//! security context, a Service, a `HorizontalPodAutoscaler` and a
//! `NetworkPolicy` that opens only the service's port.
//!
//! The probes follow one decision: the startup probe holds the other two
//! off while the service starts (long for a JVM), the liveness probe checks
//! only the process itself (a dependency outage must not restart every
//! pod), and the readiness probe is where dependency checks belong (a pod
//! that cannot reach its database stops getting traffic, and stays alive).

use super::detect::{Project, Stack};
use super::dockerfile::UID;

/// The folder the manifests go to, relative to the repository's root.
pub const DIR: &str = "deploy/k8s";

/// (file name, text) of each manifest.
pub fn render(p: &Project) -> Vec<(String, String)> {
    let name = &p.name;
    let port = p.port;
    let health = p.health_path.as_deref().unwrap_or("/");
    let ready = p.ready_path.as_deref().unwrap_or(health);
    let jvm = matches!(p.stack, Some(Stack::Java { .. }));
    // A JVM may take minutes to start: 60 × 5 s, others 24 × 5 s.
    let startup_failures = if jvm { 60 } else { 24 };
    let (req_mem, lim_mem) = if jvm { ("512Mi", "1Gi") } else { ("128Mi", "256Mi") };
    let labels = format!("app.kubernetes.io/name: {name}");
    // Every object: its kind, the service's name and namespace, one label.
    let head = |api: &str, kind: &str| {
        format!("apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {name}\n  labels:\n    {labels}\n")
    };
    let deployment_head = head("apps/v1", "Deployment");
    let service_head = head("v1", "Service");
    let horizontalpodautoscaler_head = head("autoscaling/v2", "HorizontalPodAutoscaler");
    let networkpolicy_head = head("networking.k8s.io/v1", "NetworkPolicy");
    let deployment = format!(
        "# {name}: written by `capstan init`. The image is replaced at deploy time by the
# reference deploy.rhai pushed (kubectl set image), so every environment runs
# the same artifact.
{deployment_head}spec:
  replicas: 2
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  selector:
    matchLabels:
      {labels}
  template:
    metadata:
      labels:
        {labels}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: {UID}
        runAsGroup: {UID}
        fsGroup: {UID}
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: app
          image: registry.example.com/{name}:1.0.0
          imagePullPolicy: Always
          ports:
            - name: http
              containerPort: {port}
          env:
            - name: PORT
              value: \"{port}\"
          resources:
            requests:
              cpu: 100m
              memory: {req_mem}
            limits:
              cpu: 500m
              memory: {lim_mem}
          # Holds liveness and readiness off until the service has started.
          startupProbe:
            httpGet:
              path: {health}
              port: http
            periodSeconds: 5
            failureThreshold: {startup_failures}
          # The process only: no downstream checks, or an outage elsewhere restarts every pod.
          livenessProbe:
            httpGet:
              path: {health}
              port: http
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 3
          # Traffic only when the service can serve it: dependency checks belong here.
          readinessProbe:
            httpGet:
              path: {ready}
              port: http
            periodSeconds: 5
            timeoutSeconds: 2
            failureThreshold: 3
          securityContext:
            runAsNonRoot: true
            runAsUser: {UID}
            allowPrivilegeEscalation: false
            privileged: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [\"ALL\"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        # The root filesystem is read-only; /tmp is the one writable place.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
"
    );
    let service = format!(
        "{service_head}spec:
  type: ClusterIP
  selector:
    {labels}
  ports:
    - name: http
      port: 80
      targetPort: http
"
    );
    let hpa = format!(
        "{horizontalpodautoscaler_head}spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
"
    );
    // Only the service's port is open to other pods; egress is left alone.
    let policy = format!(
        "{networkpolicy_head}spec:
  podSelector:
    matchLabels:
      {labels}
  policyTypes: [\"Ingress\"]
  ingress:
    - ports:
        - port: http
"
    );
    vec![
        ("deployment.yaml".into(), deployment),
        ("service.yaml".into(), service),
        ("hpa.yaml".into(), hpa),
        ("networkpolicy.yaml".into(), policy),
    ]
}
