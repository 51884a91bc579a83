"""Case search: recall@5, query latency, build time and memory of faiss indexes at 100k and 1M references.

    python -m acula.benchmarks.search [--sizes 100000 1000000] [--queries 500] [--json benchmarks/results/search.json]

Indexes: :class:`sdk.search.CaseIndex` HNSW at several M (the smallest size) and efSearch; for memory-bound
devices IVF-PQ (64 or 128 code bytes a vector against 2048) and HNSW over 8-bit scalar-quantised vectors.

Reference vectors are synthetic with the structure of the student's clip embeddings: 512-d vectors that are
a fixed linear map of a 112-d latent (the student's bottleneck), drawn around 1,000 cluster centres (recording
types, devices, participants) with a power-law spread inside each cluster in its own random orientation,
plus a little full-rank noise, L2-normalised.  Queries are fresh draws from the same mixture, never in the
index.  Recall@5: the share of the exact top 5 (flat inner product) that an index returns in its top 5.
Query latency: one query a call through :meth:`sdk.search.CaseIndex.search` on one thread, after a warm-up
pass over the queries.  Build: every core (faiss's OpenMP).  Memory: growth of the process's peak resident
set while the index is built, and the size of the saved index.  Every HNSW index is saved, loaded and
searched again; the loaded index must return the same neighbours.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from acula.benchmarks._util import machine_line
from acula.sdk.search import HNSW_EF_CONSTRUCTION, CaseIndex

DIM, LATENT_DIM, N_CLUSTERS = 512, 112, 1000
K = 5


def structured_vectors(n: int, seed: int, layout_seed: int = 0) -> np.ndarray:
    """(n, 512) float32 unit vectors; ``layout_seed`` fixes the clusters and the map, ``seed`` the draws."""
    layout = np.random.default_rng(layout_seed)
    centres = layout.standard_normal((N_CLUSTERS, LATENT_DIM)).astype(np.float32)
    spread = (np.arange(1, LATENT_DIM + 1, dtype=np.float32) ** -0.5) * 1.5  # variance falls as 1 / rank
    scale = layout.uniform(0.5, 1.5, N_CLUSTERS).astype(np.float32)
    lift = (layout.standard_normal((LATENT_DIM, DIM)) / np.sqrt(LATENT_DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLUSTERS, n)
    out = np.empty((n, DIM), dtype=np.float32)
    for c in range(N_CLUSTERS):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        rotation, _ = np.linalg.qr(np.random.default_rng((layout_seed, c)).standard_normal((LATENT_DIM, LATENT_DIM)))
        z = rng.standard_normal((rows.size, LATENT_DIM)).astype(np.float32) * spread * scale[c]
        out[rows] = (centres[c] + z @ rotation.astype(np.float32)) @ lift
    out += 0.05 * rng.standard_normal(out.shape).astype(np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    try:  # Linux: writing 5 to clear_refs resets VmHWM to the current resident set
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth, strict=True)]))


def _latency_ms(search: Any, queries: np.ndarray) -> tuple[float, float]:
    """(p50, p99) ms of one query a call, after one untimed pass."""
    import faiss

    faiss.omp_set_num_threads(1)
    for q in queries:
        search(q)
    times = []
    for q in queries:
        t0 = time.perf_counter()
        search(q)
        times.append(time.perf_counter() - t0)
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    ms = np.asarray(times) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def _build(make: Any, x: np.ndarray) -> tuple[Any, float, float]:
    _reset_peak()
    base = _rss_mb("VmRSS")
    t0 = time.perf_counter()
    index = make(x)
    return index, time.perf_counter() - t0, _rss_mb("VmHWM") - base


def bench_hnsw(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, m: int, ef_searches: Sequence[int],
               tmp: Path) -> list[dict[str, Any]]:
    items = [{}] * len(x)  # one shared dict: the items' own memory is not the index's

    def make(v: np.ndarray) -> CaseIndex:
        index = CaseIndex(DIM, "hnsw", m=m)
        index.add(v, items)
        return index

    index, build_s, build_mb = _build(make, x)
    t0 = time.perf_counter()
    index.save(tmp / "idx")
    save_s = time.perf_counter() - t0
    file_mb = (tmp / "idx" / "index.faiss").stat().st_size / 2**20
    before = index.search_ids(queries, K)[1]
    del index
    t0 = time.perf_counter()
    index = CaseIndex.load(tmp / "idx")
    load_s = time.perf_counter() - t0
    if not np.array_equal(index.search_ids(queries, K)[1], before):
        raise AssertionError(f"HNSW M={m}: the loaded index returns other neighbours than the one saved")
    rows = []
    for ef in ef_searches:
        _, ids = index.search_ids(queries, K, ef_search=ef)
        p50, p99 = _latency_ms(lambda q, ef=ef: index.search(q, K, ef_search=ef), queries)
        rows.append({"index": "hnsw", "n": len(x), "m": m, "ef_construction": HNSW_EF_CONSTRUCTION,
                     "ef_search": ef, "recall_at_5": recall_at_k(ids, truth), "query_p50_ms": p50,
                     "query_p99_ms": p99, "build_s": build_s, "build_peak_mb": build_mb, "index_mb": file_mb,
                     "save_s": save_s, "load_s": load_s})
        print(_row_line(rows[-1]), flush=True)
    return rows


def bench_factory(x: np.ndarray, queries: np.ndarray, truth: np.ndarray, factory: str, sweep: str,
                  values: Sequence[int], n_train: int) -> list[dict[str, Any]]:
    """A compressed faiss index (``factory``: "IVF256,PQ64x8np", "HNSW32,SQ8") trained on ``n_train`` of the
    vectors, searched at each of ``values`` of ``sweep`` ("nprobe" or "ef_search")."""
    import faiss

    def make(v: np.ndarray) -> Any:
        index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
        index.train(v[np.random.default_rng(0).choice(len(v), min(len(v), n_train), replace=False)])
        index.add(v)
        return index

    index, build_s, build_mb = _build(make, x)
    index_mb = faiss.serialize_index(index).nbytes / 2**20
    rows = []
    for value in values:
        params = (faiss.SearchParametersIVF(nprobe=value) if sweep == "nprobe" else
                  faiss.SearchParametersHNSW(efSearch=value))
        _, ids = index.search(queries, K, params=params)
        p50, p99 = _latency_ms(lambda q, p=params: index.search(q[None], K, params=p), queries)
        rows.append({"index": factory, "n": len(x), sweep: value, "recall_at_5": recall_at_k(ids, truth),
                     "query_p50_ms": p50, "query_p99_ms": p99, "build_s": build_s, "build_peak_mb": build_mb,
                     "index_mb": index_mb})
        print(_row_line(rows[-1]), flush=True)
    return rows


def _row_line(r: dict[str, Any]) -> str:
    index = f"HNSW M={r['m']}" if r["index"] == "hnsw" else r["index"]
    setting = f"{index} " + (f"efSearch={r['ef_search']}" if "ef_search" in r else f"nprobe={r['nprobe']}")
    return (f"| {r['n']:,} | {setting} | {r['recall_at_5']:.3f} | {r['query_p50_ms']:.3f} | "
            f"{r['query_p99_ms']:.3f} | {r['build_s']:.0f} | {r['build_peak_mb']:.0f} | {r['index_mb']:.0f} |")


HEADER = ("| n | index | recall@5 | query p50 ms | query p99 ms | build s | build peak MB | index MB |\n"
          "|---|---|---|---|---|---|---|---|")


def to_markdown(report: dict[str, Any]) -> str:
    """The report's table with the conditions it was measured under (and its ``note``, where a run has one)."""
    note = ["", report["note"]] if report.get("note") else []
    return "\n".join([f"Case search (`python -m acula.benchmarks.search`), {report['machine']}, "
                      f"faiss {report['faiss']}: "
                      f"{report['queries']} queries, {report['data']}; build on {report['build_threads']} "
                      f"thread(s), queries one at a time on {report['query_threads']}.", "", HEADER,
                      *(_row_line(r) for r in report["rows"]), *note]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acula.benchmarks.search", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--m", type=int, nargs="*", default=[16, 32, 48], help="HNSW M values at the smallest size")
    parser.add_argument("--large-m", type=int, nargs="+", default=[32],
                        help="HNSW M values at the other sizes (a 1M build takes minutes a value)")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--pq-bytes", type=int, nargs="*", default=[64, 128],
                        help="IVF-PQ code bytes a vector (a 512-d float32 vector takes 2048)")
    parser.add_argument("--sq8-m", type=int, nargs="*", default=[32],
                        help="HNSW M values with 8-bit scalar-quantised storage (a quarter of the memory)")
    parser.add_argument("--no-compressed", action="store_true", help="skip IVF-PQ and HNSW-SQ8")
    parser.add_argument("--json", help="write the report here")
    parser.add_argument("--markdown", help="write the table here")
    args = parser.parse_args(argv)
    # a shared machine preempts OpenMP workers; spinning at barriers then costs minutes instead of seconds
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import faiss
    except ImportError:
        print("acula.benchmarks.search needs: pip install faiss-cpu", file=sys.stderr)
        return 1
    report: dict[str, Any] = {"machine": machine_line(), "faiss": faiss.__version__, "build_threads": os.cpu_count(),
                              "query_threads": 1, "dim": DIM, "k": K, "queries": args.queries,
                              "data": f"{N_CLUSTERS} clusters in a {LATENT_DIM}-d latent lifted to {DIM}-d", "rows": []}
    print(f"case search, {report['machine']}, faiss {faiss.__version__}\n{HEADER}", flush=True)
    queries = structured_vectors(args.queries, seed=10**6)
    for i, n in enumerate(args.sizes):
        x = structured_vectors(n, seed=n)
        exact = faiss.IndexFlatIP(DIM)
        exact.add(x)
        truth = exact.search(queries, K)[1]
        del exact
        with tempfile.TemporaryDirectory() as tmp:
            for m in args.m if i == 0 else args.large_m:
                report["rows"] += bench_hnsw(x, queries, truth, m, args.ef_search, Path(tmp))
        if not args.no_compressed:
            n_list = 2 ** round(np.log2(np.sqrt(n)))  # about sqrt(n) lists, trained on 40 vectors a list
            for pq_bytes in args.pq_bytes:
                # "np": no polysemous training, which only the Hamming pre-filter uses and which takes minutes
                report["rows"] += bench_factory(x, queries, truth, f"IVF{n_list},PQ{pq_bytes}x8np", "nprobe",
                                                args.nprobe, 40 * n_list)
            for m in args.sq8_m:
                report["rows"] += bench_factory(x, queries, truth, f"HNSW{m},SQ8", "ef_search", args.ef_search,
                                                20_000)
        del x
        if args.json:  # after every size: a 1M run takes long enough to want the 100k rows first
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        if args.markdown:
            Path(args.markdown).write_text(to_markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
