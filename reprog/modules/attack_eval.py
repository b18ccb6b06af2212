"""`AttackEvalModule`: how robust a frozen victim is, measured in `trainer.test` (run with `train=false`).

For each attack and eps: robust accuracy, success rate, and the mean L-inf and L2 size of the
perturbation. Success counts images the victim classified correctly: untargeted, the attack changed
the answer; targeted, it reached the target (images already of the target class are left out).
Universal perturbations and the substitute attack learn first, in `on_test_start`: the universal one
on training images, the substitute from `seed_size` validation images and the victim's labels only.
"""

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torchmetrics import MeanMetric

from reprog.attacks import Attack, IterativeTargeted, LabelOracle, SubstituteAttack, Universal, build_attack
from reprog.figures import adversarial_figure
from reprog.models import build_model
from reprog.models.frozen import load_frozen_victim

log = logging.getLogger("reprog")

STATS = ("robust_acc", "success", "linf", "l2")


class AttackEvalModule(pl.LightningModule):
    def __init__(self, victim: dict[str, Any], attacks: dict[str, dict[str, Any]],
                 eps_255: list[float] = (2, 4, 8), fit_size: int = 5000, figure_samples: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.victim = load_frozen_victim(**victim)
        self.runs: dict[str, Attack] = {}  # "<name>_eps<e>" -> that attack at that eps
        self.keys: dict[str, list[str]] = {}  # name -> its run keys
        self.substitutes: dict[str, SubstituteAttack] = {}
        self.seed_sizes: dict[str, int] = {}
        for name, spec in attacks.items():
            if spec:
                self.add_attack(name, dict(spec), eps_255)
        self.substitute_models = nn.ModuleDict({n: s.substitute for n, s in self.substitutes.items()})
        self.stats = nn.ModuleDict({k: nn.ModuleDict({s: MeanMetric() for s in self.stat_names(a)})
                                    for k, a in self.runs.items()})
        self.agreement = nn.ModuleDict({n: MeanMetric() for n in self.substitutes})
        self.clean_acc = MeanMetric()
        self.figure_key = next(iter(self.keys.values()))[-1]  # the first attack at its largest eps
        self._figure: tuple[torch.Tensor, ...] | None = None

    def add_attack(self, name: str, spec: dict[str, Any], eps_255: list[float]) -> None:
        """One run per eps; `eps_255: [...]` (1/255 units) or, e.g. for L2, `eps: [...]` in pixels."""
        kind = spec.pop("kind")
        if "eps" in spec:
            eps_values = [(f"{e:g}", float(e)) for e in spec.pop("eps")]
        else:
            eps_values = [(f"{e:g}", e / 255) for e in spec.pop("eps_255", eps_255)]
        model: nn.Module = self.victim
        if kind == "substitute":  # crafted white-box on the substitute, then shown to the victim
            oracle = LabelOracle(self.victim, budget=spec.pop("budget", None))
            self.seed_sizes[name] = spec.pop("seed_size", 150)
            fit = {k: spec.pop(k) for k in ("rounds", "lam", "epochs", "lr", "batch_size", "seed") if k in spec}
            self.substitutes[name] = SubstituteAttack(oracle, build_model(**spec.pop("model")), **fit)
            kind, model = spec.pop("craft", "fgsm"), self.substitutes[name].substitute
        self.keys[name] = [f"{name}_eps{label.replace('.', 'p')}" for label, _ in eps_values]
        for key, (_, eps) in zip(self.keys[name], eps_values):
            self.runs[key] = build_attack(kind, model, eps=eps, **spec)

    @staticmethod
    def stat_names(attack: Attack) -> tuple[str, ...]:
        return (*STATS, "steps", "confidence") if isinstance(attack, IterativeTargeted) else STATS

    # -- attacks that learn first ---------------------------------------------------------------
    def on_test_start(self) -> None:
        universal = [a for a in self.runs.values() if isinstance(a, Universal)]
        if not universal and not self.substitutes:
            return
        dm = self.trainer.datamodule
        dm.setup("fit")
        if universal:
            x, y = self.take(dm, dm.train_dataloader(), self.hparams.fit_size)
            for attack in universal:
                attack.fit(x, y)
        for name, substitute in self.substitutes.items():
            seed_images, _ = self.take(dm, dm.val_dataloader(), self.seed_sizes[name])  # labels come from the oracle
            substitute.fit(seed_images)
            log.info("substitute %s: %d oracle queries, trained on %d images", name, substitute.queries,
                     substitute.training_set_size)

    def take(self, dm: pl.LightningDataModule, loader: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys, have = [], [], 0
        for batch in loader:
            x, y = dm.preprocess([t.to(self.device) for t in batch], train=False)
            xs.append(x), ys.append(y)
            have += len(x)
            if have >= n:
                break
        return torch.cat(xs)[:n], torch.cat(ys)[:n]

    # -- evaluation -----------------------------------------------------------------------------
    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        clean = self.victim(x)
        clean_pred = clean.argmax(1)
        correct = clean_pred == y
        self.clean_acc.update(correct.float())
        for name, substitute in self.substitutes.items():
            self.agreement[name].update((substitute.substitute(x).argmax(1) == clean_pred).float())
        for key, attack in self.runs.items():
            x_adv = attack(x, y)
            adv = self.victim(x_adv)
            pred, goal = adv.argmax(1), attack.last_goal
            hit, counted = ((pred == goal), correct & (goal != y)) if attack.targeted else ((pred != y), correct)
            delta = (x_adv - x).flatten(1)
            stats = self.stats[key]
            stats["robust_acc"].update((pred == y).float())
            stats["success"].update(hit.float(), counted.float())
            stats["linf"].update(delta.abs().amax(1))
            stats["l2"].update(delta.norm(dim=1))
            if isinstance(attack, IterativeTargeted):  # how many steps it took, and how sure the victim got
                stats["steps"].update(attack.steps_used.float())
                stats["confidence"].update(attack.final_confidence)
            if batch_idx == 0 and key == self.figure_key:
                n = self.hparams.figure_samples
                self._figure = (x[:n], x_adv[:n], clean[:n].softmax(1), adv[:n].softmax(1))

    def on_test_epoch_end(self) -> None:
        self.results = {"clean_acc": self.clean_acc.compute().item()}
        self.log("test/clean_acc", self.results["clean_acc"])
        for key, stats in self.stats.items():
            for stat, metric in stats.items():
                value = metric.compute().item()
                self.results[f"{key}/{stat}"] = value
                self.log(f"test/{key}/{stat}", value)
        for name, substitute in self.substitutes.items():
            self.log(f"test/{name}/queries", float(substitute.queries))
            self.log(f"test/{name}/agreement", self.agreement[name].compute().item())
        if self.trainer.is_global_zero:
            log.info("robustness of the victim\n%s", self.table())

    def table(self) -> str:
        lines = [f"clean accuracy: {self.results['clean_acc']:.2%}", "",
                 f"{'attack':<28}{'robust acc':>12}{'success':>10}{'mean L-inf':>12}{'mean L2':>10}"]
        for key in self.runs:
            r = {s: self.results[f"{key}/{s}"] for s in STATS}
            lines.append(f"{key:<28}{r['robust_acc']:>12.2%}{r['success']:>10.2%}"
                         f"{r['linf'] * 255:>9.2f}/255{r['l2']:>10.3f}")
        return "\n".join(lines)

    def on_test_end(self) -> None:
        if self._figure is None or not self.trainer.is_global_zero:
            return
        names = getattr(self.trainer.datamodule, "class_names", None)
        fig = adversarial_figure(*self._figure, class_names=names)
        fig.savefig(Path(self.trainer.default_root_dir) / "adversarial_examples.png", dpi=120)
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure("test/adversarial_examples", fig, self.global_step)
