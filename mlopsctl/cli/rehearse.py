"""``mlopsctl rehearse DIR``: run a generated repository's production half as local processes,
wired as its manifests wire them, and report each handoff."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mlopsctl.rehearse import Rehearsal


def register(app: typer.Typer) -> None:
    app.command(
        "rehearse",
        help="Rehearse production on this machine: start PostgreSQL, an S3-compatible store and "
        "the MLflow tracking server exactly as the Kubernetes manifests (without Kubernetes, "
        "deploy/mlflow/docker-compose.yaml) run them, run the "
        "project image's entry points as the restricted pods run them (their uid without a "
        "passwd entry, read-only root, only declared volumes writable), and check each "
        "handoff. Needs root (it switches uids in a private mount namespace) and PostgreSQL; "
        "installs the S3-compatible server and the images' packages into its cache (see "
        "docs/rehearse.md). The load test reports one replica's p95 latency and sustainable "
        "throughput against the SLA; --measure writes them into the project (mlopsctl.yaml "
        "`measured`, docs/load-test.json) for `mlopsctl update` to size from. Exit 0 every "
        "handoff passed, 1 a handoff failed, 2 a local tool is missing or DIR is no generated "
        "repository.",
    )(rehearse_cli)


def rehearse_cli(
    directory: Annotated[
        Path, typer.Argument(help="Root of the generated repository.", file_okay=False)
    ] = Path("."),
    keep: Annotated[
        bool,
        typer.Option("--keep", help="Keep the rehearsal's directory (logs, pods' volumes)."),
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            metavar="COMPONENT",
            help="Run only this component (repeatable); the components it needs that are left "
            "out are reported as not reached. Components: tracking-server, compose, "
            "entrypoints, serving, load, monitoring, pipeline, batch, ci.",
        ),
    ] = None,
    skip: Annotated[
        list[str] | None,
        typer.Option(
            "--skip",
            metavar="COMPONENT",
            help="Leave this component out (repeatable), e.g. --skip ci: running every CI job "
            "in a fresh clone takes the longest.",
        ),
    ] = None,
    measure: Annotated[
        bool,
        typer.Option(
            "--measure",
            help="Write the capacity the load test measured into the project: the `measured` "
            "section of mlopsctl.yaml and the load report docs/load-test.json (without it, "
            "nothing in the project is written).",
        ),
    ] = False,
) -> None:
    from mlopsctl.cli._common import errors_to_exit_codes

    with errors_to_exit_codes():
        from mlopsctl.rehearse import rehearse

        report = rehearse(
            directory,
            only=tuple(only or ()),
            skip=tuple(skip or ()),
            keep=keep,
            measure=measure,
        )
        _print(report)
        raise typer.Exit(0 if report.passed else 1)


def _print(report: Rehearsal) -> None:
    marks = {True: "pass", False: "FAIL", None: "skip"}
    for handoff in report.handoffs:
        typer.echo(f"{marks[handoff.passed]}  {handoff.component}: {handoff.name}")
        typer.echo(f"      checked: {handoff.checked}")
        if handoff.detail and handoff.passed is not True:
            for line in handoff.detail.splitlines():
                typer.echo(f"      {line}")
    passed = sum(1 for h in report.handoffs if h.passed)
    failed = sum(1 for h in report.handoffs if h.passed is False)
    skipped = sum(1 for h in report.handoffs if h.passed is None)
    typer.echo(f"{passed} handoffs passed, {failed} failed, {skipped} not reached")
    if report.workspace:
        typer.echo(f"logs and volumes kept in {report.workspace}")
