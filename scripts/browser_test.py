#!/usr/bin/env python
"""Browser test of the notebooks (``make test-browser``).

Starts JupyterLab on a free localhost port (token auth, throw-away config and
runtime folders, a *copy* of the notebook so the committed outputs stay intact),
then drives headless Chromium through ``tests/browser/notebook_ui.mjs``
(playwright-core): open ``00_quickstart.ipynb``, run all cells, check the 3Dmol
canvas and the dashboard widgets, press Step and check that the curve is redrawn.
Screenshots and the browser console log land in ``test-artifacts/browser/``.

The kernel gets ``QPT_NB_SMOKE=1`` (seconds, not minutes) and
``QPT_NB_3DMOL_JS=tests/browser/node_modules/3dmol/build/3Dmol-min.js`` (the
local 3Dmol.js, inlined into the page: no network needed).

Needs: ``apt-get install -y chromium`` and ``npm ci --prefix tests/browser``
(3dmol + playwright-core).  Exit code 0 = pass, 1 = a check failed, 2 = setup
missing (the message says what to install).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER_DIR = ROOT / "tests" / "browser"
LOCAL_3DMOL = BROWSER_DIR / "node_modules" / "3dmol" / "build" / "3Dmol-min.js"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, token: str, proc, timeout: float = 120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5) as r:
                if r.status == 200:
                    return json.loads(r.read())
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer on {url} within {timeout:.0f} s")


def check_setup(chromium: str | None) -> list:
    missing = []
    if not chromium:
        missing.append("Chromium: apt-get install -y chromium")
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir() or not LOCAL_3DMOL.is_file():
        missing.append("npm packages: npm ci --prefix tests/browser   (3dmol, playwright-core)")
    if shutil.which("node") is None:
        missing.append("Node.js: apt-get install -y nodejs npm")
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        missing.append("JupyterLab: pip install 'qpt_nb[notebook]'")
    return missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--notebook", default="00_quickstart.ipynb", help="notebook in notebooks/")
    p.add_argument("--artifacts", default=str(ROOT / "test-artifacts" / "browser"))
    p.add_argument("--timeout", type=int, default=420, help="seconds for running all cells")
    p.add_argument("--full", action="store_true", help="run the notebook without QPT_NB_SMOKE")
    args = p.parse_args(argv)

    chromium = os.environ.get("CHROMIUM") or next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    missing = check_setup(chromium)
    if missing:
        print("browser test: missing setup:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2

    artifacts = Path(args.artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="qpt-nb-browser-"))
    shutil.copy(ROOT / "notebooks" / args.notebook, work / args.notebook)
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        QPT_NB_3DMOL_JS=str(LOCAL_3DMOL),
        JUPYTER_CONFIG_DIR=str(work / ".jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(work / ".jupyter-runtime"),
        MPLBACKEND="Agg",
        JUPYTERLAB_SETTINGS_DIR=str(work / ".lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(work / ".lab-workspaces"),
    )
    if not args.full:
        env["QPT_NB_SMOKE"] = "1"
    # no "get Jupyter news?" toast over the widgets in the screenshots
    news = work / ".lab-settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True, exist_ok=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    lab = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={work}",
        "--ServerApp.port_retries=0",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.open_browser=False",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        lab.append("--allow-root")  # containers often run as root
    log = open(artifacts / "jupyterlab.log", "w")
    print(f"browser test: JupyterLab on 127.0.0.1:{port}, notebook copy in {work}")
    proc = subprocess.Popen(lab, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for_server(url, token, proc)
        node_env = dict(os.environ, CHROMIUM=chromium, TIMEOUT_S=str(args.timeout))
        rc = subprocess.call(
            [
                "node",
                str(BROWSER_DIR / "notebook_ui.mjs"),
                f"{url}?token={token}",
                args.notebook,
                str(artifacts),
            ],
            cwd=BROWSER_DIR,
            env=node_env,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"browser test: {'passed' if rc == 0 else 'FAILED'}; artifacts in {artifacts}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
