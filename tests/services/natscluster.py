"""A real NATS JetStream cluster on loopback for tests: ``nats-server`` processes with cluster
routes between them, on free ports, with their stores in a temporary directory.

    async with NatsCluster(tmp_path, 3) as cluster:
        url = cluster.url          # nats://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
        cluster.kill(0)            # SIGKILL node 0 (its store stays)
        await cluster.restart(0)   # the same node back, same ports and store
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

NATS_SERVER = (
    os.environ.get("KRFEED_NATS_SERVER") or shutil.which("nats-server") or ("/usr/sbin/nats-server")
)


def nats_server_binary() -> str | None:
    return NATS_SERVER if Path(NATS_SERVER).is_file() else None


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (bound, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


class NatsCluster:
    """``size`` nats-server processes forming one JetStream cluster (see the module doc)."""

    def __init__(self, root: Path, size: int = 3, name: str = "krfeedtest") -> None:
        self.root = root
        self.size = size
        self.name = name
        ports = free_ports(2 * size)
        self.client_ports = ports[:size]
        self.route_ports = ports[size:]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * size
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return "nats://" + ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def node_url(self, i: int) -> str:
        return f"nats://127.0.0.1:{self.client_ports[i]}"

    def server_name(self, i: int) -> str:
        return f"n{i + 1}"

    def _config(self, i: int) -> Path:
        routes = ", ".join(
            f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i
        )
        store = self.root / self.server_name(i)
        store.mkdir(parents=True, exist_ok=True)
        conf = self.root / f"{self.server_name(i)}.conf"
        conf.write_text(
            f"server_name: {self.server_name(i)}\n"
            f"listen: 127.0.0.1:{self.client_ports[i]}\n"
            f'jetstream {{ store_dir: "{store}" }}\n'
            f"cluster {{\n  name: {self.name}\n  listen: 127.0.0.1:{self.route_ports[i]}\n"
            f"  routes: [{routes}]\n}}\n",
            encoding="utf-8",
        )
        return conf

    def _spawn(self, i: int) -> None:
        log = (self.root / f"{self.server_name(i)}.log").open("ab")
        self.procs[i] = subprocess.Popen(
            [NATS_SERVER, "-c", str(self._config(i))],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    async def start(self, timeout: float = 20.0) -> None:
        for i in range(self.size):
            self._spawn(i)
        await self._wait_listening(range(self.size), timeout)
        await self.wait_jetstream(timeout)

    async def _wait_listening(self, nodes: range | list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for i in nodes:
            while not _open(self.client_ports[i]):
                p = self.procs[i]
                if p is not None and p.poll() is not None:
                    raise RuntimeError(f"nats-server {self.server_name(i)} exited: {self.log(i)}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats-server {self.server_name(i)} is not listening")
                await asyncio.sleep(0.05)

    async def wait_jetstream(self, timeout: float = 20.0) -> None:
        """Until the cluster's JetStream answers (a meta leader is elected)."""
        import nats

        from krfeed.sinks.nats import servers_of

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            nc = None
            try:
                nc = await nats.connect(
                    servers_of(self.url), connect_timeout=1, allow_reconnect=False
                )
                await nc.jetstream().account_info()
                return
            except Exception as e:  # not ready yet: no meta leader, or still starting
                last = f"{type(e).__name__}: {e}"
                await asyncio.sleep(0.2)
            finally:
                if nc is not None:
                    with contextlib.suppress(Exception):
                        await nc.close()
        raise RuntimeError(f"JetStream of the test cluster is not ready: {last}")

    def kill(self, i: int) -> None:
        """SIGKILL node ``i`` (no goodbye to its peers or clients)."""
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(10)

    async def restart(self, i: int, timeout: float = 20.0) -> None:
        self.kill(i)
        self._spawn(i)
        await self._wait_listening([i], timeout)

    def index_of(self, server_name: str) -> int:
        return int(server_name.lstrip("n")) - 1

    def log(self, i: int) -> str:
        path = self.root / f"{self.server_name(i)}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        for p in self.procs:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in self.procs:
            if p is not None:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()

    async def __aenter__(self) -> NatsCluster:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
