"""`BankModule`: K reprogramming jobs trained together, one pass through one frozen victim per step.

Each member is what one job of a sweep asks for: a placement, a program family, a label map, a weight lambda, the
seed of its initial weights, its own optimizer settings (a parameter group each; the schedule is shared, relative
to each group's lr) and an optional warm start. The losses are summed, so the gradients stay independent; each
member keeps its own metrics, its own best epoch and its own failure: a program whose loss stops being finite is
dropped, and the others go on.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger
from torch import nn

from reprog.models.frozen import load_frozen_victim
from reprog.modules.optim import configure_optimizers
from reprog.modules.reprogram import build_reprogrammer
from reprog.placement import Placement
from reprog.program.bank import ProgramBank

log = logging.getLogger("reprog")

Batch = tuple[torch.Tensor, torch.Tensor]
LOSS, BATCHES, CORRECT, SEEN = range(4)  # columns of the per-member running sums


@dataclass
class BankMember:
    """One program of a bank, as its own job's config describes it."""

    placement: Placement
    program: dict[str, Any]  # the program group, `lam` included
    mapping: dict[str, Any]
    optimizer: dict[str, Any] = field(default_factory=dict)  # its parameter group's settings: lr, weight_decay, ...
    init_program: str | None = None
    seed: int | None = None  # of its initial weights; None: the run's
    name: str = ""  # how logs name it: its job


class BankModule(pl.LightningModule):
    def __init__(
        self,
        victim: dict[str, Any],
        members: list[BankMember],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        num_classes: int = 10,
        eval_programs: int | None = None,
    ) -> None:
        super().__init__()
        self.victim = load_frozen_victim(**victim)
        self.members, self.num_classes = members, num_classes
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.eval_programs = eval_programs or len(members)  # programs per victim pass in validation and test
        self.criterion = nn.CrossEntropyLoss()
        self.bank: ProgramBank | None = None
        self.lams = [float(m.program.get("lam", 0.0)) for m in members]
        self.failed: dict[int, str] = {}  # member -> why it was dropped
        self.results: list[dict[str, float]] = [{} for _ in members]  # each member's latest metrics
        self.best: list[dict[str, torch.Tensor] | None] = [None] * len(members)  # its best epoch's weights
        self.member_loggers: list[list[Logger]] = [[] for _ in members]  # each job's own TensorBoard
        self._sums: dict[str, torch.Tensor] = {}

    # -- wiring ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.bank is not None:
            return
        dm = self.trainer.datamodule
        built = []
        for m in self.members:
            self.victim.check_canvas(dm.channels, m.placement.canvas)
            program = {k: v for k, v in m.program.items() if k != "lam"}
            built.append(
                build_reprogrammer(
                    m.placement,
                    dm.channels,
                    self.victim.num_classes,
                    self.num_classes,
                    program,
                    m.mapping,
                    m.init_program,
                    m.seed,
                )
            )
        self.bank = ProgramBank(*zip(*built))

    def live(self) -> list[int]:
        return [k for k in range(len(self.members)) if k not in self.failed]

    def place(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return self.trainer.datamodule.place(x, self.members[k].placement)

    def logits(self, x: torch.Tensor, members: list[int]) -> list[torch.Tensor]:
        return self.bank(self.victim, [self.place(x, k) for k in members], members)

    def configure_optimizers(self) -> dict[str, Any]:
        groups = [
            {
                "params": [*self.bank.programs[k].parameters(), *self.bank.label_maps[k].parameters()],
                **self.members[k].optimizer,
            }
            for k in range(len(self.members))
        ]
        return configure_optimizers(self.trainer, groups, self.optimizer_factory, self.scheduler_factory)

    def on_train_epoch_start(self) -> None:
        """Fit the label maps that learn from data, where each says: before training ("once"), or every epoch."""
        first = self.current_epoch == 0 and self.global_step == 0
        every = {k: self.bank.label_maps[k].fit_every for k in self.live()}
        due = [k for k, when in every.items() if when == "epoch" or (when == "once" and first)]
        if due:
            self.fit_label_maps(due)

    @torch.no_grad()
    def fit_label_maps(self, due: list[int]) -> None:
        """Each map's statistics over its own `mapping.batches` training batches, through its program as it is now."""
        dm, totals = self.trainer.datamodule, {}
        batches = {k: self.members[k].mapping.get("batches", 50) for k in due}
        for i, batch in enumerate(dm.train_dataloader()):
            if i == max(batches.values()):
                break
            x, y = dm.preprocess([t.to(self.device) for t in batch], train=False)
            for k in (k for k in due if i < batches[k]):
                stats = self.bank.label_maps[k].statistics(self.victim(self.bank.programs[k](self.place(x, k))), y)
                totals[k] = stats if k not in totals else totals[k] + stats
        for k, total in totals.items():
            self.bank.label_maps[k].fit(total)

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        x, y = batch
        live = self.live()
        logits = self.logits(x, live)
        losses = torch.stack(
            [
                self.criterion(z, y) + self.lams[k] * self.bank.programs[k].regularizer()
                if self.lams[k]
                else self.criterion(z, y)
                for k, z in zip(live, logits)
            ]
        )
        for i in (~torch.isfinite(losses)).nonzero().flatten().tolist():  # one host sync per step
            self.drop(
                live[i],
                f"its training loss became {losses[i].item()} at step {self.global_step} (epoch {self.current_epoch})",
            )
        keep = [i for i, k in enumerate(live) if k not in self.failed]
        self.accumulate(
            "train", [live[i] for i in keep], [losses[i].detach() for i in keep], [logits[i] for i in keep], y
        )
        if not keep:
            self.trainer.should_stop = True
            return None  # Lightning skips the step
        loss = losses[keep].sum()
        self.log("train/loss_sum", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def drop(self, k: int, why: str) -> None:
        self.failed[k] = why
        log.warning(
            "the program of job %s failed: %s; the other %d of its bank go on",
            self.members[k].name or k,
            why,
            len(self.live()),
        )

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, batch: Batch, stage: str) -> None:
        x, y = batch
        live = self.live()
        for start in range(0, len(live), self.eval_programs):  # the memory cap: so many programs per victim pass
            chunk = live[start : start + self.eval_programs]
            logits = self.logits(x, chunk)
            self.accumulate(stage, chunk, [self.criterion(z, y) for z in logits], logits, y)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "test")

    def accumulate(
        self, stage: str, members: list[int], losses: list[torch.Tensor], logits: list[torch.Tensor], y: torch.Tensor
    ) -> None:
        """Add to each member's running sums: the loss as a mean over batches, the accuracy over images (as the
        single-program module's MeanMetric and micro accuracy count them)."""
        sums = self._sums.setdefault(stage, torch.zeros(len(self.members), 4, device=self.device))
        for k, loss, z in zip(members, losses, logits):
            sums[k] += torch.stack(
                [
                    loss.detach().float(),
                    torch.ones_like(loss, dtype=torch.float),
                    (z.argmax(1) == y).sum().float(),
                    torch.full_like(loss, len(y), dtype=torch.float),
                ]
            )

    def collect(self, stage: str) -> dict[int, dict[str, float]]:
        """Each live member's `<stage>/loss` and `<stage>/acc` since the stage began; the sums start again."""
        sums = self._sums.pop(stage, None)
        if sums is None:
            return {}
        sums = sums.cpu()
        return {
            k: {
                f"{stage}/loss": float(sums[k, LOSS] / sums[k, BATCHES]),
                f"{stage}/acc": float(sums[k, CORRECT] / sums[k, SEEN]),
            }
            for k in self.live()
            if sums[k, SEEN] > 0
        }

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._sums.pop("val", None)
            return
        for k, metrics in self.collect("val").items():
            if metrics["val/acc"] > self.results[k].get("val/acc_best", -1.0):  # strictly better, as ModelCheckpoint
                self.best[k] = {name: t.detach().clone() for name, t in self.member_state(k)}
            metrics["val/acc_best"] = max(metrics["val/acc"], self.results[k].get("val/acc_best", -1.0))
            self.report(k, metrics)
        accs = [self.results[k]["val/acc"] for k in self.live() if "val/acc" in self.results[k]]
        if accs:
            self.log("val/acc_max", max(accs), prog_bar=True)

    def on_train_epoch_end(self) -> None:
        for k, metrics in self.collect("train").items():
            self.report(k, {**metrics, "epoch": float(self.current_epoch)})

    def on_test_epoch_end(self) -> None:
        for k, metrics in self.collect("test").items():
            self.report(k, metrics)

    def report(self, k: int, metrics: dict[str, float]) -> None:
        self.results[k].update(metrics)
        for logger in self.member_loggers[k]:
            logger.log_metrics(metrics, step=self.global_step)

    # -- results --------------------------------------------------------------------------------
    def member_state(self, k: int) -> Iterator[tuple[str, torch.Tensor]]:
        yield from (("program." + n, t) for n, t in self.bank.programs[k].state_dict().items())
        yield from (("label_map." + n, t) for n, t in self.bank.label_maps[k].state_dict().items())

    def restore_best(self) -> None:
        """Each live member's best validation epoch back into its program and label map: what is exported and tested."""
        for k in self.live():
            if self.best[k] is not None:
                for part in ("program", "label_map"):
                    module = getattr(self.bank, part + "s")[k]
                    module.load_state_dict(
                        {n[len(part) + 1 :]: t for n, t in self.best[k].items() if n.startswith(part + ".")}
                    )
