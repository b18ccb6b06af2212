"""airbench94's recipe, piece by piece: whitening stem (and its bias freeze), BatchNorm-bias lr, triangle schedule,
lookahead, alternating flips, TTA."""

from functools import partial
from types import SimpleNamespace

import pytest
import pytorch_lightning as pl
import torch
from conftest import compose_train
from safetensors.torch import load_file
from torch import nn

from reprog.callbacks.freeze import FreezeAfter
from reprog.callbacks.lookahead import Lookahead
from reprog.data.arrays_datamodule import ArraysDataModule
from reprog.data.augment import random_crop_flip
from reprog.data.device_batches import DeviceBatches
from reprog.errors import UserError
from reprog.models import build_model
from reprog.models.airbench import Whitening
from reprog.models.export import load_victim
from reprog.models.frozen import FrozenVictim
from reprog.models.tta import tta_logits
from reprog.modules.optim import configure_optimizers, norm_bias_groups
from reprog.schedulers import onecycle
from train import train

SPEC = {"arch": "airbench", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3}


def test_whitening_fits_the_first_training_batch_then_stays_frozen():
    torch.manual_seed(0)
    stem = Whitening(3, kernel_size=2)
    x = torch.randn(16, 3, 12, 12) * torch.tensor([1.0, 3.0, 0.2])[:, None, None] + 0.5
    initial = stem.weight.clone()
    stem.eval()(x)
    assert torch.equal(stem.weight, initial) and not stem.fitted, "evaluation never fits"
    stem.train()(x)
    assert stem.fitted and not stem.weight.requires_grad and stem.bias.requires_grad
    patches = nn.functional.conv2d(x, stem.weight).permute(0, 2, 3, 1).reshape(-1, 24)
    whitened = patches[:, :12]
    covariance = whitened.T @ whitened / len(whitened)
    assert torch.allclose(covariance, torch.eye(12), atol=0.02), "the first half whitens the 2x2 patches"
    assert torch.allclose(patches[:, 12:], -whitened, atol=1e-5), "the second half is its negative"
    fitted = stem.weight.clone()
    stem(x * 5)
    assert torch.equal(stem.weight, fitted), "fitted once"


def test_whiten_eps_keeps_faint_directions_from_amplifying_a_perturbation():
    torch.manual_seed(0)
    x = nn.functional.interpolate(torch.randn(64, 3, 6, 6), size=24, mode="bilinear")  # smooth: faint high frequencies
    noise = (8 / 255 / 0.25) * torch.randn_like(x).sign()  # an 8/255 sign perturbation after normalization
    gain = {}
    for eps in (5e-4, 0.05):
        stem = build_model(**SPEC, whiten_eps=eps)[1][0].train()
        stem(x)
        gain[eps] = (stem(x + noise) - stem(x)).pow(2).mean() / (stem(x) - stem.bias[:, None, None]).pow(2).mean()
    assert gain[5e-4] > 1 > gain[0.05] * 3, f"noise power / image power after the stem: {gain}"
    with pytest.raises(UserError, match="model.arch=resnet20 has no setting whiten_eps; its settings are weights"):
        build_model(**{**SPEC, "arch": "resnet20"}, whiten_eps=0.05)


def test_a_loaded_airbench_victim_is_not_refitted_and_folds_for_reprogramming(tmp_path):
    from reprog.models.export import save_victim

    torch.manual_seed(0)
    model = build_model(**SPEC).train()
    model(torch.rand(32, 3, 32, 32))
    save_victim(model, SPEC, tmp_path / "victim.safetensors")
    assert load_file(tmp_path / "victim.safetensors")["1.0.fitted"].item()
    loaded, spec = load_victim(tmp_path / "victim.safetensors")
    stem = loaded[1][0]
    loaded.train()(torch.rand(32, 3, 32, 32) * 9)
    assert torch.equal(stem.weight, model[1][0].weight), "a loaded stem keeps its fit"
    victim = FrozenVictim(loaded, spec)
    x = torch.rand(4, 3, 32, 32, requires_grad=True)
    assert type(victim.compute).__name__ == "GraphModule", "traced and BatchNorm-folded"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in victim.compute.modules()), "all six, three behind a max-pool"
    (grad,), (expected,) = (torch.autograd.grad(m(x).square().sum(), x) for m in (victim, loaded.eval()))
    assert torch.allclose(victim(x), loaded(x), atol=1e-4) and torch.allclose(grad, expected, atol=1e-5)


def test_airbench_batchnorm_scales_are_frozen_and_biases_get_the_scaled_lr():
    model = build_model(**SPEC)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 6 and not any(m.weight.requires_grad for m in norms)
    groups = norm_bias_groups(model, lr_scale=64)
    opt = configure_optimizers(None, groups, partial(torch.optim.SGD, lr=0.5, weight_decay=1e-3), None)["optimizer"]
    rest, biases = opt.param_groups
    assert {id(p) for p in biases["params"]} == {id(m.bias) for m in norms}
    assert len(rest["params"]) + len(biases["params"]) == len(list(model.parameters()))
    assert biases["lr"] == 32 and rest["lr"] == 0.5 and "lr_scale" not in biases
    assert biases["lr"] * biases["weight_decay"] == pytest.approx(rest["lr"] * rest["weight_decay"])


def test_linear_onecycle_is_airbench_triangle():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = onecycle(
        opt,
        total_steps=100,
        steps_per_epoch=10,
        pct_start=0.23,
        div_factor=5,
        final_div_factor=2.857,
        anneal_strategy="linear",
    )
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.4) and max(lrs) == pytest.approx(2.0, rel=1e-3)
    assert lrs.index(max(lrs)) == 22 and lrs[-1] == pytest.approx(0.14, rel=1e-3)
    assert lrs[10] == pytest.approx((lrs[0] + lrs[20]) / 2, rel=1e-3), "linear, not cosine"


def test_lookahead_pulls_the_weights_to_their_average_and_ends_on_it():
    module = nn.Linear(2, 2)
    trainer = SimpleNamespace(global_step=0, estimated_stepping_batches=20)
    lookahead = Lookahead(every=5, base=0.95)
    lookahead.on_fit_start(trainer, module)
    start = module.weight.detach().clone()
    for step in range(1, 21):
        with torch.no_grad():
            module.weight.add_(1.0)  # a training step
        before = module.weight.detach().clone()
        trainer.global_step = step
        lookahead.on_train_batch_end(trainer, module, None, None, step - 1)
        if step == 5:
            decay = 0.95**5 * (5 / 20) ** 3
            assert torch.allclose(module.weight, start + (before - start) * (1 - decay))
        elif step % 5:
            assert torch.equal(module.weight, before), "between pulls the weights train freely"
    assert torch.equal(module.weight, lookahead.average["weight"]), "the run ends on the average"
    assert module.weight[0, 0] < start[0, 0] + 16, "the last steps were averaged, not taken whole"
    restored = Lookahead()
    restored.load_state_dict(lookahead.state_dict())
    restored.on_fit_start(trainer, module)
    assert torch.equal(restored.average["weight"], lookahead.average["weight"]), "a resumed run keeps its average"


def test_tta_averages_the_mirrored_and_shifted_views():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(tta_logits(net, x, 0), net(x))
    assert torch.allclose(tta_logits(net, x, 1), (net(x) + net(x.flip(-1))) / 2)
    padded = nn.functional.pad(x, (1,) * 4, mode="reflect")
    views = [x, padded[..., :8, :8], padded[..., 2:, 2:]]
    six = [(net(v) + net(v.flip(-1))) / 2 for v in views]
    assert torch.allclose(tta_logits(net, x, 2), six[0] / 2 + (six[1] + six[2]) / 4, atol=1e-6)


def test_reflect_translation_stays_inside_the_reflected_image():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    out = random_crop_flip(x, padding=2, flip=False, padding_mode="reflect")
    padded = nn.functional.pad(x, (2,) * 4, mode="reflect")
    windows = lambda i: [padded[i, :, r : r + 8, c : c + 8] for r in range(5) for c in range(5)]  # noqa: E731
    assert all(any(torch.equal(out[i], w) for w in windows(i)) for i in range(len(x)))
    assert not (out == 0).all(dim=(1, 2)).any(), "no zero-filled border rows"


def test_alternating_flip_mirrors_each_image_in_exactly_one_of_two_epochs():
    images = torch.randint(0, 256, (40, 3, 4, 6), dtype=torch.uint8)
    batches = DeviceBatches(images, torch.arange(40), 8, shuffle=True, drop_last=True, seed=3, alternate_flip=True)
    flipped = []
    for _ in range(3):
        seen = {int(i): x for xb, yb in batches for x, i in zip(xb, yb)}
        assert all(torch.equal(seen[i], images[i]) or torch.equal(seen[i], images[i].flip(-1)) for i in range(40))
        flipped.append(torch.tensor([not torch.equal(seen[i], images[i]) for i in range(40)]))
    assert torch.equal(flipped[1], ~flipped[0]) and torch.equal(flipped[2], flipped[0])
    assert 8 < flipped[0].sum() < 32, "a random start"
    with pytest.raises(UserError, match="device_resident=true"):
        ArraysDataModule(flip="alternate", device_resident=False)


def test_freeze_after_stops_the_whitening_bias_after_its_epochs():
    class Tiny(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(Whitening(3, kernel_size=2), nn.Flatten(), nn.Linear(24 * 7 * 7, 2))

        def training_step(self, batch, batch_idx):
            return nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):  # momentum and weight decay would move a bias that is merely not stepped
            return torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)

    class Record(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            snapshots.append([p.detach().clone() for p in (pl_module.net[0].bias, pl_module.net[2].weight)])

    torch.manual_seed(0)
    snapshots = []
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, 8, 8), torch.randint(0, 2, (32,)))
    trainer = pl.Trainer(
        max_epochs=3,
        callbacks=[FreezeAfter(1, "Whitening"), Record()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=8))
    (bias0, w0), (bias1, w1), (bias2, w2) = snapshots
    assert bias0.abs().sum() > 0, "the bias learned in epoch 0"
    assert torch.equal(bias1, bias0) and torch.equal(bias2, bias0), "then it stayed"
    assert not torch.equal(w2, w1), "while the rest trained on"
    with pytest.raises(UserError, match="no Nope module"):
        FreezeAfter(1, "Nope").on_fit_start(trainer, Tiny())


def test_airbench_experiment_trains_with_the_whole_recipe(tmp_path, cifar_npz_dir, monkeypatch):
    cfg = compose_train(
        tmp_path,
        cifar_npz_dir,
        ["experiment=victim_airbench", "data.batch_size=64", "trainer.max_epochs=2", "trainer.limit_train_batches=4"],
    )
    assert cfg.task.norm_bias_lr_scale == 64 and cfg.task.tta_level == 2 and "lookahead" in cfg.callbacks
    assert cfg.data.crop_padding == 2 and cfg.data.crop_padding_mode == "reflect" and cfg.data.flip == "alternate"
    assert cfg.callbacks.freeze_whitening_bias.epochs == 3
    levels = []  # the TTA level of every evaluated batch
    monkeypatch.setattr(
        "reprog.modules.victim.tta_logits", lambda model, x, level: levels.append(level) or tta_logits(model, x, level)
    )
    metrics = train(cfg)
    assert metrics["test/acc"] > 0.2, "far above chance on the synthetic classes"
    assert levels.count(2) == 2 and set(levels) == {0, 2}, "the 2 test batches with TTA, validation without"
    assert load_file(tmp_path / "run" / "victim.safetensors")["1.0.fitted"].item()
    assert "lookahead" not in (tmp_path / "run" / "victim.json").read_text()


def _fit_on_own_shard(rank: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    torch.manual_seed(rank)  # each rank's first batch differs
    stem = Whitening(3, kernel_size=2).train()
    stem(torch.randn(8, 3, 10, 10) * (1 + 2 * rank))
    torch.save(stem.weight.detach(), f"{out_dir}/weight{rank}.pt")
    dist.destroy_process_group()


def test_whitening_is_the_same_on_every_ddp_rank(tmp_path):
    """Under DDP each rank fits on its own batch; the averaged covariance gives every rank the same stem."""
    torch.multiprocessing.spawn(_fit_on_own_shard, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    w0, w1 = (torch.load(tmp_path / f"weight{r}.pt", weights_only=True) for r in (0, 1))
    assert torch.equal(w0, w1)
    alone = Whitening(3, kernel_size=2).train()
    torch.manual_seed(0)
    alone(torch.randn(8, 3, 10, 10))
    assert not torch.allclose(alone.weight, w0, atol=1e-3), "rank 0 alone would have fitted another stem"
