"""Accuracy against oracle queries for black-box reprogramming runs, beside their white-box twin.

Reads each run's TensorBoard scalars (`val/acc` and `train/queries` at the same step) and writes a plot and a JSON
with the curve and the queries each run needed to reach 50, 70, 80 and 90 % of the white-box accuracy. `--spent`
adds queries a run spent before it began (a warm start's substitute, trained on the oracle's labels), and
`--baseline` names the run the others' savings are counted against.

    python bench/black_box_curve.py --runs cold=<zeroth-order run> warm=<warm-started run> --spent warm=20000 \
        --baseline cold --white-box <white-box run> --out docs/black_box_curve_cpu
"""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

FRACTIONS = (0.5, 0.7, 0.8, 0.9)


def scalars(run: Path) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for events in sorted((run / "tensorboard").rglob("events.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, {}).update({e.step: e.value for e in acc.Scalars(tag)})
    return out


def curve(run: Path, spent: int = 0) -> list[dict[str, float]]:
    """(queries, val/acc) at every validation during training. `train/queries` is logged every few steps and a
    step's cost is fixed (batch x query batches), so the queries at a validation are that rate x the steps done.
    Step 0 holds the final metrics written after testing, not a validation."""
    s = scalars(run)
    logged = {step: q for step, q in s.get("train/queries", {}).items() if step > 0}
    last = max(logged)
    per_step = logged[last] / (last + 1)
    return [
        {"queries": spent + per_step * (step + 1), "val_acc": acc}
        for step, acc in sorted(s["val/acc"].items())
        if step > 0
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="name=run_dir of black-box runs")
    parser.add_argument("--white-box", required=True, help="the white-box twin's run dir")
    parser.add_argument("--spent", nargs="*", default=[], help="name=queries spent before the run began")
    parser.add_argument("--baseline", help="the run whose queries the others' savings are counted against")
    parser.add_argument("--out", required=True, help="path without suffix: writes .png and .json")
    args = parser.parse_args()

    white = json.loads((Path(args.white_box) / "metrics.json").read_text())["metrics"]["val/acc_best"]
    spent = {name: int(n) for name, n in (spec.split("=", 1) for spec in args.spent)}
    result = {"white_box_val_acc": white, "runs": {}}
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for spec in args.runs:
        name, run = spec.split("=", 1)
        rows = curve(Path(run), spent.get(name, 0))
        needed = {
            f"{int(f * 100)}%": next((r["queries"] for r in rows if r["val_acc"] >= f * white), None) for f in FRACTIONS
        }
        result["runs"][name] = {
            "run": run,
            "spent_before": spent.get(name, 0),
            "curve": rows,
            "queries_to_reach_fraction_of_white_box": needed,
        }
        ax.plot([r["queries"] / 1e6 for r in rows], [100 * r["val_acc"] for r in rows], marker="o", label=name)
    if args.baseline:
        base = result["runs"][args.baseline]["queries_to_reach_fraction_of_white_box"]
        for run in result["runs"].values():  # None: the baseline, or this run, never got there
            run["queries_saved"] = {
                f: base[f] - n if base[f] is not None and n is not None else None
                for f, n in run["queries_to_reach_fraction_of_white_box"].items()
            }
    ax.axhline(100 * white, color="black", linestyle="--", label=f"white-box ({white:.1%})")
    ax.set(
        xlabel="oracle queries (millions)",
        ylabel="validation accuracy, %",
        ylim=(0, 100),
        title="Black-box reprogramming: accuracy against queries",
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out.with_suffix(".png"), dpi=120)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    print(
        json.dumps(
            {
                k: {key: v[key] for key in ("queries_to_reach_fraction_of_white_box", "queries_saved") if key in v}
                for k, v in result["runs"].items()
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
