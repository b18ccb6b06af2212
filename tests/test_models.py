import pytest
import torch
import torchvision
from conftest import CONF, compose_plain
from safetensors.torch import save_file

from reprog.errors import UserError
from reprog.models import build_model
from reprog.models.export import load_victim, save_victim, state_checksum

MODEL_CONFIGS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_every_model_config_builds_and_runs_forward(name):
    spec = compose_plain([f"model={name}"]).model
    model = build_model(**spec).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, spec.num_classes) and torch.isfinite(out).all()


def test_torchvision_wrapper_loads_a_local_weights_file(tmp_path):
    reference = torchvision.models.get_model("resnet18", num_classes=10).eval()
    save_file(reference.state_dict(), tmp_path / "rn18.safetensors")
    torch.save(reference.state_dict(), tmp_path / "rn18.pth")
    x = torch.rand(2, 3, 32, 32)
    for file in ("rn18.safetensors", "rn18.pth"):
        model = build_model("torchvision", 10, [0.0] * 3, [1.0] * 3, name="resnet18", weights=str(tmp_path / file))
        assert torch.allclose(model.eval()(x), reference(x), atol=1e-5)
    with pytest.raises(UserError, match="does not fit this architecture"):
        build_model("torchvision", 10, [0.0] * 3, [1.0] * 3, name="resnet34", weights=str(tmp_path / "rn18.pth"))
    with pytest.raises(UserError, match="no weights file"):
        build_model("resnet20", 10, [0.0] * 3, [1.0] * 3, weights=str(tmp_path / "missing.pth"))


def test_pickled_code_in_a_weights_file_is_refused(tmp_path):
    torch.save({"w": torch.zeros(1), "evil": print}, tmp_path / "evil.pth")  # a callable needs full unpickling
    with pytest.raises(UserError, match="cannot read weights file"):
        build_model("resnet20", 10, [0.0] * 3, [1.0] * 3, weights=str(tmp_path / "evil.pth"))


def test_victim_export_round_trips_through_safetensors(tmp_path):
    spec = {"arch": "resnet20", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3, "weights": None}
    model = build_model(**spec).eval()
    path = save_victim(model, spec, tmp_path / "victim")
    assert path.name == "victim.safetensors" and path.with_suffix(".json").is_file()
    loaded, loaded_spec = load_victim(path)
    x = torch.rand(4, 3, 32, 32)
    assert loaded_spec == spec and state_checksum(loaded) == state_checksum(model)
    assert torch.equal(loaded.eval()(x), model(x))
    with pytest.raises(UserError, match="no victim checkpoint at .*python train.py experiment=victim_cifar10"):
        load_victim(tmp_path / "nope.ckpt")


def test_untrusted_victim_files_are_refused_without_running_code(tmp_path):
    torch.save({"hyper_parameters": {"model": {}}, "state_dict": {}, "payload": print}, tmp_path / "evil.ckpt")
    with pytest.raises(UserError, match="cannot read victim .*evil.ckpt"):
        load_victim(tmp_path / "evil.ckpt")
    spec = {"arch": "resnet20", "num_classes": 10, "mean": [0.5] * 3, "std": [0.25] * 3}
    path = save_victim(build_model(**spec), spec, tmp_path / "victim")
    path.with_suffix(".json").write_text('{"model": {"arch": "resnet20", "payload": "os.system"}}')
    with pytest.raises(UserError, match="victim.json disagrees with the metadata inside victim.safetensors"):
        load_victim(path)
    from reprog.artifacts import save_artifact

    odd = save_artifact(
        tmp_path / "odd" / "victim",
        build_model(**spec).state_dict(),
        {"model": {**spec, "payload": "os.system"}, "sha256": "0" * 64},
    )
    with pytest.raises(UserError, match="does not match its own model spec"):
        load_victim(odd)
