"""docker-compose.yml cannot run here (no Docker engine): check its structure, and let Debian's
docker-compose (installed by scripts/test.sh as root) validate it with `config`."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO


def _load(name="docker-compose.yml"):
    return yaml.safe_load((REPO / name).read_text())


def test_qdrant_service_is_pinned_persistent_healthchecked_and_local():
    q = _load()["services"]["qdrant"]
    image = q["image"]
    assert image.startswith("qdrant/qdrant:v") and image != "qdrant/qdrant:latest"
    assert any(v.endswith(":/qdrant/storage") for v in q["volumes"])
    assert q["healthcheck"]["test"][0] == "CMD"
    for port in q["ports"]:  # bound to loopback unless the user opts in
        assert port.startswith("${SCENESEARCH_BIND:-127.0.0.1}:")


def test_app_service_points_at_qdrant_and_waits_for_it():
    app = _load()["services"]["app"]
    assert app["environment"]["QDRANT_URL"] == "http://qdrant:6333"
    assert app["depends_on"]["qdrant"]["condition"] == "service_healthy"
    assert app["command"][:2] == ["scenesearch", "serve"]
    assert all(p.startswith("${SCENESEARCH_BIND:-127.0.0.1}:") for p in app["ports"])


def test_gpu_override_reserves_an_nvidia_gpu():
    gpu = _load("docker-compose.gpu.yml")["services"]["app"]
    dev = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert dev["driver"] == "nvidia" and "gpu" in dev["capabilities"]


@pytest.mark.parametrize(
    "files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.gpu.yml"]]
)
def test_docker_compose_config_validates(files):
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose (Debian package) not installed")
    args = [exe]
    for f in files:
        args += ["-f", str(REPO / f)]
    r = subprocess.run(args + ["config"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "qdrant/qdrant:v" in r.stdout


def test_cluster_file_runs_three_qdrant_nodes_in_cluster_mode():
    c = _load("docker-compose.cluster.yml")
    nodes = {k: v for k, v in c["services"].items() if k.startswith("qdrant-")}
    assert sorted(nodes) == ["qdrant-1", "qdrant-2", "qdrant-3"]
    volumes = set()
    for name, s in nodes.items():
        assert s["image"].startswith("qdrant/qdrant:v") and s["image"] != "qdrant/qdrant:latest"
        assert s["environment"]["QDRANT__CLUSTER__ENABLED"] == "true"
        p2p = s["environment"]["QDRANT__CLUSTER__P2P__PORT"]
        assert s["command"][-2:] == ["--uri", f"http://{name}:{p2p}"]
        # the peer-to-peer port is never published; what is published is bound to loopback
        for port in s.get("ports", []):
            assert port.startswith("${SCENESEARCH_BIND:-127.0.0.1}:")
            assert not port.endswith(f":{p2p}")
        volumes.update(v.split(":")[0] for v in s["volumes"])
        if name != "qdrant-1":
            assert s["command"][1:3] == ["--bootstrap", f"http://qdrant-1:{p2p}"]
            assert s["depends_on"]["qdrant-1"]["condition"] == "service_healthy"
            assert "ports" not in s
    assert len(volumes) == 3  # one storage volume per node


def test_cluster_file_validates():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose (Debian package) not installed")
    f = str(REPO / "docker-compose.cluster.yml")
    r = subprocess.run([exe, "-f", f, "config"], capture_output=True, text=True, cwd=REPO,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert sorted(cfg["services"]) == ["qdrant-1", "qdrant-2", "qdrant-3"]
    published = [p for s in cfg["services"].values() for p in s.get("ports", [])]
    assert len(published) == 2  # REST and gRPC of node 1, nothing else
    for p in published:  # "127.0.0.1:6333:6333/tcp" or the long form
        host, target = (p["host_ip"], p["target"]) if isinstance(p, dict) else (
            p.split(":")[0], p.split(":")[-1].split("/")[0])  # fmt: skip
        assert host == "127.0.0.1" and str(target) != "6335"
