"""``docs/rehearse.md``: what ``mlopsctl rehearse`` needs on this machine and what it installs,
from the constants the rehearsal itself uses."""

from __future__ import annotations


def rehearse_md() -> str:
    from mlopsctl.rehearse import compose, objectstore, postgres, runner

    return "\n".join(
        [
            "# What `mlopsctl rehearse` installs",
            "",
            "Generated from `mlopsctl/rehearse/` by `make docs`; do not edit by hand.",
            "",
            "The rehearsal runs as root (it switches to each pod's uid in a private mount",
            "namespace) and never changes this machine's packages. It needs:",
            "",
            "- PostgreSQL, the tracking backend (Debian package `postgresql`; its `initdb` is",
            f"  found on PATH or as `{postgres.DEBIAN_BINARIES}`);",
            "- util-linux (`unshare`, `mount`, `setpriv`) and the Python of the project's",
            "  `python_env.yaml` with its `venv` module, readable by every user.",
            "",
            f"It installs from PyPI, into virtual environments under `{runner.DEFAULT_CACHE}`",
            f"(or `${runner.CACHE_ENV}`), keyed by what they hold and reused by later rehearsals:",
            "",
            f"- `{objectstore.SERVER_REQUIREMENT}`: moto's standalone S3 server, the artifact",
            "  store (its own tool, not one of the project's pins); for a project without",
            "  Kubernetes it stands for the compose file's `minio` service;",
            f"- `{compose.READER_REQUIREMENT}`: reads `{compose.COMPOSE_FILE}` as Compose",
            "  does (interpolation from the env file the documented command reads, normal form),",
            "  without a container engine; each service is then started as a local process;",
            "- each rehearsed image's packages, exactly as its Dockerfile installs them (the",
            "  project's own pins, from `mlopsctl/data/versions.yaml` when generated).",
            "",
        ]
    )
