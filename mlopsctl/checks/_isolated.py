"""The child processes ``validate`` starts, isolated from the repository it checks.

``validate`` runs inside untrusted repositories (pre-commit, CI), so nothing it starts may pick up
the repository's code or the caller's Python settings: a ``yaml.py`` or ``sitecustomize.py`` in
the working directory, ``PYTHONPATH``, ``PYTHONSTARTUP``, the user site directory. Every child:

- runs Python as ``python -I -B`` (no current directory or script directory on the import path,
  no user site, every ``PYTHON*`` variable ignored, no bytecode written) and loads ``mlopsctl``
  from where this module lives, so an editable and an installed mlopsctl work alike;
- works in a scratch directory of its own (its working directory, ``HOME`` and ``TMPDIR``), with
  an environment of only ``PATH`` (its absolute entries), ``HOME``, ``TMPDIR`` and what the caller
  names;
- runs in a session of its own and is killed with everything it started when its time limit
  (``MLOPSCTL_CHECK_TIMEOUT`` seconds, when set, overrides each check's default) runs out; the
  check turns that into a finding. A Python child also stops itself (an alarm and a CPU limit a
  little past the time limit) should mlopsctl die first. Ctrl-C no longer reaches a child in its
  own session, so ``stop_all`` (called by the check engine when it is interrupted) kills every
  child still running;
- writes its output to files, of which a bounded tail is read back.

Run as a script (``python -I _isolated.py MODULE ARGS...``) this module is the child's entry
point: it loads the ``mlopsctl`` package beside it and runs ``MODULE`` as ``__main__``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TIMEOUT_ENV = "MLOPSCTL_CHECK_TIMEOUT"
OUTPUT_LIMIT = 16 * 1024 * 1024  # bytes of a child's standard output read back
ERROR_LIMIT = 64 * 1024  # bytes of the end of its standard error
_PACKAGE = Path(__file__).resolve().parent.parent
_BOOT = Path(__file__).resolve()  # this file: the child runs it as its script
_GRACE = 10  # seconds past its time limit at which a Python child stops itself
_running: set[subprocess.Popen[bytes]] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class Outcome:
    """How a child ended: its exit status, output, and whether its time limit ran out."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    limit: float

    def last_json(self) -> Any:
        """The last line of standard output read as JSON; None when there is none."""
        import json

        for line in reversed(self.stdout.splitlines()):
            if line.strip():
                try:
                    return json.loads(line)
                except ValueError:
                    return None
        return None

    def detail(self) -> str:
        """The last line of standard error (or output), for a report."""
        lines = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return lines[-1][:300] if lines else f"exited with status {self.returncode}, no output"

    def timeout_message(self, what: str) -> str:
        return (
            f"{what} did not finish within its time limit of {self.limit:g} s and was stopped "
            f"(set {TIMEOUT_ENV} to allow longer)"
        )


def time_limit(default: float) -> float:
    """``MLOPSCTL_CHECK_TIMEOUT`` when it is a positive number of seconds, else ``default``."""
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return default
    return value if 0 < value < float("inf") else default


def _search_path() -> str:
    """The caller's ``PATH`` without relative entries: those resolve against the working
    directory, the repository."""
    entries = os.environ.get("PATH", os.defpath).split(os.pathsep)
    return os.pathsep.join(e for e in entries if os.path.isabs(e))


def program(name: str) -> str | None:
    """The absolute path of the program ``name`` on the absolute entries of ``PATH``."""
    import shutil

    return shutil.which(name, path=_search_path())


def user_cache_base() -> str | None:
    """Where the caller's user cache is (``$XDG_CACHE_HOME`` or ``~/.cache``), for a child that
    may reuse it (it checks the directory itself, see ``mlopsctl._cachedir``)."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base:
        return base
    with contextlib.suppress(RuntimeError):
        return str(Path.home() / ".cache")
    return None


def run(
    argv: list[str],
    scratch: Path,
    *,
    limit: float,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Run ``argv`` in ``scratch`` (an empty directory the caller owns and removes) with a
    minimal environment plus ``env``, for at most ``limit`` seconds."""
    home = scratch / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    child_env = {"PATH": _search_path(), "HOME": str(home), "TMPDIR": str(home), **(env or {})}
    out_path, err_path = scratch / "stdout", scratch / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        try:
            proc = subprocess.Popen(
                [*argv],  # a launcher: its callers' lists are held to the no-shell rule
                cwd=str(home),
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        except OSError as exc:  # the program vanished or is not executable
            return Outcome(127, "", f"cannot run {argv[0]}: {exc.strerror}", False, limit)
        with _running_lock:
            _running.add(proc)
        timed_out = False
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:  # time limit, Ctrl-C or any error here: nothing the child started outlives it
            _kill_group(proc)
            with _running_lock:
                _running.discard(proc)
    return Outcome(
        returncode=proc.returncode,
        stdout=_read(out_path, OUTPUT_LIMIT, head=True),
        stderr=_read(err_path, ERROR_LIMIT, head=False),
        timed_out=timed_out,
        limit=limit,
    )


def stop_all() -> None:
    """Kill every child still running (and what it started): the command was interrupted, and
    the threads waiting for them should not wait for their time limits."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _read(path: Path, limit: int, *, head: bool) -> str:
    """At most ``limit`` bytes of ``path``: its beginning (``head``) or its end."""
    with open(path, "rb") as f:
        if not head:
            f.seek(max(0, f.seek(0, os.SEEK_END) - limit))
        data = f.read(limit)
    return data.decode("utf-8", "replace")


def python(
    module: str,
    args: list[str],
    scratch: Path,
    *,
    limit: float,
    env: Mapping[str, str] | None = None,
) -> Outcome:
    """Run mlopsctl's module ``module`` (``python -m`` style) isolated, see the module doc."""
    stop = str(math.ceil(limit) + _GRACE)
    return run(
        [sys.executable, "-I", "-B", "-X", "utf8", str(_BOOT), stop, module, *args],
        scratch,
        limit=limit,
        env=env,
    )


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A private temporary directory, removed afterwards."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def _boot(argv: list[str]) -> None:
    """The child's side: stop after ``argv[0]`` seconds (of time or of CPU), load ``mlopsctl``
    from beside this file (not from the import path) and run ``argv[1]`` as ``__main__`` with
    ``argv[2:]`` as its arguments."""
    import importlib.util
    import resource
    import runpy

    stop, argv = int(argv[0]), argv[1:]
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(stop)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CPU, (stop, stop))

    spec = importlib.util.spec_from_file_location(
        "mlopsctl", _PACKAGE / "__init__.py", submodule_search_locations=[str(_PACKAGE)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["mlopsctl"] = package
    spec.loader.exec_module(package)
    sys.argv = [argv[0], *argv[1:]]
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _boot(sys.argv[1:])
