"""Where each framework's interpreter lives, and the environment a worker starts with.

Environments are made and kept by tox (one per framework, see tox.ini): this module only
finds their interpreters. Any existing interpreter can stand in for one (``--python
pytorch=/usr/bin/python3``), which is how a GPU machine with a preinstalled CUDA PyTorch runs
cells without tox.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from adapters import get_info

PACKAGES = ("cnnbench", "adapters", "workloads")
# Thread-pool variables every math library we drive reads at start-up.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def tox_workdir() -> Path:
    env = os.environ.get("CNNBENCH_TOX_WORKDIR")
    return Path(env) if env else project_root() / ".tox"


def find_python(framework: str, overrides: dict[str, str]) -> tuple[str | None, str]:
    """(interpreter or None, how it was found / why it was not)."""
    if framework in overrides:
        return overrides[framework], "--python"
    env_key = f"CNNBENCH_PYTHON_{framework.upper()}"
    if os.environ.get(env_key):
        return os.environ[env_key], env_key
    info = get_info(framework)
    if not info.env:  # the null adapter needs no framework: this interpreter will do
        return sys.executable, "current interpreter"
    py = tox_workdir() / info.env / "bin" / "python"
    if py.exists():
        return str(py), f"tox env {info.env}"
    return None, (
        f"no interpreter for {framework}: {py} does not exist; create it with "
        f"`tox -e {info.env} --notest` or pass --python {framework}=/path/to/python"
    )


_SHIM: Path | None = None


def worker_pythonpath() -> str:
    """A folder holding only our three packages (as symlinks) for the worker's PYTHONPATH.

    The worker must see cnnbench/adapters/workloads but nothing else of the core's
    environment: MXNet's environment, for one, needs an older numpy than ours.
    """
    global _SHIM
    if _SHIM is None or not _SHIM.exists():
        import atexit
        import shutil

        _SHIM = Path(tempfile.mkdtemp(prefix="cnnbench-path-"))
        atexit.register(shutil.rmtree, _SHIM, True)
        root = project_root()
        for pkg in PACKAGES:
            (_SHIM / pkg).symlink_to(root / pkg, target_is_directory=True)
    return str(_SHIM)


def worker_env(variant_env: dict[str, str], threads: int | None) -> tuple[dict[str, str], dict[str, str]]:
    """(full environment for the worker, the part cnnbench set, recorded in the row)."""
    set_here: dict[str, str] = {}
    if threads:
        for var in THREAD_VARS:
            set_here[var] = str(threads)
    set_here.update(variant_env)
    cap = variant_env.get("ATEN_CPU_CAPABILITY")
    if cap and "TORCHINDUCTOR_CACHE_DIR" not in variant_env:
        # Inductor's cache key leaves ATEN_CPU_CAPABILITY out: a kernel cached by an uncapped
        # run fails to compile under a cap ("'at::vec' has not been declared"). One cache per cap.
        set_here["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tempfile.gettempdir())
                                                  / f"cnnbench-inductor-{cap}")
    env = dict(os.environ)
    env.update(set_here)
    env["PYTHONPATH"] = worker_pythonpath()
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONHOME", None)
    return env, set_here


def facts_for(framework: str, overrides: dict[str, str], timeout: float = 180.0) -> dict[str, object]:
    """Build facts of one framework, asked in its own interpreter (never imported here)."""
    import json
    import subprocess

    python, how = find_python(framework, overrides)
    if python is None:
        return {"status": "unavailable", "error": how}
    with tempfile.TemporaryDirectory(prefix="cnnbench-facts-") as tmp:
        out = Path(tmp) / "facts.json"
        env, _ = worker_env({}, None)
        try:
            proc = subprocess.run(
                [python, "-m", "cnnbench.measure.worker", "--facts", framework, "--out", str(out)],
                env=env, cwd=tmp, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"no answer within {timeout:.0f} s"}
        except OSError as exc:
            return {"status": "unavailable", "error": f"cannot start {python}: {exc}"}
        if not out.exists():
            err = proc.stderr.decode(errors="replace").strip().splitlines()
            return {"status": "crashed", "error": err[-1] if err else f"exit {proc.returncode}"}
        result: dict[str, object] = json.loads(out.read_text())
        result["python"] = python
        result["found_by"] = how
        return result
