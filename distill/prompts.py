"""The label sets a bundle offers, as data: label -> prompts, from aligner/tasks.json's templates."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

#: label set -> label -> descriptions (each expanded with every template)
LABEL_SETS: dict[str, dict[str, list[str]]] = {
    "heart": {"normal": ["normal heart sounds", "a normal heart rhythm"],
              "abnormal": ["abnormal heart sounds", "a cardiac abnormality", "a heart murmur"]},
    "lung": {"normal": ["normal breath sounds", "clear breath sounds"],  # no negated findings: see reports.py
             "crackles": ["crackles, brief discontinuous popping sounds", "crackles"],
             "wheezes": ["wheezes, continuous high-pitched musical whistling sounds", "wheezing"]},
    "sound": {"cough": ["a cough", "coughing", "forceful coughs, explosive bursts of sound"],
              "breathing": ["breathing", "breath sounds"],
              "speech": ["speech", "counting aloud", "a sustained vowel"],
              "other": ["an environmental sound", "a heart sound", "ambient noise"]},
}


@lru_cache(maxsize=1)
def templates() -> list[str]:
    return list(json.loads(resources.files("aligner").joinpath("tasks.json").read_text())["prompts"]["templates"])


def label_sets() -> dict[str, dict[str, list[str]]]:
    """{label set: {label: [prompt, ...]}} with every template applied."""
    return {name: {label: [t.format(d) for d in descs for t in templates()] for label, descs in labels.items()}
            for name, labels in LABEL_SETS.items()}
