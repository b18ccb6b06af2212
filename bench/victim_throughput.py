"""Victim training throughput: train.py's Lightning path against a plain PyTorch loop.

Both run the same model, optimizer, schedule, loss, data and batched augmentation, in one process,
alternating, so the ratio is fair on a noisy machine. The Lightning side is built from the same
config as `python train.py experiment=victim_cifar10` (metrics, logging, callbacks included).

    python bench/victim_throughput.py [--steps 40] [--repeats 3] [--model resnet20]
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from reprog.instantiators import instantiate_group

ROOT = Path(__file__).resolve().parents[1]


class StepClock(pl.Callback):
    """Timestamps at the start of every training batch (data loading and logging included)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_train_batch_start(self, *args) -> None:
        self.stamps.append(time.perf_counter())


def images_per_second(stamps: list[float], batch_size: int, warmup: int) -> float:
    return (len(stamps) - 1 - warmup) * batch_size / (stamps[-1] - stamps[warmup])


def lightning_run(cfg, steps: int, out_dir: Path) -> list[float]:
    datamodule, module = instantiate(cfg.data), instantiate(cfg.task)
    clock = StepClock()
    trainer = instantiate(cfg.trainer, callbacks=[*instantiate_group(cfg.callbacks), clock],
                          logger=instantiate_group(cfg.logger), max_steps=steps + 1, limit_val_batches=0,
                          default_root_dir=str(out_dir))
    trainer.fit(module, datamodule=datamodule)
    return clock.stamps


def plain_run(cfg, steps: int) -> list[float]:
    datamodule, module = instantiate(cfg.data), instantiate(cfg.task)
    datamodule.setup("fit")
    model, criterion = module.model.train(), module.criterion
    optimizer = module.optimizer_factory(params=model.parameters())
    scheduler = module.scheduler_factory(optimizer, total_steps=steps + 1, steps_per_epoch=steps + 1)
    stamps = []
    for step, batch in enumerate(datamodule.train_dataloader()):
        stamps.append(time.perf_counter())
        if step == steps + 1:
            break
        x, y = datamodule.preprocess(batch, train=True)
        loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return stamps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "victim_throughput.json"))
    args = parser.parse_args()

    out_dir = Path(args.out).parent
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train.yaml", overrides=["experiment=victim_cifar10", f"model={args.model}",
                                               "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
                                               "callbacks.rich_progress_bar=null"])
    with open_dict(cfg):
        cfg.paths.data_dir = os.environ.get("REPROG_DATA_DIR", str(ROOT / "data"))
        cfg.paths.output_dir = str(out_dir / "lightning_run")
    bs = cfg.data.batch_size

    pl.seed_everything(0, verbose=False)
    results = {"lightning": [], "plain": []}
    for _ in range(args.repeats):
        results["lightning"].append(images_per_second(lightning_run(cfg, args.steps, out_dir), bs, args.warmup))
        results["plain"].append(images_per_second(plain_run(cfg, args.steps), bs, args.warmup))
    median = {k: statistics.median(v) for k, v in results.items()}
    ratio = median["lightning"] / median["plain"]

    print(f"| path | images/s (median of {args.repeats}) | runs |\n|---|---|---|")
    for k, v in results.items():
        print(f"| {k} | {median[k]:.0f} | {', '.join(f'{x:.0f}' for x in v)} |")
    print(f"\nLightning / plain = {ratio:.3f}  ({args.model}, batch {bs}, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"model": args.model, "batch_size": bs, "steps": args.steps,
                                          "images_per_s": results, "median": median, "ratio": ratio,
                                          "torch": torch.__version__, "threads": torch.get_num_threads()},
                                         indent=2) + "\n")


if __name__ == "__main__":
    main()
