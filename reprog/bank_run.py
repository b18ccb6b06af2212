"""A sweep's reprogramming jobs trained as program banks: `python train.py -m ... hydra/launcher=bank`.

`plan` groups the jobs whose configs differ only in what each program of a bank may choose for itself (what the
task class declares in `member_keys`, and the data module class in its own: placement, program kind, label map,
optimizer settings, warm start), and caps a bank at `max_images` stacked images per step by splitting it into
sub-banks. `run_bank` trains one bank in this process through the run's own steps (`reprog.run`), with the task
built from the config (`_target_`) and K members, and leaves each job's folder as the job would have:
`metrics.json`, `program.safetensors` + `.json`, TensorBoard scalars. The launcher
(`hydra_plugins/reprog_bank_launcher`) makes the folders and runs every other job as usual.
"""

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar

from reprog.callbacks.progress_log import ProgressLog
from reprog.cli import one_line
from reprog.config_schema import check_config
from reprog.errors import Diverged, UserError
from reprog.instantiators import instantiate_group
from reprog.modules.reprogram import ReprogramModule
from reprog.placement import Placement
from reprog.run import build_trainer, check_trains_something, finish, fit_task, open_data, prepare, test_task
from reprog.run_summary import RunRecord

log = logging.getLogger("reprog")

SHARED_OPTIMIZER = ("optimizer._target_", "optimizer._partial_")  # one optimizer class for the whole bank
PER_JOB = ("paths.output_dir", "trainer.default_root_dir", "logger", "callbacks")  # each job's own folder and logs
# callbacks a bank replaces (per-program best epochs, per-job TensorBoard); any other acts on one program
BANKED_CALLBACKS = {
    "model_checkpoint",
    "lr_monitor",
    "training_clock",
    "rng_state",
    "rich_progress_bar",
    "progress_log",
}


# images a victim pass when hydra.launcher.max_images is null: on a CPU, bigger stacks fall out of cache and a step
# gets slower per image (bench/bank.py); a GPU wants them as big as memory allows
CPU_IMAGES, GPU_IMAGES = 512, 4096


@dataclass
class Plan:
    banks: list[list[int]]  # job indices trained together, two or more each
    alone: list[int]  # jobs that run as ordinary jobs
    notes: list[str]  # one line per decision worth telling the user


def images_cap(cfg: dict[str, Any] | DictConfig, max_images: int | None) -> int:
    """How many images one victim pass may take: `max_images`, or (null) the device's default."""
    if max_images is not None and (type(max_images) is not int or max_images < 1):
        raise UserError(
            f"hydra.launcher.max_images={max_images!r}: expected a whole number of images >= 1, or null "
            "for the device's default"
        )
    if max_images:
        return max_images
    accelerator = str((cfg.get("trainer") or {}).get("accelerator", "auto"))
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return GPU_IMAGES if on_gpu else CPU_IMAGES


def plan(configs: Sequence[dict[str, Any] | None], max_images: int | None) -> Plan:
    """Group resolved job configs into banks; None (a config that does not resolve) runs alone, to fail there."""
    groups: dict[str, list[int]] = {}
    alone, notes = [], []
    for i, cfg in enumerate(configs):
        why = "its config does not resolve" if cfg is None else alone_because(cfg)
        if cfg is None or why:
            alone.append(i)
            notes.append(f"job {i} runs alone: {why}")
        else:
            groups.setdefault(bank_key(cfg), []).append(i)
    if len(groups) > 1:
        keys = sorted({k for a in groups for b in groups if a < b for k in _differ(json.loads(a), json.loads(b))})
        notes.append(
            f"{sum(map(len, groups.values()))} jobs make {len(groups)} banks: they differ in "
            f"{', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
        )
    banks = []
    for members in groups.values():
        first = configs[members[0]]
        assert first is not None  # grouped, so it resolved
        batch, cap = int(first["data"]["batch_size"]), images_cap(first, max_images)
        per_bank = cap // batch if max_images else max(1, cap // batch)
        if per_bank < 1:
            raise UserError(
                f"hydra.launcher.max_images={max_images} holds less than one program's batch "
                f"(data.batch_size={batch}); set it to at least {batch}"
            )
        chunks = [members[i : i + per_bank] for i in range(0, len(members), per_bank)]
        if len(chunks) > 1:
            notes.append(
                f"a bank of {len(members)} jobs runs as {len(chunks)} sub-banks in turn: "
                f"hydra.launcher.max_images={max_images or f'null ({cap} here)'} holds {per_bank} "
                f"batches of {batch}"
            )
        for chunk in chunks:
            (banks.append(chunk) if len(chunk) > 1 else alone.extend(chunk))
    return Plan(banks, sorted(alone), notes)


def alone_because(cfg: dict[str, Any]) -> str | None:
    """Why a job cannot share a bank, or None."""
    task, trainer = cfg.get("task") or {}, cfg.get("trainer") or {}
    if not _member_keys(task):
        return "its task trains one model, not a bank of programs"
    if task.get("oracle"):
        return "a black-box job (its victim answers through an oracle, each job against its own budget)"
    if (task.get("transform") or {}).get("kind", "none") != "none":
        return "it trains through a transform (EOT), whose draws a bank would share"
    if cfg.get("ckpt_path") or not cfg.get("train", True):
        return "it resumes a checkpoint or does not train"
    if str(trainer.get("devices")) not in ("1", "auto") or trainer.get("strategy") not in (None, "auto"):
        return "it runs on several devices"
    extra = sorted(k for k, v in (cfg.get("callbacks") or {}).items() if v and k not in BANKED_CALLBACKS)
    if extra:
        return f"callbacks {extra} act on one program"
    try:
        check_config(OmegaConf.create(cfg))
        member(cfg)
    except UserError as e:
        return f"its config fails a check ({e})"
    return None


def _member_keys(node: dict[str, Any]) -> tuple[str, ...]:
    """What the class a config node builds lets each program of a bank set for itself (`member_keys`)."""
    try:
        return tuple(getattr(get_class(node["_target_"]), "member_keys", ()))
    except Exception:  # no or no importable _target_: the job runs alone, and fails there if it must
        return ()


def per_program(cfg: dict[str, Any]) -> tuple[str, ...]:
    """The config keys a bank's programs may differ in: the task's `member_keys` (and the groups they are
    interpolated from), and the data module's."""
    task = _member_keys(cfg.get("task") or {})
    return (*task, *(f"task.{k}" for k in task), *(f"data.{k}" for k in _member_keys(cfg.get("data") or {})))


def bank_key(cfg: dict[str, Any]) -> str:
    """What must be equal across a bank: the config without what each program or job sets for itself."""
    own = per_program(cfg) + PER_JOB
    dropped = lambda key: key not in SHARED_OPTIMIZER and any(key == p or key.startswith(p + ".") for p in own)  # noqa: E731
    return json.dumps({k: v for k, v in _flatten(cfg).items() if not dropped(k)}, sort_keys=True, default=str)


def member(cfg: dict[str, Any] | DictConfig, name: str = "") -> dict[str, Any]:
    """One job's program, as a member of a bank (`reprog.modules.reprogram.Member`'s fields)."""
    data, task = cfg["data"], cfg.get("task") or {}
    where = {"canvas": data["canvas_size"], "size": data["digit_size"], "position": data.get("position")}
    Placement.make(**where)  # its one-line error, before any job runs
    return {
        "placement": where,
        "program": dict(task["program"]),
        "mapping": dict(task["mapping"]),
        "optimizer": {k: v for k, v in task["optimizer"].items() if k not in ("_target_", "_partial_")},
        "init_program": task.get("init_program"),
        "seed": task.get("program_seed"),
        "name": name,
    }


def run_bank(configs: Sequence[DictConfig], overrides: Sequence[list[str]], max_images: int | None) -> list[Any]:
    """Train the jobs of one bank together; each job's return value (its `optimized_metric`), or its exception."""
    start, dirs = time.perf_counter(), [Path(c.paths.output_dir) for c in configs]
    for d in dirs:  # the launcher has made them; a caller outside Hydra may not have
        d.mkdir(parents=True, exist_ok=True)
    jobs = [d.name for d in dirs]
    bank = {"size": len(configs), "jobs": jobs}
    records = [RunRecord(d / "metrics.json", overrides=list(o), bank=bank) for d, o in zip(dirs, overrides)]
    try:
        with ExitStack() as stack, _job_logs(d / "train.log" for d in dirs):
            for record in records:
                stack.enter_context(record.tracking(describe=one_line))
            module, trainer, epochs, steps = _fit_and_test(configs, dirs, records, max_images)
    except Exception as e:  # every job's metrics.json already says how it failed
        log.error("the bank of jobs %s failed: %s", ", ".join(jobs), one_line(e))
        return [e] * len(configs)

    values: list[Any] = []
    for k, (cfg, record) in enumerate(zip(configs, records)):
        if k in module.failed:
            why = f"the program of this job, in a bank: {module.failed[k]}; lower the learning rate (optimizer.lr)"
            record.update(status="diverged", error=why, metrics=module.results[k])
            values.append(Diverged(why))
            continue
        metrics = finish(
            cfg, record, trainer, module.results[k], epochs, steps, start, overrides[k], module.member_loggers[k]
        )
        for logger in module.member_loggers[k]:
            logger.finalize("success")
        values.append(metrics.get(cfg.get("optimized_metric") or ""))
    log.info(
        "bank of %d programs trained in %.1f s; %d diverged",
        len(configs),
        time.perf_counter() - start,
        len(module.failed),
    )
    return values


def _fit_and_test(
    configs: Sequence[DictConfig], dirs: list[Path], records: list[RunRecord], max_images: int | None
) -> tuple[ReprogramModule, Any, int, int]:
    """The run's steps for a bank: one task with a member per job, each job's program exported into its folder."""
    cfg = configs[0]  # equal to the others outside what each program or job sets for itself
    prepare(cfg)
    datamodule = instantiate(cfg.data, digit_size=None)  # target images at their own size; each program places them
    members = [member(c, d.name) for c, d in zip(configs, dirs)]
    module = instantiate(
        cfg.task, members=members, eval_programs=max(1, images_cap(cfg, max_images) // cfg.data.eval_batch_size)
    )
    module.member_loggers = [instantiate_group(c.get("logger")) for c in configs]
    progress = [c for c in instantiate_group(cfg.get("callbacks")) if isinstance(c, (ProgressBar, ProgressLog))]
    trainer = build_trainer(cfg, progress, logger=False, enable_checkpointing=False, devices=1)
    open_data(datamodule, ["fit", "test"] if cfg.get("test") else ["fit"])
    check_trains_something(cfg, datamodule)
    log.info("training a bank of %d programs (jobs %s)", len(configs), ", ".join(d.name for d in dirs))
    _, epochs, steps = fit_task(trainer, module, datamodule)
    if cfg.get("export"):  # before testing can fail
        for k in module.live():
            path = module.export(dirs[k], k)
            records[k].update(exports=[str(path), str(path.with_suffix(".json"))])
    if cfg.get("test"):
        test_task(trainer, module, datamodule)
    return module, trainer, epochs, steps


@contextmanager
def _job_logs(paths: Iterator[Path]) -> Iterator[None]:
    """The bank's log lines also in each job's own log file, as an ordinary job writes it."""
    root, handlers = logging.getLogger(), []
    for path in paths:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
        root.addHandler(handler)
        handlers.append(handler)
    try:
        yield
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}{key}.").items()} or {
            prefix[:-1]: {}
        }
    return {prefix[:-1]: node}


def _differ(a: dict[str, Any], b: dict[str, Any]) -> set[str]:
    return {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
