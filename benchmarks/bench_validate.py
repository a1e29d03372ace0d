"""Median wall time of ``mlopsctl validate`` (whole process) beside ``kubernetes-validate``.

Two inputs: a repository generated with the default answers, and 500 Kubernetes manifests
(Deployments, Services, HorizontalPodAutoscalers, PodDisruptionBudgets, NetworkPolicies). Each
command runs as its own process, as in CI or pre-commit. ``kubernetes-validate --strict`` runs on
the same manifest files (for the generated repository: on its Kubernetes manifests). Targets:
under 1 s for each ``mlopsctl validate`` run. "validate" runs with the in-sync check's render
cache warm (as pre-commit runs it again and again); "no cache" renders the design every time (a
fresh CI machine). ``mlopsctl --help`` is printed as a reference for the machine's load. Then
the growth of ``mlopsctl validate`` with 50, 500 and 5,000 manifests (1x, 10x, 100x).

    python benchmarks/bench_validate.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _installed import compile_bytecode

BIN = Path(sys.executable).parent
KINDS = ("deployment", "service", "hpa", "pdb", "networkpolicy")


def manifest(i: int) -> str:
    name = f"model-{i:03d}"
    kind = KINDS[i % len(KINDS)]
    if kind == "deployment":
        return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 2
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: server
          image: ghcr.io/example/model:1.{i}.0
          ports:
            - {{name: http, containerPort: 8080}}
          env:
            - name: MODEL_URI
              value: s3://models/{name}/champion
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {{name: {name}, key: password}}
          resources:
            requests: {{cpu: 250m, memory: 256Mi}}
            limits: {{cpu: "1", memory: 1Gi}}
          readinessProbe:
            httpGet: {{path: /ready, port: http}}
          livenessProbe:
            httpGet: {{path: /health, port: http}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {{drop: [ALL]}}
"""
    if kind == "service":
        return f"""apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
    - {{name: http, port: 80, targetPort: http}}
"""
    if kind == "hpa":
        return f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
  minReplicas: 2
  maxReplicas: 10
  metrics:
    - type: Resource
      resource:
        name: cpu
        target: {{type: Utilization, averageUtilization: 70}}
"""
    if kind == "pdb":
        return f"""apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
spec:
  minAvailable: 1
  selector:
    matchLabels: {{app: {name}}}
"""
    return f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {name}
spec:
  podSelector:
    matchLabels: {{app: {name}}}
  policyTypes: [Ingress]
  ingress:
    - from:
        - namespaceSelector: {{matchLabels: {{name: ingress}}}}
      ports:
        - {{protocol: TCP, port: 8080}}
"""


def median_time(
    cmd: list[str],
    runs: int,
    ok_codes: tuple[int, ...] = (0, 1),
    env: dict[str, str] | None = None,
) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        times.append(time.perf_counter() - start)
        if proc.returncode not in ok_codes:
            raise SystemExit(
                f"{' '.join(cmd[:3])} failed ({proc.returncode}): {proc.stderr[-500:]}"
            )
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    compile_bytecode()
    mlopsctl = str(BIN / "mlopsctl")
    kv = shutil.which("kubernetes-validate", path=str(BIN)) or shutil.which("kubernetes-validate")
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        base = Path(tmp)
        generated = base / "generated"
        subprocess.run(
            [mlopsctl, "init", str(generated), "--defaults"], check=True, capture_output=True
        )
        manifests = base / "manifests"
        manifests.mkdir()
        for i in range(500):
            (manifests / f"m{i:03d}.yaml").write_text(manifest(i), encoding="utf-8")
        # one warm-up run so that every command starts from a warm page cache and .pyc files
        subprocess.run([mlopsctl, "validate", str(generated)], capture_output=True, check=False)
        t_help = median_time([mlopsctl, "--help"], args.runs, ok_codes=(0,))
        cold_env = {**os.environ, "MLOPSCTL_NO_CACHE": "1"}
        rows = []
        for label, root in (("generated repository", generated), ("500 manifests", manifests)):
            k8s_files = sorted(
                str(p)
                for p in root.rglob("*.yaml")
                if ".mlopsctl" not in p.parts and ("k8s" in p.parts or root == manifests)
            )
            t_ours = median_time([mlopsctl, "validate", str(root)], args.runs)
            t_cold = median_time([mlopsctl, "validate", str(root)], args.runs, env=cold_env)
            t_ours_k8s = median_time(
                [mlopsctl, "validate", str(root), "--select", "MLV101"], args.runs
            )
            t_kv = (
                median_time([kv, "--strict", "--quiet", *k8s_files], args.runs)
                if kv and k8s_files
                else float("nan")
            )
            n_files = sum(1 for p in root.rglob("*") if p.is_file())
            rows.append((label, n_files, len(k8s_files), t_ours, t_cold, t_ours_k8s, t_kv))
        growth = []
        for n in (50, 500, 5000):  # 1x, 10x, 100x the manifests
            many = base / f"grow{n}"
            many.mkdir()
            for i in range(n):
                (many / f"m{i:04d}.yaml").write_text(manifest(i), encoding="utf-8")
            growth.append(
                (n, median_time([mlopsctl, "validate", str(many)], max(1, args.runs // 2)))
            )
    print(f"median of {args.runs} runs, whole process each; load average {os.getloadavg()[0]:.1f}")
    print(f"reference: mlopsctl --help {t_help:.2f}s")
    print(
        f"{'input':<22}{'files':>6}{'k8s':>5}  {'validate':>9}  {'no cache':>9}"
        f"  {'MLV101 only':>12}  {'kubernetes-validate':>20}"
    )
    for label, n, k, ours, cold, ours_k8s, kv_t in rows:
        print(
            f"{label:<22}{n:>6}{k:>5}  {ours:>8.2f}s  {cold:>8.2f}s  {ours_k8s:>11.2f}s"
            f"  {kv_t:>19.2f}s"
        )
    print(f"\n{'manifests':>9}  {'validate':>9}  {'per manifest':>13}")
    for n, t in growth:
        print(f"{n:>9}  {t:>8.2f}s  {t / n * 1000:>10.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
