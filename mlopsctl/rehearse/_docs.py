"""``docs/rehearse.md``: what ``mlopsctl rehearse`` needs on this machine and what it installs,
from the constants the rehearsal itself uses."""

from __future__ import annotations


def rehearse_md() -> str:
    from mlopsctl.rehearse import (
        batch,
        ci,
        compose,
        load,
        objectstore,
        observe,
        pipeline,
        postgres,
        runner,
        serving,
    )

    packages = ", ".join(f"`{p}`" for p in sorted({p for p, _ in observe.TOOLS.values()}))
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
            "- Prometheus, Alertmanager and the Pushgateway, the monitoring component (Debian",
            f"  packages {packages});",
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
            f"- `{serving.STORAGE_INITIALIZER_REQUIREMENT}`: KServe's storage initializer, which",
            "  downloads the published model into the serving runtime's `/mnt/models` volume;",
            "- each rehearsed image's packages, exactly as its Dockerfile installs them (the",
            "  project's own pins, from `mlopsctl/data/versions.yaml` when generated); the",
            "  project image's holds kfp where the project has a Kubeflow pipeline, which runs",
            f"  with kfp's local runner in that image's pod (`{pipeline.PIPELINE}`), each step",
            "  given the Secret keys its kfp-kubernetes platform config maps, as a kubelet would;",
            f"- `{load.LOCUST_REQUIREMENT}`: the load test's generator, run as its own process",
            "  against the serving runtime held to the pod's CPU limit (a cgroup CPU quota, else",
            "  CPU affinity). `--measure` writes what one replica sustained within the SLA into",
            f"  `mlopsctl.yaml` (`measured`) and the report into `{load.LOAD_REPORT}`;",
            "  `mlopsctl update` then sizes replicas and concurrency from it;",
            "- for a Spark project, the S3A connector"
            f" ({', '.join(batch.CONNECTOR_JARS)}) from the sdist of",
            f"  `{batch.CONNECTOR_PACKAGE}` (the jars the Spark image adds by sha256, checked),"
            " and Java 17 (`openjdk-17-jre-headless`).",
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
