"""Tiny replicas of every supported data-set layout, written by code for the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def _wav(path: Path, seconds: float = 0.5, rate_hz: int = 16000, seed: int = 0, silent: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(seconds * rate_hz)
    x = np.zeros(n) if silent else 0.1 * np.random.default_rng(seed).standard_normal(n)
    sf.write(path, x, rate_hz)


def make_data_root(root: Path) -> Path:
    """Write coswara, physionet2016, icbhi_cycles, icbhi_official, esc10, circor and kauh replicas."""
    c = root / "coswara"
    (c / "annotations").mkdir(parents=True)
    (c / "participants.csv").write_text("id,a,g,l_c,covid_status,asthma,smoker,fever\n"
                                        "p1,34,male,India,healthy,False,True,\n"
                                        "p2,61,female,India,resp_illness_not_identified,True,,True\n"
                                        "p3,45,male,India,healthy,,,\n")
    (c / "annotations" / "cough-heavy_labels.csv").write_text("FILENAME, QUALITY\np1_cough-heavy,2\np2_cough-heavy,1\n")
    for i, pid in enumerate(("p1", "p2", "p3")):
        for j, sound in enumerate(("cough-heavy", "breathing-deep", "vowel-a")):
            _wav(c / "audio" / pid / f"{sound}.flac", seed=10 * i + j, silent=(pid == "p3" and sound == "vowel-a"))
    (c / "audio" / "p3" / "counting-normal.flac").write_bytes(b"")  # unreadable, as in the real batch

    p = root / "physionet2016"
    rows = ["record,database,label"]
    for i in range(8):
        rid = f"{'ab'[i % 2]}{i:04d}"
        rows.append(f"{rid},{'ab'[i % 2]},{'normal' if i < 4 else 'abnormal'}")
        _wav(p / "audio" / f"{rid}.flac", rate_hz=2000, seed=100 + i)
    (p / "labels.csv").write_text("\n".join(rows) + "\n")

    ic = root / "icbhi_cycles"
    (ic / "official").mkdir(parents=True)
    (ic / "official" / "demographic_info.txt").write_text("101 3 F NA 19 99\n156 70 M 28 NA NA\n200 0.5 F NA 7 60\n")
    rows = ["file,recording,patient,cycle_index,start_s,end_s,crackles,wheezes,diagnosis,icbhi_split,"
            "original_sample_rate"]
    for k, (rec, split) in enumerate((("101_1b1_Al_sc_Meditron", "train"), ("156_1b1_Pr_mc_LittC2SE", "train"),
                                      ("156_2b1_Tc_sc_Litt3200", "test"), ("200_1b1_Ll_sc_Meditron", "test"))):
        for cyc in range(3):
            rel = f"audio/{rec}_c{cyc:02d}.flac"
            _wav(ic / rel, rate_hz=8000, seed=200 + 10 * k + cyc)
            diag = {"101": "URTI", "156": "COPD", "200": "Healthy"}[rec[:3]]
            rows.append(f"{rel},{rec},{rec[:3]},{cyc},{cyc},{cyc + 1},{cyc % 2},{int(cyc == 2)},{diag},{split},4000")
    (ic / "cycles.csv").write_text("\n".join(rows) + "\n")

    io = root / "icbhi_official"
    _wav(io / "101_1b1_Al_sc_Meditron.wav", seconds=4.0, rate_hz=4000, seed=300)
    (io / "101_1b1_Al_sc_Meditron.txt").write_text("0.1\t1.5\t1\t0\n1.5\t3.2\t0\t1\n")
    (io / "patient_diagnosis.csv").write_text("ID,CLASS\n101,URTI\n")
    (io / "demographic_info.txt").write_text("101 3 F NA 19 99\n")
    (io / "ICBHI_challenge_train_test.txt").write_text("101_1b1_Al_sc_Meditron\ttest\n")

    for cls in ("001 - Dog bark", "006 - Person sneeze"):
        for fold in (1, 2):
            _wav(root / "esc10" / cls / f"{fold}-{100 + fold}-A.ogg", rate_hz=44100, seed=fold)

    cc = root / "circor"
    cc.mkdir()
    (cc / "training_data.csv").write_text("Patient ID,Age,Sex,Murmur,Outcome\n50001,Child,Female,Present,Abnormal\n"
                                          "50002,Adolescent,Male,Absent,Normal\n")
    for pid in ("50001", "50002"):
        for loc in ("AV", "MV"):
            _wav(cc / "training_data" / f"{pid}_{loc}.wav", rate_hz=4000, seed=int(pid) % 97)

    k = root / "kauh"
    _wav(k / "BP1_Asthma,I E W,P L L,70,M.wav", rate_hz=4000, seed=7)
    _wav(k / "EP2_N,N,A R U,40,F.wav", rate_hz=4000, seed=8)
    return root
