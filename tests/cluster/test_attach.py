"""Attaching to an existing cluster: the address comes from where `ray.init` would take it, and a dead one is
reported within seconds (naming the address, its source and the fix) instead of Ray retrying for minutes."""

from __future__ import annotations

import socket
import time

import pytest

from rlvr.cluster.attach import PROBE_TIMEOUT_S, ClusterGone, Target, attach, probe, resolve
from rlvr.sweep.cli import EXIT_NO_CLUSTER, preflight_command, sweep_command


@pytest.fixture
def private_ray_tmp(tmp_path, monkeypatch):
    """Ray's temp dir of this test only, without RAY_ADDRESS: the machine's own Ray state is out of sight."""
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return tmp_path


@pytest.fixture
def listening():
    """A port on 127.0.0.1 that accepts connections while the test runs."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def closed_port() -> str:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    return f"127.0.0.1:{port}"


def plant_current_cluster(ray_tmp, address: str) -> str:
    """What a head started with `ray start --head` leaves behind when it dies."""
    path = ray_tmp / "ray" / "ray_current_cluster"
    path.parent.mkdir()
    path.write_text(address + "\n")
    return str(path)


def test_an_explicit_address_wins_over_ray_address(private_ray_tmp, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve("10.0.0.2:6379") == Target("10.0.0.2:6379", "--address")
    assert resolve("local") is None


def test_auto_takes_ray_address_before_the_current_cluster_file(private_ray_tmp, monkeypatch):
    path = plant_current_cluster(private_ray_tmp, "10.0.0.3:6379")
    assert resolve("auto") == Target("10.0.0.3:6379", f"Ray's current-cluster file {path}", path)
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert resolve("auto") == Target("10.0.0.1:6379", "RAY_ADDRESS")


def test_no_address_and_no_file_is_nothing_to_attach_to(private_ray_tmp):
    assert resolve(None) is None


def test_probe_passes_a_live_port_and_names_a_dead_one_with_its_source_and_fix(listening):
    probe(Target(listening, "RAY_ADDRESS"))
    probe(Target(f"ray://{listening}", "--address"))  # the client server's port, scheme stripped
    dead = closed_port()
    started = time.monotonic()
    with pytest.raises(ClusterGone) as err:
        probe(Target(dead, "RAY_ADDRESS"))
    assert time.monotonic() - started < PROBE_TIMEOUT_S
    message = str(err.value)
    assert f"the Ray cluster at {dead} (from RAY_ADDRESS) is gone" in message
    assert "unset RAY_ADDRESS" in message and "ray start --head" in message


def test_attach_to_a_stale_current_cluster_file_fails_in_seconds_with_the_file_to_remove(private_ray_tmp):
    path = plant_current_cluster(private_ray_tmp, closed_port())
    started = time.monotonic()
    with pytest.raises(ClusterGone, match=f"remove {path}"):
        attach("auto")
    assert time.monotonic() - started < 10


def test_sweep_and_preflight_with_a_dead_address_stop_with_exit_code_6(private_ray_tmp, tmp_path, caplog):
    dead = closed_port()
    started = time.monotonic()
    assert preflight_command("demo-cpu", [f"storage={tmp_path}"], address=dead) == EXIT_NO_CLUSTER
    assert sweep_command("demo-cpu", [f"storage={tmp_path}"], address=dead, verbose=False) == EXIT_NO_CLUSTER
    assert time.monotonic() - started < 20
    assert f"the Ray cluster at {dead} (from --address) is gone" in caplog.text
