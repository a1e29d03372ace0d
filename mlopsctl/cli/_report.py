"""Rich renderings of a design, shared by init's summary and assess."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlopsctl.design import StackDesign


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
