"""Rich renderings of a design, shared by init's summary and assess."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape as markup_escape
from rich.table import Table

from mlopsctl.cli._text import printable
from mlopsctl.design import Decision, ReferenceOut, StackDesign


def escape(text: str) -> str:
    """``text`` for rich markup, control characters escaped (see ``mlopsctl.cli._text``)."""
    return markup_escape(printable(text))


def print_summary(console: Console, design: StackDesign) -> None:
    req = design.requirements
    console.print(f"\n[bold]Summary for {escape(req.project_name)}[/]  tier [bold]{design.tier}[/]")
    answers = Table(show_header=False, box=None, pad_edge=False)
    for key, value in req.model_dump(mode="json", exclude_none=True).items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if v is not None)
        elif isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        answers.add_row(f"  {key}", escape(str(value)))
    console.print(answers)
    stack = Table(title="Stack", title_justify="left")
    stack.add_column("capability")
    stack.add_column("choice")
    stack.add_column("rules")
    for capability, choice in design.stack.model_dump().items():
        rules = ", ".join(d.rule for d in design.decisions if d.capability == capability)
        stack.add_row(capability, choice, rules)
    console.print(stack)
    for warning in design.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _sources(decision_refs: list[ReferenceOut]) -> str:
    return "; ".join(f"{r.title} <{r.url}> (accessed {r.accessed})" for r in decision_refs)


def print_report(console: Console, design: StackDesign) -> None:
    """The full ``assess`` report: stack, reasons with sources, rejected alternatives, numbers
    with their formulas and assumptions, alerts, governance, quick start and minimal config."""
    from mlopsctl.design import TIER_COMMAND

    req = design.requirements
    console.print(
        f"[bold]Recommended stack for {escape(req.project_name)}[/]: tier [bold]{design.tier}[/] "
        f"(generate it with `mlopsctl init`; the tier's command is `{TIER_COMMAND[design.tier]}`)"
    )
    stack = Table(title="Stack", title_justify="left")
    stack.add_column("capability")
    stack.add_column("choice", style="bold")
    stack.add_column("decided by")
    for capability, choice in design.stack.model_dump().items():
        rules = ", ".join(d.rule for d in design.decisions if d.capability == capability)
        stack.add_row(capability, choice, rules)
    console.print(stack)

    console.print("\n[bold]Why[/] (one entry per rule; `mlopsctl rules explain ID` for more)")
    grouped: dict[str, list[Decision]] = {}
    for d in design.decisions:
        if not d.capability.startswith(("sizing.", "thresholds.")):
            grouped.setdefault(d.rule, []).append(d)
    for rule_id, items in grouped.items():
        choices = ", ".join(f"{d.capability}={d.choice}" for d in items)
        console.print(f"  [cyan]{rule_id}[/] [bold]{escape(choices)}[/]")
        console.print(f"      {escape(items[0].reason)}")
        if items[0].references:
            console.print(f"      sources: {escape(_sources(items[0].references))}", style="dim")

    if design.alternatives:
        alts = Table(title="Rejected alternatives", title_justify="left")
        for col in ("capability", "alternative", "proposed by", "rejected by", "why not"):
            alts.add_column(col)
        for a in design.alternatives:
            why = a.reason or f"{a.overridden_by} takes precedence over {a.proposed_by}"
            alts.add_row(a.capability, a.choice, a.proposed_by, a.overridden_by, escape(why))
        console.print(alts)

    th = Table(title="Monitoring thresholds", title_justify="left")
    th.add_column("threshold")
    th.add_column("value")
    th.add_column("decided by")
    for key, value in design.thresholds.model_dump().items():
        owner = next((d for d in design.decisions if d.capability == f"thresholds.{key}"), None)
        who = owner.rule if owner else "-"
        if owner and owner.formula:
            who += f" ({owner.formula})"
        # A threshold only a measurement sets (the saturation alert's) is None without one; the
        # serving thresholds are None where nothing serves online.
        missing = "none: not measured" if design.components.online else "none: no online endpoint"
        shown = missing if value is None else f"{value:g}"
        th.add_row(key, shown, escape(who))
    console.print(th)

    sz = Table(title="Sizing", title_justify="left")
    sz.add_column("number")
    sz.add_column("value")
    sz.add_column("formula")
    for d in design.decisions:
        if d.capability.startswith("sizing."):
            sz.add_row(
                d.capability.removeprefix("sizing."),
                escape("-" if d.choice is None else str(d.choice)),
                escape(d.formula or ""),
            )
    console.print(sz)
    console.print("[bold]Assumptions[/]")
    for line in design.sizing.assumptions:
        console.print(f"  - {escape(line)}")

    al = Table(title="Alerts", title_justify="left")
    for col in ("priority", "alert", "notify", "signal"):
        al.add_column(col)
    for al_ in design.alerts:
        al.add_row(al_.priority, al_.name, al_.notify, escape(al_.signal))
    console.print(al)

    if design.governance:
        console.print("[bold]Governance controls[/]: " + ", ".join(design.governance))

    qs = design.quickstart
    console.print("\n[bold]Quick-start checklist[/]")
    for i, step in enumerate(qs.checklist, start=1):
        console.print(f"  {i}. {escape(step)}")
    console.print("\n[bold]Minimal configuration[/]")
    cfg = Table(show_header=False, box=None, pad_edge=False)
    cfg.add_row("  tracking URI", escape(qs.tracking_uri))
    cfg.add_row("  artifact store", escape(qs.artifact_store))
    cfg.add_row(
        "  registered model",
        f"{escape(qs.registered_model_name)} (alias "
        f"{escape(qs.registry_alias)}: {escape(qs.model_uri)})",
    )
    cfg.add_row("  deploy", escape(qs.deploy_command))
    for name, query in qs.monitoring_queries.items():
        cfg.add_row(f"  query {name}", escape(query))
    console.print(cfg)

    for warning in design.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def print_next_steps(console: Console, design: StackDesign, steps: list[tuple[str, str]]) -> None:
    """After ``init``: what was decided, in one line, and the next commands for the project."""
    from mlopsctl.design import TIER_COMMAND
    from mlopsctl.reports import decided

    choices = ", ".join(f"{key} {value}" for key, value in decided(design).items())
    console.print(
        f"\n[bold]Decided[/]: tier {design.tier} ({TIER_COMMAND[design.tier]}); {escape(choices)}"
    )
    console.print(
        "  why each: docs/decisions.md; to change an answer: edit mlopsctl.yaml, then "
        "mlopsctl update"
    )
    console.print("[bold]Next[/]:")
    width = max((len(command) for command, what in steps if command and what), default=0)
    for command, what in steps:
        if not command:
            console.print(f"  {escape(what)}")
        elif what:
            console.print(f"  {escape(command.ljust(width))}  # {escape(what)}")
        else:
            console.print(f"  {escape(command)}")
