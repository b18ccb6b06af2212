"""Label maps `h_g`: victim logits -> target-class logits. One file per map, registered in `MAPS` by its kind;
importing them here is what registers them."""

from typing import Any

from reprog.label_mapping.base import MAPS, IndexMap, LabelMap
from reprog.label_mapping.bayesian import Bayesian
from reprog.label_mapping.first_k import FirstK
from reprog.label_mapping.frequency import Frequency, Iterative
from reprog.label_mapping.linear import Linear
from reprog.label_mapping.many_to_one import ManyToOne
from reprog.label_mapping.random_map import Random
from reprog.registry import import_members


def build_label_map(kind: str, num_source: int, num_targets: int, **settings: Any) -> LabelMap:
    """A map from config (`mapping.kind` and its settings), or from a saved program's metadata."""
    return MAPS.build(kind, num_source, num_targets, **settings)


import_members(__name__)

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
