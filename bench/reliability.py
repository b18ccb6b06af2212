"""Bad inputs and interruptions, each through the real command line: what the user sees, what the run folder says.

    python bench/reliability.py [--out bench/results/reliability.json]     # ~6 min on 2 CPU cores

Every case runs `train.py`, `python -m reprog.predict` or `python -m reprog.report` as a child process, on
small synthetic files in the real on-disk formats (the tests' writers) and, for MNIST, on copies of the real
`.gz` originals under REPROG_DATA_DIR (../shared/data). A bad input counts as "one line" when the process exits
non-zero with exactly one `error:` line and no traceback. Interruptions are real signals: SIGINT, SIGTERM and
SIGKILL once the first checkpoint exists; "kill -9 at export / at the metrics write" runs train.py with
`os.replace` patched to SIGKILL the process just before it renames that file into place, the worst moment.
Each interrupted run is then resumed from what its folder names, and its test metrics are compared with an
uninterrupted run's.
"""

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import numpy as np  # noqa: E402
from conftest import TINY_RUN, write_cifar_npz  # noqa: E402  (the tests' writers of the real formats)

FIT = [
    *TINY_RUN,
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=20",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=2",
    "data.batch_size=16",
    "scheduler=cosine",
    "callbacks.model_checkpoint.monitor=null",
]
KILL_AT = """import os, runpy, signal, sys
name, nth = sys.argv[1], int(sys.argv[2]); del sys.argv[1:3]; sys.argv[0] = "train.py"
real, seen = os.replace, []
def replace(src, dst):
    if os.path.basename(dst) == name:
        seen.append(dst)
        if len(seen) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    real(src, dst)
os.replace = replace
runpy.run_path("train.py", run_name="__main__")
"""


class Evil:
    def __reduce__(self):
        return os.system, ("touch /tmp/reprog_reliability_pwned",)


def run(args: list[str], env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout)


def outcome(result: subprocess.CompletedProcess) -> tuple[str, str]:
    """("one line" | "handled" | "TRACEBACK" | ..., the line the user reads)."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if "Traceback" in result.stdout + result.stderr:
        return "TRACEBACK", result.stderr.strip().splitlines()[-1][:200]
    if "Could not find" in result.stderr and "Available options" in result.stderr:
        return "Hydra's message", " / ".join(result.stderr.strip().splitlines()[:3])[:200]
    if result.returncode == 0:
        return "handled", (result.stdout.strip().splitlines() or [""])[-1][:200]
    if len(errors) == 1:
        return "one line", errors[0][:200]
    return f"{len(errors)} error lines, exit {result.returncode}", (result.stderr.strip().splitlines() or [""])[-1][
        :200
    ]


def bad_inputs(work: Path, env: dict[str, str], mnist: Path | None) -> list[dict]:
    data = write_cifar_npz(work / "data")
    victim_run = work / "victim_run"
    made = run(
        [
            "train.py",
            *TINY_RUN,
            "trainer.max_steps=3",
            "trainer.limit_val_batches=1",
            "trainer.limit_test_batches=1",
            f"paths.data_dir={data}",
            f"hydra.run.dir={victim_run}",
        ],
        env,
    )
    assert made.returncode == 0, made.stderr[-2000:]
    victim = victim_run / "victim.safetensors"

    def copy_data(name: str, edit) -> Path:
        folder = work / name
        shutil.copytree(data, folder)
        edit(folder / "cifar10")
        return folder

    def npz_edit(split: str, change):
        def edit(folder: Path) -> None:
            with np.load(folder / f"{split}.npz") as f:
                x, y = f["x"], f["y"].copy()
            np.savez(folder / f"{split}.npz", **change(x, y))

        return edit

    files = work / "files"
    files.mkdir()
    (files / "empty.ckpt").touch()
    last = victim_run / "checkpoints" / "last.ckpt"
    (files / "truncated.ckpt").write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    (files / "evil.ckpt").write_bytes(pickle.dumps({"state_dict": Evil(), "loops": {}}))
    edited = files / "edited_victim"
    edited.mkdir()
    shutil.copy(victim, edited / "victim.safetensors")
    meta = json.loads(victim.with_suffix(".json").read_text())
    meta["model"]["arch"] = "resnet56"
    (edited / "victim.json").write_text(json.dumps(meta))

    base = ["train.py", *TINY_RUN, "trainer.max_steps=2", f"paths.data_dir={data}"]
    reprogram = ["experiment=reprogram_mnist", f"victim.ckpt_path={victim}"]
    cases: list[tuple[str, list[str]]] = [
        ("data.batch_size=abc", [*base, "data.batch_size=abc"]),
        ("trainer.max_epochs=-1", [*base, "trainer.max_epochs=-1", "trainer.max_steps=-1"]),
        ("trainer.max_epochs=0", [*base, "trainer.max_epochs=0"]),
        ("optimizer.lr=-1", [*base, "optimizer.lr=-1"]),
        ("optimizer.momentum=2", [*base, "optimizer.momentum=2"]),
        ("program.lam=-1 (reprogramming)", [*base, *reprogram, "program.lam=-1"]),
        (
            "task.attacks.pgd10.steps=0 (attack)",
            [*base, "experiment=attack_pgd", f"victim.ckpt_path={victim}", "task.attacks.pgd10.steps=0"],
        ),
        ("model=resnet9000 (Hydra's own message)", [*base, "model=resnet9000"]),
        ("resume from an empty .ckpt", [*base, f"ckpt_path={files / 'empty.ckpt'}"]),
        ("resume from a truncated .ckpt", [*base, f"ckpt_path={files / 'truncated.ckpt'}"]),
        ("resume from a malicious pickle", [*base, f"ckpt_path={files / 'evil.ckpt'}"]),
        (
            "victim: a malicious pickle",
            [*base, "experiment=reprogram_mnist", f"victim.ckpt_path={files / 'evil.ckpt'}"],
        ),
        ("victim: an edited victim.json", [*base, *reprogram[:1], f"victim.ckpt_path={edited / 'victim.safetensors'}"]),
        ("victim: missing file", [*base, *reprogram[:1], f"victim.ckpt_path={files / 'nothing.safetensors'}"]),
        (
            "truncated test.npz",
            [
                *base,
                f"paths.data_dir={copy_data('cut', lambda f: (f / 'test.npz').write_bytes((f / 'test.npz').read_bytes()[:500]))}",  # noqa: E501
            ],
        ),
        (
            "test labels out of range",
            [*base, f"paths.data_dir={copy_data('labels', npz_edit('test', lambda x, y: {'x': x, 'y': y + 3}))}"],
        ),
        (
            "channel-first train.npz",
            [
                *base,
                f"paths.data_dir={copy_data('nchw', npz_edit('train', lambda x, y: {'x': x.transpose(0, 3, 1, 2), 'y': y}))}",  # noqa: E501
            ],
        ),
    ]
    results = []
    if mnist is not None:  # real originals: torchvision's md5 table must match them
        gz = work / "mnist_gz"
        (gz / "MNIST" / "raw").mkdir(parents=True)
        for f in mnist.glob("*.gz"):
            shutil.copy(f, gz / "MNIST" / "raw" / f.name)
        bad_gz = work / "mnist_bad_gz"
        shutil.copytree(gz, bad_gz)
        labels = bad_gz / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
        blob = bytearray(labels.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        labels.write_bytes(bytes(blob))
        cache = work / "mnist_cache"
        mnist_env = {**env, "REPROG_DATA_DIR": str(gz), "REPROG_CACHE_DIR": str(cache)}
        program_run = work / "program_run"
        made = run(
            [
                *base,
                *reprogram,
                f"paths.data_dir={gz}",
                f"paths.cache_dir={cache}",
                f"hydra.run.dir={program_run}",
                "data.val_size=100",
                "trainer.limit_val_batches=1",
                "trainer.limit_test_batches=1",
            ],
            mnist_env,
        )
        assert made.returncode == 0, made.stderr[-2000:]
        cut = cache / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
        cut.write_bytes(cut.read_bytes()[:1000])  # a half-extracted cache
        results.append(
            case(
                "MNIST cache half-extracted (healed from the .gz)",
                run(
                    [
                        *base,
                        *reprogram,
                        f"paths.data_dir={gz}",
                        f"paths.cache_dir={cache}",
                        "data.val_size=100",
                        "trainer.limit_val_batches=1",
                        "trainer.limit_test_batches=1",
                        f"hydra.run.dir={work / 'healed'}",
                    ],
                    mnist_env,
                ),
            )
        )
        cases.append(
            (
                "resume from another task's .ckpt",
                [*base, *reprogram, f"paths.data_dir={gz}", f"paths.cache_dir={cache}", f"ckpt_path={last}"],
            )
        )
        cases.append(
            (
                "MNIST .gz with one flipped byte",
                [*base, *reprogram, f"paths.data_dir={bad_gz}", f"paths.cache_dir={work / 'cache2'}"],
            )
        )
        program = program_run / "program.safetensors"
        edited_program = work / "edited_program"
        edited_program.mkdir()
        shutil.copy(program, edited_program / "program.safetensors")
        meta = json.loads(program.with_suffix(".json").read_text())
        meta["program"]["placement"]["size"] = 20
        (edited_program / "program.json").write_text(json.dumps(meta))
        predict = ["-m", "reprog.predict", f"victim={victim}", "images=mnist", f"data_dir={gz}", f"cache_dir={cache}"]
        cases += [
            ("predict: an edited program.json", [*predict, f"program={edited_program / 'program.safetensors'}"]),
            ("predict: a malicious pickle as program", [*predict, f"program={files / 'evil.ckpt'}"]),
            ("predict: batch_size=abc", [*predict, f"program={program}", "batch_size=abc"]),
            ("predict: images= a folder", [*predict[:-3], f"program={program}", f"images={files}"]),
        ]
    sweep = work / "sweep"
    for job, text in (
        ("0", json.dumps({"status": "completed", "metrics": {"test/acc": 0.9}})),
        ("1", '{"status": "comp'),
    ):
        (sweep / job / ".hydra").mkdir(parents=True)
        (sweep / job / ".hydra" / "overrides.yaml").write_text(f"- seed={job}\n")
        (sweep / job / "metrics.json").write_text(text)
    cases += [
        ("report: a truncated metrics.json in one job", ["-m", "reprog.report", str(sweep)]),
        ("report: --metrics ''", ["-m", "reprog.report", str(sweep), "--metrics", ""]),
    ]
    for i, (name, args) in enumerate(cases):
        if args[0] == "train.py" and not any(a.startswith("hydra.run.dir=") for a in args):
            args = [*args, f"hydra.run.dir={work / 'runs' / str(i)}"]
        results.append(case(name, run(args, env)))
        print(f"{results[-1]['outcome']:>10} | {name} | {results[-1]['message']}", flush=True)
    assert not Path("/tmp/reprog_reliability_pwned").exists(), "a pickle ran code"
    return results


def case(name: str, result: subprocess.CompletedProcess) -> dict:
    kind, message = outcome(result)
    return {"case": name, "outcome": kind, "exit": result.returncode, "message": message}


def interruptions(work: Path, env: dict[str, str]) -> list[dict]:
    data = write_cifar_npz(work / "data")
    fit = ["train.py", *FIT, f"paths.data_dir={data}"]

    def test_metrics(run_dir: Path) -> dict:
        return {
            k: v
            for k, v in json.loads((run_dir / "metrics.json").read_text()).get("metrics", {}).items()
            if k.startswith("test/")
        }

    reference = work / "reference"
    assert run([*fit, f"hydra.run.dir={reference}"], env).returncode == 0
    expected = test_metrics(reference)
    rows = []
    kill_at = {
        "kill -9 at export": ("victim.safetensors", 1),
        "kill -9 between the export's two renames": ("victim.json", 1),
        "kill -9 at the final metrics write": ("metrics.json", 3),
    }  # running, exports, completed
    for how in ("SIGINT", "SIGTERM", "SIGKILL", *kill_at):
        slug = "".join(c if c.isalnum() else "_" for c in how)
        run_dir = work / slug
        start = time.perf_counter()
        if how.startswith("SIG"):
            child = subprocess.Popen(
                [sys.executable, *fit, f"hydra.run.dir={run_dir}"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
            )  # as a terminal
            while not (run_dir / "checkpoints" / "last.ckpt").is_file() and child.poll() is None:
                time.sleep(0.05)
            child.send_signal(getattr(signal, how))
            _, stderr = child.communicate(timeout=600)
            code = child.returncode
        else:
            target, nth = kill_at[how]
            done = run(["-c", KILL_AT, target, str(nth), *fit[1:], f"hydra.run.dir={run_dir}"], env)
            code, stderr = done.returncode, done.stderr
        summary = json.loads((run_dir / "metrics.json").read_text())
        status = report_status(run_dir, env)
        resume = summary.get("resume") or f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
        resumed_dir = work / f"resumed_{slug}"
        resumed = run([*fit, resume, f"hydra.run.dir={resumed_dir}"], env)
        same = resumed.returncode == 0 and test_metrics(resumed_dir) == expected
        rows.append(
            {
                "interruption": how,
                "exit": code,
                "traceback": "Traceback" in stderr,
                "metrics_json": {k: summary.get(k) for k in ("status", "signal", "resume", "exports") if k in summary},
                "report": status,
                "export": export_state(run_dir, env),
                "temp_files_left": sorted(p.name for p in run_dir.glob(".*.tmp")),
                "resume_reproduced": same,
                "seconds": round(time.perf_counter() - start, 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def export_state(run_dir: Path, env: dict[str, str]) -> str:
    """What a colleague finds: the victim export, whole or absent, and whether it loads."""
    weights, sidecar = run_dir / "victim.safetensors", run_dir / "victim.json"
    if not weights.exists():
        return "absent" + (", victim.json alone" if sidecar.exists() else "")
    loads = (
        run(
            ["-c", "import sys; from reprog.models.export import load_victim; load_victim(sys.argv[1])", str(weights)],
            env,
        ).returncode
        == 0
    )
    return ("weights + json" if sidecar.exists() else "weights alone (metadata in its header)") + (
        ", loads" if loads else ", DOES NOT LOAD"
    )


def report_status(run_dir: Path, env: dict[str, str]) -> str:
    """How `python -m reprog.report` lists the run (a run folder is a sweep of one job)."""
    code = (
        "import sys; from reprog.report import collect; j = collect(sys.argv[1])[0]; print(j.status + ': ' + j.error)"
    )
    return run(["-c", code, str(run_dir)], env).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/reliability.json")
    parser.add_argument("--work", default="outputs/bench/reliability")
    args = parser.parse_args()
    work = ROOT / args.work
    shutil.rmtree(work, ignore_errors=True)
    data_dir = Path(os.environ.get("REPROG_DATA_DIR", ROOT.parent / "shared" / "data"))
    mnist = data_dir / "MNIST" / "raw" if (data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").is_file() else None
    env = {**os.environ, "REPROG_CACHE_DIR": str(work / "cache")}
    inputs = bad_inputs(work / "inputs", env, mnist)
    stops = interruptions(work / "stops", env)
    counts = {kind: sum(r["outcome"] == kind for r in inputs) for kind in dict.fromkeys(r["outcome"] for r in inputs)}
    print(f"\nbad inputs: {len(inputs)} tried: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"bad_inputs": inputs, "interruptions": stops}, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
