"""The documentation stays true: its tables are what their records render now, and every `python train.py` command
in README.md and docs/ composes (Hydra's compose API, nothing is run)."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from conftest import AUTOATTACK_SMOKE, ROOT, bench_script, compose_train, write_cifar_npz, write_mnist
from hydra import compose

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
DUMMY = "outputs/docs_check/dummy"
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]*python train\.py[^`\n]*)`")
ASSIGN = re.compile(r"""(?:^|;)\s*([A-Z][A-Z0-9_]*)=("[^"]*"|'[^']*'|[^\s;]*)""")


def shell_lines(block: str) -> list[str]:
    """A code block's lines with `\\`-continuations joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [re.sub(r"(^|\s)#.*$", "", line) for line in joined.splitlines()]


def extract(page: Path) -> list[tuple[str, str]]:
    """(where, command) for every `python train.py` command on a page, shell variables of its blocks expanded."""
    text = page.read_text()
    found: list[tuple[str, str]] = []
    env: dict[str, str] = {}
    spans: list[tuple[int, str]] = []
    for m in FENCE.finditer(text):
        spans += [(m.start(), line) for line in shell_lines(m.group(1))]
    outside = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in INLINE.finditer(outside):
        spans.append((m.start(), m.group(1)))
    for m in re.finditer(r'`(C|V|BB|R)=("[^"`]*"|[^`\s]*)`', outside):  # variables set in prose (`C="..."`)
        spans.append((m.start(), m.group(0).strip("`")))
    for pos, line in sorted(spans, key=lambda s: s[0]):
        line = re.sub(r"<[^<>]*>", "dummy", line)  # placeholders: <run>, <victim run>
        for name, value in ASSIGN.findall(line.split("python", 1)[0]):
            env[name] = value.strip("\"'")
        for cmd in re.findall(r"python train\.py([^;|&]*)", line):
            cmd = re.sub(r"\$\{?([A-Z][A-Z0-9_]*)\}?", lambda v: env.get(v.group(1), DUMMY), cmd)
            found.append((f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, pos) + 1}", cmd.strip()))
    return found


def first_of_sweep(value: str) -> str:
    """`28,20,14` -> `28`; `range(6,29,2)` -> `6`; lists, dicts and quoted commas are one value."""
    if m := re.fullmatch(r"range\((-?\d+).*\)", value):
        return m.group(1)
    depth = 0
    for i, ch in enumerate(value):
        depth += ch in "[{(" and 1 or (-1 if ch in "]})" else 0)
        if ch == "," and depth == 0:
            return value[:i]
    return value


def overrides(command: str) -> tuple[list[str], bool]:
    text = re.sub(r"<[^<>]*>", "dummy", command)
    tokens = [t for t in shlex.split(text) if t not in ("...", "…")]
    multirun = "-m" in tokens or "--multirun" in tokens
    out = []
    for t in tokens:
        if t.startswith("-"):
            continue  # -m, --cfg job, ...
        if "=" not in t and not t.startswith("~"):
            continue  # `--cfg job`'s job
        key, _, value = t.partition("=")
        value = "dummy" if value in ("...", "…") else value
        out.append(f"{key}={first_of_sweep(value) if multirun else value}" if "=" in t else t)
    return out, multirun


COMMANDS = sorted({c for page in PAGES if page.exists() for c in extract(page)})


def test_commands_are_found():
    assert len(COMMANDS) > 50
    assert any("experiment=reprogram_mnist_scale" in c for _, c in COMMANDS)


@pytest.mark.parametrize("command", [c for _, c in COMMANDS], ids=[w for w, _ in COMMANDS])
def test_command_composes(command, hydra_once):
    args, _ = overrides(command)
    try:
        compose("train.yaml", overrides=args)
    except Exception as e:  # noqa: BLE001 - the message is the point
        pytest.fail(f"`python train.py {command}` does not compose ({args}): {type(e).__name__}: {e}")


def test_sweep_values_split():
    assert overrides("-m data.digit_size=28,20 seed=range(0,3) task.eps_255='[1,2]' x={a:1,b:2}")[0] == [
        "data.digit_size=28",
        "seed=0",
        "task.eps_255=[1,2]",
        "x={a:1,b:2}",
    ]
    assert overrides("victim.ckpt_path=<victim run>/victim.safetensors ...")[0] == [
        "victim.ckpt_path=dummy/victim.safetensors"
    ]


def test_tables_match_their_records():
    render_docs = bench_script("render_docs")
    stale = [str(p.relative_to(ROOT)) for p in render_docs.stale()]
    assert not stale, f"tables or values out of date in {stale}: run python bench/render_docs.py"


def test_every_value_names_a_known_record():
    """Each inline figure (`<!-- value: record key format -->...<!-- /value -->`) resolves in its record."""
    render_docs = bench_script("render_docs")
    values = [(p, m) for p in PAGES if p.exists() for m in render_docs.VALUE.finditer(p.read_text())]
    assert len(values) >= 60
    for page, m in values:
        assert render_docs.known(m.group("path")), f"{page}: {m.group(0)}"
        assert m.group("body") == render_docs.value(m.group("path"), m.group("key"), m.group("fmt"), page), (
            f"{page}: {m.group(0)}"
        )


def test_value_keys_and_formats():
    render_docs = bench_script("render_docs")
    record = {"rows": [{"name": "a", "acc": 0.5}, {"name": "b", "acc": 0.91924}], "m": {"x y": [1.2345, 12345.6]}}
    assert render_docs.lookup(record, "rows[name=b].acc") == 0.91924
    assert render_docs.lookup(record, 'm["x y"][1]') == 12345.6
    assert render_docs.formatted(0.91924, "pct") == "91.92 %"
    assert render_docs.formatted(0.91924, "pct1") == "91.9 %"
    assert render_docs.formatted(0.0041, "pt1") == "0.4"
    assert render_docs.formatted(1.6708, "x2") == "1.67×"
    assert render_docs.formatted(139.88, "s") == "140 s"
    assert render_docs.formatted(131008.0, "num") == "131,008"
    assert render_docs.formatted((0.091, 0.2293), "pct0") == "9–23 %"
    assert render_docs.formatted((1.18, 1.33), "x1") == "1.2–1.3×"
    with pytest.raises(KeyError):
        render_docs.lookup(record, "rows[name=c].acc")


def test_a_run_directory_becomes_a_record_and_a_table(tmp_path):
    """bench/runs.py reads what a finished run leaves (metrics.json, .hydra/hydra.yaml) into a record that renders."""
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    overrides = {"hydra": ["hydra.run.dir=outputs/x", "hydra.mode=RUN"], "task": ["experiment=attack_eot", "a=1"]}
    (run / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": overrides}}))
    scores = {"test/acc": 0.9123, "time/train_s": 7}
    metrics = {"status": "completed", "epochs": 2, "wall_time_s": 9.5, "metrics": scores}
    (run / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "rec.json"
    bench_script("runs").main([f"eot={run}", "--out", str(out), "--what", "w", "--column", "accuracy=test/acc:pct"])
    record = json.loads(out.read_text())
    assert record["runs"][0]["command"] == "python train.py experiment=attack_eot a=1 hydra.run.dir=outputs/x"
    render_docs = bench_script("render_docs")
    assert render_docs.generic(record)
    assert "| eot | 91.23 % | 2 | 7 s |" in render_docs.runs(record, None)
    assert "`python train.py experiment=attack_eot a=1 hydra.run.dir=outputs/x`" in render_docs.runs(record, "commands")


def test_every_table_names_a_known_record():
    render_docs = bench_script("render_docs")
    markers = [(p, m.group("path")) for p in PAGES if p.exists() for m in render_docs.MARKER.finditer(p.read_text())]
    assert len(markers) >= 15
    for page, path in markers:
        assert render_docs.known(path), f"{page}: {path}"


def nav_pages(node) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [p for v in node.values() for p in nav_pages(v)]
    return [p for v in node for p in nav_pages(v)]


def test_nav_pages_exist():
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python/name:", ""))
    pages = [p for p in nav_pages(config["nav"]) if not p.startswith("http")]
    missing = [p for p in pages if not (ROOT / "docs" / p).exists()]
    assert not missing
    assert {"imagenet.md", "slurm.md"} <= set(pages)


def test_readme_is_short_and_keeps_the_imagenet_row():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    assert sum("[ImageNet victims](docs/imagenet.md)" in line and line.startswith("| MNIST") for line in lines) == 1
    # the headline rows whose figures have records show them from the records: no percentage typed by hand there
    # (a paper's figure, `~97 %`, is a citation, not a result)
    render_docs = bench_script("render_docs")
    rows = [
        line for line in lines if line.startswith("| ") and ("another victim" in line or "ImageNet victims" in line)
    ]
    assert len(rows) == 2
    for row in rows:
        assert render_docs.VALUE.search(row), row
        typed = re.findall(r"(?<!~)\b\d+(?:\.\d+)? %", render_docs.VALUE.sub("", row))
        assert not typed, f"typed by hand in README's headline row: {typed} in {row}"
    for picture in re.findall(r"\]\((docs/[^)]+\.png)\)", "\n".join(lines)):
        assert (ROOT / picture).exists(), picture


# Figures quoted from papers and other projects: citations, not results of ours, so they stay typed.
CITED = {
    "43.2 %",  # Wong, Rice and Kolter 2020 ("Fast is better than free"): FGSM-RS ResNet-18, 15 epochs, robust accuracy
    "94.0 %",  # Jordan 2024, airbench94: its published CIFAR-10 test accuracy
    "99.9 %",  # Elsayed, Goodfellow and Sohl-Dickstein 2018: counting squares through ImageNet victims
    "96.81 %",  # rajatvd/AdversarialReprogramming: its ResNet-18 figure as docs/imagenet.md quotes it
}
TYPED = re.compile(r"\d+\.\d+ ?%")


def typed_figures(page: Path, render_docs) -> list[str]:
    """`page:line: figure` for every percentage with decimals outside generated tables, value markers and code."""

    def blank(m: re.Match) -> str:  # a stripped block keeps its lines, so the line numbers stay true
        return "\n" * m.group(0).count("\n")

    text = render_docs.MARKER.sub(blank, page.read_text())
    text = FENCE.sub(blank, render_docs.VALUE.sub("", text))
    return [
        f"{page.relative_to(ROOT)}:{n}: {m.group(0)}"
        for n, line in enumerate(text.splitlines(), 1)
        for m in TYPED.finditer(line)
        if re.sub(r" ?%", " %", m.group(0)) not in CITED
    ]


def test_no_result_is_typed_by_hand():
    """A result on a page is a generated table or a value marker from its record; a percentage typed by hand is either
    a citation (`CITED`) or a result that has lost its record."""
    render_docs = bench_script("render_docs")
    typed = [t for page in PAGES if page.exists() for t in typed_figures(page, render_docs)]
    assert not typed, "results typed by hand (give them a record and a value marker, or remove them):\n" + "\n".join(
        typed
    )


# Per-command budgets for the quick start's runs: tiny data, one batch, AutoAttack's smoke-test lengths.
QUICK_BUDGET = {
    "victim_cifar10": ["trainer.fast_dev_run=true"],
    "reprogram_mnist_scale": ["trainer.fast_dev_run=true", "data.val_size=100"],
    "attack_autoattack": AUTOATTACK_SMOKE,
}


def test_the_quick_start_commands_run_at_a_tiny_budget(tmp_path):
    """README's single-run examples, in order, on small synthetic CIFAR-10 and MNIST files: the victim the first
    trains is the one the others load (sweeps and `--cfg` are composed by test_command_composes)."""
    from reprog.run import train  # the run's steps, only for this test

    data = write_mnist(write_cifar_npz(tmp_path / "data", 200, 100), n_train=300, n_test=100)
    block = (ROOT / "README.md").read_text().split("Any run is `python train.py` with overrides")[1].split("```")[1]
    lines = [line.split("#")[0] for line in block.splitlines() if line.startswith("python train.py")]
    commands = [shlex.split(line)[2:] for line in lines]
    runs = [c for c in commands if c and not c[0].startswith("-")]
    assert [c[0] for c in runs] == [f"experiment={name}" for name in QUICK_BUDGET]
    victim = None
    for n, overrides in enumerate(runs):
        overrides = [o for o in overrides if not o.startswith("hydra.run.dir=")]
        if victim:
            overrides = [f"victim.ckpt_path={victim}" if o.startswith("victim.ckpt_path=") else o for o in overrides]
        run = tmp_path / f"quick{n}"
        cfg = compose_train(run, data, [*overrides, *QUICK_BUDGET[overrides[0].split("=")[1]]])
        metrics = train(cfg)
        assert metrics, overrides
        victim = victim or run / "run" / "victim.safetensors"
        assert victim.exists()
