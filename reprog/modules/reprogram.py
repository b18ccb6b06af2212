"""`ReprogramModule`: learn an adversarial program that turns a frozen victim into a target classifier.

logits = h_g(f(program(x))), loss = CE(logits, y) + lam * ||W||^2; only the program is trained.
The placement comes from the data module, so the program's mask and the digits always agree.
`init_program` starts from a saved program (a warm start). With an `oracle`, f is reached only through its answers
(`BlackBoxVictim`): the program learns from zeroth-order gradient estimates, and training ends cleanly before a
step the query budget cannot pay for.
With a `transform` (transform=affine | photo | print), the victim reads `transform(program(x))`: every training step
sees fresh draws (EOT), validation and test see the same seeded draws every epoch and run, so val/acc and test/acc
are accuracies under the transform; test/acc_untransformed is the same program read directly.
"""

import itertools
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torchmetrics import MeanMetric

from reprog.data.target_images import RESIZE
from reprog.errors import UserError
from reprog.figures import image_grid
from reprog.label_mapping import LabelMap, build_label_map
from reprog.models.black_box import BlackBoxVictim
from reprog.models.class_names import describe_reads, victim_class_names
from reprog.models.frozen import load_frozen_victim
from reprog.modules.classification import Batch, ClassificationModule
from reprog.placement import Placement
from reprog.program import AdversarialProgram, build_program
from reprog.program_io import load_program, save_program
from reprog.transforms import Transformed, build_transform

log = logging.getLogger("reprog")

# the frozen victim is in eval mode on purpose
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training")


def build_reprogrammer(
    placement: Placement,
    channels: int,
    victim_classes: int,
    num_targets: int,
    program_cfg: dict[str, Any],
    mapping_cfg: dict[str, Any],
    init_program: str | None = None,
    seed: int | None = None,
) -> tuple[AdversarialProgram, LabelMap]:
    """A program and its label map, drawn from `seed` (by default the run's seed) alone, so a program bank builds each
    of its programs exactly as that program's own job would; or started from `init_program` (a warm start)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(torch.initial_seed() if seed is None else seed)
        program = build_program(placement=placement, channels=channels, **program_cfg)
        settings = {k: v for k, v in mapping_cfg.items() if k not in ("kind", "batches")}
        label_map = build_label_map(mapping_cfg.get("kind", "first_k"), victim_classes, num_targets, **settings)
    if init_program:
        warm_start(program, label_map, init_program)
    return program, label_map


def warm_start(program: AdversarialProgram, label_map: LabelMap, path: str) -> None:
    """Load a saved program and label map of the same shape, e.g. one trained white-box on a substitute before it
    is fine-tuned through an oracle."""
    loaded = load_program(path)
    shape = lambda program, maps: {
        "program": program.config(),  # noqa: E731
        "label_map": (maps.kind, maps.num_source, maps.num_targets),
    }
    ours, theirs = shape(program, label_map), shape(loaded.program, loaded.label_map)
    if ours != theirs:
        raise UserError(
            f"task.init_program={path} holds {theirs}, but this run builds {ours}; start from a "
            "program of the same family, placement and label map"
        )
    program.load_state_dict(loaded.program.state_dict())
    label_map.load_state_dict(loaded.label_map.state_dict())
    log.info("program and label map start from %s", path)


class ReprogramModule(ClassificationModule):
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
    ) -> None:
        super().__init__(num_classes, optimizer, scheduler)
        self.save_hyperparameters(ignore=["optimizer", "scheduler"])
        if oracle and "kind" not in oracle:  # an oracle.* override on oracle=none would make a score oracle
            raise UserError(
                f"oracle.{next(iter(oracle))} is set, but oracle=none (white-box) reads the victim "
                "directly: drop the oracle.* override, or choose oracle=score or oracle=label"
            )
        self.victim = load_frozen_victim(**victim)
        if oracle:  # oracle=none leaves it empty: white-box
            self.victim = BlackBoxVictim(self.victim, **oracle)
        self.program_cfg = dict(program)
        self.lam = float(self.program_cfg.pop("lam", 0.0))
        self.mapping_cfg = dict(mapping)
        self.program: AdversarialProgram | None = None
        self.label_map: LabelMap | None = None
        self.image_samples = image_samples
        self._samples: Batch | None = None
        self.transform = build_transform(**(transform or {}))  # between program and victim; None: nothing
        self.test_acc_untransformed = MeanMetric()

    # -- wiring ---------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.program is not None:
            return
        datamodule = self.trainer.datamodule
        placement = getattr(datamodule, "placement", None)
        if placement is None:
            raise UserError(
                f"task=reprogram needs a data module with a placement (data=mnist_padded, "
                f"data=fashion_mnist_padded or data=counting), not {type(datamodule).__name__}"
            )
        self.victim.check_canvas(datamodule.channels, placement.canvas)
        self.program, self.label_map = build_reprogrammer(
            placement,
            datamodule.channels,
            self.victim.num_classes,
            self.hparams.num_classes,
            self.program_cfg,
            self.mapping_cfg,
            self.hparams.init_program,
            self.hparams.program_seed,
        )
        # what the victim reads; kept out of the module tree, so the program's weights are saved once
        self.__dict__["reader"] = self.program if self.transform is None else Transformed(self.program, self.transform)

    def on_train_epoch_start(self) -> None:
        """Fit a label map that learns from data where it says: before training ("once"), or every epoch."""
        every = self.label_map.fit_every
        if every == "epoch" or (every == "once" and self.current_epoch == 0 and self.global_step == 0):
            self.fit_label_map(self.mapping_cfg.get("batches", 50))

    @torch.no_grad()  # not inference_mode: the map's buffers are used under autograd afterwards
    def fit_label_map(self, batches: int) -> None:
        """Add up the map's statistics over `batches` training batches through the program as it is now."""
        dm, total = self.trainer.datamodule, None
        for i, batch in enumerate(dm.train_dataloader()):
            if i == batches:
                break
            x, y = dm.preprocess([t.to(self.device) for t in batch], train=False)
            stats = self.label_map.statistics(self.victim.read(self.reader, x), y)
            total = stats if total is None else total + stats
        total = self.trainer.strategy.reduce(total, reduce_op="sum")  # the same map on every rank
        self.label_map.fit(total)

    def trainable_parameters(self) -> Iterator[nn.Parameter]:
        return itertools.chain(self.program.parameters(), self.label_map.parameters())

    def regularizer(self) -> torch.Tensor | None:
        return self.lam * self.program.regularizer() if self.lam else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.label_map(self.victim.read(self.reader, x))

    def on_validation_epoch_start(self) -> None:
        if self.transform is not None:
            self.reader.restart_draws()  # the same draws every epoch, and in every run

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        logits = super().test_step(batch, batch_idx)
        if self.transform is not None:  # the same program with nothing in between, for comparison
            x, y = batch
            plain = self.label_map(self.victim.read(self.program, x))
            self.test_acc_untransformed.update((plain.argmax(1) == y).float())
            self.log("test/acc_untransformed", self.test_acc_untransformed, on_epoch=True)
        return logits

    def on_train_start(self) -> None:
        """A run whose budget cannot pay for even its first step is refused, not completed untrained."""
        batch_size = self.trainer.datamodule.batch_size
        if self.global_step == 0 and not self.victim.affords(batch_size):
            raise UserError(
                f"oracle.budget={self.victim.budget} cannot pay for one training step at "
                f"data.batch_size={batch_size}; raise oracle.budget or lower data.batch_size"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The queries spent are state: a resumed run goes on counting against the same budget."""
        if self.victim.queries is not None:
            checkpoint["oracle_queries"] = self.victim.queries

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.victim.queries is not None:
            self.victim.oracle.queries = int(checkpoint.get("oracle_queries", 0))

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> int | None:
        """End training, cleanly, before a step the victim's query budget cannot pay for."""
        if self.victim.affords(len(batch[0])):
            return None
        if not self.trainer.should_stop:
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

    def log_queries(self) -> None:
        if self.victim.queries is not None:  # a black-box victim counts what training asked
            self.log("train/queries", float(self.victim.queries), on_step=True, on_epoch=False, prog_bar=True)

    # -- what the user sees ---------------------------------------------------------------------
    def validation_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        logits = super().validation_step(batch, batch_idx)
        if batch_idx == 0:
            self._samples = (
                batch[0][: self.image_samples],
                batch[1][: self.image_samples],
                logits[: self.image_samples].argmax(1),
            )
        return logits

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        tb = next((lg for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None or self.trainer.sanity_checking or not self.trainer.is_global_zero or self._samples is None:
            return
        x, y, pred = self._samples
        with torch.no_grad():
            x_adv = self.program(x).clamp(0, 1)
        titles = [f"y={int(t)} pred={int(p)}" for t, p in zip(y, pred)]
        tb.experiment.add_figure("val/x_adv", image_grid(x_adv, titles), self.global_step)
        tb.experiment.add_image("program/P", self.program.render().clamp(0, 1), self.global_step)

    def export(self, directory: str | Path) -> Path:
        """Write `program.safetensors` + `program.json`: the whole result of a reprogramming run."""
        if self.program is None:  # built in setup(), which ddp_spawn/ddp_fork run only in their workers
            raise UserError(
                "no program to export: with ddp_spawn or ddp_fork it stays in the worker processes; "
                "use trainer.strategy=ddp (the default of trainer=ddp)"
            )
        reads = self.label_map_reads()
        for row in reads:
            log.info("target %s reads victim classes %s", row["target"], ", ".join(row["names"]))
        return save_program(
            Path(directory) / "program.safetensors",
            self.program,
            self.label_map,
            {"sha256": self.victim.sha256, "model": self.victim.spec},
            target={"resize": RESIZE},
            reads=reads,
            transform=None if self.transform is None else self.transform.config(),
        )

    def label_map_reads(self, top: int = 3) -> list[dict[str, Any]]:
        """Which victim classes, by name, each target class reads (an index map's own; the top 3 of weighted maps)."""
        target_names = getattr(self.trainer.datamodule, "class_names", None) if self._trainer else None
        return describe_reads(self.label_map.reads(top), victim_class_names(self.victim.spec), target_names)
