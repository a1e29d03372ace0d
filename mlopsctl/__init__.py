"""mlopsctl: MLOps requirements in, an explained stack decision and a working repository out.

The public API (``mlopsctl.api``) is small and typed, one function per command: ``assess``,
``generate``, ``update`` and ``validate``, plus ``load_requirements``::

    from mlopsctl import api

    design = api.assess({"project_name": "fraud", "model_type": "classification", ...})
    design.stack.serving   # "kserve"
    api.generate(design, "fraud")

``assess``, ``generate`` and ``load_requirements`` are also importable from ``mlopsctl`` itself
(``mlopsctl.update`` is the update machinery's module, hence ``api.update``).

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
