"""Answers of an interrupted questionnaire, kept in the user's cache to be offered again.

One JSON file per destination, named by a hash of the destination's absolute path, in the private
cache directory ``questionnaire`` (``mlopsctl._cachedir``: mode 0700, the user's own); the file is
written with mode 0600 and never in the destination. What is read back is checked: a file that
is not the user's private regular file, not JSON of the expected shape, for another destination,
or with an answer that is not valid for its question is ignored, and ``load`` says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlopsctl._cachedir import private_cache_dir

CACHE_NAME = "questionnaire"
FORMAT = 1
MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class Saved:
    """Answers given at the prompt before an interrupt: dotted key to value, in asking order."""

    answers: dict[str, Any]
    saved_at: dt.datetime


def _absolute(destination: Path) -> str:
    """The destination's absolute path, ``..`` folded (``x``, ``./x`` and ``a/../x`` are one)."""
    return os.path.abspath(destination)


def _path(destination: Path) -> Path | None:
    directory = private_cache_dir(CACHE_NAME)
    if directory is None:
        return None
    key = hashlib.sha256(os.fsencode(_absolute(destination))).hexdigest()[:32]
    return directory / f"{key}.json"


def save(destination: Path, answers: Mapping[str, Any]) -> bool:
    """Keep ``answers`` (dotted key to value) for ``destination``; whether they were kept. A
    cache that cannot be written loses them, never the command."""
    path = _path(destination)
    if path is None or not answers:
        return False
    document = {
        "format": FORMAT,
        "destination": _absolute(destination),
        "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "answers": dict(answers),
    }
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        with suppress(OSError):
            tmp.unlink()
        return False
    return True


def discard(destination: Path) -> None:
    """Forget the answers kept for ``destination``."""
    path = _path(destination)
    if path is not None:
        with suppress(OSError):
            path.unlink()


def load(destination: Path) -> tuple[Saved | None, str | None]:
    """(the answers kept for ``destination``, or None; why a kept file was ignored, or None)."""
    path = _path(destination)
    if path is None:
        return None, None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    try:
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(handle.fileno())
            if (
                not stat.S_ISREG(st.st_mode)
                or st.st_uid != os.getuid()
                or st.st_mode & (stat.S_IRWXG | stat.S_IRWXO)
            ):
                return None, f"{path} is not a private file of this user's"
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"
    problem = f"{path} does not hold saved answers"
    if len(raw) > MAX_BYTES:
        return None, problem
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, problem
    return _parse(document, destination, problem)


def _parse(document: Any, destination: Path, problem: str) -> tuple[Saved | None, str | None]:
    from mlopsctl._partial import check_value
    from mlopsctl.questionnaire import keys

    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return None, problem
    if document.get("destination") != _absolute(destination):
        return None, f"{problem} for {destination}"
    answers = document.get("answers")
    saved_at = document.get("saved_at")
    if not isinstance(answers, dict) or not isinstance(saved_at, str):
        return None, problem
    try:
        when = dt.datetime.fromisoformat(saved_at)
    except ValueError:
        return None, problem
    known = keys()
    for key, value in answers.items():
        if key not in known:
            return None, f"{problem}: {key!r} is not a question"
        refusal = check_value(key, value)
        if refusal is not None:
            return None, f"{problem}: {key}: {refusal.message}"
    return Saved(answers, when), None
