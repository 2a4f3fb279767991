"""The container image and the Kubernetes manifests. No container engine runs here, so the image
is linted (hadolint), its Dockerfile checked instruction by instruction, and its file set run the
way the image runs it: only what the Dockerfile copies, configured by environment only."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from services import users
from tests.conftest import (
    ROOT,
    app_secrets,
    free_port,
    identity_provider,
    sign_in,
    stop_process,
    wait_for_http,
    wait_rendered,
)

BIN = Path(sys.executable).parent
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted(p for p in DEPLOY.glob("*.yaml") if p.name != "kustomization.yaml")
NEVER_IN_THE_IMAGE = ("demo", "tests", "bench", "schema", "scripts", ".stack", ".venv")


@pytest.fixture(scope="module")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(str(ROOT / "Dockerfile"))


def instructions(dockerfile: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in dockerfile.structure if i["instruction"] == name]


def copied(dockerfile: DockerfileParser) -> list[str]:
    """Every source path a COPY instruction takes from the build context."""
    return [src for value in instructions(dockerfile, "COPY") for src in value.split()[:-1]]


@pytest.mark.unit
def test_hadolint_passes():
    done = subprocess.run(
        [str(BIN / "hadolint"), "--failure-threshold", "info", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.unit
def test_the_image_is_slim_non_root_healthchecked_and_holds_the_app_only(dockerfile):
    assert dockerfile.baseimage.startswith("python:3.11-slim")
    users_set = instructions(dockerfile, "USER")
    assert users_set and users_set[-1] not in ("0", "root")
    assert [i["instruction"] for i in dockerfile.structure][-1] == "CMD"
    [health] = instructions(dockerfile, "HEALTHCHECK")
    assert "/_stcore/health" in health
    assert instructions(dockerfile, "EXPOSE") == ["8501"]
    sources = copied(dockerfile)
    assert "app.py" in sources and "services" in sources and "views" in sources
    assert [s for s in sources if not (ROOT / s).exists()] == []  # a COPY of nothing fails
    assert not [s for s in sources if s.split("/")[0] in NEVER_IN_THE_IMAGE]
    # No configuration baked in beyond the server's own: URLs and secrets come at run time.
    assert not [key for key in dockerfile.envs if key.endswith("_URL") or "SECRET" in key]
    # The build context is what the Dockerfile copies, nothing else (no checkout state).
    lines = (line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines())
    ignore = [line for line in lines if line and not line.startswith("#")]
    assert ignore[0] == "*"
    allowed = {line[1:].removesuffix("/**") for line in ignore if line.startswith("!")}
    assert allowed == set(sources)


@pytest.fixture
def image_like(dockerfile, use_db, tmp_path) -> tuple[Path, dict[str, str], list[str]]:
    """The image's /app (exactly the COPY sources) and a fresh interpreter that sees the
    project's installed dependencies but not the checkout (so not the demo package either)."""
    app = tmp_path / "app"
    for value in instructions(dockerfile, "COPY"):
        *sources, target = value.split()
        for source in sources:
            if source == "pyproject.toml":  # only read while building, for the requirements
                continue
            destination = app / (target.rstrip("/") if target not in ("./", ".") else source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source, destination, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy(ROOT / source, destination)
    venv = tmp_path / "venv"
    subprocess.run([sys._base_executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
    # A plain path line: the checkout's editable-install hook in that folder is not run.
    (next(venv.glob("lib/python3*/site-packages")) / "deps.pth").write_text(f"{site}\n")
    python = str(venv / "bin" / "python")
    users_file = tmp_path / "users.toml"
    users.add(users_file, "ops@test.example", "admin")
    identity_provider().add_account("ops@test.example")
    port = free_port()
    # Where the image's Secret mounts the OIDC settings: .streamlit/secrets.toml beside app.py.
    (app / ".streamlit").mkdir(exist_ok=True)
    shutil.copy(app_secrets(f"http://127.0.0.1:{port}"), app / ".streamlit" / "secrets.toml")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        **dockerfile.envs,
        "STREAMLIT_SERVER_ADDRESS": "127.0.0.1",  # the image listens on all interfaces
        "STREAMLIT_SERVER_PORT": str(port),
        "DATABASE_URL": use_db.reader_url,
        "ADMIN_DATABASE_URL": use_db.admin_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "PROMETHEUS_URL": os.environ["PROMETHEUS_URL"],
        "DASHBOARD_USERS_FILE": str(users_file),
    }
    [cmd] = instructions(dockerfile, "CMD")
    command = [python if word == "python" else word for word in json.loads(cmd)]
    return app, env, command


@pytest.mark.browser
def test_the_image_file_set_runs_from_environment_only(image_like, dockerfile, browser):
    app, env, command = image_like
    python = command[0]
    not_there = subprocess.run([python, "-c", "import demo"], cwd=app, env=env, capture_output=True)
    assert not_there.returncode != 0  # the demo generator is not in the image
    process = subprocess.Popen(
        command, cwd=app, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        url = f"http://127.0.0.1:{env['STREAMLIT_SERVER_PORT']}"
        wait_for_http(f"{url}/_stcore/health", seconds=60)
        # The image's own health check command, on this port.
        [health] = instructions(dockerfile, "HEALTHCHECK")
        port = env["STREAMLIT_SERVER_PORT"]
        check = [
            python if word == "python" else word.replace("8501", port)
            for word in json.loads(health[health.index("[") :])
        ]
        assert subprocess.run(check, env=env, timeout=10).returncode == 0
        page = browser.new_page()
        page.goto(url)
        wait_rendered(page)
        sign_in(page, "ops@test.example")
        assert page.get_by_role("heading", name="Tenant health").count()
        assert "Traceback" not in page.inner_text("body")
        page.close()
    finally:
        stop_process(process)


# --- Kubernetes ----------------------------------------------------------------------------------


@functools.cache
def built() -> str:
    """What `kubectl apply -k deploy/` applies: the kustomization built by kubectl's own
    kustomize (the machine's kubectl; Debian's kubernetes-client 1.20 is too old for `labels`)."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (1.21 or newer, for its kustomize) is needed to build deploy/"
    done = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def documents() -> list[dict]:
    """The built manifests and the example Secrets (created from a vault, never applied from
    here, so not in the kustomization)."""
    secrets = (DEPLOY / "secrets.example.yaml").read_text()
    return [doc for text in (built(), secrets) for doc in yaml.safe_load_all(text) if doc]


def by_kind(kind: str) -> list[dict]:
    return [doc for doc in documents() if doc["kind"] == kind]


def pod_templates() -> list[dict]:
    """The pod template of the Deployment and of every CronJob."""
    [deployment] = by_kind("Deployment")
    jobs = [job["spec"]["jobTemplate"]["spec"]["template"] for job in by_kind("CronJob")]
    return [deployment["spec"]["template"], *jobs]


@pytest.mark.unit
def test_manifests_build_and_validate_against_the_kubernetes_schemas(tmp_path):
    output = tmp_path / "built.yaml"
    output.write_text(built())
    # Bundled schemas (offline), strict: an unknown or misspelt field fails too.
    done = subprocess.run(
        [
            str(BIN / "kubernetes-validate"), "--strict", "-k", "1.30.0",
            str(output), str(DEPLOY / "secrets.example.yaml"),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed" in done.stdout
    # The build holds every manifest file but the example Secrets, each labelled as part of
    # the platform by the kustomization.
    sources = [d for p in MANIFESTS if p.name != "secrets.example.yaml" for d in load_all(p)]
    applied = [doc for doc in yaml.safe_load_all(built()) if doc]
    assert sorted(kinds_and_names(applied)) == sorted(kinds_and_names(sources))
    assert {doc["metadata"]["labels"]["app.kubernetes.io/part-of"] for doc in applied} == {
        "ai-agents"
    }


def load_all(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kinds_and_names(docs: list[dict]) -> list[tuple[str, str]]:
    return [(doc["kind"], doc["metadata"]["name"]) for doc in docs]


@pytest.mark.unit
def test_two_replicas_with_probes_resources_and_secrets(dockerfile):
    [deployment] = by_kind("Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/_stcore/health"
    # The sizing in docs/deploy.md: a quarter core and 512 MiB requested per replica.
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert pod["securityContext"]["runAsNonRoot"]
    assert str(pod["securityContext"]["runAsUser"]) == instructions(dockerfile, "USER")[-1]
    secret_names = {s["metadata"]["name"] for s in by_kind("Secret")}
    used = {e["secretRef"]["name"] for e in container["envFrom"] if "secretRef" in e}
    used |= {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert used == secret_names
    [db_secret] = [s for s in by_kind("Secret") if s["metadata"]["name"] == "support-dashboard-db"]
    assert {"DATABASE_URL", "ADMIN_DATABASE_URL", "DASHBOARD_WRITE_URL", "ADMIN_WRITE_URL"} <= set(
        db_secret["stringData"]
    )
    [oidc] = [s for s in by_kind("Secret") if s["metadata"]["name"] == "support-dashboard-oidc"]
    assert "[auth]" in oidc["stringData"]["secrets.toml"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/app/.streamlit/secrets.toml" in mounts  # where Streamlit reads [auth] from /app


@pytest.mark.unit
def test_the_ingress_keeps_each_browser_on_its_replica():
    [ingress] = by_kind("Ingress")
    notes = ingress["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/affinity"] == "cookie"
    assert notes["nginx.ingress.kubernetes.io/session-cookie-change-on-failure"] == "true"
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # websocket
    [service] = by_kind("Service")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]


@pytest.mark.unit
def test_cronjobs_run_each_scheduled_command_once_at_a_time():
    jobs = by_kind("CronJob")
    commands = {
        " ".join(j["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["command"])
        for j in jobs
    }
    assert commands == {
        "python -m services.access_log purge --older-than-days 90",
        "python -m services.dbhealth snapshot",
        "python -m services.rls_check",
        "python -m services.health check",
        "python -m services.rollups refresh",
    }
    assert {j["spec"]["concurrencyPolicy"] for j in jobs} == {"Forbid"}


@pytest.mark.unit
def test_the_network_policy_allows_only_the_data_sources_the_idp_and_dns():
    [policy] = by_kind("NetworkPolicy")
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    # It covers the web pods and every scheduled job's pods.
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for template in pod_templates():
        assert selector.items() <= template["metadata"]["labels"].items()
    # Each destination by what it selects, with the ports it may reach there.
    allowed = set()
    for rule in policy["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without `to` allows anywhere"
        ports = frozenset(p["port"] for p in rule["ports"])
        for peer in rule["to"]:
            if "ipBlock" in peer:
                assert not peer["ipBlock"].get("except") and peer["ipBlock"]["cidr"] != "0.0.0.0/0"
                allowed.add(("ip block", ports))
            else:
                labels = peer["podSelector"]["matchLabels"]
                allowed.add((labels.get("app.kubernetes.io/name") or labels["k8s-app"], ports))
    assert allowed == {
        ("kube-dns", frozenset({53})),
        ("postgresql", frozenset({5432, 6432})),  # the primary, the read replica
        ("pgbouncer", frozenset({5432, 6432})),
        ("redis", frozenset({6379})),
        ("prometheus", frozenset({9090})),
        ("ip block", frozenset({443})),  # the identity provider, over HTTPS
    }
    # Only the ingress controller reaches the pods, on the app's port.
    [inbound] = policy["spec"]["ingress"]
    [source] = inbound["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert [p["port"] for p in inbound["ports"]] == [8501]
