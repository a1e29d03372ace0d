"""Run a command the way a restricted pod runs it.

The image's or the manifest's uid and gid with no passwd or group entry for them (unless the
image's own ``useradd``/``groupadd`` adds one), no variables
from this machine (only the image's ``ENV`` and the manifest's ``env``; ``HOME=/`` when neither
sets it, as container runtimes do), the working directory the image's ``WORKDIR`` (owned by root,
not writable), a read-only root when the manifest says so, and only the declared volumes
writable: one fresh directory per volume mount. A mount path that exists on this machine (such as
``/tmp``) is mounted over in a private mount namespace; any other is a local directory the
command's arguments and environment are pointed at instead (see :meth:`Pod.local`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlopsctl.rehearse import _proc
from mlopsctl.rehearse.errors import MissingToolError

SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


def require_isolation() -> None:
    """The rehearsal switches uids and mounts in a private namespace: root and util-linux."""
    if os.geteuid() != 0:
        raise MissingToolError(
            "running as the pod's uid needs root",
            hint="run `sudo mlopsctl rehearse DIR` (the rehearsal switches to each pod's uid in a "
            "private mount namespace and never changes this machine's files)",
        )
    for tool in ("unshare", "mount"):
        if shutil.which(tool) is None:
            raise MissingToolError(
                f"{tool} is not on PATH", hint="install util-linux (apt-get install util-linux)"
            )


@dataclass
class Pod:
    """One pod's identity and filesystem, laid out under ``workspace``."""

    name: str
    uid: int
    gid: int
    workspace: Path
    workdir: Path  # the local directory standing for the image's WORKDIR
    image_workdir: str  # the WORKDIR path inside the image
    env: dict[str, str]
    mounts: dict[str, Path] = field(default_factory=dict)  # mount path -> writable directory
    read_only_root: bool = True
    # Entries the image itself adds (its `useradd`/`groupadd`): lines of /etc/passwd, /etc/group.
    accounts: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def create(
        cls,
        name: str,
        *,
        uid: int,
        gid: int,
        workspace: Path,
        workdir: Path,
        image_workdir: str,
        env: Mapping[str, str],
        mounts: Sequence[str],
        read_only_root: bool,
        accounts: Mapping[str, Sequence[str]] | None = None,
    ) -> Pod:
        pod = cls(name, uid, gid, workspace, workdir, image_workdir, dict(env))
        pod.read_only_root = read_only_root
        pod.accounts = {k: list(v) for k, v in (accounts or {}).items()}
        for index, mount_path in enumerate(mounts):
            directory = workspace / f"{name}-volume-{index}"
            directory.mkdir(parents=True)
            directory.chmod(0o777)  # an emptyDir: writable by whatever uid the pod runs as
            pod.mounts[mount_path] = directory
        pod.env.setdefault("HOME", "/")
        return pod

    def _rebased(self, mount_path: str) -> bool:
        """A mount path that does not exist here is given to the command as a local path."""
        return not Path(mount_path).is_dir()

    def local(self, value: str) -> str:
        """``value`` with an image path under a relocated volume or the WORKDIR made local."""
        for mount_path, directory in sorted(self.mounts.items(), key=lambda m: -len(m[0])):
            if self._rebased(mount_path) and _under(value, mount_path):
                return str(directory) + value[len(mount_path.rstrip("/")) :]
        if self.image_workdir and _under(value, self.image_workdir):
            return str(self.workdir) + value[len(self.image_workdir.rstrip("/")) :]
        return value

    def volume(self, mount_path: str) -> Path:
        return self.mounts[mount_path]

    def _spec(self, argv: Sequence[str]) -> Path:
        etc = {}
        for entry, number in (("passwd", self.uid), ("group", self.gid)):
            source = Path("/etc") / entry
            if source.is_file():
                kept = [
                    line
                    for line in source.read_text(encoding="utf-8").splitlines(keepends=True)
                    if len(line.split(":")) < 3 or line.split(":")[2] != str(number)
                ]
                kept += [f"{line}\n" for line in self.accounts.get(entry, [])]
                copy = self.workspace / f"{self.name}-{entry}"
                copy.write_text("".join(kept), encoding="utf-8")
                copy.chmod(0o644)
                etc[str(source)] = str(copy)
        volumes = []
        for mount_path, directory in self.mounts.items():
            target = str(directory) if self._rebased(mount_path) else mount_path
            volumes.append((str(directory), target))
        env = {k: self.local(v) for k, v in self.env.items()}
        spec = {
            "uid": self.uid,
            "gid": self.gid,
            "cwd": str(self.workdir),
            "argv": [self.local(a) for a in argv],
            "env": env,
            "etc": etc,
            "volumes": volumes,
            "read_only_root": self.read_only_root,
        }
        fd, name = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".json", dir=self.workspace)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        return Path(name)

    def _argv(self, argv: Sequence[str]) -> list[str]:
        spec = self._spec(argv)
        return [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            sys.executable,
            "-m",
            "mlopsctl.rehearse._podexec",
            str(spec),
        ]

    def start(self, argv: Sequence[str], *, log: Path, port: int | None = None) -> _proc.Service:
        return _proc.start(self._argv(argv), name=self.name, env=_root_env(), log=log, port=port)

    def run(self, argv: Sequence[str], *, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return _proc.run(self._argv(argv), env=_root_env(), timeout=timeout)


def _root_env() -> dict[str, str]:
    """For the privileged launcher only; the pod's own environment is in the spec."""
    return {"PATH": os.environ.get("PATH", SYSTEM_PATH), "LANG": "C.UTF-8"}


def _under(value: str, prefix: str) -> bool:
    prefix = prefix.rstrip("/")
    return value == prefix or value.startswith(prefix + "/")


def runs_as(python: Path, uid: int, gid: int) -> bool:
    """Whether ``uid`` can start this interpreter (an interpreter under /root cannot)."""
    result = subprocess.run(
        [
            "setpriv",
            "--reuid",
            str(uid),
            "--regid",
            str(gid),
            "--clear-groups",
            "--",
            str(python),
            "-c",
            "",
        ],
        env={"PATH": SYSTEM_PATH},
        capture_output=True,
        check=False,
        cwd="/",
    )
    return result.returncode == 0
