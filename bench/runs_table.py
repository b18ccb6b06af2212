"""A Markdown table of the `metrics.json` files under one or more run folders.

    python bench/runs_table.py outputs/multiruns/<stamp> [more folders] [--metric test/acc]
"""

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--metric", default="test/acc")
    args = parser.parse_args()
    print(f"| run | overrides | {args.metric} | epochs | wall time |\n|---|---|---|---|---|")
    for folder in args.folders:
        for path in sorted(Path(folder).rglob("metrics.json")):
            s = json.loads(path.read_text())
            value = s["metrics"].get(args.metric)
            overrides = " ".join(o for o in s["overrides"] if not o.startswith(("victim.ckpt_path", "hydra.")))
            print(f"| {path.parent.name} | `{overrides}` | {value:.4f} | {s['epochs']} | "
                  f"{s['wall_time_s'] / 60:.1f} min |")


if __name__ == "__main__":
    main()
