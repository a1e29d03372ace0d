"""Measure mlopsctl against its baselines, side by side, in one run.

    .venv/bin/python benchmarks/run.py            # 7 runs per figure
    .venv/bin/python benchmarks/run.py --runs 15

Figures are medians of wall time; each ratio is against a baseline measured in the same run on
the same machine, so a busy machine moves both. docs/performance.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _installed import compile_bytecode

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MLOPSCTL = (
    [str(BIN / "mlopsctl")]
    if (BIN / "mlopsctl").exists()
    else [
        sys.executable,
        "-m",
        "mlopsctl",
    ]
)

# copier alone: the same template and the same data, with only the escaping helpers imported.
_COPIER_ONLY = """
import json, sys
from copier import run_copy
from mlopsctl.escaping import json_document, json_value, yaml_value
data = json.load(open(sys.argv[3]))
data["yv"], data["jv"], data["jv_doc"] = yaml_value, json_value, json_document
run_copy(sys.argv[1], sys.argv[2], data=data, defaults=True, quiet=True, overwrite=True,
         unsafe=False, skip_tasks=True)
"""


def median_time(fn: Callable[[int], object], runs: int) -> float:
    times = []
    for i in range(runs):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_medians(commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    """The median time of each command, run in turn (one of each per round), so that a machine
    getting faster or slower during the measurement moves every command alike, not the ratio."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            start = time.perf_counter()
            run(cmd)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def run(cmd: list[str], cwd: Path | None = None) -> None:
    subprocess.run(cmd, check=True, capture_output=True, cwd=cwd)


def row(name: str, value: float, base_name: str, base: float, target: str) -> str:
    ratio = value / base if base else float("nan")
    return (
        f"| {name} | {value * 1000:8.0f} ms | {base_name} | {base * 1000:8.0f} ms "
        f"| {ratio:5.2f}x | {target} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    compile_bytecode()
    runs = args.runs
    work = Path(tempfile.mkdtemp(prefix="mlopsctl-bench-"))
    rows: list[str] = []
    notes: list[str] = []
    try:
        # ---- Startup ------------------------------------------------------------------------
        startup = interleaved_medians(
            {
                "typer": [sys.executable, "-c", "import typer"],
                "python": [sys.executable, "-c", "pass"],
                "help": [*MLOPSCTL, "--help"],
                "version": [*MLOPSCTL, "--version"],
                "init_help": [*MLOPSCTL, "init", "--help"],
            },
            runs,
        )
        typer_base, python_base = startup["typer"], startup["python"]
        helped, version, init_help = startup["help"], startup["version"], startup["init_help"]
        rows.append(
            row("`mlopsctl --help`", helped, "`python -c 'import typer'`", typer_base, "< 1.2x")
        )
        rows.append(
            row("`mlopsctl --version`", version, "`python -c 'import typer'`", typer_base, "< 1.2x")
        )
        rows.append(
            row("`mlopsctl init --help`", init_help, "`python -c 'import typer'`", typer_base, "-")
        )
        rows.append(
            row("`python -c 'import typer'`", typer_base, "`python -c pass`", python_base, "-")
        )

        # ---- init vs copier alone --------------------------------------------------------------
        from mlopsctl.api import assess, load_requirements
        from mlopsctl.render import context, render_to, render_tree, template_dir

        design = assess(load_requirements({"project_name": "bench"}, defaults=True))
        data = {k: v for k, v in context(design).items() if not callable(v)}
        data_file = work / "data.json"
        data_file.write_text(json.dumps(data))
        template = str(template_dir())

        def copier_only(i: int) -> None:
            run([sys.executable, "-c", _COPIER_ONLY, template, str(work / f"c{i}"), str(data_file)])

        def init(i: int) -> None:
            run(
                [
                    *MLOPSCTL,
                    "init",
                    str(work / f"i{i}"),
                    "--defaults",
                    "--set",
                    "project_name=bench",
                ]
            )

        copier_process = median_time(copier_only, runs)
        init_process = median_time(init, runs)
        files = sum(1 for p in (work / "i0").rglob("*") if p.is_file())
        rows.append(
            row(
                f"`mlopsctl init --defaults` ({files} files)",
                init_process,
                "copier `run_copy` alone, whole process",
                copier_process,
                "< 1.5x and < 0.5 s",
            )
        )

        render_to(design, work / "warm-copier")
        copier_in = median_time(lambda i: render_to(design, work / f"rc{i}"), runs)
        render_tree(design, work / "warm-fast")
        fast_in = median_time(lambda i: render_tree(design, work / f"rf{i}"), runs)
        rows.append(
            row(
                "render in-process (mlopsctl)",
                fast_in,
                "copier `run_copy` in-process",
                copier_in,
                "-",
            )
        )

        # ---- update ---------------------------------------------------------------------------
        probe = subprocess.run([*MLOPSCTL, "update", "--help"], capture_output=True, check=False)
        if probe.returncode != 0:
            notes.append("`mlopsctl update` does not exist in this build: its row is skipped.")
        else:
            rows.extend(_update_rows(work, runs, init_process, notes))

        # ---- Growth with the number of answer sets -------------------------------------------
        from mlopsctl.render import generate

        sets = [
            load_requirements(
                {
                    "project_name": f"g{i}",
                    "team_size": 1 + i % 50,
                    "scale_requirements": {"rps": 10.0 + i, "latency_ms": 100.0 + i},
                },
                defaults=True,
            )
            for i in range(100)
        ]
        growth: list[str] = []
        for n in (1, 10, 100):
            out = work / f"grow{n}"

            def many(_: int, n: int = n, out: Path = out) -> None:
                shutil.rmtree(out, ignore_errors=True)
                for i in range(n):
                    generate(assess(sets[i]), out / str(i))

            total = median_time(many, max(1, min(runs, 3)))
            growth.append(f"| {n}x | {total * 1000:8.0f} ms | {total / n * 1000:6.1f} ms |")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, medians of {runs} runs\n")
    print("| measured | median | baseline | baseline median | ratio | target |")
    print("| --- | ---: | --- | ---: | ---: | --- |")
    print("\n".join(rows))
    print(
        "\nGeneration of N answer sets in one process (`mlopsctl.api.generate`, each into its"
        " own directory):\n"
    )
    print("| answer sets | total | per set |")
    print("| --- | ---: | ---: |")
    print("\n".join(growth))
    for note in notes:
        print(f"\nnote: {note}")
    return 0


def _update_rows(work: Path, runs: int, init_time: float, notes: list[str]) -> list[str]:
    """`mlopsctl update` with one answer changed, against init of the same project."""
    times = []
    for i in range(runs):
        project = work / f"u{i}"
        run([*MLOPSCTL, "init", str(project), "--defaults", "--set", "project_name=bench"])
        for cmd in (
            ["git", "init", "-q"],
            ["git", "add", "-A"],
            [
                "git",
                "-c",
                "user.name=b",
                "-c",
                "user.email=b@example.com",
                "commit",
                "-qm",
                "generated",
            ],
        ):
            run(cmd, cwd=project)
        start = time.perf_counter()
        proc = subprocess.run(
            [*MLOPSCTL, "update", str(project), "--set", "team_size=12"],
            capture_output=True,
            text=True,
            check=False,
        )
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            notes.append(f"`mlopsctl update` exited {proc.returncode}: {proc.stderr.strip()[:200]}")
            return []
    return [
        row(
            "`mlopsctl update` (one answer changed)",
            statistics.median(times),
            "`mlopsctl init --defaults`",
            init_time,
            "-",
        )
    ]


if __name__ == "__main__":
    sys.exit(main())
