"""Every copy-ready command names the namespace and deployments from [kubernetes]."""

from __future__ import annotations

import pytest

from services import kube, playbooks, queues
from tests.conftest import use_config

pytestmark = pytest.mark.unit


def commands_text() -> str:
    books = [playbooks.for_rule(rule, "msp-acme-corp") for rule in ("stalled", "latency")]
    parts = [queues.cli_commands(), *(a.advice for a in queues.bands())]
    parts += [f"{b.diagnosis} {b.fix}" for b in books if b]
    parts += [s.detail for s in playbooks.cheatsheet("msp-acme-corp", {}, "2026-11-30")]
    return "\n".join(parts)


def test_the_defaults_are_the_platforms_manifests():
    names = kube.names()
    assert (names.namespace, names.api, names.worker) == (
        "production",
        "ai-agents-api",
        "ai-agents-worker",
    )
    text = commands_text()
    assert "-n production" in text and "ai-agents-production" not in text


def test_names_follow_the_configuration(tmp_path, monkeypatch):
    use_config(tmp_path, monkeypatch, 'namespace = "production"', 'namespace = "support-ns"')
    text = commands_text()
    assert "-n support-ns" in text and "-n production" not in text
    use_config(
        tmp_path, monkeypatch, 'worker_deployment = "ai-agents-worker"', 'worker_deployment = "w2"'
    )
    assert "deployment/w2" in commands_text()
    assert kube.names().scale_workers(3) == "kubectl scale deployment/w2 -n production --replicas=3"
