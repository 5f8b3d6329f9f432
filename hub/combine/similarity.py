"""How alike two adapters' deltas are, from the factors alone.

Cosine: ⟨Δ₁, Δ₂⟩_F = s₁s₂·tr((B₁ᵀB₂)(A₂A₁ᵀ)) and ‖Δ‖²_F = s²·tr((BᵀB)(AAᵀ)),
products of r × r matrices: no out × in matrix is formed. Per module, and
overall as if each adapter were one long vector (a module an adapter lacks is
zero there, so it lowers the overall cosine).

Sign conflicts (what TIES has to resolve): the fraction of entries of a shared
module where the two deltas have opposite signs. Exact for modules up to
``samples`` entries; above that, estimated on a seeded random submatrix of about
``samples`` entries, Δ[rows][:, cols] = s·B[rows] @ A[:, cols].
"""

from __future__ import annotations

import itertools
import math
from contextlib import closing
from dataclasses import asdict, dataclass, field

import torch

from hub.combine.core import map_modules, module_seed
from hub.combine.factors import AdapterFactors, ModuleFactors

DEFAULT_SAMPLES = 65536


def inner(a: ModuleFactors, b: ModuleFactors) -> float:
    """⟨Δa, Δb⟩_F from the factors (float64)."""
    core = (a.B.double().T @ b.B.double()) @ (b.A.double() @ a.A.double().T)
    return float(core.trace()) * a.scaling * b.scaling


def sq_norm(a: ModuleFactors) -> float:
    return inner(a, a)


def _block(m: ModuleFactors, rows: torch.Tensor | None, cols: torch.Tensor | None) -> torch.Tensor:
    """Δ[rows][:, cols] (all rows/columns for None) as one small product, in float64."""
    B = m.B.double() if rows is None else m.B.double()[rows]
    A = m.A.double() if cols is None else m.A.double()[:, cols]
    return (B @ A) * m.scaling


def sign_conflict(a: ModuleFactors, b: ModuleFactors, samples: int, seed: int) -> tuple[float, bool]:
    """(fraction of entries with opposite signs, exact?). Above ``samples`` entries, the
    rate over a random submatrix of about ``samples`` entries (rows and columns drawn
    without replacement, seeded per module): an unbiased estimate at GEMM cost."""
    out_f, in_f = a.out_features, a.in_features
    if out_f * in_f <= samples:
        rows = cols = None
    else:
        g = torch.Generator().manual_seed(module_seed(seed, a.path))
        n_rows = min(out_f, max(1, math.isqrt(samples)))
        n_cols = min(in_f, max(1, samples // n_rows))
        rows = torch.randperm(out_f, generator=g)[:n_rows]
        cols = torch.randperm(in_f, generator=g)[:n_cols]
    da, db = _block(a, rows, cols), _block(b, rows, cols)
    return float(((da * db) < 0).double().mean()), rows is None


@dataclass
class ModuleSimilarity:
    path: str
    cosine: float | None            # None where either delta is zero
    sign_conflict: float | None     # None where only one adapter has the module
    in_a: bool
    in_b: bool


@dataclass
class PairSimilarity:
    a: str
    b: str
    cosine: float | None
    sign_conflict: float | None     # over shared modules, weighted by module size
    shared_modules: int
    only_a: int
    only_b: int
    sign_conflict_exact: bool
    modules: list[ModuleSimilarity] = field(default_factory=list)

    def to_dict(self, modules: bool = True) -> dict:
        d = asdict(self)
        if not modules:
            d.pop("modules")
        return d


@dataclass
class SimilarityReport:
    adapters: list[str]
    norms: dict[str, float]         # Frobenius norm of each adapter's whole delta
    pairs: list[PairSimilarity]
    samples: int
    seed: int

    def to_dict(self, modules: bool = True) -> dict:
        return {"adapters": self.adapters, "norms": self.norms, "samples": self.samples, "seed": self.seed,
                "pairs": [p.to_dict(modules) for p in self.pairs]}


def _cos(dot: float, na: float, nb: float) -> float | None:
    return dot / math.sqrt(na * nb) if na > 0 and nb > 0 else None


def _double(m: ModuleFactors | None) -> ModuleFactors | None:
    if m is None:
        return None
    return ModuleFactors(m.path, m.A.double(), m.B.double(), m.scaling, m.kind, m.fan_in_fan_out)


def compare(a: AdapterFactors, b: AdapterFactors, samples: int = DEFAULT_SAMPLES, seed: int = 0) -> PairSimilarity:
    def one(path: str):
        ma, mb = _double(a.modules.get(path)), _double(b.modules.get(path))
        sa = sq_norm(ma) if ma else 0.0
        sb = sq_norm(mb) if mb else 0.0
        if ma and mb and (ma.out_features, ma.in_features) == (mb.out_features, mb.in_features):
            return path, ma, mb, sa, sb, inner(ma, mb), *sign_conflict(ma, mb, samples, seed)
        return path, ma, mb, sa, sb, None, None, True

    dot = na = nb = 0.0
    conflict_num = conflict_den = 0.0
    exact = True
    modules = []
    with closing(map_modules(one, sorted(set(a.modules) | set(b.modules)))) as rows:
        for path, ma, mb, sa, sb, d, conflict, was_exact in rows:
            na += sa
            nb += sb
            cos = None
            if d is not None:
                dot += d
                cos = _cos(d, sa, sb)
                exact &= was_exact
                size = ma.out_features * ma.in_features
                conflict_num += conflict * size
                conflict_den += size
            modules.append(ModuleSimilarity(path, cos, conflict, ma is not None, mb is not None))
    shared = sum(1 for m in modules if m.in_a and m.in_b)
    return PairSimilarity(
        a=a.name, b=b.name, cosine=_cos(dot, na, nb),
        sign_conflict=conflict_num / conflict_den if conflict_den else None,
        shared_modules=shared, only_a=sum(1 for m in modules if m.in_a and not m.in_b),
        only_b=sum(1 for m in modules if m.in_b and not m.in_a), sign_conflict_exact=exact, modules=modules,
    )


def norm(adapter: AdapterFactors) -> float:
    """Frobenius norm of the adapter's whole delta."""
    with closing(map_modules(lambda m: sq_norm(_double(m)), list(adapter.modules.values()))) as parts:
        return math.sqrt(sum(parts))


def similarity(adapters: list[AdapterFactors], samples: int = DEFAULT_SAMPLES, seed: int = 0) -> SimilarityReport:
    """Every pair of ``adapters`` (in the given order)."""
    norms = {x.name: norm(x) for x in adapters}
    pairs = [compare(x, y, samples, seed) for x, y in itertools.combinations(adapters, 2)]
    return SimilarityReport([x.name for x in adapters], norms, pairs, samples, seed)
