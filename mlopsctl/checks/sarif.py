"""SARIF 2.1.0 output, for GitHub code scanning and other SARIF consumers."""

from __future__ import annotations

from typing import Any

from mlopsctl import __version__
from mlopsctl.checks._model import Report, load_catalog

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def sarif_log(report: Report) -> dict[str, Any]:
    specs = list(load_catalog())
    index = {s.id: i for i, s in enumerate(specs)}
    rules = [
        {
            "id": s.id,
            "name": "".join(part.capitalize() for part in s.name.split("-")),
            "shortDescription": {"text": s.title},
            "fullDescription": {"text": s.rationale},
            "help": {"text": s.remediation},
            "defaultConfiguration": {"level": s.severity},
            "properties": {"category": s.category, "tags": [s.category]},
        }
        for s in specs
    ]
    results = []
    for f in report.findings:
        location: dict[str, Any] = {
            "physicalLocation": {
                "artifactLocation": {"uri": f.path, "uriBaseId": "ROOT"},
            }
        }
        if f.line:
            location["physicalLocation"]["region"] = {"startLine": f.line}
        results.append(
            {
                "ruleId": f.check,
                "ruleIndex": index[f.check],
                "level": f.severity,
                "message": {
                    "text": f"{f.message} ({f.remediation})" if f.remediation else f.message
                },
                "locations": [location],
            }
        )
    notifications = [
        {"level": "note", "message": {"text": f"{n.check}: {n.message}"}} for n in report.notes
    ]
    root_uri = report.root.resolve().as_uri() + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlopsctl",
                        "version": __version__,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"ROOT": {"uri": root_uri}},
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
