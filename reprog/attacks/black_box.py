"""`BlackBoxVictim`: a frozen victim that the task reaches only through an oracle (black-box reprogramming).

It is a `Victim` (reprog.models.victim), as a `FrozenVictim` is, but:
- the victim lives in the oracles' closures: no attribute, parameter or buffer of this module reaches it;
- in training every image is a query against the budget, and the program's gradient is a zeroth-order estimate
  from more queries (`reprog.attacks.zeroth_order`); `affords` says whether a step can still be paid for;
- validation and test (eval mode) ask a referee, the same oracle without a budget: the experimenter measuring
  the program, not the attacker spending queries.

The answers reach the label map as log-probabilities (a score oracle; softmax gives back the victim's own
probabilities) or one-hot labels (a label oracle, where only a flip of the top label carries signal).
"""

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from reprog.attacks.oracle import ORACLES
from reprog.attacks.zeroth_order import ESTIMATORS
from reprog.errors import UserError
from reprog.models.frozen import FrozenVictim, check_canvas

FLOOR = 1e-6  # log of a probability the oracle rounds or leaves out (top-k) to 0


class BlackBoxVictim(nn.Module):
    device_probe: torch.Tensor  # an empty buffer: where the victim was moved

    def __init__(
        self,
        victim: FrozenVictim,
        kind: str = "score",
        budget: int | None = None,
        top_k: int | None = None,
        decimals: int | None = None,
        estimator: str = "random",
        q: int = 10,
        mu: float = 0.01,
        correction: float = 0.9,
        grid: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if kind not in ORACLES:
            raise UserError(f"unknown oracle.kind {kind!r}; choose one of {sorted(ORACLES)}")
        if estimator not in ESTIMATORS:
            raise UserError(f"unknown oracle.estimator {estimator!r}; choose one of {sorted(ESTIMATORS)}")
        answers = {"top_k": top_k, "decimals": decimals} if kind == "score" else {}
        if kind == "label" and (top_k is not None or decimals is not None):
            raise UserError(
                "oracle.top_k and oracle.decimals shape a score oracle's answers; a label oracle "
                "returns the top label only: drop them or set oracle=score"
            )
        self.kind, self.spec, self.sha256 = kind, victim.spec, victim.sha256
        self.oracle = ORACLES[kind](victim, budget, **answers)
        self.referee = ORACLES[kind](victim, **answers)
        extra = {"correction": correction} if estimator == "spsa" else {}
        self.estimator = ESTIMATORS[estimator](q, mu, seed=seed, grid=grid, **extra)
        self.register_buffer("device_probe", torch.zeros(0), persistent=False)  # where the victim was moved

    @property
    def num_classes(self) -> int:
        return int(self.spec["num_classes"])

    @property
    def queries(self) -> int | None:  # never None here: a `Victim`'s type, where white-box counts nothing
        return self.oracle.queries

    @queries.setter
    def queries(self, spent: int | None) -> None:  # a resumed run goes on from the checkpoint's count
        self.oracle.queries = spent or 0

    @property
    def budget(self) -> int | None:
        return self.oracle.budget

    def affords(self, batch_size: int) -> bool:
        """Whether the budget can pay for one training step on `batch_size` images."""
        remaining = self.oracle.remaining
        return remaining is None or batch_size * self.estimator.batches <= remaining

    def check_canvas(self, channels: int, canvas: int) -> None:
        check_canvas(self.referee, self.spec, channels, canvas, self.device_probe.device)

    def features(self, answers: torch.Tensor) -> torch.Tensor:
        """The oracle's answers as the label map's input: log-probabilities, or one-hot labels."""
        if self.kind == "label":
            return F.one_hot(answers, self.num_classes).float()
        return answers.clamp_min(FLOOR).log()

    def read(self, programs: Sequence[nn.Module], xs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The victim's answers for each `programs[k](xs[k])`, one program at a time (each has its own estimate)."""
        return [self.answer(program, x) for program, x in zip(programs, xs)]

    def answer(self, program: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The answers for `program(x)`: from the referee in eval mode; in training from the oracle, and when
        autograd is on with the zeroth-order estimate of the program's gradient wired behind them."""
        if not self.training:
            return self.features(self.referee(program(x)))
        params = {name: p for name, p in program.named_parameters() if p.requires_grad}
        if not (torch.is_grad_enabled() and params):
            return self.features(self.oracle(program(x)))
        answer = lambda values: self.features(self.oracle(functional_call(program, values, (x,))))  # noqa: E731
        return self.estimator(answer, params)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor], recurse: bool = True) -> "BlackBoxVictim":
        super()._apply(fn, recurse)
        self.oracle._move(fn)  # the referee asks the same model
        return self

    def extra_repr(self) -> str:
        return (
            f"{self.oracle!r}, estimator={self.estimator.name}, q={self.estimator.q}, "
            f"mu={self.estimator.mu}, grid={self.estimator.grid}"
        )
