"""`AttackEvalModule`: how robust a frozen victim is, measured in `trainer.test` (run with `train=false`).

For each attack and eps: robust accuracy, success rate, and the mean L-inf and L2 size of the
perturbation. Success counts images the victim classified correctly: untargeted, the attack changed
the answer; targeted, it reached the target (images already of the target class are left out).
Every attack is handled alike (`reprog.attacks.Attack`): one that learns first says from which split
(`fit_on`) and how many images (`fit_size`), and is fit in `on_test_start`; its extra figures (`stats()`)
become metrics. A fit that diverges stops the run (`reprog.errors.Diverged`: status `diverged`, nothing of that
attack saved), as a diverged training run does. An attack crafted on another model than the victim (a substitute)
also reports how often that model agrees with the victim. A PGD run whose robust accuracy exceeds AutoAttack's at
the same eps by more than `masking_gap` is flagged as a sign of gradient masking.

Under a `transform` (transform=affine | photo | print) every attack also reports how it does in that world: each
test image, clean and adversarial, is seen through `eval_draws` draws of the transform, the same draws for every
attack and for every run (seeded by the transform's seed and the batch), so two runs compare. `transformed_success`
counts, over the draws where the victim gets the transformed clean image right, how often the transformed
adversarial one is fooled (or reaches the target). An attack with `eot_samples` crafts against the same transform.
An attack that is not bounded by eps (a patch) runs once, under its own name; what it learned is shown in
TensorBoard (`fit/<key>/picture`, and the attacked images as `test/<key>/images`).
"""

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger
from torch import nn
from torchmetrics import MeanMetric

from reprog.atomic_files import write_file
from reprog.attacks import ATTACKS, Attack, build_attack
from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.figures import adversarial_figure, curve_figure
from reprog.models.frozen import load_frozen_victim
from reprog.transforms import build_transform

log = logging.getLogger("reprog")

STATS = ("robust_acc", "success", "linf", "l2")
TRANSFORMED = ("transformed_robust_acc", "transformed_success")


class AttackEvalModule(pl.LightningModule):
    def __init__(
        self,
        victim: dict[str, Any],
        attacks: dict[str, dict[str, Any]],
        eps_255: Sequence[float] = (2, 4, 8),
        fit_size: int = 5000,
        figure_samples: int = 4,
        masking_gap: float = 0.05,
        transform: dict[str, Any] | None = None,
        eval_draws: int = 10,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.victim = load_frozen_victim(**victim)
        self.transform = build_transform(**(transform or {}))
        self.runs: dict[str, Attack] = {}  # "<name>_eps<e>" -> that attack at that eps
        self.kinds: dict[str, tuple[str, str]] = {}  # run -> (kind, eps label)
        self.figure_key = ""  # the run shown in the figure: the first attack at its last (largest) eps
        for name, spec in attacks.items():
            if spec:
                self.add_attack(name, dict(spec), eps_255)
        # attacks that learn hold models (a substitute): registered, so they follow the module to its device
        self.attack_models = nn.ModuleDict({k: a.model for k, a in self.runs.items() if a.model is not self.victim})
        self.stats = nn.ModuleDict(
            {k: nn.ModuleDict({s: MeanMetric() for s in self.stat_names(a)}) for k, a in self.runs.items()}
        )
        self.clean_acc = MeanMetric()
        self.transformed_clean_acc = MeanMetric()
        # (images, adversarial, clean probabilities, adversarial probabilities), for `adversarial_figure`
        self._figure: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._pictures: dict[str, torch.Tensor] = {}  # run -> attacked images, for attacks that show what they learned

    def add_attack(self, name: str, spec: dict[str, Any], eps_255: Sequence[float]) -> None:
        """One run per eps; `eps_255: [...]` (1/255 units) or, e.g. for L2, `eps: [...]` in pixels."""
        kind = spec.pop("kind")
        if kind in ATTACKS and not cast(type[Attack], ATTACKS[kind]).bounded:  # every attack kind is a class
            spec = {k: v for k, v in spec.items() if k not in ("eps", "eps_255")}  # once: eps means nothing to it
            self.runs[name] = self.named(build_attack(kind, self.victim, self.transform, **spec), name, name)
            if self.runs[name].fit_on and not self.runs[name].fit_size:
                self.runs[name].fit_size = self.hparams["fit_size"]
            self.kinds[name] = (kind, "unbounded")
            self.figure_key = self.figure_key or name
            return
        if "eps" in spec:
            eps_values = [(f"{e:g}", float(e)) for e in spec.pop("eps")]
        else:
            eps_values = [(f"{e:g}", e / 255) for e in spec.pop("eps_255", eps_255)]
        for label, eps in eps_values:
            key = f"{name}_eps{label.replace('.', 'p')}"
            self.runs[key] = attack = self.named(
                build_attack(kind, self.victim, self.transform, eps=eps, **spec), name, key
            )
            if attack.fit_on and not attack.fit_size:  # the attack did not say how many: task.fit_size
                attack.fit_size = self.hparams["fit_size"]
            self.kinds[key] = (kind, f"{spec.get('norm', 'Linf')} {label}")
        self.figure_key = self.figure_key or key

    @staticmethod
    def named(attack: Attack, name: str, key: str) -> Attack:
        """`attack` told its run's name and where its settings live, so its messages name what the user set."""
        attack.key, attack.config_path = key, f"task.attacks.{name}"
        return attack

    def stat_names(self, attack: Attack) -> tuple[str, ...]:
        transfer = ("agreement",) if attack.model is not self.victim else ()
        world = TRANSFORMED if self.transform is not None else ()
        return (*STATS, *world, *attack.stat_names, *transfer)

    def metrics(self, key: str) -> Mapping[str, MeanMetric]:
        """Run `key`'s metrics by stat name (a ModuleDict of `MeanMetric`s, in `stats`)."""
        return cast(Mapping[str, MeanMetric], self.stats[key])

    @property
    def datamodule(self) -> ArraysDataModule:
        """The run's data module (Lightning sets `trainer.datamodule` at run time only)."""
        return cast(ArraysDataModule, cast(Any, self.trainer).datamodule)

    # -- attacks that learn first ---------------------------------------------------------------
    def on_test_start(self) -> None:
        learners = {k: a for k, a in self.runs.items() if a.fit_on is not None}
        if not learners:
            return
        dm = self.datamodule
        dm.setup("fit")
        loaders = {"train": dm.train_dataloader, "val": dm.val_dataloader}
        for key, attack in learners.items():
            if attack.fit_on not in loaders:
                raise ValueError(f"attack {key} fits on {attack.fit_on!r}; an attack fits on 'train' or 'val'")
            attack.fit(*self.take(dm, loaders[attack.fit_on](), attack.fit_size))
            log.info(
                "attack %s fit on %d %s images %s",
                key,
                attack.fit_size,
                attack.fit_on,
                {k: float(v.mean()) for k, v in attack.stats().items()} if attack.stat_names else "",
            )
            if self.trainer.is_global_zero:
                if attack.curve:
                    self.write_curve(key, attack.curve)
                saved = attack.save(Path(self.trainer.default_root_dir) / key)
                if saved:
                    log.info("attack %s saved what it learned: %s", key, saved)
                self.show_picture(key, attack.picture())

    def show_picture(self, key: str, picture: torch.Tensor | None) -> None:
        """What an attack learned, as an image (a patch): `<key>.png` and TensorBoard `fit/<key>/picture`."""
        if picture is None:
            return
        from torchvision.utils import save_image

        save_image(picture, Path(self.trainer.default_root_dir) / f"{key}.png")
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"fit/{key}/picture", picture, self.global_step)

    def write_curve(self, key: str, curve: list[dict[str, float]]) -> None:
        """What the attack measured while it learned: `<key>_curve.json`, `<key>_curve.png` and TensorBoard
        scalars `fit/<key>/*` stepped by the first column (queries, for a substitute)."""
        out, x = Path(self.trainer.default_root_dir), next(iter(curve[0]))
        write_file(out / f"{key}_curve.json", json.dumps(curve, indent=1))
        fig = curve_figure(curve, x=x, title=key)
        fig.savefig(out / f"{key}_curve.png", dpi=120)
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                for row in curve:
                    logger.log_metrics({f"fit/{key}/{k}": v for k, v in row.items() if k != x}, step=int(row[x]))
                logger.experiment.add_figure(f"fit/{key}", fig, self.global_step)

    def take(self, dm: ArraysDataModule, loader: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs: list[torch.Tensor] = []
        ys: list[torch.Tensor] = []
        have = 0
        for x, y in loader:
            x, y = dm.preprocess((x.to(self.device), y.to(self.device)), train=False)
            xs.append(x)
            ys.append(y)
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
        if self.transform is not None:
            seen_clean, seen_y = self.through_world(x, y, batch_idx)
            seen_correct = seen_clean == seen_y
            self.transformed_clean_acc.update(seen_correct.float())
        for key, attack in self.runs.items():
            x_adv = attack(x, y)
            adv = self.victim(x_adv)
            pred, goal = adv.argmax(1), attack.last_goal
            assert goal is not None  # set by the call above
            hit, counted = ((pred == goal), correct & (goal != y)) if attack.targeted else ((pred != y), correct)
            delta = (x_adv - x).flatten(1)
            stats = self.metrics(key)
            stats["robust_acc"].update((pred == y).float())
            stats["success"].update(hit.float(), counted.float())
            stats["linf"].update(delta.abs().amax(1))
            stats["l2"].update(delta.norm(dim=1))
            if self.transform is not None:
                seen_pred, _ = self.through_world(x_adv, y, batch_idx)
                goals = goal.repeat(self.hparams["eval_draws"])
                seen_hit = (seen_pred == goals) if attack.targeted else (seen_pred != seen_y)
                counted_seen = seen_correct & (goals != seen_y) if attack.targeted else seen_correct
                stats["transformed_robust_acc"].update((seen_pred == seen_y).float())
                stats["transformed_success"].update(seen_hit.float(), counted_seen.float())
            for name, value in attack.stats().items():
                stats[name].update(value)
            if "agreement" in stats:  # the model it crafted on against the victim, on clean images
                with torch.no_grad():
                    stats["agreement"].update((attack.model(x).argmax(1) == clean_pred).float())
            if batch_idx == 0 and attack.picture() is not None:
                self._pictures[key] = x_adv[: self.hparams["figure_samples"]].detach().cpu()
            if batch_idx == 0 and key == self.figure_key:
                n = self.hparams["figure_samples"]
                self._figure = (x[:n], x_adv[:n], clean[:n].softmax(1), adv[:n].softmax(1))

    @torch.no_grad()
    def through_world(self, x: torch.Tensor, y: torch.Tensor, batch_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The victim's predictions on `eval_draws` draws of the transform per image, and the labels, draw-major;
        the draws depend only on the transform's seed and the batch, so every attack and every run sees the same."""
        n, transform = self.hparams["eval_draws"], self.transform
        assert transform is not None  # called only under a transform
        generator = torch.Generator().manual_seed(transform.seed * 1_000_003 + batch_idx)
        return self.victim(transform(x.repeat(n, 1, 1, 1), generator)).argmax(1), y.repeat(n)

    def on_test_epoch_end(self) -> None:
        self.results = {"clean_acc": self.clean_acc.compute().item()}
        self.log("test/clean_acc", self.results["clean_acc"])
        if self.transform is not None:
            self.results["transformed_clean_acc"] = self.transformed_clean_acc.compute().item()
            self.log("test/transformed_clean_acc", self.results["transformed_clean_acc"])
        for key in self.stats:
            for stat, metric in self.metrics(key).items():
                value = metric.compute().item()
                self.results[f"{key}/{stat}"] = value
                self.log(f"test/{key}/{stat}", value)
        for key, gap in self.masking().items():
            self.results[f"{key}/masking_gap"] = gap
            self.log(f"test/{key}/masking_gap", gap)
        if self.trainer.is_global_zero:
            log.info("robustness of the victim\n%s", self.table())

    def masking(self) -> dict[str, float]:
        """PGD's robust accuracy minus AutoAttack's, per PGD run that has an AutoAttack run at the same norm and eps."""
        auto = {eps: self.results[f"{k}/robust_acc"] for k, (kind, eps) in self.kinds.items() if kind == "autoattack"}
        return {
            k: self.results[f"{k}/robust_acc"] - auto[eps]
            for k, (kind, eps) in self.kinds.items()
            if kind == "pgd" and eps in auto
        }

    def table(self) -> str:
        world = (
            f" ({self.results['transformed_clean_acc']:.2%} under transform={self.transform.kind}, "
            f"{self.hparams['eval_draws']} draws an image)"
            if self.transform is not None
            else ""
        )
        lines = [
            f"clean accuracy: {self.results['clean_acc']:.2%}{world}",
            "",
            f"{'attack':<28}{'robust acc':>12}{'success':>10}{'mean L-inf':>12}{'mean L2':>10}  extra",
        ]
        for key in self.runs:
            r = {s: self.results[f"{key}/{s}"] for s in STATS}
            extra = ", ".join(
                f"{name.removeprefix('robust_after_')} {self.results[f'{key}/{name}']:.2%}"
                if name.startswith(("robust_after_", "transformed_")) or name == "agreement"
                else f"{name} {self.results[f'{key}/{name}']:g}"
                for name in self.metrics(key)
                if name not in STATS
            )
            lines.append(
                f"{key:<28}{r['robust_acc']:>12.2%}{r['success']:>10.2%}"
                f"{r['linf'] * 255:>9.2f}/255{r['l2']:>10.3f}  {extra}"
            )
        for key, gap in self.masking().items():
            verdict = "FLAGGED: gradients may be masked" if gap > self.hparams["masking_gap"] else "ok"
            lines.append(f"gradient-masking check: {key} robust accuracy - AutoAttack's = {gap:+.2%} ({verdict})")
        return "\n".join(lines)

    def on_test_end(self) -> None:
        if self._figure is None or not self.trainer.is_global_zero:
            return
        names = getattr(self.datamodule, "class_names", None)
        fig = adversarial_figure(*self._figure, class_names=names)
        fig.savefig(Path(self.trainer.default_root_dir) / "adversarial_examples.png", dpi=120)
        for logger in self.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_figure("test/adversarial_examples", fig, self.global_step)
                for key, images in self._pictures.items():  # e.g. test images with the patch stuck on them
                    logger.experiment.add_images(f"test/{key}/images", images, self.global_step)
