"""The condensed template memory of the ``vit`` family (inter-frame sparsification, as in FARTrack), numpy only.

A one-stream tracker searches with the template tokens it is given; the memory gives it tokens from several
confident past frames instead of the first frame's alone, at a fixed token budget so the cost per frame does not
grow with the number of templates:

* at ``init`` the memory holds the initial template's tokens (``template_feat_size ** 2`` of them);
* every ``memory_every`` frames, when the update's calibrated confidence is at least ``memory_confidence`` and
  the state is TRACKING, the template graph embeds a new template crop around the new box; its tokens wait;
* the next search runs over the memory and the waiting tokens together (that frame's box comes from it) and the
  search graph's ``attn`` output says how much attention each template token received from the search tokens
  (mean over heads, search queries and blocks); the memory keeps the ``memory_tokens`` most attended, of which
  ``round(memory_protected * memory_tokens)`` are reserved for the initial template's tokens (its most attended
  ones), so the first, ground-truth appearance is never forgotten.

Condensing costs no extra search: the waiting tokens join the next ordinary search (one frame in
``memory_every`` searches over ``memory_tokens`` + one template's tokens). Every other frame searches over at
most ``memory_tokens`` tokens. The memory is per target (:class:`~.target.TargetState.memory`); the networks
hold no state. Switched on by the spec (``memory_tokens`` > 0, vit family only); the search graph must then have
the ``attn`` output and take any number of template tokens (graphs exported by this edgetrack from such a spec
do; :func:`check_memory_graph` refuses others at load).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EdgeTrackError, ModelError
from ..spec import TrackerSpec
from .confidence import State


@dataclass
class TemplateMemory:
    """One target's memory: ``tokens`` (1, M, C) with M at most the budget, ``initial`` (M,) True where a token
    is the initial template's, ``pending`` a new template's tokens (1, Nz, C) waiting for the next search, and
    ``age`` the updates since a template was last taken (or since ``init``)."""

    tokens: np.ndarray
    initial: np.ndarray
    pending: np.ndarray | None = None
    age: int = 0
    taken: int = 0  # templates taken so far

    def search_tokens(self) -> np.ndarray:
        """What the next search takes: the memory, then the waiting tokens if any."""
        if self.pending is None:
            return self.tokens
        return np.concatenate([self.tokens, self.pending.astype(self.tokens.dtype, copy=False)], axis=1)


def condense(attention: np.ndarray, initial: np.ndarray, budget: int, protected: int) -> np.ndarray:
    """Sorted indices of the tokens to keep: the ``protected`` most attended initial tokens, then the most
    attended of all the others up to ``budget`` in all (ties: the earlier token)."""
    attention = np.asarray(attention, dtype=np.float64).reshape(-1)
    n = attention.size
    if n <= budget:
        return np.arange(n)
    order = np.argsort(-attention, kind="stable")
    keep = np.zeros(n, dtype=bool)
    keep[order[initial[order]][:protected]] = True
    rest = order[~keep[order]]
    keep[rest[:budget - int(keep.sum())]] = True
    return np.flatnonzero(keep)


class MemoryPolicy:
    """The spec's memory constants and the three steps the session runs per target: :meth:`start` at ``init``,
    :meth:`absorb` after a search (condense the waiting tokens in), :meth:`wants` after the confidence is known
    (take a new template?) and :meth:`take`."""

    def __init__(self, spec: TrackerSpec) -> None:
        self.budget = spec.memory_tokens
        self.every = spec.memory_every
        self.confidence = spec.memory_confidence
        self.protected = min(round(spec.memory_protected * spec.memory_tokens), spec.template_feat_size ** 2)

    def start(self, zt: np.ndarray) -> TemplateMemory:
        """A memory holding the initial template's tokens (1, Nz, C)."""
        return TemplateMemory(zt, np.ones(zt.shape[1], dtype=bool))

    def absorb(self, memory: TemplateMemory, attention: np.ndarray) -> None:
        """Condense the waiting tokens into the memory by ``attention`` (one value per search token of the last
        search, memory first); nothing when none were waiting."""
        if memory.pending is None:
            return
        tokens = memory.search_tokens()
        attention = np.asarray(attention).reshape(-1)
        if attention.size != tokens.shape[1]:
            raise ModelError(f"the search graph's attn output has {attention.size} values for "
                             f"{tokens.shape[1]} template tokens; export the model again")
        initial = np.concatenate([memory.initial, np.zeros(memory.pending.shape[1], dtype=bool)])
        keep = condense(attention, initial, self.budget, self.protected)
        memory.tokens, memory.initial, memory.pending = tokens[:, keep], initial[keep], None

    def wants(self, memory: TemplateMemory, state: State, confidence: float) -> bool:
        """Count this update; True when a template is due and the update is trusted enough to take one."""
        memory.age += 1
        return (memory.pending is None and memory.age >= self.every and state is State.TRACKING
                and confidence >= self.confidence)

    def take(self, memory: TemplateMemory, zt: np.ndarray) -> None:
        """A new template's tokens (1, Nz, C) wait for the next search."""
        memory.pending, memory.age = zt, 0
        memory.taken += 1


def check_memory_graph(backend, spec: TrackerSpec, where: object) -> None:
    """ModelError unless the search graph gives the ``attn`` output and takes the memory's largest token count
    (``memory_tokens`` + one template's tokens), checked on zeros."""
    e, i = spec.exemplar_size, spec.instance_size
    advice = ("the template memory (spec memory_tokens > 0) needs a search graph with the 'attn' output and any "
              "number of template tokens: export the checkpoint again with this edgetrack, or set memory_tokens "
              "to 0")
    (zt, *_) = backend.run_template(np.zeros((1, 3, e, e), dtype=np.float32))
    n = spec.memory_tokens + zt.shape[1]
    tokens = np.resize(np.asarray(zt), (1, n, zt.shape[2])).astype(np.float32)
    try:
        outs = backend.run_search(np.zeros((1, 3, i, i), dtype=np.float32), [tokens])
    except EdgeTrackError:
        raise
    except Exception as exc:  # vendor runtimes raise their own types on a shape the graph cannot take
        raise ModelError(f"{where}: the search graph does not take {n} template tokens ({exc}); {advice}") from exc
    if len(outs) < 4 or tuple(np.shape(outs[3])) != (1, n):
        raise ModelError(f"{where}: the search graph gives no attention of each template token (outputs: "
                         f"{[tuple(np.shape(o)) for o in outs]}); {advice}")
