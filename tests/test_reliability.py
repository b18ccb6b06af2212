"""Artifacts describe themselves, bad input fails early in one line, and no interruption loses a result."""

import hashlib
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TINY_RUN, compose_plain, compose_train
from safetensors.torch import save_file

from reprog.artifacts import save_artifact
from reprog.cli import one_line
from reprog.config_schema import check_config
from reprog.errors import UserError
from reprog.label_mapping import FirstK
from reprog.models.export import load_victim
from reprog.placement import Placement
from reprog.program import build_program
from reprog.program_io import load_program, save_program
from reprog.resume import check_resume_checkpoint
from reprog.run_summary import RunRecord, Terminated
from train import train


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def refused(call, *needles: str) -> str:
    """`call()` raises a UserError whose message is one line holding every needle."""
    with pytest.raises(UserError) as info:
        call()
    message = one_line(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, message
    return message


class Payload:
    """A pickle that would run a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def program_file(tmp_path: Path, victim_file: Path) -> Path:
    program = build_program("masked", Placement(32, 14))
    torch.nn.init.normal_(program.W)
    victim = json.loads(victim_file.with_suffix(".json").read_text())
    return save_program(tmp_path / "prog" / "program.safetensors", program, FirstK(10, 10), victim)


# -- self-describing artifacts ---------------------------------------------------------------------
def test_the_metadata_lives_in_the_header_and_the_json_is_its_copy(program_file):
    from safetensors import safe_open

    with safe_open(program_file, "pt") as f:
        header = json.loads(f.metadata()["reprog"])
    assert header == json.loads(program_file.with_suffix(".json").read_text())
    assert header["program"]["placement"]["size"] == 14 and header["label_map"]["num_targets"] == 10
    program_file.with_suffix(".json").unlink()  # the weights file alone is enough
    assert load_program(program_file).program.placement.size == 14


@pytest.mark.parametrize(
    "field, value",
    [
        (("program", "placement", "size"), 20),
        (("program", "nonlinearity"), "sigmoid"),
        (("victim", "sha256"), "0" * 64),
        (("label_map", "kind"), "random"),
    ],
)
def test_an_edited_sidecar_is_refused_naming_the_field(program_file, field, value):
    sidecar = program_file.with_suffix(".json")
    meta = json.loads(sidecar.read_text())
    node = meta
    for key in field[:-1]:
        node = node[key]
    node[field[-1]] = value
    sidecar.write_text(json.dumps(meta))
    before = snapshot(program_file.parent)
    refused(
        lambda: load_program(program_file), "disagrees with the metadata", ".".join(field), "delete it or restore it"
    )
    assert snapshot(program_file.parent) == before


def test_tensors_that_do_not_fit_the_metadata_are_refused(tmp_path, program_file):
    meta = json.loads(program_file.with_suffix(".json").read_text())
    path = tmp_path / "bad" / "program.safetensors"
    save_artifact(path, {"program.W": torch.zeros(3, 30, 30), "label_map.index": torch.arange(10)[:, None]}, meta)
    refused(lambda: load_program(path), "does not fit its own metadata", "program.W is (3, 30, 30)", "(3, 32, 32)")
    save_artifact(path, {"program.W": torch.zeros(3, 32, 32), "label_map.index": torch.full((10, 1), 99)}, meta)
    refused(lambda: load_program(path), "label map reads victim classes outside 0..9")


def test_a_file_without_header_metadata_or_not_safetensors_is_refused(tmp_path, program_file):
    legacy = tmp_path / "legacy" / "program.safetensors"
    legacy.parent.mkdir()
    save_file({"program.W": torch.zeros(3, 32, 32), "label_map.index": torch.arange(10)[:, None]}, legacy)
    legacy.with_suffix(".json").write_text(program_file.with_suffix(".json").read_text())
    refused(lambda: load_program(legacy), "carries no reprog metadata in its header")
    truncated = tmp_path / "cut" / "program.safetensors"
    truncated.parent.mkdir()
    truncated.write_bytes(program_file.read_bytes()[:-100])
    refused(lambda: load_program(truncated), "cannot read program", "not a complete .safetensors file")


def test_an_artifact_handed_where_another_kind_belongs_says_what_it_is(victim_file, program_file):
    refused(lambda: load_program(victim_file), "is a victim: pass it as victim=", "it is not a program")
    refused(lambda: load_victim(program_file), "is a program: apply it with `python -m reprog.predict", "not a victim")
    patch = program_file.parent / "patch.safetensors"
    save_artifact(patch, {"patch": torch.zeros(3, 4, 4)}, {"attack": "patch", "patch": {}, "image": [3, 32, 32]})
    refused(lambda: load_program(patch), "is an adversarial patch: apply it with `python -m reprog.patch_predict")


def test_victim_weights_are_checked_against_their_recorded_sha256(tmp_path, victim_file):
    from safetensors import safe_open

    with safe_open(victim_file, "pt") as f:
        meta, state = json.loads(f.metadata()["reprog"]), {k: f.get_tensor(k) for k in f.keys()}
    name = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 100)
    state[name] = state[name] + 1e-3
    tampered = tmp_path / "tampered" / "victim.safetensors"
    save_artifact(tampered, state, meta)
    refused(lambda: load_victim(tampered), "do not match the sha256 recorded with them", "the file was modified")


def test_malicious_pickles_never_run(tmp_path, program_file):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"state_dict": Payload(marker), "loops": {}, "hyper_parameters": Payload(marker)}))
    refused(lambda: load_victim(evil), "cannot read victim")
    refused(
        lambda: check_resume_checkpoint(evil, torch.nn.Module()), "cannot resume from", "holds code, which is never run"
    )
    as_program = tmp_path / "evil" / "program.safetensors"
    as_program.parent.mkdir()
    as_program.write_bytes(evil.read_bytes())
    refused(lambda: load_program(as_program), "cannot read program")
    assert not marker.exists()


def test_exports_honour_the_umask_and_appear_together(tmp_path, program_file, monkeypatch):
    old = os.umask(0o022)
    try:
        path = save_program(
            tmp_path / "shared" / "program.safetensors",
            load_program(program_file).program,
            FirstK(10, 10),
            {"sha256": "0" * 64, "model": {}},
        )
    finally:
        os.umask(old)
    for p in (path, path.with_suffix(".json")):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, oct(p.stat().st_mode)

    calls = []
    real_replace = os.replace

    def killed_at_second_rename(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", killed_at_second_rename)
    loaded = load_program(program_file)
    target = tmp_path / "half" / "program.safetensors"
    with pytest.raises(KeyboardInterrupt):
        save_program(target, loaded.program, loaded.label_map, loaded.meta["victim"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert not target.with_suffix(".json").exists() and not list(target.parent.glob(".*.tmp"))
    assert torch.equal(load_program(target).program.W, loaded.program.W), "the weights file stands on its own"
    calls.clear()
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        save_program(tmp_path / "none" / "program.safetensors", loaded.program, loaded.label_map, loaded.meta["victim"])
    assert not [p for p in (tmp_path / "none").iterdir()], "killed before the first rename: nothing at all"


# -- metrics.json ----------------------------------------------------------------------------------
def test_metrics_json_is_replaced_atomically_and_keeps_what_was_recorded(tmp_path, monkeypatch):
    record = RunRecord(tmp_path / "metrics.json", overrides=["a=1"])
    with pytest.raises(RuntimeError):
        with record.tracking():
            record.update(exports=["program.safetensors"])
            raise RuntimeError()
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError (no message)"
    assert summary["exports"] == ["program.safetensors"] and summary["overrides"] == ["a=1"]

    before = (tmp_path / "metrics.json").read_bytes()
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))  # killed mid-write
    with pytest.raises(KeyboardInterrupt):
        record.update(status="completed")
    assert (tmp_path / "metrics.json").read_bytes() == before


def test_sigint_and_sigterm_outside_lightning_record_interrupted(tmp_path):
    record = RunRecord(tmp_path / "metrics.json")
    with pytest.raises(KeyboardInterrupt):
        with record.tracking(resume_hint=lambda: "ckpt_path=last.ckpt"):
            raise KeyboardInterrupt
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert (summary["status"], summary["signal"], summary["resume"]) == ("interrupted", "SIGINT", "ckpt_path=last.ckpt")
    with pytest.raises(Terminated, match="SIGTERM"):  # not an Exception: no data or config handler catches it
        with record.tracking():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert json.loads((tmp_path / "metrics.json").read_text())["signal"] == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


# -- validated before anything runs ----------------------------------------------------------------
@pytest.mark.parametrize(
    "override, needle",
    [
        ("data.batch_size=abc", "data.batch_size=abc: expected an integer >= 1"),
        ("data.batch_size=0", "data.batch_size=0: expected an integer >= 1"),
        ("trainer.max_epochs=-1", "trainer.max_epochs=-1 trains until trainer.max_steps, which is not set"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 trains nothing"),
        ("optimizer.lr=-1", "optimizer.lr=-1: expected a number > 0"),
        ("optimizer.lr=nan", "optimizer.lr=nan: expected a finite number > 0"),
        ("optimizer.lr=inf", "optimizer.lr=inf: expected a finite number > 0"),
        ("optimizer.momentum=1.5", "optimizer.momentum=1.5: expected a number >= 0 and <= 1"),
        ("data.val_size=-5", "data.val_size=-5: expected an integer >= 0"),
        ("task.label_smoothing=2", "task.label_smoothing=2: expected a number >= 0 and <= 1"),
        ("train=yes", "train=yes: expected true or false"),
        ("data.mean=[0.5,2,0.5]", "data.mean holds 2: expected each item to be a number >= 0 and <= 1"),
    ],
)
def test_settings_outside_their_domain_are_named_with_their_range(override, needle):
    refused(lambda: check_config(compose_plain([override])), needle)


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (
            ["experiment=reprogram_mnist", "victim.ckpt_path=v", "program.lam=-1"],
            "program.lam=-1: expected a number >= 0",
        ),
        (["experiment=reprogram_mnist", "victim.ckpt_path=v", "data.digit_size=0"], "data.digit_size=0"),
        (["experiment=attack_pgd", "victim.ckpt_path=v", "task.eps_255=[2,-4]"], "task.eps_255 holds -4"),
    ],
)
def test_every_group_is_checked_where_the_user_set_it(overrides, needle):
    """Settings of no plug-in; a plug-in checks its own where it is built (tests/test_registry.py)."""
    refused(lambda: check_config(compose_plain(overrides)), needle)


def test_an_evaluation_only_job_passes_the_schema():
    """Every shipped experiment passes it too (tests/test_configs.py)."""
    check_config(compose_plain(["train=false", "trainer.max_epochs=0"]))  # evaluation only: nothing to train


def test_a_bad_setting_fails_in_one_line_before_anything_is_written(tmp_path, cifar_npz_dir):
    cmd = [
        sys.executable,
        "train.py",
        *TINY_RUN,
        f"paths.data_dir={cifar_npz_dir}",
        f"hydra.run.dir={tmp_path / 'run'}",
        "data.batch_size=abc",
    ]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: data.batch_size=abc: expected an integer >= 1"], result.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == errors[0].removeprefix("error: ")
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_bad_test_labels_fail_before_training(tmp_path, cifar_npz_dir):
    import numpy as np

    test_file = cifar_npz_dir / "cifar10" / "test.npz"
    with np.load(test_file) as f:
        x, y = f["x"], f["y"].copy()
    y[3] = 12
    np.savez(test_file, x=x, y=y)
    cfg = compose_train(tmp_path, cifar_npz_dir)
    refused(lambda: train(cfg), "12", "num_classes")
    assert not (tmp_path / "run" / "checkpoints").exists(), "no training was spent before the check"
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"


# -- resume checkpoints ----------------------------------------------------------------------------
def test_unreadable_or_foreign_resume_checkpoints_get_one_line(tmp_path, cifar_npz_dir, victim_file):
    from reprog.modules.victim import VictimModule

    module = VictimModule(
        model={"arch": "resnet20", "num_classes": 10, "mean": [0.5] * 3, "std": [0.5] * 3}, optimizer=torch.optim.SGD
    )
    empty = tmp_path / "empty.ckpt"
    empty.touch()
    refused(lambda: check_resume_checkpoint(empty, module), "cannot resume from", "empty, truncated")
    real = tmp_path / "real.ckpt"
    torch.save({"state_dict": module.state_dict(), "loops": {}, "hyper_parameters": dict(module.hparams)}, real)
    check_resume_checkpoint(real, module)
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    refused(lambda: check_resume_checkpoint(cut, module), "cannot resume from")
    foreign = tmp_path / "foreign.ckpt"
    torch.save(
        {"state_dict": {}, "loops": {}, "hyper_parameters": {"victim": {}, "program": {}, "mapping": {}}}, foreign
    )
    refused(lambda: check_resume_checkpoint(foreign, module), "was saved by another task", "VictimModule takes")
    weights_only = tmp_path / "weights.ckpt"
    torch.save(module.state_dict(), weights_only)
    refused(lambda: check_resume_checkpoint(weights_only, module), "not a Lightning training checkpoint")
    other_model = VictimModule(
        model={"arch": "resnet56", "num_classes": 10, "mean": [0.5] * 3, "std": [0.5] * 3}, optimizer=torch.optim.SGD
    )
    refused(lambda: check_resume_checkpoint(real, other_model), "does not fit this run's model")

    cfg = compose_train(tmp_path, cifar_npz_dir, [f"ckpt_path={cut}"])  # and through train.py
    refused(lambda: train(cfg), "cannot resume from")
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "failed"


# -- never lose a result ---------------------------------------------------------------------------
def test_the_export_is_written_before_testing_and_survives_a_failing_test(tmp_path, cifar_npz_dir, monkeypatch):
    from reprog.modules.victim import VictimModule

    def broken(self, batch, batch_idx):
        raise RuntimeError("the test step broke")

    monkeypatch.setattr(VictimModule, "test_step", broken)
    cfg = compose_train(tmp_path, cifar_npz_dir, ["trainer.limit_train_batches=2", "trainer.limit_val_batches=1"])
    with pytest.raises(RuntimeError):
        train(cfg)
    run = tmp_path / "run"
    summary = json.loads((run / "metrics.json").read_text())
    assert summary["status"] == "failed" and "the test step broke" in summary["error"]
    assert summary["exports"] == [str(run / "victim.safetensors"), str(run / "victim.json")]
    # the export holds the best checkpoint's weights, as testing would have used
    best = torch.load(next((run / "checkpoints").glob("epoch_*.ckpt")), weights_only=True)["state_dict"]
    exported, _ = load_victim(run / "victim.safetensors")
    assert all(torch.equal(v, best[f"model.{k}"]) for k, v in exported.state_dict().items())


def test_sigterm_during_training_records_interrupted_and_resume_matches_an_uninterrupted_run(tmp_path, cifar_npz_dir):
    settings = [
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=20",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=2",
        "data.batch_size=16",
        "scheduler=cosine",
        "callbacks.model_checkpoint.monitor=null",
    ]  # both runs test their last weights
    reference = train(compose_train(tmp_path / "ref", cifar_npz_dir, settings))

    run = tmp_path / "killed"
    cmd = [sys.executable, "train.py", *TINY_RUN, *settings, f"paths.data_dir={cifar_npz_dir}", f"hydra.run.dir={run}"]
    child = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (run / "checkpoints" / "last.ckpt").is_file() and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=240)
    assert child.returncode == 128 + signal.SIGTERM and "Traceback" not in stderr, stderr[-2000:]
    summary = json.loads((run / "metrics.json").read_text())
    assert (summary["status"], summary["signal"]) == ("interrupted", "SIGTERM")
    assert summary["resume"] == f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] < 2, "stopped before the end"

    resumed = train(compose_train(tmp_path / "resumed", cifar_npz_dir, [*settings, summary["resume"]]))
    assert resumed["test/acc"] == reference["test/acc"] and resumed["test/loss"] == reference["test/loss"]
