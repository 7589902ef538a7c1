"""A local Redis Cluster of three masters (no replicas) from Debian's redis-server, for tests
that prove the service runs on a cluster. Each node runs on a free loopback port whose
cluster bus port (port + 10000) is free too; the harness creates the cluster with
`redis-cli --cluster create`, waits until every node reports `cluster_state:ok`, and stops
exactly the processes it started."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scripts import services as harness

BUS_PORT_OFFSET = 10000  # Redis Cluster's node-to-node port is the client port + 10000


@dataclass
class Cluster:
    nodes: list[harness.Server]
    root: Path

    @property
    def url(self) -> str:
        """One node's URL: a cluster client discovers the others from it."""
        return self.nodes[0].url

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [_address(node) for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def remove_data(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def start(masters: int = 3, *, root: Path | None = None, timeout: float = 30) -> Cluster:
    """Start `masters` cluster-enabled nodes, join them into one cluster covering every slot
    and wait until it serves. Raises HarnessError (having stopped what it started) if not."""
    binary = harness.ensure_redis()
    cli = _redis_cli(binary)
    root = root or harness.SERVICES / f"cluster-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster([], root)
    try:
        for port in _ports_with_free_bus(masters):
            cluster.nodes.append(_start_node(binary, root / str(port), port))
        _create(cli, cluster, timeout)
        _wait_until_ok(cluster, timeout)
    except BaseException:
        cluster.stop()
        raise
    atexit.register(cluster.stop)  # even if the caller never reaches its own clean-up
    return cluster


@contextlib.contextmanager
def running(masters: int = 3) -> Iterator[Cluster]:
    """A cluster for the length of a block, stopped and its data removed after it."""
    cluster = start(masters)
    try:
        yield cluster
    finally:
        cluster.stop()
        cluster.remove_data()


def _redis_cli(redis_server: str) -> str:
    # redis-cli ships in redis-tools, a dependency of Debian's redis-server.
    found = shutil.which("redis-cli") or shutil.which(
        "redis-cli", path=str(Path(redis_server).parent)
    )
    if not found:
        raise harness.HarnessError("redis-cli not found: install Debian's redis-tools")
    return found


def _ports_with_free_bus(count: int) -> list[int]:
    """Free ports whose bus ports are free as well (and none another one's bus port)."""
    chosen: list[int] = []
    for _ in range(200):
        port = harness.free_port()
        taken = {p for c in chosen for p in (c, c + BUS_PORT_OFFSET)}
        if port + BUS_PORT_OFFSET <= 65535 and not {port, port + BUS_PORT_OFFSET} & taken:
            if _is_free(port + BUS_PORT_OFFSET):
                chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise harness.HarnessError("no free port pairs (port, port + 10000) for a Redis Cluster")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _start_node(binary: str, data_dir: Path, port: int) -> harness.Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        str(data_dir / f"nodes-{port}.conf"),
        "--cluster-node-timeout",
        "5000",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--logfile",
        "",
    ]
    url = f"redis://127.0.0.1:{port}/0"
    node = harness.Server("redis", url, harness._spawn(argv, data_dir), data_dir, argv)
    try:
        harness._wait_until_ready(node, timeout=20)
    except BaseException:
        node.stop()
        raise
    return node


def _create(cli: str, cluster: Cluster, timeout: float) -> None:
    endpoints = [f"{host}:{port}" for host, port in cluster.addresses]
    result = subprocess.run(
        [cli, "--cluster", "create", *endpoints, "--cluster-replicas", "0", "--cluster-yes"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise harness.HarnessError(
            f"redis-cli --cluster create failed ({result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )


def _wait_until_ok(cluster: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_cluster_ok(host, port) for host, port in cluster.addresses):
            return
        time.sleep(0.1)
    raise harness.HarnessError(f"the Redis Cluster did not reach cluster_state:ok in {timeout}s")


def _cluster_ok(host: str, port: int) -> bool:
    import redis

    try:
        with redis.Redis(host=host, port=port, socket_timeout=1) as client:
            info = client.cluster("INFO")  # parsed into a dict of its fields
    except redis.RedisError:
        return False
    return bool(info.get("cluster_state") == "ok")


def _address(node: harness.Server) -> tuple[str, int]:
    host, port = node.url.split("//")[1].split("/")[0].split(":")
    return host, int(port)
