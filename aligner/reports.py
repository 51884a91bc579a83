"""Clinical reports from recording metadata, and the faithfulness check.

The template writer (the default) fills per-modality templates held as data in
``report_templates.json``; a seeded generator picks among phrasings so reports
vary without ever stating a finding the metadata does not hold.  Unknown fields
are left out, not guessed.  :func:`unfaithful_findings` checks any report (also
an LLM's) against the metadata.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from acula.aligner.records import Record

COVID_PHRASES = {
    "healthy": "The participant reported no COVID-19 infection and no respiratory illness.",
    "no_resp_illness_exposed": "The participant was exposed to COVID-19 but has no respiratory illness.",
    "resp_illness_not_identified": "The participant has a respiratory illness that is not COVID-19.",
    "positive_mild": "The participant tested positive for COVID-19 with mild symptoms.",
    "positive_moderate": "The participant tested positive for COVID-19 with moderate symptoms.",
    "positive_asymp": "The participant tested positive for COVID-19 without symptoms.",
    "recovered_full": "The participant has fully recovered from COVID-19.",
}
SYMPTOMS = {"fever": "fever", "cough_symptom": "a cough", "cold": "a cold", "sore_throat": "a sore throat",
            "breathing_difficulty": "breathing difficulty", "fatigue": "fatigue", "muscle_pain": "muscle pain",
            "loss_of_smell": "loss of smell and taste", "diarrhoea": "diarrhoea"}
CONDITIONS = {"asthma": "asthma", "hypertension": "hypertension", "diabetes": "diabetes",
              "chronic_lung_disease": "chronic lung disease", "ischemic_heart_disease": "ischemic heart disease",
              "pneumonia": "pneumonia"}
PARTICIPANT_MODALITIES = {"cough", "breathing", "speech"}

#: Fields whose values a report may quote verbatim (an ESC-10 "fire crackling" is no lung crackle).
DESCRIPTIVE_FIELDS = ("sound_class", "sound_type", "recording_device", "chest_location", "auscultation_location")
NEGATION_BEFORE = re.compile(r"\b(no|not|without|absence of|absent|denies|negative for|free of|nor)\b[^.;]{0,25}$")
NEGATION_AFTER = re.compile(r"^[^.;]{0,20}\b(absent|not present|not heard|not detected)\b")


@dataclass(frozen=True)
class LexiconTerm:
    """One clinical term of ``clinical_lexicon.json``: its synonyms as one regex, and the metadata that makes it
    true (field -> values; ``"*"``: the field's own value names the term)."""

    term: str
    kind: str  # finding | diagnosis | symptom | device
    pattern: re.Pattern[str]
    supported_by: dict[str, frozenset[str]]

    def supported(self, known: dict[str, str]) -> bool:
        return any(f in known and (known[f] in values or ("*" in values and self.pattern.search(known[f])))
                   for f, values in self.supported_by.items())


@lru_cache(maxsize=1)
def load_lexicon() -> tuple[LexiconTerm, ...]:
    """The clinical terms a report may state or deny only with the metadata's support (package data)."""
    text = resources.files("acula.aligner").joinpath("clinical_lexicon.json").read_text(encoding="utf-8")
    return tuple(LexiconTerm(t["term"], t["kind"], re.compile("|".join(f"(?:{p})" for p in t["patterns"])),
                             {f: frozenset(v.lower() for v in vals) for f, vals in t["supported_by"].items()})
                 for t in json.loads(text)["terms"])


@lru_cache(maxsize=1)
def load_templates() -> dict[str, Any]:
    text = resources.files("acula.aligner").joinpath("report_templates.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _age_phrase(age: Any) -> str | None:
    if not isinstance(age, (int, float)) or age != age or age < 0:
        return None
    if age < 1:
        return f"{max(1, round(age * 12))}-month-old"
    return f"{int(age)}-year-old"


def derived_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """Metadata plus phrases built from it; values are strings, unknown fields absent."""
    out = {k: str(v) for k, v in meta.items() if v is not None}
    for key in ("crackles", "wheezes"):
        if key in meta:
            out[key] = str(int(meta[key]))
    if (age := _age_phrase(meta.get("age"))) is not None:
        out["age_phrase"] = age
    if meta.get("covid_status") in COVID_PHRASES:
        out["covid_phrase"] = COVID_PHRASES[meta["covid_status"]]
    symptoms = [text for key, text in SYMPTOMS.items() if meta.get(key) is True]
    if symptoms:
        out["symptom_list"] = ", ".join(symptoms)
    conditions = [text for key, text in CONDITIONS.items() if meta.get(key) is True]
    if conditions:
        out["condition_list"] = ", ".join(conditions)
    return out


def _rng_for(record_id: str, seed: int) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{record_id}".encode()).digest()[:8], "big"))


#: ``write_template_report``'s styles: ``full`` (every slot the metadata supports: the reports the shipped default
#: was aligned to) and ``neutral`` (issue 24's training-signal lever: no sentence naming the recording device,
#: and no negated finding: a phrasing that negates, "No crackles are heard.", is dropped, and a slot left with
#: none is left out, so an absent finding is simply not stated)
REPORT_STYLES = ("full", "neutral")
#: the fields a neutral report never names (the device, which stands for the site and data set)
NEUTRAL_OMITS = ("recording_device",)
#: a phrasing that negates (a neutral report holds none)
NEGATING = re.compile(r"\b(no|not|non|without|absent|does not|none)\b|\bnon-", re.IGNORECASE)


def write_template_report(record: Record, seed: int = 0, style: str = "full") -> str:
    """A deterministic report for one record (same record, seed and style -> same text); ``style``: one of
    :data:`REPORT_STYLES`."""
    if style not in REPORT_STYLES:
        raise ValueError(f"report style must be one of {REPORT_STYLES}, got {style!r}")
    templates = load_templates()
    fields = derived_fields(record.metadata)
    rng = _rng_for(record.record_id, seed)
    slots = list(templates[record.modality])
    if record.modality in PARTICIPANT_MODALITIES:
        slots += templates["participant"]
    sentences = []
    for slot in slots:
        if not all(k in fields for k in slot.get("requires", [])):
            continue
        if style == "neutral" and any(k in NEUTRAL_OMITS for k in slot.get("requires", [])):
            continue
        if "values" in slot:
            options = slot["values"].get(fields.get(slot["field"], ""), [])
        else:
            options = slot["texts"]
        if style == "neutral":
            options = [o for o in options if not NEGATING.search(o.format(**fields))]
        if not options:
            continue
        sentences.append(rng.choice(options).format(**fields))
    return " ".join(sentences)


def unfaithful_findings(report: str, metadata: dict[str, Any]) -> list[str]:
    """Every lexicon term (finding, diagnosis, symptom, device; ``clinical_lexicon.json``) the report states
    or denies that the metadata does not support: an unknown finding may be neither affirmed nor denied."""
    known = {k: str(v).lower() for k, v in derived_fields(metadata).items() if str(v).lower() != "unknown"}
    text = report.lower()
    for field in DESCRIPTIVE_FIELDS:
        if len(known.get(field, "")) > 3:
            text = text.replace(known[field], " ")
    problems = []
    for term in load_lexicon():
        for match in term.pattern.finditer(text):
            negated = bool(NEGATION_BEFORE.search(text[: match.start()]) or NEGATION_AFTER.search(text[match.end():]))
            has = {f: known[f] for f in term.supported_by if f in known}
            truth = term.supported(known)
            if negated and (truth or not has):
                problems.append(f"denies '{match.group(0)}' ({term.kind} {term.term}) but metadata has {has or 'none'}")
            elif not negated and not truth:
                problems.append(f"states '{match.group(0)}' ({term.kind} {term.term}) but metadata has "
                                f"{has or 'none'}")
    return problems


#: (finding sentence, the same finding negated, a bare mention) per finding: what ``negation_table`` compares
NEGATION_PROBES = [("Wheezing, a continuous musical whistle, is present.", "There is no wheezing.", "wheezing"),
                   ("Crackles, brief discontinuous popping sounds, are heard.", "There are no crackles.", "crackles"),
                   ("A murmur is heard between the heart sounds.", "There is no heart murmur.", "a heart murmur")]


def negation_table(teacher: Any) -> list[dict[str, Any]]:
    """How a text teacher places a negated finding: cosine of the bare mention to the affirmed and to the
    negated sentence, and of the two sentences to each other.  A teacher that ignores negation puts the
    negated sentence as close to the mention as the affirmed one (or closer): a negative prompt such as "no
    wheezes" then scores like the positive one, which is why no task or bundle prompt negates a finding.
    (Reports still deny findings the metadata denies: rewriting them affirmatively, retrained and scored on
    the validation split, did not beat changing the prompts alone; see the README.)"""
    import numpy as np

    rows = []
    for affirmed, negated, mention in NEGATION_PROBES:
        e = np.asarray(teacher.encode([affirmed, negated, mention]), dtype=np.float64)
        e /= np.linalg.norm(e, axis=1, keepdims=True)
        rows.append({"mention": mention, "affirmed": affirmed, "negated": negated,
                     "cos_mention_affirmed": float(e[2] @ e[0]), "cos_mention_negated": float(e[2] @ e[1]),
                     "cos_affirmed_negated": float(e[0] @ e[1])})
    return rows


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m acula.aligner.reports", description="Report-writer diagnostics.")
    parser.add_argument("--negation", action="store_true", help="how the text teacher embeds negated findings")
    parser.add_argument("--teacher", help="local Hugging Face model directory (default: all-MiniLM-L6-v2)")
    args = parser.parse_args(argv)
    if not args.negation:
        parser.print_help()
        return 0
    from acula.aligner.teacher import TextTeacher

    print("| mention | cos to affirmed | cos to negated | affirmed vs negated |\n|---|---|---|---|")
    for r in negation_table(TextTeacher(args.teacher)):
        print(f"| {r['mention']} | {r['cos_mention_affirmed']:.2f} | {r['cos_mention_negated']:.2f} "
              f"| {r['cos_affirmed_negated']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
