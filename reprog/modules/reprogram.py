"""`ReprogramModule`: learn adversarial programs that turn a frozen victim into target classifiers.

logits_k = h_k(f(program_k(x))), loss = sum_k CE(logits_k, y) + lam_k * ||W_k||^2; only the programs are trained.
An ordinary job is a bank of one; a sweep's jobs that share a victim train as one bank of K (`hydra/launcher=bank`):
the K programmed batches go through the victim in one pass, and since it is frozen, program k's loss and gradient
depend on program k alone. Each member keeps its own metrics, best epoch and failure (a non-finite loss drops it;
the run diverges when none is left).
The victim is read through one interface (`reprog.models.victim.Victim`): white-box, or an oracle's answers with
zeroth-order gradients (`oracle=score|label`), where training ends cleanly before a step the budget cannot pay for.
With a `transform`, the victim reads `transform(program(x))`: fresh draws in training (EOT), the same seeded draws
in every validation and test, so val/acc and test/acc are accuracies under it (test/acc_untransformed: without).
"""

import json
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger, TensorBoardLogger
from pytorch_lightning.utilities.types import OptimizerLRScheduler
from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

from reprog.atomic_files import write_file
from reprog.attacks.black_box import BlackBoxVictim
from reprog.data.target_images import RESIZE
from reprog.divergence import advice
from reprog.errors import Diverged, UserError
from reprog.figures import image_grid
from reprog.label_mapping import LabelMap, build_label_map
from reprog.models.class_names import describe_reads, victim_class_names
from reprog.models.frozen import load_frozen_victim
from reprog.models.victim import Victim
from reprog.modules.classification import Batch, configured_lr
from reprog.modules.optim import configure_optimizers
from reprog.placement import Placement
from reprog.program import AdversarialProgram, build_program
from reprog.program.bank import ProgramBank
from reprog.program_io import load_program, save_program
from reprog.transforms import Transformed, build_transform

log = logging.getLogger("reprog")

# the frozen victim is in eval mode on purpose
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")

# the queries a black-box run has spent, written after every step beside its checkpoints (which are saved less often)
LEDGER = "queries.json"


@dataclass
class Member:
    """One program of a bank, as its own job's config describes it."""

    program: dict[str, Any]  # the program group, `lam` included
    mapping: dict[str, Any]
    optimizer: dict[str, Any] = field(default_factory=dict)  # its parameter group's own settings: lr, ...
    init_program: str | None = None
    seed: int | None = None  # of its initial weights; None: the run's
    placement: Placement | None = None  # where it places the target images; None: the data module already did
    name: str = ""  # how logs name it: its job

    @classmethod
    def of(cls, placement: dict[str, Any] | None = None, **fields: Any) -> "Member":
        """From config values: `placement` holds `Placement.make`'s arguments (canvas, size, position)."""
        return cls(placement=Placement.make(**placement) if placement else None, **fields)


def build_reprogrammer(
    member: Member, placement: Placement, channels: int, victim_classes: int, num_targets: int
) -> tuple[AdversarialProgram, LabelMap]:
    """A member's program and label map, drawn from its `seed` (by default the run's seed) alone, so a program bank
    builds each of its programs exactly as that program's own job would; or started from `init_program`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch.initial_seed() if member.seed is None else member.seed)
        program_cfg = {k: v for k, v in member.program.items() if k != "lam"}
        program = build_program(placement=placement, channels=channels, **program_cfg)
        settings = {k: v for k, v in member.mapping.items() if k not in ("kind", "batches")}
        label_map = build_label_map(member.mapping.get("kind", "first_k"), victim_classes, num_targets, **settings)
    if member.init_program:
        warm_start(program, label_map, member.init_program)
    return program, label_map


def warm_start(program: AdversarialProgram, label_map: LabelMap, path: str) -> None:
    """Load a saved program and label map of the same shape, e.g. one trained white-box on a substitute before it
    is fine-tuned through an oracle."""
    loaded = load_program(path)

    def shape(program: AdversarialProgram, maps: LabelMap) -> dict[str, Any]:
        return {"program": program.config(), "label_map": (maps.kind, maps.num_source, maps.num_targets)}

    ours, theirs = shape(program, label_map), shape(loaded.program, loaded.label_map)
    if ours != theirs:
        raise UserError(
            f"task.init_program={path} holds {theirs}, but this run builds {ours}; start from a "
            "program of the same kind, placement and label map"
        )
    program.load_state_dict(loaded.program.state_dict())
    label_map.load_state_dict(loaded.label_map.state_dict())
    log.info("program and label map start from %s", path)


def build_victim(victim: dict[str, Any], oracle: dict[str, Any] | None = None) -> Victim:
    """The frozen victim, read white-box (oracle=none), or only through an oracle's answers (oracle=score|label)."""
    if oracle and "kind" not in oracle:  # an oracle.* override on oracle=none would make a score oracle
        raise UserError(
            f"oracle.{next(iter(oracle))} is set, but oracle=none (white-box) reads the victim "
            "directly: drop the oracle.* override, or choose oracle=score or oracle=label"
        )
    frozen = load_frozen_victim(**victim)
    return BlackBoxVictim(frozen, **oracle) if oracle else frozen


def read_ledger(path: Path) -> int:
    try:
        return int(json.loads(path.read_text())["queries"])
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f'{path} does not hold the run\'s spent queries as {{"queries": <count>}}; restore it, or delete it '
            "to count from the checkpoint's own total (queries spent after that checkpoint are then forgotten)"
        ) from None


def member_metrics(num_classes: int, members: int) -> nn.ModuleList:
    """Each member's loss (a mean over batches) and accuracy (over images), as torchmetrics."""
    return nn.ModuleList(
        nn.ModuleDict({"loss": MeanMetric(), "acc": MulticlassAccuracy(num_classes, average="micro")})
        for _ in range(members)
    )


class ReprogramModule(pl.LightningModule):
    # what one program of a bank may set for itself, as `task.<key>` (and the config group of that name)
    member_keys = ("program", "mapping", "optimizer", "init_program", "program_seed")
    bank: ProgramBank  # built in setup(), when the data's channels are known
    untransformed: nn.ModuleList  # test/acc_untransformed, per member
    readers: list[nn.Module]  # what the victim reads: each program, or the transform after it

    def __init__(
        self,
        victim: dict[str, Any],
        program: dict[str, Any],
        mapping: dict[str, Any],
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        num_classes: int = 10,
        image_samples: int = 16,
        oracle: dict[str, Any] | None = None,
        init_program: str | None = None,
        program_seed: int | None = None,
        transform: dict[str, Any] | None = None,
        members: Sequence[dict[str, Any]] | None = None,
        eval_programs: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "members"])
        self.victim = build_victim(victim, oracle)
        self.members = (
            [Member.of(**m) for m in members] if members else [Member(program, mapping, {}, init_program, program_seed)]
        )
        self.single = len(self.members) == 1  # a bank of one logs as an ordinary job
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.eval_programs = eval_programs or len(self.members)  # programs per victim pass in validation and test
        self.criterion = nn.CrossEntropyLoss()
        self.lams = [float(m.program.get("lam", 0.0)) for m in self.members]
        self.train_metrics, self.val_metrics, self.test_metrics = (
            member_metrics(num_classes, len(self.members)) for _ in range(3)
        )
        self.transform = build_transform(**(transform or {}))  # between program and victim; None: nothing
        self.untransformed = nn.ModuleList(MeanMetric() for _ in self.members)  # test/acc_untransformed
        self.failed: dict[int, str] = {}  # member -> why it was dropped
        self.results: list[dict[str, float]] = [{} for _ in self.members]  # each member's latest metrics
        self.best: list[dict[str, torch.Tensor] | None] = [None] * len(self.members)  # its best epoch's weights
        self.best_acc = [-1.0] * len(self.members)  # and that epoch's val/acc
        self.member_loggers: list[list[Logger]] = [[] for _ in self.members]  # a bank's per-job TensorBoard
        self.num_classes, self.image_samples = num_classes, image_samples
        self._samples: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.stopped_by: str | None = None  # why training ended before its epochs did (the run record says it)

    # -- wiring ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if "bank" in self._modules:
            return
        dm = self.datamodule
        built = []
        for m in self.members:
            placement = m.placement or getattr(dm, "placement", None)
            if placement is None:
                raise UserError(
                    f"task=reprogram needs a data module with a placement (data=mnist_padded, "
                    f"data=fashion_mnist_padded or data=counting), not {type(dm).__name__}"
                )
            self.victim.check_canvas(dm.channels, placement.canvas)
            built.append(build_reprogrammer(m, placement, dm.channels, self.victim.num_classes, self.num_classes))
        self.bank = ProgramBank(*zip(*built))
        # what the victim reads; kept out of the module tree, so the programs' weights are saved once
        self.__dict__["readers"] = [
            p if self.transform is None else Transformed(p, self.transform) for p in self.bank.programs
        ]

    @property
    def datamodule(self) -> Any:
        """The run's data module (Lightning sets `trainer.datamodule` at run time only)."""
        return cast(Any, self.trainer).datamodule

    @property
    def program(self) -> AdversarialProgram:
        """The program of a bank of one (an ordinary job)."""
        return self.bank.program(0)

    @property
    def label_map(self) -> LabelMap:
        return self.bank.label_map(0)

    def metric(self, stage: str, k: int, name: str) -> Metric:
        """Member k's `loss` or `acc` metric of a stage."""
        return cast(Metric, cast(nn.ModuleDict, cast(nn.ModuleList, getattr(self, f"{stage}_metrics"))[k])[name])

    def live(self) -> list[int]:
        return [k for k in range(len(self.members)) if k not in self.failed]

    def place(self, x: torch.Tensor, k: int) -> torch.Tensor:
        placement = self.members[k].placement
        return x if placement is None else self.datamodule.place(x, placement)

    def logits(
        self, x: torch.Tensor, members: list[int], readers: Sequence[nn.Module] | None = None
    ) -> list[torch.Tensor]:
        """Target-class logits of each member for the batch, through one victim pass."""
        readers = readers or self.readers
        answers = self.victim.read([readers[k] for k in members], [self.place(x, k) for k in members])
        return [self.bank.label_map(k)(z) for k, z in zip(members, answers)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x, [0])[0]

    def configure_optimizers(self) -> OptimizerLRScheduler:
        groups = [
            {"params": [*self.bank.program(k).parameters(), *self.bank.label_map(k).parameters()], **m.optimizer}
            for k, m in enumerate(self.members)
        ]
        return configure_optimizers(self.trainer, groups, self.optimizer_factory, self.scheduler_factory)

    def on_train_epoch_start(self) -> None:
        """Fit the label maps that learn from data where each says: before training ("once"), or every epoch."""
        first = self.current_epoch == 0 and self.global_step == 0
        every = {k: self.bank.label_map(k).fit_every for k in self.live()}
        due = [k for k, when in every.items() if when == "epoch" or (when == "once" and first)]
        if due:
            self.fit_label_maps(due)

    @torch.no_grad()  # not inference_mode: the maps' buffers are used under autograd afterwards
    def fit_label_maps(self, due: list[int]) -> None:
        """Each map's statistics over its own `mapping.batches` training batches, through its program as it is now."""
        dm, totals = self.datamodule, cast(dict[int, torch.Tensor], {})
        batches = {k: self.members[k].mapping.get("batches", 50) for k in due}
        for i, batch in enumerate(dm.train_dataloader()):
            if i == max(batches.values()):
                break
            x, y = dm.preprocess([t.to(self.device) for t in batch], train=False)
            now = [k for k in due if i < batches[k]]
            for k, z in zip(now, self.victim.read([self.readers[k] for k in now], [self.place(x, k) for k in now])):
                stats = self.bank.label_map(k).statistics(z, y)
                totals[k] = stats if k not in totals else totals[k] + stats
        for k, total in totals.items():  # the same map on every rank
            self.bank.label_map(k).fit(self.trainer.strategy.reduce(total, reduce_op="sum"))

    # -- training -------------------------------------------------------------------------------
    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        live = self.live()
        logits = self.logits(x, live)
        losses = [self.criterion(z, y) + self.penalty(k) for k, z in zip(live, logits)]
        finite = torch.isfinite(torch.stack([loss.detach() for loss in losses])).tolist()  # one host sync a step
        for k, loss, ok in zip(live, losses, finite):
            if not ok:
                self.drop(k, f"the training loss became {loss.item()} at step {self.global_step}")
        keep = [i for i, ok in enumerate(finite) if ok]
        if not keep:
            raise Diverged(f"{self.failed[live[-1]]}: {advice('optimizer.lr', configured_lr(self.optimizer_factory))}")
        for i in keep:
            self.update("train", live[i], losses[i].detach(), logits[i], y)
        loss = sum(losses[i] for i in keep)
        if not self.single:
            self.log("train/loss_sum", loss.detach(), on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def penalty(self, k: int) -> torch.Tensor | float:
        if not self.lams[k]:
            return 0.0
        reg = self.lams[k] * self.bank.program(k).regularizer()
        if self.single:
            self.log("train/reg", reg, on_step=True, on_epoch=False)
        return reg

    def drop(self, k: int, why: str) -> None:
        """Stop training member k; its weights, which may no longer be finite, are left out of every later check."""
        self.failed[k] = why
        self.bank.program(k).requires_grad_(False)
        self.bank.label_map(k).requires_grad_(False)
        if not self.single:
            log.warning(
                "the program of job %s failed: %s; the other %d of its bank go on",
                self.members[k].name or k,
                why,
                len(self.live()),
            )

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self, batch: Batch, stage: str) -> list[torch.Tensor]:
        x, y = batch
        live, out = self.live(), []
        for start in range(0, len(live), self.eval_programs):  # the memory cap: so many programs per victim pass
            chunk = live[start : start + self.eval_programs]
            logits = self.logits(x, chunk)
            for k, z in zip(chunk, logits):
                self.update(stage, k, self.criterion(z, y), z, y)
            out += logits
        return out

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        logits = self.evaluate(batch, "val")
        if batch_idx == 0 and self.live():
            n = self.image_samples
            self._samples = (batch[0][:n], batch[1][:n], logits[0][:n].argmax(1))

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, "test")
        if self.transform is not None:  # the same programs with nothing in between, for comparison
            x, y = batch
            for k, z in zip(self.live(), self.logits(x, self.live(), list(self.bank.programs))):
                untransformed = cast(MeanMetric, self.untransformed[k])
                untransformed.update((z.argmax(1) == y).float())
                if self.single:
                    self.log("test/acc_untransformed", untransformed, on_epoch=True)

    def update(self, stage: str, k: int, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Add a batch to member k's metrics; a bank of one logs them as an ordinary job does."""
        loss_metric, acc_metric = self.metric(stage, k, "loss"), self.metric(stage, k, "acc")
        loss_metric(loss)
        acc_metric(logits, y)
        if self.single:
            train = stage == "train"
            self.log(f"{stage}/loss", loss_metric, on_step=train, on_epoch=True, prog_bar=train)
            self.log(f"{stage}/acc", acc_metric, on_step=False, on_epoch=True, prog_bar=True)

    def on_validation_epoch_start(self) -> None:
        if self.transform is not None:
            for reader in self.readers:
                cast(Transformed, reader).restart_draws()  # the same draws every epoch, and in every run

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self.collect("val")
            return
        for k in self.live():
            acc = float(self.metric("val", k, "acc").compute())  # the same on every rank
            if acc > self.best_acc[k]:  # strictly better, as ModelCheckpoint
                self.best[k] = {name: t.detach().clone() for name, t in self.member(k).state_dict().items()}
                self.best_acc[k] = acc
        if self.single:
            self.log("val/acc_best", self.best_acc[0], prog_bar=True)
            self.log_samples()
            return
        for k, metrics in self.collect("val").items():
            self.report(k, {**metrics, "val/acc_best": self.best_acc[k]})
        accs = [self.results[k]["val/acc"] for k in self.live() if "val/acc" in self.results[k]]
        if accs:
            self.log("val/acc_max", max(accs), prog_bar=True)

    def on_train_epoch_end(self) -> None:
        for k, metrics in self.collect("train").items():
            self.report(k, {**metrics, "epoch": float(self.current_epoch)})

    def on_test_epoch_end(self) -> None:
        for k, metrics in self.collect("test").items():
            self.report(k, metrics)

    def collect(self, stage: str) -> dict[int, dict[str, float]]:
        """A bank's live members' `<stage>/loss` and `<stage>/acc` since the stage began; the metrics start again.
        (A bank of one logs its metrics as an ordinary job, through `self.log`, which resets them.)"""
        out: dict[int, dict[str, float]] = {}
        for k in self.live() if not self.single else []:
            metrics = {name: self.metric(stage, k, name) for name in ("loss", "acc")}
            if metrics["acc"].update_count:
                out[k] = {f"{stage}/{name}": float(m.compute()) for name, m in metrics.items()}
            for m in metrics.values():
                m.reset()
        return out

    def report(self, k: int, metrics: dict[str, float]) -> None:
        self.results[k].update(metrics)
        for logger in self.member_loggers[k]:
            logger.log_metrics(metrics, step=self.global_step)

    def log_samples(self) -> None:
        """Programmed validation images and the program itself, in TensorBoard."""
        tb = next((lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or not self.trainer.is_global_zero or self._samples is None:
            return
        x, y, pred = self._samples
        with torch.no_grad():
            x_adv = self.program(x).clamp(0, 1)
        titles = [f"y={int(t)} pred={int(p)}" for t, p in zip(y, pred)]
        tb.experiment.add_figure("val/x_adv", image_grid(x_adv, titles), self.global_step)
        tb.experiment.add_image("program/P", self.program.render().clamp(0, 1), self.global_step)

    # -- budgets: the queries spent are state -----------------------------------------------------
    def on_train_start(self) -> None:
        """A run whose budget cannot pay for even its first step is refused, not completed untrained."""
        batch_size = self.datamodule.batch_size * len(self.members)
        if self.global_step == 0 and not self.victim.affords(batch_size):
            raise UserError(
                f"oracle.budget={self.victim.budget} cannot pay for one training step at "
                f"data.batch_size={self.datamodule.batch_size}; raise oracle.budget or lower data.batch_size"
            )

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> int | None:
        """End training, cleanly, before a step the victim's query budget cannot pay for."""
        if self.victim.affords(len(batch[0]) * len(self.live())):
            return None
        if not self.trainer.should_stop:
            self.stopped_by = f"the query budget: {self.victim.queries} of {self.victim.budget} queries used"
            log.warning(
                "query budget reached: %d of %d queries used; training ends here, and the program and its "
                "metrics so far are saved",
                self.victim.queries,
                self.victim.budget,
            )
        self.trainer.should_stop = True
        self.log_queries()  # also when the budget paid for no step at all
        return -1  # Lightning: skip the rest of the epoch

    def on_train_batch_end(self, outputs: Any, batch: Batch, batch_idx: int) -> None:
        self.log_queries()
        if self.victim.queries is not None and self.trainer.is_global_zero:  # a kill loses no spent query
            write_file(Path(self.trainer.default_root_dir) / LEDGER, json.dumps({"queries": self.victim.queries}))

    def log_queries(self) -> None:
        if self.victim.queries is not None:  # a black-box victim counts what training asked
            self.log("train/queries", float(self.victim.queries), on_step=True, on_epoch=False, prog_bar=True)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Spent queries and each member's best epoch go on in a resumed run."""
        checkpoint["best_members"] = {"weights": self.best, "val_acc": self.best_acc}
        if self.victim.queries is not None:
            checkpoint["oracle_queries"] = self.victim.queries

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        best = checkpoint.get("best_members", {})
        self.best, self.best_acc = best.get("weights", self.best), best.get("val_acc", self.best_acc)
        if self.victim.queries is not None:  # what the checkpoint's run spent, up to its last step
            spent = int(checkpoint.get("oracle_queries", 0))
            ledger = Path(self.trainer.ckpt_path or ".").parent.parent / LEDGER
            if ledger.is_file():
                spent = max(spent, read_ledger(ledger))
            self.victim.queries = spent

    # -- results --------------------------------------------------------------------------------
    def member(self, k: int) -> nn.ModuleDict:
        """Member k's program and label map, whose state dict (`program.W`, `label_map.index`, ...) is its result."""
        return nn.ModuleDict({"program": self.bank.program(k), "label_map": self.bank.label_map(k)})

    def on_fit_end(self) -> None:
        """Each live member's best validation epoch back into its program and label map: what is exported and
        tested (the last weights where no validation ran)."""
        for k in self.live():
            if (best := self.best[k]) is not None:
                nn.ModuleDict({"program": self.bank.program(k), "label_map": self.bank.label_map(k)}).load_state_dict(
                    best
                )

    def export(self, directory: str | Path, k: int = 0) -> Path:
        """Write member k's `program.safetensors` + `program.json`: the whole result of its job."""
        if "bank" not in self._modules:  # built in setup(), which ddp_spawn/ddp_fork run only in their workers
            raise UserError(
                "no program to export: with ddp_spawn or ddp_fork it stays in the worker processes; "
                "use trainer.strategy=ddp (the default of trainer=ddp)"
            )
        reads = self.label_map_reads(k)
        for row in reads:
            log.info("target %s reads victim classes %s", row["target"], ", ".join(row["names"]))
        return save_program(
            Path(directory) / "program.safetensors",
            self.bank.program(k),
            self.bank.label_map(k),
            {"sha256": self.victim.sha256, "model": self.victim.spec},
            target={"resize": RESIZE},
            reads=reads,
            transform=None if self.transform is None else self.transform.config(),
        )

    def label_map_reads(self, k: int = 0, top: int = 3) -> list[dict[str, Any]]:
        """Which victim classes, by name, each target class reads (an index map's own; the top 3 of weighted maps)."""
        target_names = getattr(self.datamodule, "class_names", None) if self._trainer else None
        names = victim_class_names(self.victim.spec)
        return describe_reads(self.bank.label_map(k).reads(top), names, target_names)
