"""A codec's entropy tables: fitted from its codes, stored beside its weights as ``entropy.safetensors``.

The tables (:class:`~soundgen.audio.entropy.EntropyTables`) let ``.sgc`` files range-code their codes (format
version 3). Fitting may use floating point freely: only the integer tables it produces are stored, and they alone
decide the bytes of a file.

Fitting, per codebook: the 1025 possible previous-frame codes (1024 and "no previous frame") and the 1024 codes
of the coarser codebook are each clustered into a few buckets by the distribution of the code they precede
(k-means under cross-entropy, seeded with the most frequent contexts); the bucket counts ``P x C`` (up to
``max_contexts`` tables) and the smoothing towards the codebook's overall distribution are chosen by the bits
they spend on held-out clips; the chosen shape is then fitted on all clips. A codebook without data gets the
uniform table (10 bits a code, as bit-packing).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from soundgen.audio.entropy import CodebookTable, EntropyTables
from soundgen.audio.rangecoder import PROB_BITS, TOTAL
from soundgen.errors import CorruptFileError, SoundgenError
from soundgen.utils import atomic_write, progress

log = logging.getLogger(__name__)


class StaleTablesError(SoundgenError):
    """A codec directory's entropy tables were fitted for other weights (see :func:`load_tables`)."""


ENTROPY_FILE = "entropy.safetensors"
FORMAT = "soundgen-entropy"
FORMAT_VERSION = 1
SMOOTHING = (4.0, 32.0, 256.0, 2048.0)
"""Candidate weights of the codebook's overall distribution mixed into each context's counts."""
CLUSTER_ITERS = 15


@dataclass
class CodebookFit:
    """What fitting chose for one codebook, with its bits per code on the held-out clips."""

    codebook: int
    prev_buckets: int
    coarse_buckets: int
    smoothing: float
    heldout_bits: float
    unconditional_bits: float
    frames: int


@dataclass
class FitReport:
    """What :func:`fit_tables` did; ``bits_per_frame(k)`` sums the first ``k`` codebooks' held-out bits."""

    clips: int
    heldout_clips: int
    frames: int
    codebooks: list[CodebookFit] = field(default_factory=list)
    raw_bits: int = 10

    def bits_per_frame(self, k: int) -> float:
        return float(sum(c.heldout_bits for c in self.codebooks[:k]))


def _uniform(size: int, coarse: int = 1) -> CodebookTable:
    row = np.full(size, TOTAL // size, dtype=np.int64)
    row[: TOTAL - int(row.sum())] += 1  # integer remainder to the first codes
    return CodebookTable(np.zeros(size + 1, np.int64), np.zeros(size, np.int64), np.tile(row, (1, coarse, 1)))


def integer_freqs(prob: np.ndarray) -> np.ndarray:
    """Frequencies ``[..., V]`` summing to ``2 ** PROB_BITS``, each >= 1, nearest to probabilities ``prob``."""
    v = prob.shape[-1]
    scaled = prob / prob.sum(axis=-1, keepdims=True) * (TOTAL - v)
    freqs = 1 + np.floor(scaled).astype(np.int64)
    short = TOTAL - freqs.sum(axis=-1)  # < V: hand out by largest remainder (stable order on ties)
    order = np.argsort(-(scaled - np.floor(scaled)), axis=-1, kind="stable")
    ranks = np.argsort(order, axis=-1, kind="stable")
    freqs += ranks < short[..., None]
    return freqs


def _counts(ctx: np.ndarray, sym: np.ndarray, n_ctx: int, v: int) -> np.ndarray:
    return np.bincount(ctx * v + sym, minlength=n_ctx * v).reshape(n_ctx, v).astype(np.float64)


def cluster_contexts(ctx: np.ndarray, sym: np.ndarray, n_ctx: int, v: int, buckets: int) -> np.ndarray:
    """Map each of ``n_ctx`` context values to one of at most ``buckets`` buckets (``[n_ctx]`` int64) so that the
    bucket's distribution of ``sym`` predicts the symbols following that context well."""
    if buckets <= 1:
        return np.zeros(n_ctx, np.int64)
    n = _counts(ctx, sym, n_ctx, v)
    total = n.sum(axis=1)
    prior = (n.sum(axis=0) + 0.5) / (n.sum() + 0.5 * v)
    seeds = np.argsort(-total, kind="stable")[:buckets]
    q = (n[seeds] + prior) / (total[seeds, None] + 1.0)
    assign = np.zeros(n_ctx, np.int64)
    for _ in range(CLUSTER_ITERS):
        new = np.argmin(-n @ np.log(q).T, axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        sums = np.zeros((buckets, v))
        np.add.at(sums, assign, n)
        used = sums.sum(axis=1) > 0
        q[used] = (sums[used] + prior) / (sums[used].sum(axis=1, keepdims=True) + 1.0)
    mass = np.bincount(assign, weights=total, minlength=buckets)
    assign[total == 0] = int(np.argmax(mass))  # unseen contexts: the most common bucket
    _, compact = np.unique(assign, return_inverse=True)  # buckets that got nothing are dropped
    return compact.astype(np.int64)


@dataclass
class _Streams:
    """One codebook's symbols with their previous-frame and coarser-codebook context values."""

    sym: np.ndarray
    prev: np.ndarray
    coarse: np.ndarray

    @classmethod
    def of(cls, clips: Sequence[np.ndarray], k: int, v: int) -> _Streams:
        syms, prevs, coarses = [], [], []
        for c in clips:
            s = np.asarray(c[k], dtype=np.int64)
            syms.append(s)
            prevs.append(np.concatenate([[v], s[:-1]]))
            coarses.append(np.asarray(c[k - 1], dtype=np.int64) if k else np.zeros_like(s))
        return cls(*(np.concatenate(a) if a else np.zeros(0, np.int64) for a in (syms, prevs, coarses)))

    def __add__(self, other: _Streams) -> _Streams:
        return _Streams(*(np.concatenate([getattr(self, n), getattr(other, n)]) for n in ("sym", "prev", "coarse")))


def _table(data: _Streams, prev_map: np.ndarray, coarse_map: np.ndarray, smoothing: float, v: int) -> CodebookTable:
    p, c = int(prev_map.max()) + 1, int(coarse_map.max()) + 1
    ctx = prev_map[data.prev] * c + coarse_map[data.coarse]
    n = _counts(ctx, data.sym, p * c, v)
    prior = (n.sum(axis=0) + 0.5) / (n.sum() + 0.5 * v)
    prob = (n + smoothing * prior) / (n.sum(axis=1, keepdims=True) + smoothing)
    return CodebookTable(prev_map, coarse_map, integer_freqs(prob).reshape(p, c, v))


def _bits(table: CodebookTable, data: _Streams) -> float:
    """Mean code length in bits of ``data`` under ``table`` (what the range coder spends, within 0.01 bit)."""
    if not len(data.sym):
        return 0.0
    ctx = table.prev_map[data.prev] * table.shape[1] + table.coarse_map[data.coarse]
    freq = table.freqs.reshape(-1, table.freqs.shape[-1])[ctx, data.sym]
    return float(np.mean(PROB_BITS - np.log2(freq)))


def code_bits(tables: EntropyTables, clips: Sequence[np.ndarray]) -> list[float]:
    """Mean bits per code that ``tables`` spend on each codebook of ``clips`` (``[K, F]`` each; chunks that start
    with each clip), estimated from the tables: the range coder spends this within a few hundredths of a bit,
    plus its 4 final bytes per chunk."""
    k_count = min((c.shape[0] for c in clips), default=0)
    return [_bits(tables.codebooks[k], _Streams.of(clips, k, tables.codebook_size)) for k in range(k_count)]


def _shapes(max_contexts: int, first: bool) -> list[tuple[int, int]]:
    sizes = [1 << i for i in range(9) if 1 << i <= max_contexts]
    return [(p, c) for p in sizes for c in sizes if p * c <= max_contexts and (c == 1 or not first)]


def _fit_codebook(
    k: int, train: Sequence[np.ndarray], heldout: Sequence[np.ndarray], v: int, max_contexts: int
) -> tuple[CodebookTable, CodebookFit]:
    fit, test = _Streams.of(train, k, v), _Streams.of(heldout, k, v)
    shapes = _shapes(max_contexts, k == 0)
    prev_maps = {b: cluster_contexts(fit.prev, fit.sym, v + 1, v, b) for b in sorted({p for p, _ in shapes})}
    coarse_maps = {b: cluster_contexts(fit.coarse, fit.sym, v, v, b) for b in sorted({c for _, c in shapes})}
    scored = []
    for p, c in shapes:
        for smoothing in SMOOTHING:
            bits = _bits(_table(fit, prev_maps[p], coarse_maps[c], smoothing, v), test)
            scored.append((round(bits, 4), p * c, p, c, smoothing))
    bits, _, p, c, smoothing = min(scored)
    unconditional = min(s[0] for s in scored if s[1] == 1)
    everything = fit + test
    prev_map = cluster_contexts(everything.prev, everything.sym, v + 1, v, p)
    coarse_map = cluster_contexts(everything.coarse, everything.sym, v, v, c)
    table = _table(everything, prev_map, coarse_map, smoothing, v)
    return table, CodebookFit(k, table.shape[0], table.shape[1], smoothing, bits, unconditional, len(everything.sym))


def fit_tables(
    clips: Sequence[np.ndarray],
    codebook_size: int,
    n_codebooks: int,
    *,
    heldout: Sequence[np.ndarray] = (),
    max_contexts: int = 16,
    show_progress: bool = True,
) -> tuple[EntropyTables, FitReport]:
    """Fit tables for ``n_codebooks`` codebooks from clips of codes.

    Args:
        clips: codes ``[K_data, F]`` per clip (e.g. a token cache's train split; memory-mapped arrays are fine).
            Codebooks at ``K_data`` and beyond get the uniform table.
        codebook_size: entries per codebook ``V``.
        n_codebooks: codebooks of the codec (the tables cover all of them).
        heldout: clips that choose the table shapes; without them every tenth clip of ``clips`` does.
        max_contexts: most tables per codebook (``P x C``); 16 keeps a 12-codebook model's file near 400 KiB.
        show_progress: a bar over codebooks.

    Returns:
        The tables and a :class:`FitReport` (held-out bits per code for each codebook).
    """
    clips = [c for c in clips if c.shape[-1] > 0]
    if not heldout:
        heldout = clips[9::10]
        clips = [c for i, c in enumerate(clips) if i % 10 != 9] if heldout else clips
    have = min((c.shape[0] for c in [*clips, *heldout]), default=0)
    report = FitReport(len(clips), len(heldout), int(sum(c.shape[-1] for c in clips)))
    books: list[CodebookTable] = []
    for k in progress(range(n_codebooks), desc="fit entropy tables", unit="codebook", disable=not show_progress):
        if k >= have or not heldout:
            books.append(_uniform(codebook_size))
            bits = float(np.log2(codebook_size))
            report.codebooks.append(CodebookFit(k, 1, 1, 0.0, bits, bits, 0))
            continue
        table, fit = _fit_codebook(k, clips, heldout, codebook_size, max_contexts)
        books.append(table)
        report.codebooks.append(fit)
        log.debug(
            "codebook %d: %dx%d contexts, %.3f bits/code held out",
            k,
            fit.prev_buckets,
            fit.coarse_buckets,
            fit.heldout_bits,
        )
    report.raw_bits = int(np.ceil(np.log2(codebook_size)))
    return EntropyTables(codebook_size, books), report


def save_tables(model_dir: str | Path, tables: EntropyTables, *, codec_hash: str, info: dict[str, object]) -> Path:
    """Write ``entropy.safetensors`` into ``model_dir`` atomically.

    Args:
        model_dir: the codec's model directory.
        tables: the tables.
        codec_hash: the weights hash of the codec they were fitted for (:func:`soundgen.codec.io.weights_hash`).
        info: JSON-serialisable facts about the fit, kept in the file's metadata.
    """
    from safetensors.numpy import save

    tensors: dict[str, np.ndarray] = {}
    for k, t in enumerate(tables.codebooks):
        tensors[f"{k}.prev_map"] = t.prev_map.astype(np.uint16)
        tensors[f"{k}.coarse_map"] = t.coarse_map.astype(np.uint16)
        tensors[f"{k}.freqs"] = t.freqs.astype(np.uint16)  # at most 2**16 - 1: every entry >= 1
    meta = {
        "format": FORMAT,
        "version": str(FORMAT_VERSION),
        "prob_bits": str(PROB_BITS),
        "codebook_size": str(tables.codebook_size),
        "n_codebooks": str(tables.n_codebooks),
        "codec_hash": codec_hash,
        "tables_hash": tables.digest,
        "fit": json.dumps(info, sort_keys=True),
    }
    path = Path(model_dir) / ENTROPY_FILE
    with atomic_write(path) as f:
        f.write(save(tensors, metadata=meta))
    return path


def load_tables(model_dir: str | Path, codec_hash: str | None = None, *, strict: bool = False) -> EntropyTables | None:
    """The tables in ``model_dir``'s ``entropy.safetensors``, or None when it has none.

    Args:
        model_dir: a codec model directory.
        codec_hash: the loaded codec's weights hash. Tables fitted for other weights (stale: the codec was
            re-exported or retrained after ``fit-entropy``) are never used: ignored with a warning, so files are
            written bit-packed, or refused with ``strict``. (They would still code losslessly, but badly, and a file
            they coded would name tables that belong to no weights.)
        strict: raise :class:`StaleTablesError` for stale tables instead of ignoring them.

    Raises:
        CorruptFileError: the file is not well-formed tables.
        StaleTablesError: ``strict`` and the tables were fitted for other weights.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(model_dir) / ENTROPY_FILE
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except (OSError, SafetensorError, ValueError) as e:
        raise CorruptFileError(f"cannot read entropy tables {path}: {e}; fit them again") from e
    if (
        meta.get("format") != FORMAT
        or meta.get("version") != str(FORMAT_VERSION)
        or meta.get("prob_bits") != str(PROB_BITS)
    ):
        raise CorruptFileError(f"{path} is not soundgen entropy tables of version {FORMAT_VERSION}; fit them again")
    try:
        size, count = int(meta["codebook_size"]), int(meta["n_codebooks"])
        if not 1 <= count <= 256:
            raise ValueError("n_codebooks out of range")
        books = [
            CodebookTable(arrays[f"{k}.prev_map"], arrays[f"{k}.coarse_map"], arrays[f"{k}.freqs"])
            for k in range(count)
        ]
    except (KeyError, ValueError) as e:
        raise CorruptFileError(f"{path} is incomplete ({e}); fit the tables again") from e
    if len(arrays) != 3 * count:
        raise CorruptFileError(f"{path} holds unexpected arrays; fit the tables again")
    tables = EntropyTables(size, books)
    if codec_hash is not None and meta.get("codec_hash") != codec_hash:
        message = stale_message(path, meta.get("codec_hash"), codec_hash)
        if strict:
            raise StaleTablesError(message)
        log.warning("%s; ignored: files are written bit-packed (.sgc version 2) until then", message)
        return None
    return tables


def stale_message(path: Path, fitted_for: str | None, codec_hash: str) -> str:
    """What to tell a user whose tables belong to other weights."""
    fitted = f"weights {fitted_for[:12]}" if fitted_for else "unknown weights"
    return (
        f"{path} was fitted for other codec weights ({fitted}; this codec is {codec_hash[:12]}), e.g. before the "
        f"codec was re-exported: run 'soundgen codec fit-entropy {path.parent} --tokens TOKENS_DIR' again"
    )


def has_stale_tables(model_dir: str | Path, codec_hash: str) -> bool:
    """Whether ``model_dir`` holds well-formed tables fitted for weights other than ``codec_hash``'s."""
    try:
        load_tables(model_dir, codec_hash, strict=True)
    except StaleTablesError:
        return True
    return False


def fit_summary(report: FitReport) -> dict[str, object]:
    """The report as JSON-ready facts (kept in the table file's metadata)."""
    return asdict(report)
