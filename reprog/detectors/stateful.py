"""`StatefulDetector` (Chen, Carlini and Wagner, 2020): flag a query stream that keeps revisiting one neighbourhood.

A query-based attack asks about many near-copies of a few images: a program plus small perturbations of its
parameters, or a seed image plus Jacobian steps. Benign traffic rarely does. Each query is encoded and scored by
the mean distance to its k nearest neighbours among the last `history` queries; a score below `threshold`
(calibrated on benign traffic for a target false-positive rate) flags it. Chen et al. learn the encoder; here it
is the image average-pooled to `side` px, the training-free baseline, which needs no data the defender lacks.
"""

import torch
import torch.nn.functional as F

from reprog.errors import UserError


class StatefulDetector:
    def __init__(self, k: int = 50, history: int = 10_000, side: int = 16, threshold: float | None = None) -> None:
        if k < 1 or history < k:
            raise UserError(f"detector k={k}, history={history}: expected 1 <= k <= history")
        self.k, self.history, self.side, self.threshold = k, history, side, threshold
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new user, or the end of calibration)."""
        self.memory = torch.empty(0, 0)
        self.seen, self.flagged = 0, 0
        self.first_flag: int | None = None  # queries answered before the first flag

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(images.detach().float().cpu(), self.side).flatten(1)

    def score(self, images: torch.Tensor) -> torch.Tensor:
        """Each query's mean distance to its k nearest earlier queries (inf until k have been seen); the queries
        then join the memory, in order, so a batch is scored as if it came one at a time."""
        codes = self.encode(images)
        memory = codes if not len(self.memory) else torch.cat([self.memory, codes])
        distances = torch.cdist(codes, memory)
        later = torch.arange(len(memory)) >= (len(memory) - len(codes) + torch.arange(len(codes)))[:, None]
        distances[later] = float("inf")  # only queries that came before
        nearest = distances.topk(min(self.k, len(memory)), 1, largest=False).values
        scores = nearest.mean(1)  # inf where fewer than k queries came before
        if nearest.shape[1] < self.k:
            scores.fill_(float("inf"))
        self.memory = memory[-self.history :]
        return scores

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Flags (N,) for a batch of queries, in the order they arrived; counts them."""
        if self.threshold is None:
            raise UserError("the detector has no threshold: calibrate it on benign traffic first (calibrate())")
        flags = self.score(images) < self.threshold
        if self.first_flag is None and flags.any():
            self.first_flag = self.seen + int(flags.nonzero()[0])  # queries answered before the first flag
        self.seen, self.flagged = self.seen + len(flags), self.flagged + int(flags.sum())
        return flags

    def calibrate(self, benign: torch.Tensor, fpr: float = 0.001, batch_size: int = 500) -> float:
        """Set the threshold to the `fpr` quantile of the scores of a benign stream; the memory starts empty after."""
        self.reset()
        scores = torch.cat([self.score(chunk) for chunk in benign.split(batch_size)])
        scores = scores[torch.isfinite(scores)]
        if not len(scores):
            raise UserError(f"calibration needs more than k={self.k} benign images")
        self.threshold = float(torch.quantile(scores, fpr))
        self.reset()
        return self.threshold

    def stats(self) -> dict[str, float | int | None]:
        return {
            "queries": self.seen,
            "flagged": self.flagged,
            "flag_rate": self.flagged / self.seen if self.seen else 0.0,
            "first_flag": self.first_flag,
        }
