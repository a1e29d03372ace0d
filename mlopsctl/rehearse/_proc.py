"""Local processes of a rehearsal: free ports, started services with their logs, HTTP calls."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str


def http_call(
    port: int,
    path: str,
    *,
    method: str = "GET",
    host: str | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 10,
    retries: int = 3,
) -> HttpAnswer:
    """One request to ``127.0.0.1:port`` with the given Host header (default: the address).

    A dropped connection is retried, as HTTP clients do (a server may replace a worker)."""
    for _attempt in range(retries):
        try:
            return _http_call(port, path, method, host, headers, body, timeout)
        except ConnectionError:
            time.sleep(1)
    return _http_call(port, path, method, host, headers, body, timeout)


def _http_call(
    port: int,
    path: str,
    method: str,
    host: str | None,
    headers: Mapping[str, str] | None,
    body: bytes | None,
    timeout: float,
) -> HttpAnswer:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        sent = {"Host": host or f"{LOOPBACK}:{port}", **(headers or {})}
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return HttpAnswer(response.status, response.read().decode("utf-8", "replace"))
    finally:
        connection.close()


@dataclass
class Service:
    """A started process with its log file; stopped with its whole process group."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    stops: list[Callable[[], None]] = field(default_factory=list)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        for stop in self.stops:
            stop()


def start(
    argv: Sequence[str],
    *,
    name: str,
    env: Mapping[str, str],
    log: Path,
    cwd: Path | None = None,
    port: int | None = None,
) -> Service:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*argv],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Service(name, process, log, port)


def wait_for(service: Service, ready: Callable[[], bool], timeout: float) -> bool:
    """Poll ``ready`` until it holds, the process exits, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.running():
            return False
        try:
            if ready():
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.5)
    return False


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """Run to completion, output captured; a time-out is a failed run (exit code -9)."""
    try:
        return subprocess.run(
            [*argv],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return subprocess.CompletedProcess(
            list(argv), -9, out, err + f"\ntimed out after {timeout} s"
        )
