"""Program banks: K programs through one victim, equal to K single trainings, as a Hydra launcher."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, TINY_RUN
from safetensors.torch import load_file

from reprog.bank_run import plan
from reprog.errors import UserError
from reprog.label_mapping import build_label_map
from reprog.models import build_model
from reprog.placement import Placement
from reprog.program import build_program
from reprog.program.bank import ProgramBank


def test_each_program_of_a_bank_gets_the_gradient_it_gets_alone():
    torch.manual_seed(0)
    victim = build_model("resnet20", num_classes=10, mean=[0.5] * 3, std=[0.25] * 3).eval().requires_grad_(False)
    placements = [Placement(32, 14), Placement(32, 20, 0, 0), Placement(32, 10)]
    programs = [build_program("masked", p) for p in placements]
    for program in programs:
        torch.nn.init.normal_(program.W)
    bank = ProgramBank(programs, [build_label_map("first_k", 10, 10) for _ in programs])
    canvases = [torch.rand(8, 3, 32, 32) for _ in programs]
    y = torch.randint(0, 10, (8,))

    losses = [torch.nn.functional.cross_entropy(z, y) for z in bank(victim, canvases)]
    torch.stack(losses).sum().backward()
    together = [p.W.grad.clone() for p in programs]
    for k, program in enumerate(programs):
        program.W.grad = None
        alone = torch.nn.functional.cross_entropy(victim(program(canvases[k])), y)
        alone.backward()
        assert torch.allclose(alone, losses[k], atol=1e-5)
        assert torch.allclose(program.W.grad, together[k], atol=1e-6), k


def test_a_programs_initial_weights_depend_on_its_seed_alone():
    from reprog.modules.reprogram import Member, build_reprogrammer

    def smm(seed):  # its mask network starts from random weights
        torch.rand(int(torch.randint(1, 9, ())))  # whatever the run drew before
        member = Member({"kind": "smm"}, {"kind": "first_k"}, seed=seed)
        return build_reprogrammer(member, Placement(32, 14), 3, 10, 10)[0].state_dict()

    torch.manual_seed(5)
    first, again, other = smm(3), smm(3), smm(4)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    torch.manual_seed(3)
    assert all(torch.equal(first[k], v) for k, v in smm(None).items()), "null: the run's seed"


def _job(**over):
    cfg = {
        "task": {
            "_target_": "reprog.modules.reprogram.ReprogramModule",
            "oracle": None,
            "victim": {"ckpt_path": "v"},
            "program": {"kind": "masked"},
            "init_program": None,
        },
        "data": {
            "_target_": "reprog.data.mnist.PaddedMNISTDataModule",
            "digit_size": 14,
            "position": None,
            "canvas_size": 32,
            "batch_size": 128,
            "eval_batch_size": 512,
        },
        "program": {"kind": "masked", "lam": 0.0},
        "mapping": {"kind": "first_k"},
        "optimizer": {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 0.05},
        "trainer": {"devices": 1, "max_epochs": 1},
        "paths": {"output_dir": "x"},
        "seed": 0,
        "train": True,
    }
    for key, value in over.items():
        node, *path, leaf = [cfg, *key.split("__")]
        for p in path:
            node = node[p]
        node[leaf] = value
    cfg["task"].update({k: cfg[k] for k in ("program", "mapping", "optimizer")})  # as ${program} ... resolve
    return cfg


def test_the_plan_banks_what_may_differ_per_program_and_splits_the_rest_with_a_reason():
    jobs = [
        _job(data__digit_size=s, optimizer__lr=lr, paths__output_dir=f"o{s}{lr}", task__program_seed=seed)
        for s, seed in ((14, None), (10, 7))
        for lr in (0.01, 0.1)
    ]
    assert plan(jobs, 4096).banks == [[0, 1, 2, 3]]

    jobs += [
        _job(seed=1),
        _job(seed=1, data__digit_size=20),  # another data order: another bank
        _job(task__oracle={"kind": "score"}),  # black box: alone
        _job(data__digit_size=40),  # fails its own check, alone, where it fails with its one line
        _job(optimizer___target_="torch.optim.SGD"),
    ]  # another optimizer class: alone in its bank
    p = plan(jobs, 4096)
    assert p.banks == [[0, 1, 2, 3], [4, 5]] and p.alone == [6, 7, 8]
    assert any("differ in" in n and "seed" in n for n in p.notes)
    assert any("job 6 runs alone: a black-box job" in n for n in p.notes)
    assert any("job 7 runs alone" in n and "image size 40" in n for n in p.notes)

    on_cpu = [_job(data__digit_size=s, trainer__accelerator="cpu") for s in (28, 24, 20, 14, 10, 7)]
    assert plan(on_cpu, max_images=None).banks == [[0, 1, 2, 3], [4, 5]]  # 512 images a pass on a CPU

    capped = plan(jobs[:4], max_images=256)  # two batches of 128 a step
    assert capped.banks == [[0, 1], [2, 3]] and any("2 sub-banks" in n for n in capped.notes)
    with pytest.raises(UserError, match="hydra.launcher.max_images=100 holds less than one program's batch"):
        plan(jobs[:4], max_images=100)
    for bad in (0, "abc"):  # neither the default in disguise nor a TypeError
        with pytest.raises(UserError, match=f"hydra.launcher.max_images={bad!r}: expected a whole number of images"):
            plan(jobs[:4], max_images=bad)


def _sweep(tmp_path, mnist_dir, victim_file, name, *extra):
    sweep = tmp_path / name
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        *TINY_RUN,
        "trainer.limit_train_batches=3",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        f"paths.data_dir={mnist_dir}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.sweep.dir={sweep}",
        *extra,
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    result.output = result.stdout + result.stderr
    jobs = {}
    for d in sorted(p for p in sweep.iterdir() if p.is_dir()):
        summary = json.loads((d / "metrics.json").read_text())
        jobs[" ".join(sorted(o for o in summary["overrides"] if o.split("=")[0] in SWEPT))] = (d, summary)
    return result, jobs


SWEPT = ("data.digit_size", "optimizer.lr", "program.nonlinearity", "mapping")


def test_a_banked_sweep_matches_its_ordinary_twin_job_by_job_isolates_a_failure_and_reports_like_one(
    tmp_path, mnist_dir, victim_file
):
    ordinary, singles = _sweep(tmp_path, mnist_dir, victim_file, "ordinary", "data.digit_size=14,20")
    assert ordinary.returncode == 0, ordinary.stderr[-3000:]
    # lr 1e30: the first step throws W to ~1e30 and lam * ||W||^2 overflows, so those programs' losses are inf
    # while their bank-mates at lr 0.05 (each program its own parameter group) train on; a cap of 64 images a
    # pass (two batches of 32) runs the 4 jobs as 2 sub-banks
    banked, banks = _sweep(
        tmp_path,
        mnist_dir,
        victim_file,
        "banked",
        "data.digit_size=14,20",
        "optimizer.lr=0.05,1e30",
        "hydra/launcher=bank",
        "hydra.launcher.max_images=64",
    )
    assert banked.returncode != 0, "a sweep with a failed job exits non-zero"
    assert "Traceback" not in banked.output, banked.output[-3000:]
    assert any(
        line.startswith("error: the program of this job, in a bank: the training loss became inf")
        for line in banked.stderr.splitlines()
    ), banked.stderr[-2000:]
    assert "Launching 4 jobs: 4 as 2 banks, 0 alone" in banked.output
    assert "a bank of 4 jobs runs as 2 sub-banks in turn" in banked.output
    assert len(banks) == 4

    for job, (run, summary) in banks.items():
        if "optimizer.lr=0.05" not in job:  # lr 1e30
            assert summary["status"] == "diverged" and "training loss became inf at step 1" in summary["error"], summary
            assert not (run / "program.safetensors").exists()
            continue
        twin, twin_summary = singles[job.replace(" optimizer.lr=0.05", "")]  # the ordinary jobs' lr is 0.05
        assert summary["status"] == "completed" and summary["bank"]["size"] == 2, job
        assert (run / ".hydra" / "overrides.yaml").is_file() and list((run / "tensorboard").glob("events.*"))
        ours, theirs = load_file(run / "program.safetensors"), load_file(twin / "program.safetensors")
        assert ours.keys() == theirs.keys()
        for name in ours:  # the same program, trained alone or in the bank, up to float tolerance
            assert torch.allclose(ours[name], theirs[name], atol=1e-4, rtol=1e-4), (job, name)
        for metric in ("val/acc_best", "test/acc"):
            assert summary["metrics"][metric] == pytest.approx(twin_summary["metrics"][metric], abs=0.006), (
                job,
                metric,
            )

    report = subprocess.run(
        [sys.executable, "-m", "reprog.report", str(tmp_path / "banked")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "banked" / "report.md").read_text()
    assert md.count("| completed |") == 2 and md.count("| diverged |") == 2

    too_small = subprocess.run(
        [
            sys.executable,
            "train.py",
            "-m",
            "experiment=reprogram_mnist",
            f"victim.ckpt_path={victim_file}",
            *TINY_RUN,
            f"paths.data_dir={mnist_dir}",
            "optimizer.lr=0.05,0.1",
            "hydra/launcher=bank",
            "hydra.launcher.max_images=16",
            f"hydra.sweep.dir={tmp_path / 'cap'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert too_small.returncode != 0 and "Traceback" not in too_small.stderr
    assert too_small.stderr.strip().splitlines()[-1] == (
        "error: hydra.launcher.max_images=16 holds less than one program's batch (data.batch_size=32); "
        "set it to at least 32"
    )


@pytest.mark.slow  # four small trainings in this process; kept out of the default run for its time (make test-all)
def test_label_maps_that_learn_from_data_are_fit_per_program_as_in_their_own_job(tmp_path, mnist_dir, victim_file):
    from conftest import compose_train
    from omegaconf import OmegaConf

    from reprog.bank_run import run_bank
    from train import train

    jobs = {"frequency": ["mapping=frequency", "data.digit_size=14"], "iterative": ["mapping=iterative"]}
    common = [
        "experiment=reprogram_mnist",
        f"victim.ckpt_path={victim_file}",
        "trainer.limit_train_batches=2",
        "trainer.max_epochs=2",
        "logger=csv",
        "test=false",
    ]
    banked = []
    for name, over in jobs.items():
        alone = compose_train(tmp_path / "alone" / name, mnist_dir, [*common, *over])
        train(alone)
        cfg = compose_train(tmp_path / "bank" / name, mnist_dir, [*common, *over])
        banked.append(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True)))
    values = run_bank(
        [OmegaConf.masked_copy(c, [k for k in c if k != "hydra"]) for c in banked],
        [o for o in jobs.values()],
        max_images=None,
    )
    assert all(isinstance(v, float) for v in values), values
    for name in jobs:
        ours = load_file(tmp_path / "bank" / name / "run" / "program.safetensors")
        theirs = load_file(tmp_path / "alone" / name / "run" / "program.safetensors")
        for key in ours:  # the fitted maps' indices exactly, the programs up to float tolerance
            assert torch.allclose(ours[key].float(), theirs[key].float(), atol=1e-4), (name, key)
