"""``docs/rehearse.md``: what ``mlopsctl rehearse`` needs on this machine and what it installs,
from the constants the rehearsal itself uses."""

from __future__ import annotations


def rehearse_md() -> str:
    from mlopsctl.rehearse import ci, objectstore, postgres, runner

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
            "  store (its own tool, not one of the project's pins);",
            "- each rehearsed image's packages, exactly as its Dockerfile installs them (the",
            "  project's own pins, from `mlopsctl/data/versions.yaml` when generated).",
            "",
            "Its `ci` component runs the project's CI (GitHub workflows, `.gitlab-ci.yml`, the",
            "Jenkinsfile): every job in order, in a fresh clone, with git and the Python of",
            "`python_env.yaml`; mlopsctl is installed by `ci/install-mlopsctl.sh` from a wheel it",
            "builds of the running mlopsctl's sources. `apt-get install` steps pass when the",
            "packages are installed here; steps that run "
            + ", ".join(f"`{c}`" for c in ci.NEEDS_COMMANDS)
            + " (a container",
            "engine, a cluster, a cloud login) or read a CI setting it has no stand-in for are",
            "not run but checked offline (the paths they name, the images they pull, the",
            "manifests they apply).",
            "",
        ]
    )
