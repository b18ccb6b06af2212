"""Label maps `h_g`: victim logits -> target-class logits. One file per map; `build_label_map` by `kind`."""

from typing import Any

from reprog.errors import UserError
from reprog.label_mapping.base import IndexMap, LabelMap
from reprog.label_mapping.bayesian import Bayesian
from reprog.label_mapping.first_k import FirstK
from reprog.label_mapping.frequency import Frequency, Iterative
from reprog.label_mapping.linear import Linear
from reprog.label_mapping.many_to_one import ManyToOne
from reprog.label_mapping.random_map import Random

MAPS: dict[str, type[LabelMap]] = {
    m.kind: m for m in (FirstK, Random, ManyToOne, Frequency, Iterative, Bayesian, Linear)
}


def build_label_map(kind: str, num_source: int, num_targets: int, **settings: Any) -> LabelMap:
    """A map from config (`mapping.kind` and its settings), or from a saved program's metadata."""
    if kind not in MAPS:
        raise UserError(f"unknown mapping.kind {kind!r}; choose one of {sorted(MAPS)}")
    try:
        return MAPS[kind](num_source, num_targets, **settings)
    except TypeError as e:
        raise UserError(f"mapping.kind={kind} does not take these settings: {settings} ({e})") from e


__all__ = [
    "LabelMap",
    "IndexMap",
    "FirstK",
    "Random",
    "ManyToOne",
    "Frequency",
    "Iterative",
    "Bayesian",
    "Linear",
    "MAPS",
    "build_label_map",
]
