"""The label sets a bundle offers: re-exported from the one table, ``sdk/label_sets.json``."""

from __future__ import annotations

from acula.sdk.label_sets import label_sets, templates

__all__ = ["label_sets", "templates"]
