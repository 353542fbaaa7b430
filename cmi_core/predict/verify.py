"""``cmi bundle --verify``: run a bundle's notebook as Kaggle would, offline, and compare.

A fresh virtual environment stands in for the Kaggle image: the bundle's wheels are installed
into it with ``--no-index --no-deps`` (as the notebook's first cell does), and the packages an
image provides come from an existing environment's ``site-packages`` (by default this one's),
appended after the venv's own, so a bundled wheel always wins. The venv never sees the
project's source tree: an editable install's import hook in that ``site-packages`` is not run,
and the check fails if ``cmi_core`` is imported from anywhere but the venv. The notebook's
Python cell then runs in the venv with the local gateway stand-in (``predict/gateway.py``), and
its answers must equal ``cmi predict`` on the same files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tempfile
import venv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import polars as pl

from cmi_core.errors import RunError
from cmi_core.predict.bundle import NOTEBOOK, WHEELS_DIR
from cmi_core.predict.gateway import GATEWAY_SEED
from cmi_core.predict.predictor import predict_file

_RUNNER = """
import json, sys, types
from pathlib import Path

bundle, data_dir, slug, competition_dir, out = sys.argv[1:6]
cells = json.loads(Path(bundle, "{notebook}").read_text())["cells"]
code = "".join(cells[1]["source"])
code = code.replace(f"/kaggle/input/{{slug}}", bundle).replace(competition_dir, data_dir)

from cmi_core.predict.gateway import LocalInferenceServer

servers = []
class Server(LocalInferenceServer):
    def __init__(self, predict):
        super().__init__(predict)
        servers.append(self)

package = types.ModuleType("kaggle_evaluation")
package.cmi_inference_server = types.ModuleType("kaggle_evaluation.cmi_inference_server")
package.cmi_inference_server.CMIInferenceServer = Server
sys.modules["kaggle_evaluation"] = package
sys.modules["kaggle_evaluation.cmi_inference_server"] = package.cmi_inference_server
exec(compile(code, "{notebook}", "exec"), {{"__name__": "__main__"}})

import cmi_core
Path(out).write_text(json.dumps({{"answers": servers[0].answers, "cmi_core": cmi_core.__file__}}))
"""


@attrs.frozen
class Verification:
    """The notebook's answers in the fresh venv against ``cmi predict``'s."""

    sequences: int
    differing: tuple[str, ...]
    cmi_core_file: str


def verify_bundle(
    bundle: Path,
    run_dirs: Sequence[Path],
    data_dir: Path,
    slug: str,
    *,
    weights: Sequence[float] | None = None,
    by_sensors: bool = False,
    postprocess: str | None = None,
    postprocess_options: Mapping[str, Any] | None = None,
    image_sites: Sequence[str] | None = None,
) -> Verification:
    """Run the bundle's notebook in a fresh venv over ``data_dir``'s test files; see the
    module doc. Raises a ``RunError`` when the venv cannot run it at all."""
    from cmi_core.predict.notebook import COMPETITION_DIR

    with tempfile.TemporaryDirectory(prefix="cmi-verify-") as tmp:
        root = Path(tmp)
        expected = predict_file(
            run_dirs,
            data_dir,
            root / "expected.csv",
            weights=weights,
            by_sensors=by_sensors,
            postprocess=postprocess,
            postprocess_options=postprocess_options,
            order_seed=None if postprocess is None else GATEWAY_SEED,
        )
        python = _fresh_venv(root / "venv", bundle / WHEELS_DIR, image_sites or _this_env())
        (root / "runner.py").write_text(_RUNNER.format(notebook=NOTEBOOK))
        out = root / "answers.json"
        args = [str(bundle.resolve()), str(Path(data_dir).resolve()), slug, COMPETITION_DIR]
        _run([python, "-I", str(root / "runner.py"), *args, str(out)], cwd=root)
        result = json.loads(out.read_text())
        reference = dict(pl.read_csv(expected).iter_rows())
    if not Path(result["cmi_core"]).is_relative_to(root / "venv"):
        raise RunError(f"the venv imported cmi_core from {result['cmi_core']}, not its wheel")
    answers: dict[str, str] = result["answers"]
    differing = sorted(
        k for k in reference.keys() | answers.keys() if reference.get(k) != answers.get(k)
    )
    return Verification(len(reference), tuple(differing), result["cmi_core"])


def _this_env() -> list[str]:
    """This interpreter's ``site-packages`` folders: the packages the stand-in image offers."""
    return list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))


def _fresh_venv(target: Path, wheels: Path, image_sites: Sequence[str]) -> str:
    venv.create(target, with_pip=False, symlinks=True)
    python = target / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (site / "kaggle_image.pth").write_text("\n".join(image_sites) + "\n")
    found = sorted(str(p.resolve()) for p in wheels.glob("*.whl"))  # pip runs in target
    if not found:
        raise RunError(f"{wheels}: no wheels to install")
    pip = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet"]
    _run([*pip, "--disable-pip-version-check", "--target", str(site), *found], cwd=target)
    return str(python)


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no output)"]
        raise RunError(f"verify: {Path(command[0]).name} failed: {lines[-1]}")
