"""`Domain`: the range a numeric or boolean setting may take, and the one-line message when it is outside.

Shared by the config's own checks (`reprog.config_schema`, for settings that belong to no plug-in) and by every
plug-in, which checks its own settings where it is built (`check(self.kind, locals(), steps=INT_1)`).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reprog.errors import UserError


@dataclass(frozen=True)
class Domain:
    kind: type  # int, float or bool
    low: float = -math.inf
    high: float = math.inf
    open_low: bool = False  # low itself is outside (e.g. a learning rate > 0)
    nullable: bool = False

    def admits(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.kind is float else int):
            return False
        if not math.isfinite(value):
            return False
        return (value > self.low if self.open_low else value >= self.low) and value <= self.high

    def describe(self, value: Any = None) -> str:
        """What the domain admits, in words; `value` (what was given) makes "a number" "a finite number" for inf."""
        if self.kind is bool:
            text = "true or false"
        else:
            infinite = isinstance(value, float) and not math.isfinite(value)
            noun = "an integer" if self.kind is int else "a finite number" if infinite else "a number"
            bounds = []
            if self.low > -math.inf:
                bounds.append(f"{'>' if self.open_low else '>='} {self.low:g}")
            if self.high < math.inf:
                bounds.append(f"<= {self.high:g}")
            text = f"{noun} {' and '.join(bounds)}".strip()
        return text + (", or null" if self.nullable else "")


INT_1, INT_0 = Domain(int, 1), Domain(int, 0)
POSITIVE, NON_NEGATIVE, FRACTION = Domain(float, 0, open_low=True), Domain(float, 0), Domain(float, 0, 1)
FLAG, NUMBER = Domain(bool), Domain(float)
SEED = Domain(int, 0, nullable=True)


def nullable(domain: Domain) -> Domain:
    return Domain(domain.kind, domain.low, domain.high, domain.open_low, nullable=True)


def show(value: Any) -> str:
    """A value as the user writes it: null, true, 0.0156863."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    return f"{value:g}" if isinstance(value, float) else str(value)


def check(owner: str, values: Mapping[str, Any], **domains: Domain) -> None:
    """Refuse the first setting outside its domain in one line: `pgd steps=0: expected an integer >= 1`.

    A member calls it with `locals()` at the top of `__init__`, so `values` are its arguments as given.
    """
    for name, domain in domains.items():
        if not domain.admits(values[name]):
            raise UserError(f"{owner} {name}={show(values[name])}: expected {domain.describe(values[name])}")
