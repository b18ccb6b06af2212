"""The hot loops, each through our Lightning path and through a minimal hand-written PyTorch loop.

For every loop (victim training, program optimization, PGD attack) and model (resnet20, resnet18,
airbench) it measures images/s of both paths, alternating them in one process so the ratios are fair
on a noisy machine, and their peak memory (CUDA: allocated, in the same process; CPU: the resident set
of a fresh process per path), then prints a table and writes JSON. Both paths share the data
(device-resident CIFAR-10 / MNIST from paths.data_dir), the networks (channels_last) and the settings;
the Lightning side is composed from the same configs as train.py, with its metrics and logging on.

    python bench/suite.py [--loops victim program attack] [--models resnet20 resnet18 airbench]
                          [--batch 256] [--steps 12] [--repeats 3] [--device cpu|cuda]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import open_dict

from reprog.host_memory import keep_freed_host_memory
from reprog.instantiators import instantiate_group

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
RUNS = ROOT / "outputs" / "bench" / "suite"  # the Lightning runs' logs
QUIET = [
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
    "callbacks.model_checkpoint=null",
    "+trainer.enable_checkpointing=false",
]
LOOPS = {  # loop -> the experiment its Lightning path runs, and its overrides (model named by {model})
    "victim": ["experiment=victim_cifar10", "model={model}"],
    "program": ["experiment=reprogram_mnist", "victim=random", "victim.model.arch={model}"],
    "attack": [
        "experiment=attack_pgd",
        "victim=random",
        "victim.model.arch={model}",
        "task.eps_255=[8]",
        "task.attacks.fgsm=null",
    ],
    # the victim loop again, with the DataLoader path instead of device-resident batches (not run by default)
    "victim_dataloader": ["experiment=victim_cifar10", "model={model}", "data.device_resident=false"],
}
DEFAULT_LOOPS = ["victim", "program", "attack"]


# -- measuring ------------------------------------------------------------------------------------
class PeakMemory:
    """Peak CUDA memory allocated by what runs inside the `with` block."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.mib = device, 0.0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20


def peak_rss_mib(loop: str, model: str, path: str, args) -> float:
    """Peak resident memory of a fresh process that runs one path for a few steps. In one process the figure
    would be that of the largest path so far: the process keeps the memory it frees (`keep_freed_host_memory`)."""
    cmd = [
        sys.executable,
        __file__,
        "--peak-rss-of",
        loop,
        model,
        path,
        "--batch",
        str(args.batch),
        "--warmup",
        str(args.warmup),
    ]
    child = subprocess.run(cmd, capture_output=True, text=True)
    if child.returncode:
        sys.exit(f"{' '.join(cmd[1:])} failed:\n{child.stderr[-2000:]}")
    return int(child.stdout.split()[-1]) / 1024  # its VmHWM in kB, its last word


def vm_hwm_kib() -> int:
    """This process's peak resident set (Linux). Unlike a child's `ru_maxrss`, it does not start from the
    parent's resident set at fork."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


class StepClock(pl.Callback):
    """Timestamps at the start of every train or test batch; Lightning's own work between them counts."""

    def __init__(self, device: torch.device) -> None:
        self.stamps: list[float] = []
        self.device = device

    def _stamp(self, *args) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.stamps.append(time.perf_counter())

    on_train_batch_start = on_test_batch_start = _stamp


def images_per_s(stamps: list[float], batch: int, warmup: int) -> float:
    return (len(stamps) - 1 - warmup) * batch / (stamps[-1] - stamps[warmup])


def plain_clock(batches, step: Callable, n: int, device: torch.device) -> list[float]:
    """Run `step(batch)` on the first n batches, stamping before each (and once after the last)."""
    stamps = []
    for i, batch in enumerate(batches):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())
        if i == n:
            break
        step(batch)
    return stamps


# -- the two paths of each loop -------------------------------------------------------------------
def lightning_path(cfg, loop: str, n: int, device: torch.device) -> list[float]:
    """n steps, stamped at the start of steps 0..n, as `plain_clock` does (one more step runs, untimed)."""
    loop = loop.split("_")[0]
    datamodule, module = instantiate(cfg.data), instantiate(cfg.task)
    clock = StepClock(device)
    trainer = instantiate(
        cfg.trainer,
        callbacks=[*instantiate_group(cfg.callbacks), clock],
        logger=instantiate_group(cfg.logger),
        max_steps=n + 1,
        limit_val_batches=0,
        limit_test_batches=n + 1,
    )
    if loop == "attack":
        trainer.test(module, datamodule=datamodule)
    else:
        trainer.fit(module, datamodule=datamodule)
    return clock.stamps[: n + 1]


def plain_path(cfg, loop: str, n: int, device: torch.device) -> list[float]:
    """The same computation as the LightningModule's step, written out by hand."""
    loop = loop.split("_")[0]
    dm = instantiate(cfg.data)
    dm.setup("test" if loop == "attack" else "fit")
    batches = ((t.to(device) for t in b) for b in (dm.test_dataloader() if loop == "attack" else dm.train_dataloader()))
    preprocess = lambda batch, train: dm.preprocess(list(batch), train=train)  # noqa: E731
    module = instantiate(cfg.task).to(device)  # only for its networks, built exactly as the Lightning path builds them

    if loop == "victim":
        model, criterion = module.model.train(), module.criterion
        opt = module.optimizer_factory(params=model.parameters())
        sched = module.scheduler_factory(opt, total_steps=n + 1, steps_per_epoch=n + 1)

        def step(batch):
            x, y = preprocess(batch, True)
            loss = criterion(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()

    elif loop == "program":
        from reprog.label_mapping import FirstK
        from reprog.program import build_program

        victim, lam = module.victim, module.lam
        program = build_program(placement=dm.placement, channels=dm.channels, **module.program_cfg).to(device)
        label_map = FirstK(victim.num_classes, dm.num_classes).to(device)
        opt = module.optimizer_factory(params=program.parameters())

        def step(batch):
            x, y = preprocess(batch, True)
            loss = F.cross_entropy(label_map(victim(program(x))), y) + lam * program.regularizer()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    else:  # PGD-10 at 8/255 with a random start, then the victim's answer on clean and adversarial images
        victim = module.victim
        spec = cfg.task.attacks.pgd10
        eps, alpha, steps = 8 / 255, spec.alpha_255 / 255, spec.steps
        correct = torch.zeros((), device=device)

        def step(batch):
            nonlocal correct
            x, y = preprocess(batch, False)
            with torch.no_grad():
                clean = victim(x).argmax(1)
            x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
            for _ in range(steps):
                x_adv.requires_grad_(True)
                (grad,) = torch.autograd.grad(F.cross_entropy(victim(x_adv), y), x_adv)
                x_adv = x_adv.detach() + alpha * grad.sign()
                x_adv = (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)
            with torch.no_grad():
                correct += ((victim(x_adv).argmax(1) == y) & (clean == y)).sum()

    return plain_clock(batches, step, n, device)


def compose_loop(loop: str, model: str, batch: int, device: torch.device, out_dir: Path):
    overrides = (
        [o.format(model=model) for o in LOOPS[loop]]
        + QUIET
        + [f"trainer.accelerator={device.type}", f"data.batch_size={batch}", f"data.eval_batch_size={batch}"]
    )
    if device.type == "cuda":
        overrides.append("trainer=gpu")
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train.yaml", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.data_dir = os.environ.get("REPROG_DATA_DIR", str(ROOT / "data"))
        cfg.paths.cache_dir = os.environ.get("REPROG_CACHE_DIR", str(ROOT / "data" / "cache"))
        cfg.paths.output_dir = str(out_dir / f"{loop}_{model}")
        cfg.trainer.default_root_dir = cfg.paths.output_dir
    return cfg


def measure(cases: list[tuple[str, str, int]], args, device: torch.device) -> list[dict]:
    """Images/s and peak memory of both paths of every (loop, model, timed steps) case.

    Each repeat goes round every case and both paths in turn, so drift on a noisy machine hits them all
    alike: the Lightning/plain ratio compares two paths, the program/training speedup two cases.
    """
    cfgs = {case: compose_loop(case[0], case[1], args.batch, device, RUNS) for case in cases}
    runs = {case: {"lightning": [], "plain": []} for case in cases}
    memory = {case: {"lightning": 0.0, "plain": 0.0} for case in cases}
    for repeat in range(args.repeats):
        for case in cases:
            loop, model, steps = case
            for path, run in (("lightning", lightning_path), ("plain", plain_path)):
                pl.seed_everything(0, verbose=False)
                with PeakMemory(device) as mem:
                    stamps = run(cfgs[case], loop, args.warmup + steps, device)
                runs[case][path].append(images_per_s(stamps, args.batch, args.warmup))
                memory[case][path] = max(memory[case][path], mem.mib)  # CUDA; the CPU's is taken below
                print(
                    f"repeat {repeat + 1}/{args.repeats}  {loop:8s} {model:9s} {path:9s} "
                    f"{runs[case][path][-1]:8.0f} images/s",
                    flush=True,
                )
    if device.type == "cpu":
        for case in cases:
            memory[case] = {
                path: peak_rss_mib(case[0], case[1], path, args) if args.peak_memory else None
                for path in ("lightning", "plain")
            }
    results = []
    for case, r in runs.items():
        median = {k: statistics.median(v) for k, v in r.items()}
        results.append(
            {
                "loop": case[0],
                "model": case[1],
                "batch": args.batch,
                "images_per_s": r,
                "median": median,
                "peak_mib": memory[case],
                "ratio": median["lightning"] / median["plain"],
            }
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", nargs="+", default=DEFAULT_LOOPS, choices=list(LOOPS))
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet18", "airbench"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 12 on CPU, 50 on CUDA)")
    parser.add_argument("--attack-steps", type=int, default=None, help="timed PGD batches (default: 3 / 20)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default=str(OUT / "suite.json"))
    parser.add_argument(
        "--peak-memory",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on a CPU, a fresh process per path to read its peak (--no-peak-memory: skip it)",
    )
    parser.add_argument("--peak-rss-of", nargs=3, metavar=("LOOP", "MODEL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    keep_freed_host_memory()  # as train.py runs (keep_freed_host_memory=true): both paths share it
    if args.peak_rss_of:  # a child of peak_rss_mib: one path, a few untimed steps; the parent reads its peak
        loop, model, path = args.peak_rss_of
        run = lightning_path if path == "lightning" else plain_path
        run(
            compose_loop(loop, model, args.batch, torch.device("cpu"), RUNS), loop, args.warmup + 2, torch.device("cpu")
        )
        print(vm_hwm_kib())
        return
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    steps = args.steps or (50 if cuda else 12)
    attack_steps = args.attack_steps or (20 if cuda else 3)

    cases = [(loop, model, attack_steps if loop == "attack" else steps) for loop in args.loops for model in args.models]
    results = measure(cases, args, device)

    where = (
        torch.cuda.get_device_name(device)
        if cuda
        else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    )
    print(
        f"\n{device.type.upper()} ({where}), batch {args.batch}, medians of {args.repeats} alternating runs; "
        "attack = PGD-10 at 8/255 (images attacked per second)\n"
    )
    print("| loop | model | Lightning images/s | plain images/s | Lightning / plain | peak MiB (Lightning / plain) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        m, p = r["median"], r["peak_mib"]
        mib = lambda v: "—" if v is None else f"{v:.0f}"  # noqa: E731
        print(
            f"| {r['loop']} | {r['model']} | {m['lightning']:.0f} | {m['plain']:.0f} | {r['ratio']:.3f} | "
            f"{mib(p['lightning'])} / {mib(p['plain'])} |"
        )
    speedup = {}  # a program step against a full training step of the same network (both Lightning)
    by = {(r["loop"], r["model"]): r["median"]["lightning"] for r in results}
    for model in args.models:
        if ("program", model) in by and ("victim", model) in by:
            speedup[model] = by["program", model] / by["victim", model]
            print(f"program / victim training, {model}: {speedup[model]:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(
        json.dumps(
            {
                "device": where,
                "torch": torch.__version__,
                "batch": args.batch,
                "repeats": args.repeats,
                "results": results,
                "program_over_training": speedup,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwritten {args.out}")


if __name__ == "__main__":
    main()
