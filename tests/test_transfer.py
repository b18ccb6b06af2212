"""`python -m reprog.transfer`: every program through every victim, on synthetic MNIST files."""

import json

import pytest
import torch
from conftest import compose_train

from reprog.models import build_model
from reprog.models.export import save_victim
from reprog.transfer import main
from train import train


def test_the_transfer_matrix_applies_every_program_to_every_victim(tmp_path, mnist_dir, victim_file, capsys):
    torch.manual_seed(1)
    spec = json.loads(victim_file.with_suffix(".json").read_text())["model"]
    other = save_victim(build_model(**spec), spec, tmp_path / "other" / "victim.safetensors")
    programs = []
    for name, victim in (("a", victim_file), ("b", other)):
        train(
            compose_train(
                tmp_path / name,
                mnist_dir,
                ["experiment=reprogram_mnist", f"victim.ckpt_path={victim}", "trainer.fast_dev_run=true"],
            )
        )
        programs.append(tmp_path / name / "run" / "program.safetensors")

    out = tmp_path / "matrix"
    main(
        [
            f"programs=[{programs[0]},{programs[1]}]",
            f"victims=[{victim_file},{other}]",
            "names=[first,second]",
            f"data_dir={mnist_dir}",
            f"out={out}",
        ]
    )
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["own"] == [[True, False], [False, True]] and result["n"] == 200
    assert all(0 <= a <= 1 for row in result["accuracy"] for a in row)
    assert out.with_suffix(".png").stat().st_size > 0
    printed = capsys.readouterr().out
    assert (
        "| program of \\ applied to | first | second |" in printed and f"**{result['accuracy'][0][0]:.2%}**" in printed
    )

    with pytest.raises(SystemExit, match="unknown setting 'victim'"):
        main([f"programs={programs[0]}", f"victim={other}"])
    with pytest.raises(SystemExit, match="names= gives 1 names for 2 victims"):
        main([f"programs={programs[0]}", f"victims=[{victim_file},{other}]", "names=[x]", f"data_dir={mnist_dir}"])
