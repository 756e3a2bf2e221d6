"""The release artefacts: wheel and sdist build, pass twine, and ship the manifest."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    if shutil.which("git") is None:
        pytest.skip("git is needed to copy the tracked tree")
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return out


def test_wheel_ships_the_manifest_and_entry_points(dist):
    (wheel,) = dist.glob("napari_mor-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert "napari_mor/napari.yaml" in names
        manifest = archive.read("napari_mor/napari.yaml").decode()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        entry_text = archive.read(entry_points).decode()
        metadata = archive.read(
            next(n for n in names if n.endswith("METADATA"))
        ).decode()
    assert manifest == (ROOT / "napari.yaml").read_text()
    assert "napari-mor = napari_mor:napari.yaml" in entry_text
    assert "napari-mor = napari_mor.cli:main" in entry_text
    assert "Classifier: Framework :: napari" in metadata
    assert "Project-URL: Source Code" in metadata


def test_twine_check_passes(dist):
    files = [str(p) for p in dist.iterdir()]
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def _npe2_validate(env_path: str | None = None) -> subprocess.CompletedProcess:
    """``npe2 validate --imports napari-mor`` (imports every command's module)."""
    import os

    env = dict(os.environ)
    if env_path is not None:
        env["PYTHONPATH"] = env_path  # the wheel's copy first on sys.path
    code = (
        "import sys, napari_mor; from npe2.cli import app; "
        "print('FROM', napari_mor.__file__); "
        "sys.argv = ['npe2', 'validate', '--imports', 'napari-mor']; app()"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(Path(env_path or ROOT).parent),
    )


def test_manifest_validates_from_the_wheel(dist, tmp_path):
    (wheel,) = dist.glob("napari_mor-*.whl")
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    result = _npe2_validate(str(target))
    assert f"FROM {target}" in result.stdout, result.stdout + result.stderr
    assert "valid!" in result.stdout, result.stdout + result.stderr


def test_manifest_validates_from_the_editable_install():
    result = _npe2_validate()
    assert "valid!" in result.stdout, result.stdout + result.stderr


def test_core_fits_without_simpleitk_and_registration_names_the_extra(
    sample_files, tmp_path
):
    """SimpleITK is the optional [registration] extra: fits never need it."""
    block = (
        "import sys; sys.modules['SimpleITK'] = None; from napari_mor.cli import main; "
    )
    fit = (
        f"sys.exit(main(['fit', {str(sample_files['pet'])!r}, '--labels', "
        f"{str(sample_files['labels'])!r}, '--rois-only', '--out', "
        f"{str(tmp_path / 'rois.tsv')!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", block + fit], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    coreg = (
        f"sys.exit(main(['register', 'coreg', {str(sample_files['pet'])!r}, "
        f"{str(sample_files['mr'])!r}, '--out', {str(tmp_path / 'x.tfm')!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", block + coreg], capture_output=True, text=True
    )
    assert result.returncode == 2 and "napari-mor[registration]" in result.stderr
    assert "Traceback" not in result.stderr
