"""A live zanloop API in a child process: ``python -m zanloop.cli serve --no-worker``.

A child process keeps the server's interpreter (and its GIL) apart from the benchmark's client
threads, exactly as a deployed single-worker API runs. Its CPU time is read from ``/proc`` so
the figures can say what one request costs the server, whatever the client costs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx2 as httpx

COMMAND = "python -m zanloop.cli serve --no-worker"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``with ServerProcess(url, workdir) as server:`` serves ``url``'s database on
    ``server.base_url`` until the block ends. Call ``start()`` first to do other work while
    the server boots (importing the app takes seconds)."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        port: int | None = None,
        python: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        # Another interpreter (a profiling venv, say) may serve the same code.
        self.python = python or sys.executable
        self.extra_env = extra_env or {}
        self.workdir = workdir
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZANLOOP_")}
        env.update(
            {
                "ZANLOOP_DATABASE_URL": self.database_url,
                "ZANLOOP_HOST": "127.0.0.1",
                "ZANLOOP_PORT": str(self.port),
                "ZANLOOP_DATA_DIR": str(self.workdir / "var"),
                "ZANLOOP_RUN_WORKER_IN_PROCESS": "false",
                "ZANLOOP_BOOTSTRAP_DEMO_TENANT": "false",
                "ZANLOOP_LOG_LEVEL": "WARNING",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        """Launch the server without waiting for it (see ``wait_ready``)."""
        with self.log_path.open("wb") as log:
            # cwd is the scratch directory, so no stray .env file is read.
            self._process = subprocess.Popen(
                [self.python, "-m", "zanloop.cli", "serve", "--no-worker"],
                cwd=self.workdir,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def __enter__(self) -> ServerProcess:
        if self._process is None:
            self.start()
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the API server did not start; its log:\n{self.log_tail()}")

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def cpu_seconds(self) -> float | None:
        """User + system CPU the server has used so far (Linux), or None."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
