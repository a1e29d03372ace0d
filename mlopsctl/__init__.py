"""mlopsctl: MLOps requirements in, an explained stack decision and a working repository out.

The public API is small and typed::

    from mlopsctl import assess, load_requirements

    design = assess({"project_name": "fraud", "model_type": "classification", ...})
    design.stack.serving   # "kserve"

Heavy modules are imported lazily so that ``mlopsctl --help`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "assess", "generate", "load_requirements"]

if TYPE_CHECKING:
    from mlopsctl.api import assess, generate, load_requirements


def __getattr__(name: str) -> Any:
    if name in {"assess", "generate", "load_requirements"}:
        from mlopsctl import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlopsctl' has no attribute {name!r}")
