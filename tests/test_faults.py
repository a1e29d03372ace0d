"""Failures and signals at every step of generation leave the destination exactly as it was.

A fault is injected at the N-th call of a filesystem write primitive, for every N until a run
completes; signals are sent at the N-th call the same way, in-process and in a real process.
Nothing is ever written outside the destination, whatever the path looks like.
"""

from __future__ import annotations

import builtins
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlopsctl.api import assess, load_requirements
from mlopsctl.cli.app import app
from mlopsctl.design import StackDesign
from mlopsctl.errors import DestinationError, GenerationError
from mlopsctl.render import generate
from tests.test_hostile import leftovers, snapshot

ROOT = Path(__file__).resolve().parent.parent

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
PRIMITIVES = ("open", "write", "fchmod", "chmod", "mkdir", "rename", "replace", "symlink")


class Injector:
    """Counts calls of the write primitives; at call ``at`` runs ``action`` (raise or signal)."""

    def __init__(self, at: int, action: Callable[[str], None]) -> None:
        self.at = at
        self.action = action
        self.calls = 0
        self.fired = False

    def tick(self, name: str) -> None:
        self.calls += 1
        if self.calls == self.at:
            self.fired = True
            self.action(name)


def raising(err: int) -> Callable[[str], None]:
    def action(name: str) -> None:
        raise OSError(err, os.strerror(err), f"<injected at {name}>")

    return action


def signalling(sig: int) -> Callable[[str], None]:
    def action(name: str) -> None:
        os.kill(os.getpid(), sig)

    return action


@contextmanager
def injected(injector: Injector) -> Iterator[Injector]:
    """Wrap os.open (for writing), os.write, os.fchmod, os.chmod, os.mkdir, os.rename,
    os.replace, os.symlink and builtins.open (for writing)."""
    saved: dict[str, Any] = {name: getattr(os, name) for name in PRIMITIVES}
    saved_open = builtins.open

    def wrap(name: str) -> Callable[..., Any]:
        real = saved[name]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if name == "mkdir" and os.path.lexists(args[0]):
                pass  # fails with EEXIST whatever happens: callers expect that, not a fault
            elif name != "open" or (len(args) > 1 and args[1] & _WRITE_FLAGS):
                injector.tick(name)
            return real(*args, **kwargs)

        return wrapper

    def wrapped_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            injector.tick("builtins.open")
        return saved_open(file, mode, *args, **kwargs)

    try:
        for name in PRIMITIVES:
            setattr(os, name, wrap(name))
        builtins.open = wrapped_open
        yield injector
    finally:
        for name, real in saved.items():
            setattr(os, name, real)
        builtins.open = saved_open


@pytest.fixture(scope="module")
def design() -> StackDesign:
    return assess(load_requirements({"project_name": "faulty"}, defaults=True))


def _reference(design: StackDesign, tmp: Path) -> dict[str, Any]:
    ref = tmp / "reference"
    generate(design, ref)
    out = snapshot(ref)
    shutil.rmtree(ref)
    out.pop("")
    return out


def _scenario(kind: str, root: Path) -> Path:
    """The destination for one starting state; returns its path."""
    if kind == "missing":
        return root / "dest"
    if kind == "missing-parents":
        return root / "a" / "b" / "dest"
    dest = root / "dest"
    dest.mkdir()
    if kind == "non-empty":
        (dest / "keep.txt").write_text("mine\n")
        (dest / "README.md").write_text("my readme\n")
        (dest / "k8s").mkdir()
        (dest / "k8s" / "notes.txt").write_text("mine too\n")
    return dest


SCENARIOS = [
    "missing",
    "missing-parents",
    pytest.param("empty", marks=pytest.mark.slow),
    pytest.param("non-empty", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("kind", SCENARIOS)
def test_a_failure_at_every_write_leaves_the_destination_as_it_was(
    kind: str, design: StackDesign, tmp_path: Path
) -> None:
    expected = _reference(design, tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    outcomes = {"refused": 0}
    n = 0
    while True:
        n += 1
        dest = _scenario(kind, root)
        before = snapshot(root)
        failed = False
        with injected(Injector(n, raising(errno.EIO))) as inj:
            try:
                generate(design, dest, force=True)
            except GenerationError as exc:
                assert "nothing was changed" in exc.message
                failed = True
        if not inj.fired:
            break
        assert _leftovers_below(root) == [], f"call {n} ({kind})"
        if failed:
            assert snapshot(root) == before, f"call {n} ({kind})"
            outcomes["refused"] += 1
        else:  # the failing call was one whose work was already done (mkdir of an existing dir)
            _assert_complete(dest, expected)
        _reset(root)
    # The run that got past every injection point produced the whole tree.
    _assert_complete(dest, expected)
    assert outcomes["refused"] > 20, "the injector saw too few writes to mean anything"


def _assert_complete(dest: Path, expected: dict[str, Any]) -> None:
    got = snapshot(dest)
    for rel, entry in expected.items():
        assert got[rel] == entry, rel


def _leftovers_below(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob(".mlopsctl-*"))


def _reset(root: Path) -> None:
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()


def test_one_signal_in_process_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    with injected(Injector(8, signalling(signal.SIGINT))):
        result = CliRunner().invoke(app, ["init", str(dest), "--defaults"])
    assert result.exit_code == 130 and "nothing was written" in result.output
    assert not dest.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("err", "words", "hint"),
    [
        (errno.ENOSPC, "No space left on device", "free some disk space"),
        (errno.EACCES, "Permission denied", "write to"),
        (errno.EROFS, "Read-only file system", "write to"),
    ],
)
def test_disk_full_and_permission_errors_are_explained(
    err: int, words: str, hint: str, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    with injected(Injector(5, raising(err))):
        result = CliRunner().invoke(app, ["init", str(dest), "--defaults"])
    assert result.exit_code == 2
    assert words in result.output and hint in result.output
    assert "nothing was changed" in result.output
    assert "Traceback" not in result.output
    assert not dest.exists() and leftovers(tmp_path) == []


# ---- Signals ----


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "kind"),
    [(signal.SIGINT, "non-empty"), (signal.SIGTERM, "missing")],
    ids=["SIGINT-non-empty", "SIGTERM-missing"],
)
def test_a_signal_at_every_write_leaves_the_destination_whole_or_untouched(
    sig: int, kind: str, design: StackDesign, tmp_path: Path
) -> None:
    expected = _reference(design, tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    outcomes = {"untouched": 0, "complete": 0}
    n = 0
    while True:
        n += 1
        dest = _scenario(kind, root)
        before = snapshot(root)
        args = ["init", str(dest), "--force", "--defaults", "--set", "project_name=faulty"]
        with injected(Injector(n, signalling(sig))) as inj:
            result = CliRunner().invoke(app, args)
        if not inj.fired:
            assert result.exit_code == 0
            break
        assert result.exit_code == 130, (n, result.output)
        assert "Traceback" not in result.output
        assert _leftovers_below(root) == []
        if snapshot(root) == before:
            assert "nothing was written" in result.output
            outcomes["untouched"] += 1
        else:
            # The signal came while the tree was being moved in: the move was finished first.
            assert "all in place" in result.output, result.output
            _assert_complete(dest, expected)
            outcomes["complete"] += 1
        _reset(root)
    assert outcomes["untouched"] > 10


_CHILD = """
import os, signal, sys
sys.path.insert(0, {root!r})
from tests.test_faults import Injector, injected, signalling
at, sig = int(sys.argv[1]), int(sys.argv[2])
sys.argv = ["mlopsctl", *sys.argv[3:]]
from mlopsctl.cli import main
inj = Injector(at, signalling(sig))
with injected(inj):
    main()
"""


def _run_child(at: int, sig: int, dest: Path) -> subprocess.CompletedProcess[str]:
    code = _CHILD.format(root=str(ROOT))
    args = ["init", str(dest), "--defaults", "--force", "--set", "project_name=faulty"]
    return subprocess.run(
        [sys.executable, "-c", code, str(at), str(sig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_in_a_real_process(sig: int, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    for at in (1, 3, 10, 25, 40, 55):
        dest = _scenario("non-empty", root)
        before = snapshot(root)
        proc = _run_child(at, sig, dest)
        assert proc.returncode == 130, (at, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert leftovers(root) == []
        if snapshot(root) != before:
            assert "all in place" in proc.stderr
        _reset(root)


_CHILD_AFTER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from rich.console import Console
from mlopsctl.cli import main
sig, dest = int(sys.argv[1]), Path(sys.argv[3])
sys.argv = ["mlopsctl", *sys.argv[2:]]
real = Console.print
def report(self, *args, **kwargs):
    if dest.exists():  # the tree is in place and the report is being printed
        os.kill(os.getpid(), sig)
    return real(self, *args, **kwargs)
Console.print = report
main()
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_after_the_tree_is_in_place_reports_it_complete(
    sig: int, design: StackDesign, tmp_path: Path
) -> None:
    expected = _reference(design, tmp_path)
    dest = tmp_path / "dest"
    code = _CHILD_AFTER.format(root=str(ROOT))
    args = ["init", str(dest), "--defaults", "--set", "project_name=faulty"]
    proc = subprocess.run(
        [sys.executable, "-c", code, str(sig), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 130, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "nothing was written" not in proc.stderr
    assert "all in place" in proc.stderr, proc.stderr
    _assert_complete(dest, expected)


@pytest.mark.slow
def test_ctrl_c_at_random_moments_of_a_real_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cmd = [sys.executable, "-m", "mlopsctl", "init", "--defaults", "--set", "project_name=faulty"]
    for delay in (0.05, 0.2, 0.4, 0.6, 0.8, 1.0):
        dest = root / "dest"
        proc = subprocess.Popen([*cmd, str(dest)], stderr=subprocess.PIPE, text=True)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert leftovers(root) == []
        if proc.returncode not in (0, 130):
            assert interrupted_while_python_starts(proc.returncode, err, signal.SIGINT), err
            assert not dest.exists()
            _reset(root)
            continue
        assert proc.returncode in (0, 130), err
        assert "Traceback" not in _without_lost_interrupts(err), err
        if proc.returncode == 0:
            assert len(snapshot(dest)) > 50
        elif "all in place" not in err:
            assert not dest.exists()
        _reset(root)


_ENTRY_POINT = ("mlopsctl/__main__.py", "mlopsctl/__init__.py", "mlopsctl/cli/__init__.py")


def interrupted_while_python_starts(returncode: int, err: str, sig: int) -> bool:
    """The signal came while Python itself was starting (site, encodings, runpy) or loading the
    entry point, before any mlopsctl code could handle it: the interpreter ends the process by
    the signal, or with its own KeyboardInterrupt traceback and exit 1."""
    frames = re.findall(r'File "([^"]+)"', err)
    ours = [f for f in frames if "/mlopsctl/" in f and not f.endswith(_ENTRY_POINT)]
    if returncode == -sig:
        return not ours
    # Python may wrap the interrupt (a RuntimeError when it lands in a class body being set up).
    return returncode == 1 and "\nKeyboardInterrupt" in err and not ours


_LOST = re.compile(
    r"Exception ignored in: [^\n]*\nTraceback \(most recent call last\):\n"
    r"(  File [^\n]*\n(    [^\n]*\n)*)+KeyboardInterrupt: ?\n"
)


def _without_lost_interrupts(err: str) -> str:
    """The interpreter's own report of a Ctrl-C that landed in a callback it cannot raise from
    (an import lock's or another weakref callback): Python prints it and drops the interrupt,
    so the run goes on (to exit 0 with the whole tree, which the caller checks)."""
    return _LOST.sub("", err)


# ---- Nothing outside the destination ----


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "README.md").write_text("not yours\n")
    (outside / "k8s").mkdir()
    return outside


def test_a_destination_that_is_a_symlink_is_refused(design: StackDesign, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    before = snapshot(tmp_path)
    (tmp_path / "link").symlink_to(outside, target_is_directory=True)
    before = snapshot(tmp_path)
    for force in (False, True):
        with pytest.raises(DestinationError, match="symbolic link"):
            generate(design, tmp_path / "link", force=force)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    before = snapshot(tmp_path)
    with pytest.raises(DestinationError, match="symbolic link"):
        generate(design, tmp_path / "dangling")
    assert snapshot(tmp_path) == before


def test_generated_paths_never_go_through_a_symlink(design: StackDesign, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine\n")
    (dest / "k8s").symlink_to(outside / "k8s", target_is_directory=True)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(app, ["init", str(dest), "--force", "--defaults"])
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert snapshot(tmp_path) == before


def test_a_symlinked_file_is_replaced_not_written_through(
    design: StackDesign, tmp_path: Path
) -> None:
    outside = _outside(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "README.md").symlink_to(outside / "README.md")
    before_outside = snapshot(outside)
    generate(design, dest, force=True)
    assert snapshot(outside) == before_outside
    assert not (dest / "README.md").is_symlink()
    assert "faulty" in (dest / "README.md").read_text()


def test_dot_dot_and_absolute_paths_stay_inside(design: StackDesign, tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    before = snapshot(tmp_path)
    result = generate(design, tmp_path / "x" / ".." / "y")
    assert result.destination == tmp_path / "y"
    after = snapshot(tmp_path)
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(k == "" or k == "y" or k.startswith("y/") for k in changed), changed


def test_a_destination_through_a_symlinked_parent_is_written_where_it_resolves(
    design: StackDesign, tmp_path: Path
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    result = generate(design, tmp_path / "alias" / "proj")
    assert result.destination == tmp_path / "real" / "proj"
    assert (tmp_path / "real" / "proj" / "mlopsctl.yaml").is_file()


def test_a_file_where_the_destination_should_be_is_refused(
    design: StackDesign, tmp_path: Path
) -> None:
    (tmp_path / "f").write_text("x")
    before = snapshot(tmp_path)
    with pytest.raises(DestinationError):
        generate(design, tmp_path / "f")
    with pytest.raises(DestinationError):
        generate(design, tmp_path / "f" / "sub")
    assert snapshot(tmp_path) == before


@contextmanager
def _read_only(directory: Path) -> Iterator[str]:
    """Make ``directory`` unwritable for this process; yield the error text expected. Root
    ignores permission bits, so as root the directory is made immutable instead."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            directory.chmod(0o755)
        return
    subprocess.run(["chattr", "+i", "--", str(directory)], check=True)
    try:
        yield "Operation not permitted"
    finally:
        subprocess.run(["chattr", "-i", "--", str(directory)], check=True)


@pytest.mark.slow
def test_a_destination_inside_a_read_only_directory(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base / "ro").mkdir(parents=True)
    before = snapshot(base)
    with _read_only(base / "ro") as reason:
        proc = subprocess.run(
            [sys.executable, "-m", "mlopsctl", "init", str(base / "ro" / "proj"), "--defaults"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 2, proc.stderr
    assert reason in proc.stderr and "nothing was changed" in proc.stderr, proc.stderr
    assert "write to" in proc.stderr  # the hint
    assert "Traceback" not in proc.stderr
    assert snapshot(base) == before


def test_an_interrupt_python_wrapped_in_another_error_is_still_an_interrupt() -> None:
    from mlopsctl.cli import interrupt_in_chain

    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as inner:
            raise RuntimeError("Error calling __set_name__") from inner
    except RuntimeError as wrapped:
        assert interrupt_in_chain(wrapped)
    assert not interrupt_in_chain(RuntimeError("a bug"))
    looped = ValueError("x")
    looped.__context__ = looped
    assert not interrupt_in_chain(looped)


class _RaisesOnDelete:
    """Python hands an exception raised in ``__del__`` to ``sys.unraisablehook``, as compiled
    code does with one it catches (pydantic-core building a validator): a real interrupt that
    never reaches the command."""

    def __del__(self) -> None:
        raise KeyboardInterrupt


def _swallow_an_interrupt() -> None:
    doomed = _RaisesOnDelete()
    del doomed


def _init_ends_interrupted_writing_nothing(tmp_path: Path) -> str:
    """`init --defaults` into a new directory: exit 130, "interrupted: nothing was written", and
    nothing there. Returns what it printed."""
    dest = tmp_path / "dest"
    result = CliRunner().invoke(app, ["init", str(dest), "--defaults"])
    assert result.exit_code == 130, result.output
    assert "interrupted: nothing was written" in result.output
    assert not dest.exists()
    return result.output


def test_an_interrupt_a_library_swallowed_ends_the_command_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interrupt is swallowed and a wrong result follows (a rule file that suddenly does not
    match its schema): exit 130, "nothing was written", not an error about the rule file."""
    from mlopsctl.errors import CatalogError

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        _swallow_an_interrupt()
        raise CatalogError("rule file ABT001-x.yaml is invalid: name does not match its pattern")

    monkeypatch.setattr("mlopsctl.rules.engine.evaluate", evaluate)
    output = _init_ends_interrupted_writing_nothing(tmp_path)
    assert "rule file" not in output
    assert "Exception ignored" not in output


def test_a_sigterm_a_library_turned_into_its_own_error_ends_the_command_as_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pydantic-core building a serializer when SIGTERM lands raises a SchemaError that keeps
    only the interrupt's text ("Terminated: "), no cause or context: exit 130 and "nothing was
    written", not an internal error (70)."""
    import signal

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt as exc:
            text = f"{type(exc).__name__}: {exc}"
        raise RuntimeError(f"Error building `literal` serializer: {text}") from None

    monkeypatch.setattr("mlopsctl.rules.engine.evaluate", evaluate)
    output = _init_ends_interrupted_writing_nothing(tmp_path)
    assert "internal error" not in output


def test_an_interrupt_swallowed_before_the_tree_is_in_place_says_what_is_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Swallowed, and generation went on to finish: the report says the tree is in place."""
    from mlopsctl.rules import engine

    real = engine.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        _swallow_an_interrupt()
        return real(*args, **kwargs)

    monkeypatch.setattr("mlopsctl.rules.engine.evaluate", evaluate)
    dest = tmp_path / "dest"
    result = CliRunner().invoke(app, ["init", str(dest), "--defaults"])
    assert result.exit_code == 130, result.output
    count = re.search(r"the (\d+) generated files are all in place", result.output)
    assert count is not None, result.output
    assert len([p for p in dest.rglob("*") if p.is_file()]) == int(count.group(1))


def test_other_unraisable_errors_go_to_the_hook_that_was_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlopsctl.interrupts import tracking

    class Broken:
        def __del__(self) -> None:
            raise ValueError("in a destructor")

    seen: list[Any] = []

    def recording(unraisable: Any) -> None:
        seen.append(unraisable.exc_type)

    monkeypatch.setattr(sys, "unraisablehook", recording)
    with tracking() as progress:
        doomed = Broken()
        del doomed
        _swallow_an_interrupt()
    assert progress.swallowed
    assert seen == [ValueError]
    assert sys.unraisablehook is recording
