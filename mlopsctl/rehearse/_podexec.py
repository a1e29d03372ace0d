"""Started as root inside a new mount namespace (``unshare --mount``): lays out the filesystem the
restricted pod sees, drops to the pod's uid and gid and executes its command.

    unshare --mount --propagation private -- python -m mlopsctl.rehearse._podexec SPEC.json

In that namespace only: ``/etc/passwd`` and ``/etc/group`` are replaced by copies without the
pod's uid and gid (a container image has no entry for the uid a pod runs as), every mount but
``/proc``, ``/sys`` and ``/dev`` is remounted read-only when the pod's root is, and each declared
volume is a bind mount of its own writable directory (at its mount path when that path exists
here, else at the local path the command was given instead).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

_KERNEL_TREES = ("/proc", "/sys", "/dev")
_PR_SET_NO_NEW_PRIVS = 38


def _bind(source: str, target: str, *, writable: bool = False) -> None:
    subprocess.run(["mount", "--bind", "--", source, target], check=True, stdin=subprocess.DEVNULL)
    if writable:
        # A bind mount keeps the read-only flag of the mount its source is on.
        subprocess.run(
            ["mount", "-o", "remount,bind,rw", "--", target], check=True, stdin=subprocess.DEVNULL
        )


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        targets = [line.split()[4] for line in info]
    return [
        t.encode().decode("unicode_escape")
        for t in targets
        if not any(t == k or t.startswith(k + "/") for k in _KERNEL_TREES)
    ]


def main(spec_path: str) -> None:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    for target, replacement in spec["etc"].items():
        _bind(replacement, target)
    if spec["read_only_root"]:
        for target in _mount_points():
            # A mount point may be shadowed by a later mount on a parent; remount what is there.
            subprocess.run(
                ["mount", "-o", "remount,bind,ro", "--", target],
                stdin=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
    for source, target in spec["volumes"]:
        _bind(source, target, writable=True)
    gid, uid = spec["gid"], spec["uid"]
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    os.chdir(spec["cwd"])
    argv = spec["argv"]
    os.execvpe(argv[0], argv, spec["env"])


if __name__ == "__main__":
    main(sys.argv[1])
