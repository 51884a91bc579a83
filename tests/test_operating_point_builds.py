"""acula.benchmarks.operating_point_builds: the paired difference between the operating-point rules and its interval."""

from __future__ import annotations

from acula.benchmarks.operating_point_builds import PAIRED, paired_difference, to_markdown


def result(flags: dict[str, dict[str, list[int]]], persons: list[str], n_bundles: int = 2) -> dict:
    """A result of ``measure``'s shape: every bundle flags the same recordings, ``flags[rule][channel]``."""
    bundle = {rule: {"on": 0.5, "targets_met": True, "flagged": {},
                     "per_recording": {c: {"cough": "".join(map(str, f))} for c, f in by_channel.items()}}
              for rule, by_channel in flags.items()}
    return {"bundles": {f"b{k}": {"bundle": f"p{k}", "manifest_on": 0.5, **bundle} for k in range(n_bundles)},
            "persons": {"cough": persons}, "command": "c", "splits": ["test"],
            **{f"spread_{r}": {"min": 0.5, "max": 0.5, "range": 0.0, "sd": 0.0} for r in ("clean", "pooled")}}


def test_the_difference_is_summed_over_bundles_and_channels_and_resampled_by_participant() -> None:
    persons = ["a", "a", "b", "c"]
    clean = {"clean": [1, 1, 1, 1], "8k": [1, 1, 1, 0]}
    pooled = {"clean": [1, 1, 1, 1], "8k": [0, 0, 1, 0]}  # participant a loses both recordings through 8k
    r = result({"clean": clean, "pooled": pooled}, persons)
    d = paired_difference(r, "cough", ("clean", "8k"), draws=500)
    assert d["difference"] == -4.0 and d["trials"] == 4 * 2 * 2 and d["participants"] == 3
    # a participant drawn 0-3 times, each draw worth -4: the interval lies on that grid and holds the difference
    lo, hi = d["ci95"]
    assert lo <= -4.0 <= hi and lo >= -12.0 and hi <= 0.0 and lo < hi
    same = paired_difference(result({"clean": clean, "pooled": clean}, persons), "cough", ("clean", "8k"))
    assert same["difference"] == 0.0 and same["ci95"] == [0.0, 0.0]
    assert paired_difference(r, "cough", ("clean",))["difference"] == 0.0  # the channels summed are the ones named


def test_the_table_shows_each_paired_comparison() -> None:
    r = result({"clean": {"clean": [1, 0]}, "pooled": {"clean": [0, 0]}}, ["a", "b"])
    for rule in ("clean", "pooled"):
        for b in r["bundles"].values():
            b[rule]["flagged"] = {c: {"cough": [1, 2], "phone non-cough": [0, 1], "stethoscope": [0, 1]}
                                  for c in ("clean", "8k", "mulaw8k")}
    r["paired"] = {"coughs flagged, clean only": paired_difference(r, "cough", ("clean",))}
    text = to_markdown(r)
    assert "| coughs flagged, clean only | -2 |" in text and "pooled` minus `clean`" in text
    assert set(PAIRED) == {"coughs flagged, three channels", "phone non-cough flagged, 8 kHz + mu-law"}
