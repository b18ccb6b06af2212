"""The GPU check: every GPU path run once, its figures in one JSON file and one Markdown table, within 8 minutes.

    make gpu-check GPU_CHECK_OUT=$OUT       # on the GPU machine, with the carried wheels and data (README → GPU)
    make gpu-check GPU_CHECK=tiny           # the same parts on the CPU, a few steps each (tests/test_gpu_check.py)

It installs the carried wheels (.whl) into a temporary site folder for its children, joins the carried data
parts (.gpudata) into a data folder, prints nvidia-smi, then runs each part as a child process with its own
time limit, so that one slow part cannot eat the others, and the whole stays inside `--budget-s`:

  victim           experiment=victim_airbench trainer=gpu to completion: training s, test acc, epochs to 93 % val
  program          experiment=reprogram_mnist_scale trainer=gpu through that victim: s to 95 % val, test acc
  suite            bench/suite.py on CUDA: images/s per loop and model, Lightning / plain, peak CUDA memory
  study            the digit-size x lr study (12 jobs, 1 epoch each): total wall time
  study_banked     the same study as one program bank (hydra/launcher=bank): its wall time, plus the victim's
                   training time against the 60-second goal
  imagenet         experiment=reprogram_imagenet_mnist trainer=gpu: MNIST through ImageNet EfficientNet-Lite0, 224 px
  imagenet_counting, imagenet_cifar10   the paper's other two tasks through the same victim, 224 px, 65 s each
  victim_compiled  the victim again with model.compile=true, when the time left allows

Parts that fail or run out of time are recorded as such, with the end of their output; the rest still run.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_carry import assemble, pins, wheel_versions  # noqa: E402
from time_to_accuracy import curve, time_to  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# the ImageNet parts' smoke test on a CPU: one small step of each stage
ONE_STEP = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "data.val_size=100",
    "data.batch_size=8",
    "data.eval_batch_size=8",
]
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false", "callbacks.rich_progress_bar=null"]
# per part: (time limit on the GPU in s, overrides on the GPU, overrides in the tiny CPU mode)
PARTS = {
    "victim": (
        100,
        ["experiment=victim_airbench", "trainer=gpu"],
        [
            "experiment=victim_airbench",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.val_size=100",
            "data.batch_size=64",
            "data.eval_batch_size=100",
        ],
    ),
    "program": (
        90,
        ["experiment=reprogram_mnist_scale", "trainer=gpu", "trainer.max_epochs=10"],
        [
            "experiment=reprogram_mnist_scale",
            "trainer.max_epochs=2",
            "trainer.limit_train_batches=2",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.val_size=100",
        ],
    ),
    "suite": (
        90,
        ["--device", "cuda", "--repeats", "1", "--steps", "20", "--attack-steps", "5"],
        [
            "--device",
            "cpu",
            "--loops",
            "program",
            "--models",
            "resnet20",
            "--repeats",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--batch",
            "8",
            "--no-peak-memory",
        ],
    ),
    "study": (
        100,
        ["-m", "experiment=sweep_digit_size", "trainer=gpu", "trainer.max_epochs=1"],
        [
            "-m",
            "experiment=sweep_digit_size",
            "data.digit_size=14",
            "optimizer.lr=0.1",  # the command line wins
            "trainer.max_steps=1",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.val_size=100",
        ],
    ),
    "study_banked": (
        60,
        ["-m", "experiment=sweep_digit_size", "trainer=gpu", "trainer.max_epochs=1", "hydra/launcher=bank"],
        [
            "-m",
            "experiment=sweep_digit_size",
            "data.digit_size=14,10",
            "optimizer.lr=0.1",
            "trainer.max_steps=1",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.val_size=100",
            "hydra/launcher=bank",
        ],
    ),
    # the paper's protocol: ImageNet EfficientNet-Lite0, 224-px canvas, 28-px digit; the weights travel with the data
    "imagenet": (
        100,
        ["experiment=reprogram_imagenet_mnist", "trainer=gpu", "trainer.max_epochs=2", "data.batch_size=128"],
        [
            "experiment=reprogram_imagenet_mnist",
            "data.canvas_size=32",
            *ONE_STEP,
        ],
    ),
    # the paper's other two tasks through the same victim: counting squares (9 x 9 grid, 36 px), CIFAR-10 (32 px)
    "imagenet_counting": (
        90,
        [
            "experiment=reprogram_imagenet_counting",
            "trainer=gpu",
            "trainer.max_epochs=2",
            "data.batch_size=128",
            "++trainer.max_time=00:00:01:05",
        ],
        [
            "experiment=reprogram_imagenet_counting",
            "data.canvas_size=48",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            "data.train_size=200",
            "data.test_size=50",
            "data.val_size=100",
            "data.batch_size=8",
            "data.eval_batch_size=8",
        ],
    ),
    "imagenet_cifar10": (
        90,
        [
            "experiment=reprogram_imagenet_cifar10",
            "trainer=gpu",
            "trainer.max_epochs=2",
            "data.batch_size=128",
            "++trainer.max_time=00:00:01:05",
        ],
        [
            "experiment=reprogram_imagenet_cifar10",
            "data.canvas_size=48",
            *ONE_STEP,
            "mapping.batches=1",
        ],
    ),
    "victim_compiled": (120, ["experiment=victim_airbench", "trainer=gpu", "model.compile=true"], None),
}


class Check:
    def __init__(self, tiny: bool, out: Path, budget_s: float) -> None:
        self.tiny, self.out, self.budget_s = tiny, out, budget_s
        self.start = time.perf_counter()
        self.env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.results: dict = {"mode": "tiny" if tiny else "gpu", "parts": {}}

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def part(self, name: str, args: list[str], reserve_s: float = 0) -> dict:
        """Run one part as a child with its time limit (less when the budget is short); record how it ended."""
        limit = PARTS[name][0]
        limit = min(limit, max(self.left() - reserve_s, 0))
        record: dict = {"command": "python " + " ".join(args)}
        if limit < 20:
            record.update(status="skipped", why=f"{self.left():.0f} s of the budget left")
            self.results["parts"][name] = record
            return record
        began = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=None if self.tiny else limit,
            )
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            tail = (done.stdout + done.stderr)[-1500:]
        except subprocess.TimeoutExpired as e:
            status, tail = f"timeout after {limit:.0f} s", _text(e.stdout)[-1000:] + _text(e.stderr)[-500:]
        record.update(status=status, wall_s=round(time.perf_counter() - began, 1), limit_s=round(limit))
        if status != "ok":
            record["tail"] = tail
        self.results["parts"][name] = record
        print(f"{name}: {status} in {record['wall_s']} s", flush=True)
        return record

    def train(self, name: str, extra: list[str], run_dir: Path, reserve_s: float = 0) -> dict:
        overrides = PARTS[name][2] if self.tiny else PARTS[name][1]
        record = self.part(name, ["train.py", *overrides, *extra, *QUIET, f"hydra.run.dir={run_dir}"], reserve_s)
        if record["status"] == "ok":
            record.update(curve(run_dir))
        return record


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value or ""


def install_wheels(folder: Path, env: dict[str, str]) -> dict:
    """The carried wheels into a temporary site folder on the children's PYTHONPATH; their versions against the pins."""
    found = wheel_versions(folder)
    if not found:
        raise SystemExit(f"error: no wheels in {folder}; run `make gpu-wheels` first and carry {folder}")
    pinned = pins()
    mismatched = {n: (v, pinned[n]) for n, v in found.items() if n in pinned and pinned[n] != v}
    if mismatched:
        raise SystemExit(
            f"error: carried wheels differ from constraints.txt: {mismatched}; run `make gpu-wheels` again"
        )
    site = Path(tempfile.mkdtemp(prefix="reprog_site_"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "--no-deps",
            "--no-compile",
            "--target",
            str(site),
            *map(str, sorted(folder.glob("*.whl"))),
        ],
        check=True,
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    return {"folder": str(folder), "installed": found, "match_constraints": True}


def nvidia_smi() -> str:
    if not shutil.which("nvidia-smi"):
        return "nvidia-smi not found"
    return subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout


def markdown(results: dict) -> str:
    parts = results["parts"]
    lines = [
        f"# GPU check ({results['mode']}): {results.get('device', '?')}, {results['date']}",
        "",
        f"Total wall time {results['wall_s']:.0f} s of a {results['budget_s']:.0f} s budget.",
        "",
        "| part | status | wall s | figures |",
        "|---|---|---|---|",
    ]
    for name, r in parts.items():
        lines.append(f"| {name} | {r['status']} | {r.get('wall_s', '')} | {figures(name, r)} |")
    suite = parts.get("suite", {}).get("results")
    if suite:
        lines += [
            "",
            "| loop | model | Lightning images/s | plain images/s | Lightning / plain | peak MiB (L / plain) |",
            "|---|---|---|---|---|---|",
        ]
        for r in suite:
            m, p = r["median"], r["peak_mib"]
            lines.append(
                f"| {r['loop']} | {r['model']} | {m['lightning']:.0f} | {m['plain']:.0f} | {r['ratio']:.3f} | "
                f"{_mib(p['lightning'])} / {_mib(p['plain'])} |"
            )
    return "\n".join(lines) + "\n"


def _mib(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def figures(name: str, r: dict) -> str:
    if r["status"] != "ok":
        return r.get("why", "")
    if name.startswith("victim"):
        train_s = r["epochs"][-1][0] if r["epochs"] else None
        reached = next((i for i, (_, a) in enumerate(r["epochs"], 1) if a >= 0.93), None)
        return (
            f"test acc {r['test_acc']:.2%}, {train_s} s training, best val {max(a for _, a in r['epochs']):.2%}, "
            f"93 % val {'after epoch ' + str(reached) if reached else 'not reached'}"
        )
    if name in ("program", "imagenet", "imagenet_counting", "imagenet_cifar10"):
        t = time_to(r["epochs"], 0.95)
        return f"test acc {r['test_acc']:.2%}; 95 % val {'after ' + str(t) + ' s' if t is not None else 'not reached'}"
    if name == "study":
        return f"{r['jobs']} jobs, {r['completed']} completed"
    if name == "study_banked":
        total = "" if r.get("with_victim_s") is None else f"; with the victim's training {r['with_victim_s']:.0f} s"
        return f"{r['jobs']} jobs, {r['completed']} completed, {r['banked']} in banks{total} (goal: under 60 s)"
    if name == "suite":
        return f"{len(r.get('results', []))} loop x model rows (below)"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["gpu", "tiny"], default="gpu")
    parser.add_argument("--out", default=os.environ.get("GPU_CHECK_OUT", "outputs/gpu_check"))
    parser.add_argument("--wheels", default=".whl", help="the folder `make gpu-wheels` filled")
    parser.add_argument(
        "--data", default=".gpudata", help="the parts `make gpu-data` made (joined here), or a data_dir"
    )
    parser.add_argument("--budget-s", type=float, default=480)
    args = parser.parse_args()
    tiny, out = args.mode == "tiny", Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    check = Check(tiny, out, args.budget_s)
    runs = Path(tempfile.mkdtemp(prefix="reprog_gpu_check_"))
    results = check.results
    results.update(
        date=time.strftime("%Y-%m-%d %H:%M"),
        budget_s=args.budget_s,
        wheels=install_wheels(Path(args.wheels), check.env),
    )
    data = Path(args.data)
    if list(data.glob("part*/")):
        data = assemble(data, runs / "data")
    check.env["REPROG_DATA_DIR"], check.env["REPROG_CACHE_DIR"] = str(data), str(runs / "cache")
    results["device"] = "CPU (tiny mode)" if tiny else _device_name(check.env)
    smi = "" if tiny else nvidia_smi()
    print(smi, flush=True)
    (out / "nvidia_smi.txt").write_text(smi)

    check.train("victim", [], runs / "victim", reserve_s=380)
    victim_file = runs / "victim" / "victim.safetensors"
    if victim_file.is_file():
        check.train("program", [f"victim.ckpt_path={victim_file}"], runs / "program", reserve_s=290)
    suite_json = runs / "suite.json"
    overrides = PARTS["suite"][2] if tiny else PARTS["suite"][1]
    suite = check.part("suite", ["bench/suite.py", *overrides, "--out", str(suite_json)], reserve_s=200)
    if suite["status"] == "ok":
        suite.update(json.loads(suite_json.read_text()))
    if victim_file.is_file():
        for name, reserve_s in (("study", 160), ("study_banked", 100)):
            overrides = PARTS[name][2] if tiny else PARTS[name][1]
            sweep = runs / name
            study = check.part(
                name,
                ["train.py", *overrides, f"victim.ckpt_path={victim_file}", *QUIET, f"hydra.sweep.dir={sweep}"],
                reserve_s=reserve_s,
            )
            jobs = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
            study.update(
                jobs=len(jobs),
                completed=sum(j.get("status") == "completed" for j in jobs),
                banked=sum("bank" in j for j in jobs),
            )
        victim_epochs = results["parts"]["victim"].get("epochs")
        if study["status"] == "ok" and victim_epochs:  # the goal: victim training + the banked study
            study["with_victim_s"] = round(victim_epochs[-1][0] + study["wall_s"], 1)
    weights = data / "weights" / "efficientnet-lite0-57934424.pth"
    for name in ("imagenet", "imagenet_counting", "imagenet_cifar10"):
        check.train(name, [f"model.weights={weights}"] if weights.is_file() else [], runs / name)
    if not tiny:
        check.train("victim_compiled", [], runs / "victim_compiled")

    results["wall_s"] = round(time.perf_counter() - check.start, 1)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results))
    print(f"written {out / 'gpu_check.json'} and {out / 'gpu_check.md'}")
    if not tiny:
        shutil.rmtree(runs, ignore_errors=True)


def _device_name(env: dict[str, str]) -> str:
    code = "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout.strip()


if __name__ == "__main__":
    main()
