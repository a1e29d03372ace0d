"""``mlopsctl rehearse``: run the production half of a generated repository as local processes,
wired as its manifests wire them, and check every handoff between them.

Each component is a module with one ``rehearse_*`` function that takes the shared
:class:`~mlopsctl.rehearse.stage.Stage` (the project, the running services, the cluster network
and the report) and appends its handoffs to the report; ``runner`` lists them in order. A
component whose prerequisite failed is reported as not reached instead of running.
"""

from __future__ import annotations

from mlopsctl.rehearse.runner import rehearse
from mlopsctl.rehearse.stage import Handoff, Rehearsal

__all__ = ["Handoff", "Rehearsal", "rehearse"]
