"""A generated image, rehearsed without a container engine: its Dockerfile read for what the pod
gets (``USER``, ``WORKDIR``, ``ENV``, the ``COPY``-ed files) and its Python payload installed into
a virtual environment (the base image's packages plus every ``RUN pip install``), kept in a cache
keyed by what it installs."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mlopsctl.rehearse.errors import MissingToolError, NotRehearsable, ProjectError
from mlopsctl.rehearse.pod import runs_as

# What a base image brings, as pip requirements (the tag is the version).
_BASE_PAYLOADS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^ghcr\.io/mlflow/mlflow:v?(?P<v>[\w.]+)$"), "mlflow=={v}"),
    (re.compile(r"^python:[\w.-]+$"), ""),
    # apache/spark-docker: Spark under /opt/spark with its Python package, which is PySpark of
    # the same release (the jars it adds are laid out by the batch rehearsal).
    (re.compile(r"^apache/spark:(?P<v>\d+\.\d+\.\d+)(-[\w.-]+)?$"), "pyspark=={v}"),
)


@dataclass
class Image:
    dockerfile: Path
    base: str
    user: tuple[int, int] | None = None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (source, destination)
    pip: list[str] = field(default_factory=list)  # pip install arguments, in order
    cmd: list[str] = field(default_factory=list)
    # What the image's `groupadd`/`useradd` add to /etc/group and /etc/passwd.
    accounts: dict[str, list[str]] = field(default_factory=dict)

    def requirements(self, context: Path) -> list[str]:
        """Every requirement the image installs, ``-r FILE`` expanded from the build context."""
        found: list[str] = []
        payload = _base_payload(self.base, self.dockerfile)
        if payload:
            found.append(payload)
        args = iter(self.pip)
        for arg in args:
            if arg in ("-r", "--requirement"):
                found.extend(_read_requirements(context / next(args, "")))
            elif not arg.startswith("-"):
                found.append(arg)
        return found


def _base_payload(base: str, dockerfile: Path) -> str:
    for pattern, payload in _BASE_PAYLOADS:
        match = pattern.match(base)
        if match:
            return payload.format(**match.groupdict())
    raise NotRehearsable(
        f"{dockerfile}: the rehearsal does not know what the base image {base} installs "
        "(it knows python, ghcr.io/mlflow/mlflow and apache/spark)"
    )


def _read_requirements(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror})") from exc
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def read_dockerfile(path: Path) -> Image:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read ({exc.strerror})") from exc
    image = Image(path, base="")
    for instruction, rest in _instructions(text):
        if instruction == "FROM":
            image.base = rest.split()[0]
        elif instruction == "WORKDIR":
            image.workdir = rest if rest.startswith("/") else f"{image.workdir.rstrip('/')}/{rest}"
        elif instruction == "USER" and rest in ("root", "0", "0:0"):
            image.user = (0, 0)  # for the build steps that follow; a later USER sets the pod's
        elif instruction == "USER":
            # Root by name for the build steps after it (a later USER sets the pod's uid).
            uid, _, gid = rest.replace("root", "0").partition(":")
            if not uid.isdigit() or (gid and not gid.isdigit()):
                raise ProjectError(
                    f"{path}: USER {rest}: a restricted pod (runAsNonRoot) needs a numeric uid"
                )
            image.user = (int(uid), int(gid or uid))
        elif instruction == "ENV":
            for word in shlex.split(rest):
                key, sep, value = word.partition("=")
                if sep:
                    image.env[key] = value
        elif instruction == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            for source in words[:-1]:
                image.copies.append((source, words[-1]))
        elif instruction == "RUN":
            words = shlex.split(rest)
            if "pip" in words and "install" in words:
                image.pip.extend(words[words.index("install") + 1 :])
            _accounts(image, words)
        elif instruction == "CMD":
            image.cmd = _exec_form(rest)
    if not image.base:
        raise ProjectError(f"{path}: no FROM line")
    return image


_ACCOUNT_OPTIONS = {
    "-u": "uid",
    "--uid": "uid",
    "-g": "gid",
    "--gid": "gid",
    "-d": "home",
    "--home-dir": "home",
    "-s": "shell",
    "--shell": "shell",
}


def _accounts(image: Image, words: list[str]) -> None:
    """The passwd and group entries a ``RUN groupadd ... && useradd ...`` line adds."""
    commands: list[list[str]] = [[]]
    for word in words:
        if word in ("&&", ";", "||"):
            commands.append([])
        else:
            commands[-1].append(word)
    for command in commands:
        if not command or command[0] not in ("useradd", "groupadd"):
            continue
        options: dict[str, str] = {}
        args = iter(command[1:])
        name = ""
        for word in args:
            if word in _ACCOUNT_OPTIONS:
                options[_ACCOUNT_OPTIONS[word]] = next(args, "")
            elif not word.startswith("-"):
                name = word
        if command[0] == "groupadd" and name and options.get("gid", "").isdigit():
            image.accounts.setdefault("group", []).append(f"{name}:x:{options['gid']}:")
        elif command[0] == "useradd" and name and options.get("uid", "").isdigit():
            gid = options.get("gid", options["uid"])
            home, shell = options.get("home", f"/home/{name}"), options.get("shell", "/bin/sh")
            image.accounts.setdefault("passwd", []).append(
                f"{name}:x:{options['uid']}:{gid}::{home}:{shell}"
            )


def _exec_form(rest: str) -> list[str]:
    import json

    try:
        value = json.loads(rest)
    except ValueError:
        return ["/bin/sh", "-c", rest]
    return [str(v) for v in value] if isinstance(value, list) else ["/bin/sh", "-c", rest]


def _instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        instruction, _, rest = stripped.partition(" ")
        found.append((instruction.upper(), rest.strip()))
    return found


def lay_out(image: Image, context: Path, root: Path) -> Path:
    """The image's WORKDIR with its COPY-ed files under ``root``, owned by root and not writable
    by anyone else (as the image's files are); returns the local WORKDIR."""
    workdir = root / image.workdir.lstrip("/")
    workdir.mkdir(parents=True, exist_ok=True)
    for source, destination in image.copies:
        target = Path(
            destination if destination.startswith("/") else f"{image.workdir}/{destination}"
        )
        local = root / str(target).lstrip("/")
        origin = context / source
        if origin.is_dir():
            shutil.copytree(origin, local, dirs_exist_ok=True)
        elif origin.is_file():
            local = local / origin.name if destination.endswith(("/", ".")) else local
            local.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, local)
        else:
            raise ProjectError(f"{image.dockerfile}: COPY {source}: no such file in {context}")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return workdir


def interpreter(version: str, uid: int, gid: int) -> Path:
    """A Python ``version`` the pod's uid can run (the environment's own may be private)."""
    candidates = [
        shutil.which(f"python{version}"),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
        sys.executable if sys.version.startswith(version + ".") else None,
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            real = Path(os.path.realpath(candidate))
            if runs_as(real, uid, gid):
                return real
    raise MissingToolError(
        f"no Python {version} that uid {uid} can run",
        hint=f"install it where every user can read it (apt-get install python{version} "
        f"python{version}-venv, or python3 and python3-venv where that is {version})",
    )


def environment(image: Image, context: Path, python: Path, cache: Path) -> Path:
    """A virtual environment holding the image's Python packages, made once per content."""
    return install(image.requirements(context), python, cache, str(image.dockerfile))


def install(requirements: list[str], python: Path, cache: Path, what: str) -> Path:
    """A virtual environment of ``python`` holding ``requirements``, made once per content."""
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    digest = hashlib.sha256(("\n".join([version, *requirements])).encode()).hexdigest()[:16]
    venv = cache / f"env-{digest}"
    if (venv / ".complete").is_file():
        return venv
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)
    # One builder at a time per environment: concurrent rehearsals share the cache.
    with (cache / f"env-{digest}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / ".complete").is_file():
            _build(venv, requirements, python, what)
    return venv


def _build(venv: Path, requirements: list[str], python: Path, what: str) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run(
        [str(python), "-m", "venv", "--", str(venv)], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        raise MissingToolError(
            f"{what}: {python} -m venv failed:\n{made.stderr[-2000:]}",
            hint="install the interpreter's venv module (apt-get install python3-venv)",
        )
    listing = venv / "requirements.txt"
    listing.write_text("\n".join(requirements) + "\n", encoding="utf-8")
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "-r", str(listing)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if installed.returncode != 0:
        raise MissingToolError(
            f"{what}: installing its packages failed:\n" + installed.stderr[-2000:],
            hint=f"the package index must serve every pinned version (pip install -r {listing})",
        )
    (venv / ".complete").write_text("ok\n", encoding="utf-8")
