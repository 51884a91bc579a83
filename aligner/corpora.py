"""Adapters from data-set layouts to :class:`Record` lists.

Every adapter takes the data set's root folder and returns records whose paths
are relative to the *parent* data root.  They are registered in ``ADAPTERS`` by
folder name; :func:`discover` runs every adapter whose folder exists.  Layouts:

* ``coswara/``: ``participants.csv``; ``audio/<participant>/<sound>.flac``;
  ``annotations/<sound>_labels.csv`` (quality 0/1/2).
* ``physionet2016/``: ``labels.csv`` (record, database, label); ``audio/<record>.flac``.
* ``icbhi_cycles/``: ``cycles.csv`` (one row a cut cycle); ``official/demographic_info.txt``.
* ``icbhi_official/`` (the full ICBHI 2017 database, for users who have it):
  ``<recording>.wav`` + ``<recording>.txt`` (start, end, crackles, wheezes per
  cycle), ``patient_diagnosis.csv`` (or ``ICBHI_Challenge_diagnosis.txt``) and
  ``demographic_info.txt``; cycles become segments of the recording.
* ``esc10/``: ``<NNN - Class name>/<fold>-<id>-<take>.ogg``.
* ``circor/`` (CirCor DigiScope 2022): ``training_data.csv`` (Patient ID, Age,
  Sex, Murmur, Outcome, ...) and ``training_data/<patient>_<location>[_n].wav``.
* ``kauh/`` (King Abdullah University Hospital lung sounds): ``*.wav`` named
  ``<BP|EP|DP><n>_<diagnosis>,<sound types>,<location>,<age>,<sex>.wav``.
* any CSV manifest: :func:`from_csv_manifest` (``path`` column plus metadata columns).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from acula.aligner.records import Record

ICBHI_LOCATIONS = {"Tc": "trachea", "Al": "anterior left chest", "Ar": "anterior right chest",
                   "Pl": "posterior left chest", "Pr": "posterior right chest", "Ll": "lateral left chest",
                   "Lr": "lateral right chest"}
ICBHI_MODES = {"sc": "single channel", "mc": "multichannel"}
ICBHI_DEVICES = {"AKGC417L": "AKG C417L microphone", "LittC2SE": "3M Littmann Classic II SE stethoscope",
                 "Litt3200": "3M Littmann 3200 electronic stethoscope", "Meditron": "Welch Allyn Meditron stethoscope"}
COSWARA_MODALITY = {"cough-heavy": "cough", "cough-shallow": "cough", "breathing-deep": "breathing",
                    "breathing-shallow": "breathing", "counting-normal": "speech", "counting-fast": "speech",
                    "vowel-a": "speech", "vowel-e": "speech", "vowel-o": "speech"}
#: participants.csv column -> metadata key, for the True/False symptom and condition columns
COSWARA_FLAGS = {"asthma": "asthma", "smoker": "smoker", "ht": "hypertension", "diabetes": "diabetes",
                 "cld": "chronic_lung_disease", "ihd": "ischemic_heart_disease", "pneumonia": "pneumonia",
                 "fever": "fever", "cough": "cough_symptom", "cold": "cold", "st": "sore_throat",
                 "bd": "breathing_difficulty", "ftg": "fatigue", "mp": "muscle_pain", "loss_of_smell": "loss_of_smell",
                 "diarrhoea": "diarrhoea"}
KAUH_SOUNDS = {"I": "inspiratory", "E": "expiratory", "W": "wheezes", "C": "crackles", "N": "normal",
               "Crep": "crepitations", "B": "bronchial"}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if value != value else value  # NaN -> None


def _flag(text: str) -> bool | None:
    return {"true": True, "false": False, "y": True, "n": False}.get(str(text).strip().lower())


def _clean(meta: dict[str, Any]) -> dict[str, Any]:
    """Drop unknown fields: a report must leave out what the metadata does not hold."""
    return {k: v for k, v in meta.items() if v not in (None, "", "NA", "nan")}


def _rel(path: Path, data_root: Path) -> str:
    return path.relative_to(data_root).as_posix()


def coswara(root: Path) -> list[Record]:
    quality: dict[str, int] = {}
    for labels in sorted((root / "annotations").glob("*_labels.csv")):
        for row in _read_csv(labels):
            score = _number(row.get("QUALITY", ""))
            if score is not None:
                quality[row["FILENAME"]] = int(score)
    participants = {row["id"]: row for row in _read_csv(root / "participants.csv")}
    records = []
    for path in sorted((root / "audio").glob("*/*.flac")):
        pid, sound = path.parent.name, path.stem
        row = participants.get(pid, {})
        meta: dict[str, Any] = {"sound_type": sound, "age": _number(row.get("a", "")), "sex": row.get("g"),
                                "country": row.get("l_c"), "covid_status": row.get("covid_status"),
                                "recording_device": "phone or browser microphone",
                                "quality": quality.get(f"{pid}_{sound}")}
        meta.update({key: _flag(row.get(col, "")) for col, key in COSWARA_FLAGS.items()})
        records.append(Record(f"coswara/{pid}/{sound}", "coswara", _rel(path, root.parent),
                              COSWARA_MODALITY.get(sound, "speech"), f"coswara:{pid}", _clean(meta)))
    return records


def physionet2016(root: Path) -> list[Record]:
    return [
        Record(f"physionet2016/{row['record']}", "physionet2016", f"{root.name}/audio/{row['record']}.flac", "heart",
               f"physionet2016:{row['record']}",
               {"outcome": row["label"], "database": row["database"], "recording_device": "electronic stethoscope"})
        for row in _read_csv(root / "labels.csv")
    ]


def _icbhi_demographics(path: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return out
    for line in path.read_text().split("\n"):
        parts = line.split()
        if len(parts) >= 3:
            age = _number(parts[1])
            out[parts[0]] = {"age": age, "sex": {"M": "male", "F": "female"}.get(parts[2])}
    return out


def icbhi_recording_metadata(recording: str) -> dict[str, Any]:
    """Decode ``<patient>_<index>_<location>_<mode>_<device>`` (e.g. 101_1b1_Al_sc_Meditron)."""
    parts = recording.split("_")
    if len(parts) != 5:
        raise ValueError(f"not an ICBHI recording name: {recording!r}")
    return {"patient": parts[0], "chest_location": ICBHI_LOCATIONS.get(parts[2], parts[2]),
            "acquisition_mode": ICBHI_MODES.get(parts[3], parts[3]),
            "recording_device": ICBHI_DEVICES.get(parts[4], parts[4])}


def _icbhi_record(dataset: str, rid: str, path: str, recording: str, cycle: dict[str, Any],
                  patient_info: dict[str, Any], start_s: float | None, end_s: float | None) -> Record:
    meta = icbhi_recording_metadata(recording)
    meta.update(patient_info)
    meta.update(cycle)
    return Record(rid, dataset, path, "lung", f"icbhi:{meta['patient']}", _clean(meta), start_s, end_s)


def icbhi_cycles(root: Path) -> list[Record]:
    demo = _icbhi_demographics(root / "official" / "demographic_info.txt")
    records = []
    for row in _read_csv(root / "cycles.csv"):
        duration_s = round(float(row["end_s"]) - float(row["start_s"]), 3)
        cycle = {"crackles": int(row["crackles"]), "wheezes": int(row["wheezes"]), "diagnosis": row["diagnosis"],
                 "official_split": row["icbhi_split"], "duration_s": duration_s}
        rid = f"icbhi/{row['recording']}/c{int(row['cycle_index']):02d}"
        records.append(_icbhi_record("icbhi", rid, f"{root.name}/{row['file']}", row["recording"], cycle,
                                     demo.get(row["patient"], {}), None, None))
    return records


def icbhi_official(root: Path) -> list[Record]:
    demo = _icbhi_demographics(root / "demographic_info.txt")
    diagnosis: dict[str, str] = {}
    for name in ("patient_diagnosis.csv", "ICBHI_Challenge_diagnosis.txt"):
        if (root / name).is_file():
            for line in (root / name).read_text().split("\n"):
                parts = re.split(r"[,\t]", line.strip())
                if len(parts) == 2 and parts[0].isdigit():
                    diagnosis[parts[0]] = parts[1]
    split: dict[str, str] = {}
    for name in ("ICBHI_challenge_train_test.txt",):
        if (root / name).is_file():
            split = dict(line.split() for line in (root / name).read_text().split("\n") if len(line.split()) == 2)
    records = []
    for ann in sorted(root.glob("*.txt")):
        wav = ann.with_suffix(".wav")
        if not wav.is_file():
            continue
        for i, line in enumerate(x for x in ann.read_text().split("\n") if x.strip()):
            start, end, crackles, wheezes = line.split()[:4]
            patient = ann.stem.split("_")[0]
            cycle = {"crackles": int(crackles), "wheezes": int(wheezes), "diagnosis": diagnosis.get(patient),
                     "official_split": split.get(ann.stem), "duration_s": round(float(end) - float(start), 3)}
            records.append(_icbhi_record("icbhi", f"icbhi/{ann.stem}/c{i:02d}", _rel(wav, root.parent), ann.stem,
                                         cycle, demo.get(patient, {}), float(start), float(end)))
    return records


def esc10(root: Path) -> list[Record]:
    records = []
    for path in sorted(root.glob("*/*.ogg")):
        label = path.parent.name.split(" - ", 1)[-1].lower()
        fold = path.name.split("-")[0]
        source = path.name.split("-")[1] if path.name.count("-") >= 2 else path.stem
        records.append(Record(f"esc10/{path.stem}", "esc10", _rel(path, root.parent), "environment",
                              f"esc10:{source}", {"sound_class": label, "fold": int(fold)}))
    return records


def circor(root: Path) -> list[Record]:
    table = root / "training_data.csv"
    rows = {row["Patient ID"]: row for row in _read_csv(table)} if table.is_file() else {}
    records = []
    for path in sorted((root / "training_data").glob("*.wav")):
        pid, location = path.stem.split("_")[:2]
        row = rows.get(pid, {})
        meta = {"auscultation_location": location, "age_group": row.get("Age"), "sex": (row.get("Sex") or "").lower(),
                "murmur": (row.get("Murmur") or "").lower(), "outcome": (row.get("Outcome") or "").lower(),
                "recording_device": "electronic stethoscope"}
        records.append(Record(f"circor/{path.stem}", "circor", _rel(path, root.parent), "heart", f"circor:{pid}",
                              _clean(meta)))
    return records


def kauh(root: Path) -> list[Record]:
    records = []
    for path in sorted(root.glob("*.wav")):
        head, _, rest = path.stem.partition("_")
        fields = [f.strip() for f in rest.split(",")]
        if len(fields) < 5:
            continue
        sounds = [KAUH_SOUNDS.get(s, s.lower()) for s in fields[1].split()]
        meta = {"diagnosis": fields[0], "sound_types": " ".join(sounds), "chest_location": fields[2].lower(),
                "age": _number(fields[3]), "sex": {"M": "male", "F": "female"}.get(fields[4]),
                "crackles": int("crackles" in sounds or "crepitations" in sounds), "wheezes": int("wheezes" in sounds),
                "recording_device": "3M Littmann 3200 electronic stethoscope", "filter_mode": head[:2]}
        records.append(Record(f"kauh/{path.stem}", "kauh", _rel(path, root.parent), "lung", f"kauh:{head}",
                              _clean(meta)))
    return records


def from_csv_manifest(path: Path, dataset: str = "manifest") -> list[Record]:
    """Rows with ``path`` (relative to the CSV's folder), optional ``modality``,
    ``group_id``, ``start_s``, ``end_s``; every other column becomes metadata."""
    records = []
    reserved = {"path", "modality", "group_id", "start_s", "end_s", "record_id"}
    for i, row in enumerate(_read_csv(path)):
        if not row.get("path"):
            raise ValueError(f"{path}: row {i + 2} has no 'path'")
        rid = row.get("record_id") or f"{dataset}/{i:06d}"
        meta = _clean({k: v for k, v in row.items() if k not in reserved})
        records.append(Record(rid, dataset, (path.parent / row["path"]).as_posix(), row.get("modality") or "lung",
                              row.get("group_id") or rid, meta, _number(row.get("start_s", "")),
                              _number(row.get("end_s", ""))))
    return records


ADAPTERS: dict[str, Callable[[Path], list[Record]]] = {
    "coswara": coswara, "physionet2016": physionet2016, "icbhi_cycles": icbhi_cycles,
    "icbhi_official": icbhi_official, "esc10": esc10, "circor": circor, "kauh": kauh,
}


def discover(data_root: Path, names: Iterable[str] | None = None) -> list[Record]:
    """Run every adapter whose folder exists under ``data_root`` (or only ``names``)."""
    wanted = list(names) if names is not None else list(ADAPTERS)
    unknown = set(wanted) - set(ADAPTERS)
    if unknown:
        raise ValueError(f"unknown data sets {sorted(unknown)}; known: {sorted(ADAPTERS)}")
    records: list[Record] = []
    for name in wanted:
        if (data_root / name).is_dir():
            records.extend(ADAPTERS[name](data_root / name))
    return records
