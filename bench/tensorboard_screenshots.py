"""Screenshots of TensorBoard's scalars, images and HParams pages for the documentation (docs/tensorboard_*.png).

Starts `tensorboard --logdir <run>` on localhost, waits until it answers, and takes each page with headless
Chromium (Debian: `apt-get install chromium-headless-shell`, or `chromium`), then stops TensorBoard.

    python bench/tensorboard_screenshots.py --logdir outputs/tb_demo --out docs

A run to show, cheaply (a few minutes on 2 CPU cores):

    python train.py experiment=victim_cifar10 trainer.max_epochs=3 ++trainer.limit_train_batches=20 \
        ++trainer.limit_val_batches=2 ++trainer.limit_test_batches=2 hydra.run.dir=outputs/tb_demo/victim
    python train.py experiment=reprogram_mnist_scale victim.ckpt_path=outputs/tb_demo/victim/victim.safetensors \
        trainer.max_epochs=3 ++trainer.limit_train_batches=20 ++trainer.limit_val_batches=2 \
        ++trainer.limit_test_batches=2 hydra.run.dir=outputs/tb_demo/program
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

# page name -> TensorBoard's URL fragment: the dashboard, and what it should show
PAGES = {
    "scalars": "#scalars&tagFilter=acc&_smoothingWeight=0",  # the accuracy curves, unsmoothed
    "images": "#images",
    "hparams": "#hparams",
}
BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_browser(name: str | None) -> str:
    for candidate in [name] if name else BROWSERS:
        if path := shutil.which(candidate):
            return path
    sys.exit("error: no headless Chromium found; apt-get install chromium-headless-shell (or pass --browser)")


def wait_until_up(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "data/logdir", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"error: TensorBoard did not answer at {url} within {timeout:.0f} s")


def screenshot(browser: str, url: str, out: Path, size: str, budget_ms: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={size}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={out}",
            url,
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    print(f"{out}  <-  {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", default="outputs/tb_demo", help="the run (or folder of runs) to show")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where tensorboard_<page>.png go")
    parser.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    parser.add_argument("--browser", default=None, help="a Chromium binary (default: the first found)")
    parser.add_argument("--size", default="1400,900", help="window size, width,height")
    parser.add_argument("--budget-ms", type=int, default=15000, help="virtual time each page gets to load")
    args = parser.parse_args(argv)

    browser = find_browser(args.browser)
    tensorboard = shutil.which("tensorboard", path=str(Path(sys.executable).parent)) or shutil.which("tensorboard")
    if not tensorboard:
        sys.exit("error: tensorboard is not installed in this environment")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen(
        [tensorboard, "--logdir", args.logdir, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_up(url)
        time.sleep(3)  # let it read the event files once
        args.out.mkdir(parents=True, exist_ok=True)
        for page in args.pages:
            screenshot(browser, url + PAGES[page], args.out / f"tensorboard_{page}.png", args.size, args.budget_ms)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
