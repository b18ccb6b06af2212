"""Render every results table and inline figure in the documentation from the JSON record that holds its figures.

A table lives in a page between two marker comments, naming its record (a path from the repository root) and,
for records that make more than one table, which one:

    <!-- table: docs/transfer_cpu.json -->
    ... generated: the table, then the command that made the record ...
    <!-- /table -->

    python bench/render_docs.py           # rewrite every table and value in README.md and docs/**/*.md
    python bench/render_docs.py --check   # exit 1 and name the pages whose tables or values differ from their records

A figure in prose (or in a hand-made table) is one value of a record, between an inline marker pair that names the
record, the value's key and its format:

    starts the victim at <!-- value: docs/transfer_cpu.json accuracy[4][0] pct -->27.91 %<!-- /value -->

A key is a path into the record: `.name`, `[index]`, `["a key with spaces"]`, or `[field=value]` (the first list
element whose field equals value); `DERIVED` adds computed keys to a record (ranges, minima, differences). A format
is `pct`, `pt` (points, no unit), `x` (a ratio, `×`), `s` (seconds), `f` or `num`, with an optional digit count
(`pct1`, `x3`); a (low, high) pair renders as a range, `9–23 %`.

`tests/test_docs.py` runs the check, so a page cannot drift from its record. Add a record: a function below that
turns it into a markdown table, one entry in `RECORDS` (with the command that made the record, unless the record
holds it), and a marker pair in the page.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"(<!-- table: (?P<path>\S+)(?: (?P<variant>[^>]*?))? -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)
VALUE = re.compile(
    r"(<!-- value: (?P<path>\S+) (?P<key>(?:[^\s\[]|\[[^\]]*\])+)(?: (?P<fmt>\w+))? -->)"
    r"(?P<body>[^\n]*?)(<!-- /value -->)"
)
KEY = re.compile(r'\.?([^.\[\]\s]+)|\["([^"]*)"\]|\[(-?\d+)\]|\[([^\]=]+)=([^\]]*)\]')
FORMAT = re.compile(r"(pct|pt|x|s|f|num)(\d*)")


def pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f} %"


def num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ inline values
def lookup(record: Any, key: str) -> Any:
    """The value at `key` in a record: `a.b[0]["c d"][name=x]` (see the module's docstring)."""
    pos, x = 0, record
    while pos < len(key):
        m = KEY.match(key, pos)
        if not m or m.end() == pos:
            raise KeyError(f"bad key {key!r} at {key[pos:]!r}")
        name, quoted, index, field, value = m.groups()
        if index is not None:
            x = x[int(index)]
        elif field is not None:
            x = next((e for e in x if str(e.get(field)) == value), None)
            if x is None:
                raise KeyError(f"{key!r}: no element with {field}={value}")
        else:
            x = x[quoted if quoted is not None else name]
        pos = m.end()
    return x


def formatted(x: Any, fmt: str | None) -> str:
    """One value as the page shows it; a (low, high) pair as a range with the unit once: `9–23 %`."""
    if isinstance(x, (list, tuple)):
        lo, hi = (formatted(v, fmt) for v in x)
        unit = re.search(r"[^\d.,+-]*$", hi).group(0)
        return f"{lo.removesuffix(unit) if unit and lo.endswith(unit) else lo}–{hi}"
    if fmt is None:
        return str(x)
    m = FORMAT.fullmatch(fmt)
    if not m:
        raise ValueError(f"unknown format {fmt!r}")
    kind, digits = m.group(1), m.group(2)
    d = int(digits) if digits else {"pct": 2, "pt": 1, "x": 2, "s": 0, "f": 2, "num": 0}[kind]
    if kind == "pct":
        return f"{100 * x:.{d}f} %"
    if kind == "pt":
        return f"{100 * x:.{d}f}"
    if kind == "x":
        return f"{x:.{d}f}×"
    if kind == "s":
        return f"{x:,.{d}f} s"
    return f"{x:,.{d}f}"


def span(values: list[float]) -> tuple[float, float]:
    return min(values), max(values)


def art_facts(r: dict) -> dict:
    return {"time_ratio": r["rows"]["art"]["fit_s"] / r["rows"]["ours"]["fit_s"]}


def transfer_facts(r: dict) -> dict:
    """Program transfer between architectures (the substitute left out) and between two seeds of one."""
    names = r["names"]
    arch = [None if n.startswith("substitute") else n.split(" seed")[0] for n in names]
    pairs = [(i, j) for i in range(len(names)) for j in range(len(names)) if i != j and arch[i] and arch[j]]
    return {
        "across_architectures": span([r["accuracy"][i][j] for i, j in pairs if arch[i] != arch[j]]),
        "between_seeds": span([r["accuracy"][i][j] for i, j in pairs if arch[i] == arch[j]]),
    }


def airbench_facts(r: dict) -> dict:
    """Ours against the reference: test-accuracy difference and each one's lossless-over-JPEG gain."""
    return {
        "test_acc_gain": r["ours"]["test_acc"] - r["reference"]["test_acc"],
        "lossless_gain": {
            k: r[k]["lossless_check"]["lossless"] - r[k]["lossless_check"]["jpeg"] for k in ("reference", "ours")
        },
    }


def bank_facts(r: dict) -> dict:
    """The best speed-up of a bank step per victim and batch, low and high across them."""
    best: dict[tuple, float] = {}
    for row in r["rows"]:
        key = (row["model"], row["batch"])
        best[key] = max(best.get(key, 0.0), row["speedup"])
    return {"peak_speedup": span(list(best.values()))}


def program_eot_facts(r: dict) -> dict:
    """Per transform: what EOT training gains under it, and what it costs read digitally (fractions)."""
    by = {x["name"]: x for x in r["rows"]}
    return {
        f"{t}_{k}": v
        for t in ("affine", "photo")
        if t in by
        for k, v in (
            ("gain", by[t]["test_acc"] - by[f"none_under_{t}"]["test_acc"]),
            ("cost", by["none"]["test_acc"] - by[t]["test_acc_untransformed"]),
        )
    }


def query_curve_facts(r: dict) -> dict:
    """Per run of a query-curve record: its last validation accuracy (`final`), that as a fraction of the white-box
    validation accuracy (`of_white_box`), and its difference to every other run's (`ahead[run][other]`, a fraction)."""
    final = {name: run["curve"][-1]["val_acc"] for name, run in r["runs"].items()}
    return {
        "final": final,
        "of_white_box": {name: acc / r["white_box_val_acc"] for name, acc in final.items()},
        "ahead": {name: {other: acc - b for other, b in final.items()} for name, acc in final.items()},
    }


def epoch_seconds(r: dict) -> dict:
    """The victim's training seconds per epoch, low and high (its record holds the cumulative seconds per epoch)."""
    ends = [s for s, _ in r["victim"]["epochs"]]
    return {"victim_epoch_s": span([b - a for a, b in zip([0.0, *ends], ends)])}


DERIVED: dict[str, Callable[[dict], dict]] = {
    "docs/black_box_grid_cpu.json": query_curve_facts,
    "docs/black_box_warm_cpu.json": lambda r: {
        "batch8_of_white_box": r["runs"]["batch 8"]["curve"][-1]["val_acc"] / r["white_box_val_acc"],
        **query_curve_facts(r),
    },
    "docs/bank_throughput_cpu.json": bank_facts,
    "docs/transfer_cpu.json": transfer_facts,
    "docs/bench/suite_cpu.json": lambda r: {"min_ratio": min(x["ratio"] for x in r["results"])},
    "docs/bench/memory_format_cpu.json": lambda r: {"speedup_range": span([x["speedup"] for x in r["results"]])},
    "docs/bench/host_memory_cpu.json": lambda r: {
        "peak_increase": span([s["on"]["peak_mib"] / s["off"]["peak_mib"] - 1 for s in r["summary"].values()])
    },
    "docs/bench/airbench_reference_cpu.json": airbench_facts,
    "docs/bench/time_to_accuracy_pixel_cpu.json": lambda r: {
        "program_last3_gain": r["program"]["epochs"][-1][1] - r["program"]["epochs"][-4][1],
        **epoch_seconds(r),
    },
    "docs/bench/art_patch_cpu.json": art_facts,
    "docs/bench/art_patch_demo_cpu.json": art_facts,
    "docs/bench/art_patch_airbench_cpu.json": art_facts,
    "docs/bench/program_eot_cpu.json": program_eot_facts,
    "docs/bench/program_eot_demo_cpu.json": program_eot_facts,
    "docs/bench/program_eot_airbench_cpu.json": program_eot_facts,
}


def value(path: str, key: str, fmt: str | None, page: Path) -> str:
    """One figure in prose, from its record."""
    if not (ROOT / path).exists():
        raise KeyError(f"{page}: no record {path}")
    record = json.loads((ROOT / path).read_text())
    if path in DERIVED:
        record = {**record, **DERIVED[path](record)}
    try:
        return formatted(lookup(record, key), fmt)
    except (KeyError, IndexError, TypeError) as e:
        raise KeyError(f"{page}: {path} has no value at {key!r} ({e})") from e


# ---------------------------------------------------------------------------------------------------------- renderers
def transfer(r: dict, variant: str | None) -> str:
    names = r["names"]
    rows = [
        [name, *(f"**{pct(a)}**" if own else pct(a) for a, own in zip(accs, owns))]
        for name, accs, owns in zip(names, r["accuracy"], r["own"])
    ]
    return table(["program of \\ applied to", *names], rows)


def query_curve(r: dict, variant: str | None) -> str:
    """Validation accuracy against oracle queries, one row a run (black_box_curve.py's record); `milestones`: the
    queries each run needed to reach a fraction of the white-box accuracy."""
    if variant == "milestones":
        return query_milestones(r, variant)
    spent = {name: 0 for name in r["runs"]}  # the curves count the queries spent before already
    queries = sorted({p["queries"] + spent[name] for name, run in r["runs"].items() for p in run["curve"]})
    longest = max(len(run["curve"]) for run in r["runs"].values())
    head = f"White-box validation accuracy: {pct(r['white_box_val_acc'])}"
    if len(queries) == longest:  # every run validated at the same query counts: one column each
        rows = []
        for name, run in r["runs"].items():
            at = {p["queries"] + spent[name]: p["val_acc"] for p in run["curve"]}
            rows.append([name, *(pct(at[q]) if q in at else "" for q in queries)])
        return head + ".\n\n" + table(["run \\ queries", *(num(q) for q in queries)], rows)
    rows = [
        [name, *(f"{pct(p['val_acc'])} ({num(p['queries'] + spent[name])})" for p in run["curve"])]
        for name, run in r["runs"].items()
    ]
    return (
        head
        + "; each cell: validation accuracy (queries so far, those spent before included).\n\n"
        + table(["run", *(f"validation {i + 1}" for i in range(longest))], rows)
    )


def query_milestones(r: dict, variant: str | None) -> str:
    """Queries each run needed to reach a fraction of the white-box accuracy (the first validation at or above)."""
    fractions = list(next(iter(r["runs"].values()))["queries_to_reach_fraction_of_white_box"])
    rows = [
        [
            name,
            run.get("spent_before", 0) and num(run["spent_before"]) or "—",
            *(num(run["queries_to_reach_fraction_of_white_box"][f]) for f in fractions),
        ]
        for name, run in r["runs"].items()
    ]
    return table(["run", "queries spent before", *(f"queries to {f} of white-box" for f in fractions)], rows)


def detection(r: dict, variant: str | None) -> str:
    rows = [
        [
            name,
            num(row["queries"]),
            f"{num(row['flagged'])} ({pct(row['flag_rate'])})",
            "—" if row["first_flag"] is None else num(row["first_flag"]),
        ]
        for name, row in r["rows"].items()
    ]
    return (
        f"k = {r['k']}, target false-positive rate {pct(r['fpr_target'], 1)}, threshold {r['threshold']:.2f}; "
        f"{r['seconds']:.0f} s.\n\n" + table(["traffic", "queries", "flagged", "queries before the first flag"], rows)
    )


def bank_throughput(r: dict, variant: str | None) -> str:
    ks = sorted({row["programs"] for row in r["rows"]})
    groups: dict[tuple, dict[int, dict]] = {}
    for row in r["rows"]:
        groups.setdefault((row["model"], row["batch"]), {})[row["programs"]] = row
    rows = [
        [
            f"{m}, {b}",
            f"{g[1]['images_per_s_per_program']:.0f} images/s",
            *(f"{g[k]['speedup']:.2f}×" if k in g else "" for k in ks if k != 1),
        ]
        for (m, b), g in groups.items()
    ]
    return table(["victim, batch", "one program alone", *(f"K = {k}" for k in ks if k != 1)], rows)


def bank_study(r: dict, variant: str | None) -> str:
    if variant == "jobs":
        jobs: dict[int, dict[float, dict]] = {}
        for overrides, res in r["jobs"].items():
            kv = dict(o.split("=", 1) for o in overrides.split())
            jobs.setdefault(int(kv["data.digit_size"]), {})[float(kv["optimizer.lr"])] = res
        lrs = sorted({lr for j in jobs.values() for lr in j})
        rows = [
            [
                f"{size} px",
                *(" / ".join(f"{100 * j[lr][k]['test/acc']:.2f}" for k in ("basic", "bank_4096")) + " %" for lr in lrs),
            ]
            for size, j in sorted(jobs.items(), reverse=True)
        ]
        return table(["digit size", *(f"lr {lr:g}: basic / bank" for lr in lrs)], rows)
    rows = [["basic (jobs one by one)", f"{r['basic_wall_s']:.1f} s", "1×", "—"]]
    for cap in ("4096", "512"):
        key = f"bank_{cap}"
        rows.append(
            [
                f"`hydra/launcher=bank hydra.launcher.max_images={cap}`",
                f"{r[key + '_wall_s']:.1f} s",
                f"{r['speedup'][key]:.2f}×",
                f"{r['max_test_acc_diff'][key]:.4f}",
            ]
        )
    return f"Each job: `{' '.join(r['budget'])}`.\n\n" + table(
        ["launcher", "total wall time", "speed-up", "largest test-accuracy difference to the basic twin"], rows
    )


def memory_format(r: dict, variant: str | None) -> str:
    keep = variant.split(",") if variant else None
    rows = [
        [
            x["model"],
            x["step"],
            f"{x['median']['nchw']:.0f}",
            f"{x['median']['channels_last']:.0f}",
            f"**{x['speedup']:.2f}×**",
        ]
        for x in r["results"]
        if keep is None or x["model"] in keep
    ]
    return table(["model", "step", "NCHW images/s", "channels_last images/s", "speed-up"], rows)


def host_memory(r: dict, variant: str | None) -> str:
    rows = []
    for name, s in r["summary"].items():
        rows.append(
            [
                f"{name}: `{' '.join(r['cases'][name])}`",
                f"{s['off']['train_s']:.2f} / {s['on']['train_s']:.2f}",
                f"**{s['speedup']:.2f}×**",
                f"{num(s['off']['faults'])} / {num(s['on']['faults'])}",
                f"{s['off']['peak_mib']:.0f} / {s['on']['peak_mib']:.0f}",
            ]
        )
    return table(
        [
            "run (through `train.py`)",
            "training s (off / on)",
            "speed-up",
            "page faults (off / on)",
            "peak resident MiB (off / on)",
        ],
        rows,
    )


LOOPS = {
    "victim": "victim training",
    "victim_dataloader": "victim training, DataLoader path",
    "program": "program optimization",
    "attack": "PGD-10 attack",
}


def suite(r: dict, variant: str | None) -> str:
    rows = [
        [
            LOOPS.get(x["loop"], x["loop"]),
            x["model"],
            f"{x['median']['lightning']:.0f}",
            f"{x['median']['plain']:.0f}",
            f"**{x['ratio']:.3f}**",
            f"{x['peak_mib']['lightning']:.0f} / {x['peak_mib']['plain']:.0f}",
        ]
        for x in r["results"]
    ]
    out = table(
        ["loop", "model", "Lightning images/s", "plain images/s", "Lightning / plain", "peak MiB (Lightning / plain)"],
        rows,
    )
    if r.get("program_over_training"):
        out += (
            "\n\nProgram step / training step of the same network (Lightning paths): "
            + ", ".join(f"{m} **{v:.2f}×**" for m, v in r["program_over_training"].items())
            + "."
        )
    return out


def attack_throughput(r: dict, variant: str | None) -> str:
    rows = [[name, f"{r['median'][name]:.0f}", f"{r['ratio'][name]:.2f}×"] for name in r["median"]]
    return f"Batch {r['batch']}, {r['threads']} threads.\n\n" + table(["PGD-10", "images/s (median)", "ratio"], rows)


def airbench_reference(r: dict, variant: str | None) -> str:
    rows = []
    for name, label in (
        ("reference", "airbench94, bespoke script (`airbench==0.1.8`)"),
        ("ours", "ours, Lightning + Hydra"),
    ):
        x = r[name]
        t = f"{x['train_s']:,.0f} s" + (f" (**{r['time_ratio_ours_over_reference']:.2f}×**)" if name == "ours" else "")
        rows.append(
            [label, t, pct(x["test_acc"]), pct(x["lossless_check"]["lossless"]), pct(x["lossless_check"]["jpeg"])]
        )
    n = r["reference"]["lossless_check"]["images"]
    return table(
        ["victim", "training time", "JPEG test set (10,000)", f"lossless subset ({n:,})", f"the same {n:,}, JPEG"], rows
    )


def time_to_accuracy(r: dict, variant: str | None) -> str:
    rows = []
    for part in ("victim", "program"):
        x = r[part]
        epochs = x["epochs"]
        rows.append(
            [
                f"`{x['command']}`",
                len(epochs),
                f"{epochs[-1][0]:,.0f} s",
                ", ".join(f"{100 * acc:.1f}" for _, acc in epochs) + " %",
                f"**{pct(x['test_acc'])}**",
            ]
        )
    return table(["run", "epochs", "training time", "val acc per epoch", "test acc"], rows)


def imagenet_step(r: dict, variant: str | None) -> str:
    """One program step through EfficientNet-Lite0 per canvas and lever (bench/imagenet_step.py's record)."""
    rows = [
        [
            f"{x['canvas']} px",
            x["lever"],
            x["threads"],
            f"**{x['median_images_per_s']}**",
            x["gflops_per_image"],
            pct(x.get("fraction_of_peak"), 1),
            x["mnist_epoch_min"],
        ]
        for x in r["results"]
    ]
    return table(
        [
            "canvas",
            "lever",
            "threads",
            "images/s (median)",
            "GFLOP per image (step)",
            "of the cores' peak",
            "minutes per MNIST epoch",
        ],
        rows,
    )


def imagenet_protocol(r: dict, variant: str | None) -> str:
    """The paper's protocol through the ImageNet victim, a row a run (bench/imagenet_curve.py's record); `reads`:
    which ImageNet classes each target class reads, by name."""
    if variant == "commands":
        return table(["row", "command"], [[x["name"], f"`{x['command']}`"] for x in r["rows"]])
    if variant == "reads":
        return table(
            ["row", "target class → the ImageNet class(es) it reads"],
            [
                [x["name"], "; ".join(f"{t['target']} → {', '.join(t['names'])}" for t in x["reads"])]
                for x in r["rows"]
                if x.get("reads")
            ],
        )
    rows = [
        [
            x["name"],
            f"{x['canvas']} px",
            f"{x['image_size']} px",
            x["program"],
            x["mapping"],
            "pretrained" if x["victim_weights"] else "**untrained**",
            num(x["images_seen"]),
            num(x["train_s"]),
            x["images_per_s"],
            f"**{pct(x['test_acc'])}**",
            " → ".join(pct(p["val_acc"], 1) for p in x["curve"]),
        ]
        for x in r["rows"]
    ]
    return table(
        [
            "row",
            "canvas",
            "target image",
            "program",
            "map",
            "victim",
            "images seen",
            "training s",
            "images/s",
            "test accuracy",
            "validation accuracy at each validation",
        ],
        rows,
    )


def reliability(r: dict, variant: str | None) -> str:
    def cut(s: str, n: int = 150) -> str:
        s = re.sub(r"/\S*/(?=[^/\s]+(\s|$))", "…/", s.replace("|", "/").replace("\n", " / "))
        return s if len(s) <= n else s[:n] + "…"

    if variant == "interruptions":
        rows = [
            [
                x["interruption"],
                x["exit"],
                x["metrics_json"].get("status", ""),
                cut(x["report"].split(";")[0]),
                x["export"] + ("; a `.tmp` file is left" if x["temp_files_left"] else ""),
                "yes" if x["resume_reproduced"] else "**no**",
            ]
            for x in r["interruptions"]
        ]
        return table(
            [
                "interruption",
                "exit",
                "`metrics.json` says",
                "`python -m reprog.report` lists",
                "export",
                "resumed: same test metrics",
            ],
            rows,
        )
    counts: dict[str, int] = {}
    for x in r["bad_inputs"]:
        counts[x["outcome"]] = counts.get(x["outcome"], 0) + 1
    summary = f"**{len(r['bad_inputs'])} bad inputs: " + ", ".join(f"{n} {k}" for k, n in counts.items()) + ".**"
    rows = [[x["case"], x["outcome"], f"`{cut(x['message'])}`"] for x in r["bad_inputs"]]
    return summary + "\n\n" + table(["bad input", "outcome", "what the user reads"], rows)


def patch_size(r: dict, variant: str | None) -> str:
    """Targeted patch success against its size (bench/patch_size.py's record), one row a size; `commands`: each run."""
    rows = sorted(r["rows"], key=lambda x: x["size_percent"])
    if variant == "commands":
        return table(["size", "command"], [[f"{x['size_percent']:g} %", f"`{x['command']}`"] for x in rows])
    body = table(
        ["patch size (of the area)", "side (exact area)", "success (targeted)", "fit steps", "run wall time"],
        [
            [
                f"{x['size_percent']:g} %",
                f"{x['side_px']} px ({x['area_percent']:g} %)",
                f"**{pct(x['success'])}**",
                x["fit_steps"],
                f"{x['wall_s']:.0f} s",
            ]
            for x in rows
        ],
    )
    total = "" if r.get("total_wall_s") is None else f", {r['total_wall_s'] / 60:.1f} min in all"
    return f"{r['note'][:1].upper()}{r['note'][1:]}; {r['device']}{total}.\n\n{body}"


def runs(r: dict, variant: str | None) -> str:
    """bench/runs.py's record: a row a run, its chosen metrics, epochs and training time; `commands`: each run's."""
    if variant == "commands":
        return table(["run", "command"], [[x["name"], f"`{x['command']}`"] for x in r["runs"]])
    trained = any(x["train_s"] is not None for x in r["runs"])  # an attack run trains nothing: no such columns
    header = ["run", *(c[0] for c in r["columns"]), *(["epochs", "training"] if trained else [])]
    rows = [
        [
            x["name"],
            *("—" if x["metrics"].get(m) is None else formatted(x["metrics"][m], fmt) for _, m, fmt in r["columns"]),
            *([x["epochs"], "—" if x["train_s"] is None else f"{x['train_s']:,.0f} s"] if trained else []),
        ]
        for x in r["runs"]
    ]
    note = f"{r['note'][:1].upper()}{r['note'][1:]}; " if r.get("note") else ""
    return f"{note}{r['device']}.\n\n{table(header, rows)}"


def program_eot(r: dict, variant: str | None) -> str:
    """The MNIST program's test accuracy, trained with or without EOT, scored digitally and under each transform
    (bench/program_eot.py's record); `commands`: each run."""
    if variant == "commands":
        return table(["run", "command"], [[x["name"], f"`{x['command']}`"] for x in r["rows"]])
    by = {x["name"]: x for x in r["rows"]}

    def acc(name: str, key: str = "test_acc") -> str:
        return pct(by[name][key]) if name in by and by[name].get(key) is not None else "—"

    rows = [
        [
            "without EOT (`transform=none`)",
            acc("none"),
            acc("none_under_affine"),
            acc("none_under_photo"),
            by.get("none"),
        ]
    ]
    for t in ("affine", "photo"):  # bold: the transform it was trained through
        cells = {u: f"**{acc(t)}**" if u == t else acc(f"{t}_under_{u}") for u in ("affine", "photo")}
        rows.append([f"EOT under `{t}`", acc(t, "test_acc_untransformed"), cells["affine"], cells["photo"], by.get(t)])
    rows = [[*row[:4], "—" if row[4] is None else f"{row[4]['train_s']:.0f} s"] for row in rows]
    out = table(["program trained", "test acc, digital", "under `affine`", "under `photo`", "training time"], rows)
    if r.get("then"):
        out += "\n\nThe runs not made by the command below were added by " + "; ".join(f"`{c}`" for c in r["then"])
    return out


def art_patch(r: dict, variant: str | None) -> str:
    """Our patch beside ART's AdversarialPatchPyTorch, same victim, images, size and budget (bench/art_patch.py)."""
    s = r["settings"]
    head = (
        f"{s['size']:g} % square patch ({r['side_px']} px), target class {s['target']}, {s['epochs']} epochs on "
        f"{s['fit_images']:,} training images (Adam, lr {s['lr']:g}, batch {s['batch_size']}), scored on "
        f"{s['test_images']} test images ({r['rows']['ours']['counted_images']} of another class that the victim "
        f"gets right); {r['device']}, {r['threads']} threads."
    )
    rows = [
        [
            "ours (`reprog.attacks.patch`)" if name == "ours" else f"ART {r['art_version']} `AdversarialPatchPyTorch`",
            f"{x['fit_s']:.0f} s",
            f"**{pct(x['success'])}**",
            pct(x["success_art_placements"]) if "success_art_placements" in x else "—",
        ]
        for name, x in r["rows"].items()
    ]
    return (
        head
        + "\n\n"
        + table(["patch", "learning time", "success, the same seeded placements", "success, ART's placements"], rows)
    )


def patch_imagenet(r: dict, variant: str | None) -> str:
    """The patch through the ImageNet victim against its size, beside a random patch (bench/patch_imagenet.py)."""
    s = r["settings"]
    head = (
        f"{s['canvas']}-px scenes; each patch learns for {s['epochs']} epochs on {s['fit_images']:,} training images "
        f"(Adam, lr {s['lr']:g}, batch {s['batch_size']}), scored on {s['test_images']} test images at seeded random "
        f"placements; the target was the victim's answer for {pct(r['target_before'])} of them before; "
        f"{r['device']}, {r['threads']} threads."
    )
    rows = [
        [
            f"{x['size_percent']:g} %",
            f"{x['side_px']} px",
            f"**{pct(x['patch']['success'])}**",
            f"{pct(x['random_patch']['success'])} (changes {pct(x['random_patch']['changed'])})",
            pct(x["patch"]["changed"]),
            x["fit_steps"],
            f"{x['fit_s']:.0f} s ({x['images_per_s']:.0f} images/s)",
        ]
        for x in sorted(r["rows"], key=lambda x: x["size_percent"])
    ]
    header = ["patch size (of the area)", "side", "success (targeted)", "random patch", "answers it changes"]
    return head + "\n\n" + table([*header, "fit steps", "learning time"], rows)


# ------------------------------------------------------------------------------------------ records and their commands
V = "outputs/i19/victim/victim.safetensors"
R = "outputs/i19"
RECORDS: dict[str, tuple[Callable[[dict, str | None], str], str | None]] = {
    "docs/transfer_cpu.json": (
        transfer,
        f"python -m reprog.transfer programs=[{R}/wb1/program.safetensors,{R}/prog_r20s1/program.safetensors,"
        f"{R}/prog_r18/program.safetensors,{R}/prog_airbench/program.safetensors,{R}/subprog/program.safetensors] "
        f"victims=[{R}/victim/victim.safetensors,{R}/r20s1/victim.safetensors,{R}/r18/victim.safetensors,"
        f"{R}/airbench/victim.safetensors,{R}/substitute/substitute_eps8.safetensors] "
        '"names=[resnet20 seed 0,resnet20 seed 1,resnet18,airbench,substitute of seed 0]" out=docs/transfer_cpu',
    ),
    "docs/black_box_grid_cpu.json": (
        query_curve,
        'python bench/black_box_curve.py --runs "full, q 10=<run>" "grid 8, q 10=<run>" "grid 4, q 10=<run>" '
        '"SPSA-GC grid 8, q 5=<run>" "label oracle, grid 8=<run>" "grid 8, 2 epochs=<run>" '
        "--white-box <white-box run> --out docs/black_box_grid_cpu",
    ),
    "docs/black_box_warm_cpu.json": (
        query_curve,
        'python bench/black_box_curve.py --runs "batch 128=<run>" "batch 32=<run>" "batch 8=<run>" '
        '"warm start, batch 32=<run>" "warm start, batch 32, lr 0.02=<run>" --spent "warm start, batch 32=20000" '
        '"warm start, batch 32, lr 0.02=20000" --baseline "batch 32" --white-box <white-box run> '
        "--out docs/black_box_warm_cpu",
    ),
    "docs/detection_cpu.json": (detection, f"python bench/detection.py --victim {V}"),
    "docs/bank_throughput_cpu.json": (
        bank_throughput,
        "python bench/bank.py throughput --repeats 3 --out docs/bank_throughput_cpu.json",
    ),
    "docs/bank_study_cpu.json": (
        bank_study,
        f"python bench/bank.py study --victim {V} --sweeps outputs/i20/study --out docs/bank_study_cpu.json",
    ),
    "docs/bench/memory_format_cpu.json": (memory_format, "python bench/memory_format.py"),
    "docs/bench/memory_format_airbench_cpu.json": (memory_format, "python bench/memory_format.py --models airbench"),
    "docs/bench/host_memory_cpu.json": (host_memory, "python bench/host_memory.py"),
    "docs/bench/suite_cpu.json": (suite, "python bench/suite.py --batch 128 --steps 10 --attack-steps 3"),
    "docs/bench/suite_data_path_cpu.json": (
        suite,
        "python bench/suite.py --loops victim victim_dataloader --models resnet20 --batch 128 --steps 20",
    ),
    "docs/bench/attack_throughput_cpu.json": (
        attack_throughput,
        "python bench/attack_throughput.py --victim outputs/runs/victim_cifar10_cpu/victim.safetensors "
        "--repeats 3 --calls 2",
    ),
    "docs/bench/airbench_reference_cpu.json": (airbench_reference, "python bench/airbench_reference.py"),
    "docs/bench/time_to_accuracy_cpu.json": (
        time_to_accuracy,
        "python bench/time_to_accuracy.py --program-args trainer.max_epochs=3",
    ),
    "docs/bench/time_to_accuracy_scale_cpu.json": (
        time_to_accuracy,
        "python bench/time_to_accuracy.py --runs <that folder> --reuse-victim --program reprogram_mnist_scale "
        "--program-args trainer.max_epochs=3 program.scale=scalar scheduler=epoch_decay",
    ),
    "docs/bench/time_to_accuracy_pixel_cpu.json": (
        time_to_accuracy,
        "python bench/time_to_accuracy.py --runs <that folder> --reuse-victim --program reprogram_mnist_scale "
        "--program-args trainer.max_epochs=10",
    ),
    "docs/bench/imagenet_step_cpu.json": (imagenet_step, None),
    "docs/imagenet_protocol_cpu.json": (imagenet_protocol, None),
    "docs/bench/reliability_cpu.json": (reliability, "python bench/reliability.py"),
    "docs/bench/patch_size_cpu.json": (patch_size, None),
    "docs/bench/patch_size_default_cpu.json": (patch_size, None),
    "docs/bench/patch_size_demo_cpu.json": (patch_size, None),
    "docs/bench/patch_lr02_cpu.json": (patch_size, None),
    "docs/bench/patch_lr001_cpu.json": (patch_size, None),
    "docs/bench/program_eot_cpu.json": (program_eot, None),
    "docs/bench/program_eot_demo_cpu.json": (program_eot, None),
    "docs/bench/art_patch_cpu.json": (art_patch, None),
    "docs/bench/art_patch_demo_cpu.json": (art_patch, None),
    "docs/bench/art_patch_airbench_cpu.json": (art_patch, None),
    "docs/bench/patch_size_airbench_cpu.json": (patch_size, None),
    "docs/bench/program_eot_airbench_cpu.json": (program_eot, None),
    "docs/bench/patch_imagenet_cpu.json": (patch_imagenet, None),
    "docs/bench/patch_imagenet_long_cpu.json": (patch_imagenet, None),
    "docs/bench/patch_imagenet_10_cpu.json": (patch_imagenet, None),
    "docs/bench/patch_imagenet_224_cpu.json": (patch_imagenet, None),
    "docs/bench/patch_imagenet_224_small_cpu.json": (patch_imagenet, None),
}


def generic(record: dict) -> bool:
    """A record made by bench/runs.py, which carries its own columns and command."""
    return {"columns", "runs"} <= record.keys()


def known(path: str) -> bool:
    """A record a page may name: one with a renderer here, or one of bench/runs.py's."""
    return (ROOT / path).exists() and (path in RECORDS or generic(json.loads((ROOT / path).read_text())))


def render(path: str, variant: str | None, page: Path) -> str:
    """The generated body for one marker: the table, the record it came from and the command that made it."""
    record = json.loads((ROOT / path).read_text())
    if path in RECORDS:
        fn, command = RECORDS[path]
    elif generic(record):
        fn, command = runs, None
    else:
        raise KeyError(f"{page}: no renderer for {path}; add it to RECORDS in bench/render_docs.py")
    link = os.path.relpath(ROOT / path, page.parent)
    made_by = command or record.get("command")
    out = fn(record, variant.strip() if variant else None)
    out += f"\n\nRecord: [`{path}`]({link})"
    if made_by:
        out += f"; made by `{made_by}`"
    return out + "\n"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def rendered(page: Path) -> str:
    text = page.read_text()
    text = MARKER.sub(
        lambda m: m.group(1) + "\n" + render(m.group("path"), m.group("variant"), page) + "\n" + m.group(5), text
    )
    return VALUE.sub(
        lambda m: m.group(1) + value(m.group("path"), m.group("key"), m.group("fmt"), page) + m.group(6), text
    )


def stale() -> list[Path]:
    """Pages whose generated tables differ from what their records render now."""
    return [p for p in pages() if p.exists() and rendered(p) != p.read_text()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page is out of date")
    args = parser.parse_args(argv)
    out_of_date = stale()
    if args.check:
        for p in out_of_date:
            print(f"out of date: {p.relative_to(ROOT)} (run python bench/render_docs.py)")
        return 1 if out_of_date else 0
    for p in out_of_date:
        p.write_text(rendered(p))
        print(f"rendered {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
