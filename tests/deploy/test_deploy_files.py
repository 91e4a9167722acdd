"""deploy/: the Compose file and Kubernetes manifests parse, and their commands, ports and options
match the suite's (every --option exists in the suite's or the emulator's parser, hosts and ports
line up across services). No container engine is needed.

YAML: PyYAML is not a dependency of the suite. The tests use it when the venv has it, else the
system python3's (Debian python3-yaml); without either they are skipped and say so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.slo import parse_slo
from metrics.budget import budget_error

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SUITE_LOCUSTFILE = REPO / "locustfile.py"
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def load_yaml_documents(path: Path) -> list[Any]:
    try:
        import yaml

        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    except ImportError:
        pass
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if not python or not Path(python).exists():
            continue
        script = "import json,sys,yaml; print(json.dumps([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]))"
        proc = subprocess.run([python, "-c", script, str(path)], capture_output=True, text=True, timeout=30)
        if proc.returncode == 0:
            return json.loads(proc.stdout)
    pytest.skip("no YAML parser: neither the venv nor the system python3 has PyYAML")


def resolve(value: Any) -> str:
    """Compose's ${VAR:-default} with nothing set: the default."""
    return VARIABLE.sub(lambda m: m.group(2) or "", str(value))


def options_in(command: list[Any]) -> dict[str, str | None]:
    """--option -> the value after it (None for a flag)."""
    words = [resolve(word) for word in command]
    found: dict[str, str | None] = {}
    for index, word in enumerate(words):
        if OPTION.fullmatch(word.split("=")[0]):
            name, _, inline = word.partition("=")
            following = words[index + 1] if index + 1 < len(words) else None
            found[name] = inline or (None if following is None or following.startswith("--") else following)
    return found


@pytest.fixture(scope="module")
def suite_options() -> set[str]:
    """Every --option of the suite's Locust parser, with the locustfile's own options registered."""
    script = (
        "import importlib.util, json, sys\n"
        "from locust import argument_parser\n"
        "spec = importlib.util.spec_from_file_location('lf', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted(argument_parser.get_parser()._option_string_actions)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(SUITE_LOCUSTFILE)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    options = {o for o in json.loads(proc.stdout.strip().splitlines()[-1]) if o.startswith("--")}
    assert {"--max-cost", "--slo", "--model", "--master-host"} <= options
    return options


@pytest.fixture(scope="module")
def emulator_options() -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "emulator", "--help"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    return set(OPTION.findall(proc.stdout))


def check_locust_command(command: list[Any], suite_options: set[str]) -> dict[str, str | None]:
    assert resolve(command[0]) == "locust"
    options = options_in(command)
    unknown = set(options) - suite_options
    assert not unknown, f"options the suite does not have: {sorted(unknown)}"
    return options


def check_emulator_command(command: list[Any], emulator_options: set[str]) -> dict[str, str | None]:
    assert [resolve(w) for w in command[:3]] == ["python", "-m", "emulator"]
    options = options_in(command)
    assert not set(options) - emulator_options, sorted(set(options) - emulator_options)
    assert options["--host"] == "0.0.0.0"
    return options


def check_master(master: dict[str, str | None]) -> None:
    assert "--master" in master
    # The budget rule the suite enforces at start-up: this host is not loopback, so a budget is set.
    assert budget_error(master["--host"], master["--max-cost"]) is None
    assert parse_slo(master.get("--slo") or "")


def test_compose_services_line_up(suite_options: set[str], emulator_options: set[str]) -> None:
    (compose,) = load_yaml_documents(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"emulator", "master", "worker"}

    emulator = check_emulator_command(services["emulator"]["command"], emulator_options)
    port = int(emulator["--port"])
    assert port == 8000
    assert f"127.0.0.1:{port}/healthz" in " ".join(services["emulator"]["healthcheck"]["test"])

    master = check_locust_command(services["master"]["command"], suite_options)
    check_master(master)
    url = urlsplit(master["--host"])
    assert (url.hostname, url.port) == ("emulator", port)
    assert master["--expect-workers"] == resolve(services["worker"]["deploy"]["replicas"])
    assert all(resolve(p).startswith("127.0.0.1:") for p in services["master"].get("ports", []))

    worker = check_locust_command(services["worker"]["command"], suite_options)
    assert "--worker" in worker
    assert worker["--master-host"] == "master"
    assert worker["--master-port"] == master["--master-bind-port"]
    assert worker["--host"] == master["--host"]
    assert services["worker"]["volumes"] == services["master"]["volumes"], "one results folder for all"
    assert "GEMINI_API_KEY" in services["worker"]["environment"]


def test_kubernetes_manifests_line_up(suite_options: set[str], emulator_options: set[str]) -> None:
    docs = [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load_yaml_documents(path)]
    by_kind_name = {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "gemini-locust"

    pods = {
        name: doc["spec"]["template"]
        for (kind, name), doc in by_kind_name.items()
        if kind in ("Deployment", "Job")
    }
    services = {name: doc for (kind, name), doc in by_kind_name.items() if kind == "Service"}
    for name, service in services.items():
        selector = service["spec"]["selector"]
        matching = [pod for pod in pods.values() if selector.items() <= pod["metadata"]["labels"].items()]
        assert len(matching) == 1, f"Service {name} selects {len(matching)} pod templates"
        container_ports = {
            p["containerPort"] for c in matching[0]["spec"]["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports, f"Service {name}: {port} has no container port"

    (emulator_container,) = pods["gemini-emulator"]["spec"]["containers"]
    emulator = check_emulator_command(emulator_container["command"], emulator_options)
    assert emulator_container["readinessProbe"]["httpGet"]["port"] == int(emulator["--port"])
    (emulator_port,) = services["gemini-emulator"]["spec"]["ports"]
    assert emulator_port["port"] == int(emulator["--port"])

    (master_container,) = pods["locust-master"]["spec"]["containers"]
    master = check_locust_command(master_container["command"], suite_options)
    check_master(master)
    url = urlsplit(master["--host"])
    assert (url.hostname, url.port) == ("gemini-emulator", emulator_port["port"])
    workers = by_kind_name[("Deployment", "locust-worker")]
    assert int(master["--expect-workers"]) == workers["spec"]["replicas"]
    assert pods["locust-master"]["spec"]["restartPolicy"] == "Never"

    (worker_container,) = pods["locust-worker"]["spec"]["containers"]
    worker = check_locust_command(worker_container["command"], suite_options)
    assert worker["--master-host"] == "locust-master"
    master_ports = {p["port"] for p in services["locust-master"]["spec"]["ports"]}
    assert (
        int(worker["--master-port"]) == int(master["--master-bind-port"])
        and int(worker["--master-port"]) in master_ports
    )
    assert worker["--host"] == master["--host"]
    for container in (master_container, worker_container):
        (key,) = [e for e in container["env"] if e["name"] == "GEMINI_API_KEY"]
        assert key["valueFrom"]["secretKeyRef"]["name"] == "gemini-api-key", "the key comes from a Secret"
    claim = pods["locust-master"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert ("PersistentVolumeClaim", claim) in by_kind_name


def test_dockerfile_installs_the_locked_dependencies_and_runs_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    copied = re.search(r"^COPY (requirements\.lock[^\n]*) \./$", text, re.M)
    assert copied, "the lock file is copied before the code"
    for name in copied.group(1).split():
        assert (REPO / name).exists(), name
    assert "pip install -r requirements.lock" in text
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1] not in ("root", "0")
    assert set(re.search(r"^EXPOSE (.+)$", text, re.M).group(1).split()) == {"8089", "5557", "8000"}


def test_readme_uses_only_options_that_exist(suite_options: set[str], emulator_options: set[str]) -> None:
    readme = (DEPLOY / "README.md").read_text()
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", readme, re.S))
    used = set(OPTION.findall(blocks))
    known = (
        suite_options
        | emulator_options
        | {"--build", "--abort-on-container-exit", "--from-literal", "--replicas"}
    )
    assert used and not used - known, sorted(used - known)
