"""One request, one answer: argv round trips, light ``--help``, one grid check and
one TSV writer, and the CLI, the batch and the workflows agreeing on the numbers."""

from __future__ import annotations

import ast
import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import napari_mor
from napari_mor import MorError, defaults, kinetics
from napari_mor.cli import build_parser, main
from napari_mor.cli.fit import request_from_args
from napari_mor.workflows.fit import FitRequest

SRC = Path(napari_mor.__file__).resolve().parent
WINDOWS = (
    defaults.DEFAULT_WINDOWS_MIN["baseline"],
    defaults.DEFAULT_WINDOWS_MIN["challenge"],
)
FILES = {
    "pet_path": "/data/sub 01/pet.nii.gz",
    "labels_path": "/data/labels.nii.gz",
    "out": "/out/bp.nii.gz",
}


def _round_trip(request: FitRequest) -> FitRequest:
    return request_from_args(build_parser().parse_args(request.to_argv()))


# --------------------------------------------------------------- argv round trip
ROUND_TRIPS = {
    "single scan whole": FitRequest(**FILES),
    "TAC table": FitRequest(
        tacs_path="/data/sub 01/tacs.tsv",
        reference="occipital",
        windows_min=((20.0, 45.0), (60.0, 90.0)),
        rois_only=True,
        out="/out/rois.tsv",
    ),
    "one window": FitRequest(windows_min=((10.0, 45.0),), **FILES),
    "basis functions": FitRequest(
        model="srtm-bf", n_theta=250, theta_range_per_min=(0.005, 2.5), **FILES
    ),
    "two windows": FitRequest(windows_min=WINDOWS, **FILES),
    "three windows": FitRequest(windows_min=((0, 30), (30, 60), (60, 90)), **FILES),
    "fractional windows": FitRequest(
        windows_min=((2.5, 47.25), (50.125, 89.5)), **FILES
    ),
    "two scans": FitRequest(
        two_scans=True, challenge_pet_path="/data/sub 01/chal.nii.gz", **FILES
    ),
    "ref mask": FitRequest(
        ref_mask_path="/data/occ.nii.gz",
        mask="/data/brain.nii.gz",
        pet_path=FILES["pet_path"],
        out=FILES["out"],
    ),
    "reference by name": FitRequest(reference="occipital_ref", **FILES),
    "reference by name with space": FitRequest(reference="Occipital cortex", **FILES),
    "reference by number": FitRequest(reference=8, **FILES),
    "lut": FitRequest(lut_path="/data/labels.tsv", reference=8, **FILES),
    "t star": FitRequest(model="logan", t_star_min=20.0, **FILES),
    "t star odd": FitRequest(model="logan", t_star_min=1 / 3, **FILES),
    "k2p value": FitRequest(k2p_per_min=0.2137, **FILES),
    "k2p value odd": FitRequest(k2p_per_min=0.1 + 0.2, **FILES),
    "k2p region by name": FitRequest(k2p_region="midline_thalamus", **FILES),
    "k2p region by number": FitRequest(k2p_region=5, **FILES),
    "weights duration": FitRequest(weights="duration", **FILES),
    "weights noise": FitRequest(weights="noise", **FILES),
    "mask path": FitRequest(mask="/data/brain mask.nii.gz", **FILES),
    "mask uptake": FitRequest(mask="uptake", **FILES),
    "rois only": FitRequest(rois_only=True, **{**FILES, "out": "/out/rois.tsv"}),
    "rois only two windows": FitRequest(
        rois_only=True, windows_min=WINDOWS, **{**FILES, "out": "/out/rois.tsv"}
    ),
    "frames tsv": FitRequest(frames_path="/data/frames.tsv", **FILES),
    "units": FitRequest(units="Bq/mL", **FILES),
    "pvc gtm rois": FitRequest(
        pvc="gtm", psf_fwhm_mm=6.0, rois_only=True, **{**FILES, "out": "/out/r.tsv"}
    ),
    "pvc rbv": FitRequest(pvc="rbv", psf_fwhm_mm=(5.5, 5.5, 6.25), **FILES),
    "pvc iy two scans": FitRequest(
        pvc="iy",
        psf_fwhm_mm=1 / 3 + 6,
        two_scans=True,
        challenge_pet_path="/data/sub 01/chal.nii.gz",
        **FILES,
    ),
    "everything": FitRequest(
        model="srtm2",
        reference="occipital",
        windows_min=WINDOWS,
        t_star_min=12.5,
        k2p_region="thalamus",
        weights="noise",
        mask="uptake",
        lut_path="/data/labels.tsv",
        frames_path="/data/frames.tsv",
        units="nCi/mL",
        **FILES,
    ),
}
ROUND_TRIPS |= {
    f"model {model}": FitRequest(model=model, **FILES) for model in defaults.MODEL_NAMES
}
ROUND_TRIPS["release model with onset"] = FitRequest(
    model=defaults.RELEASE_MODEL, challenge_onset_min=44.5, **FILES
)
ROUND_TRIPS["denoised maps, BIDS derivatives"] = FitRequest(
    denoise="nlm",
    denoise_fwhm_mm=5.0,
    pet_path="/data/sub-01_pet.nii.gz",
    labels_path="/data/labels.nii.gz",
    bids_out="/data/derivatives/napari-mor",
)


@pytest.mark.parametrize("request_", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_fit_request_round_trips_through_argv(request_):
    assert _round_trip(request_) == request_


def test_round_trip_covers_every_model_and_option():
    requests = list(ROUND_TRIPS.values())
    assert {r.model for r in requests} == set(defaults.FIT_MODELS)
    assert {r.weights for r in requests} == set(defaults.WEIGHTINGS)
    for field in FitRequest.__dataclass_fields__:
        default = FitRequest.__dataclass_fields__[field].default
        assert any(getattr(r, field) != default for r in requests), field


def test_command_line_is_the_argv_quoted():
    import shlex

    request = ROUND_TRIPS["everything"]
    assert shlex.split(request.command_line()) == ["napari-mor", *request.to_argv()]


def test_windows_keep_full_precision_through_argv():
    request = FitRequest(windows_min=((0.0, 45.123456789),), **FILES)
    assert _round_trip(request) == request


def test_rois_only_with_a_mask_is_refused_like_the_cli_refuses_it():
    """No request whose command line the CLI would refuse."""
    with pytest.raises(MorError, match="Drop one of them"):
        FitRequest(rois_only=True, mask="uptake", **{**FILES, "out": "/out/rois.tsv"})


# ----------------------------------------------------------------- light --help
LIGHT_HELP = (
    "import sys\n"
    "from napari_mor.cli import main\n"
    "try:\n"
    "    main({argv!r})\n"
    "except SystemExit:\n"
    "    pass\n"
    "heavy = ('numpy', 'nibabel', 'scipy', 'napari', 'qtpy', 'PyQt5', 'PyQt6',\n"
    "         'PySide6', 'magicgui', 'nilearn', 'dask', 'SimpleITK')\n"
    "print(sorted({{m.split('.')[0] for m in sys.modules}} & set(heavy)))\n"
)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["fit", "--help"], ["delta", "--help"], ["group", "run", "--help"]],
    ids=" ".join,
)
def test_help_imports_no_numpy_nibabel_or_qt(argv):
    result = subprocess.run(
        [sys.executable, "-c", LIGHT_HELP.format(argv=argv)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
    assert "usage: napari-mor" in result.stdout


def test_default_model_names_are_the_kinetics_registry():
    assert tuple(kinetics.MODELS) == defaults.MODEL_NAMES
    assert defaults.DEFAULT_MODEL in defaults.MODEL_NAMES
    assert FitRequest().model == defaults.DEFAULT_MODEL
    fit = build_parser().parse_args(["fit", "p.nii.gz", "--labels", "l", "--out", "o"])
    assert fit.model == defaults.DEFAULT_MODEL


# -------------------------------------------------- one grid check, one TSV writer
def _sources():
    for path in sorted(SRC.rglob("*.py")):
        yield path.relative_to(SRC).as_posix(), path.read_text(encoding="utf-8")


def _affine_comparisons() -> list[str]:
    """``allclose``/``array_equal``/``isclose`` calls whose arguments name an affine."""
    found = []
    for name, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            if called not in ("allclose", "array_equal", "isclose"):
                continue
            args = " ".join(ast.unparse(a) for a in [*node.args, *node.keywords])
            if "affine" in args.lower():
                found.append(f"{name}:{node.lineno}")
    return found


def _tsv_writers() -> list[str]:
    """csv writers, and TSV text put together by hand (tab joins, tab literals)."""
    found = []
    for name, text in _sources():
        for lineno, line in enumerate(text.splitlines(), 1):
            if re.search(r"csv\.writer\(|DictWriter\(", line):
                found.append(f"{name}:{lineno}")
        tree = ast.parse(text)
        in_fstring = {
            id(v)
            for node in ast.walk(tree)
            if isinstance(node, ast.JoinedStr)
            for v in node.values
        }
        for node in ast.walk(tree):
            tab_join = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "join"
                and isinstance(node.func.value, ast.Constant)
                and node.func.value.value == "\t"
            )
            tab_fstring = isinstance(node, ast.JoinedStr) and any(
                isinstance(v, ast.Constant) and "\t" in str(v.value)
                for v in node.values
            )
            tab_text = (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and "\t" in node.value
                and node.value.strip()  # a bare "\t" is a reader's delimiter
                and id(node) not in in_fstring
            )
            if tab_join or tab_fstring or tab_text:
                found.append(f"{name}:{node.lineno}")
    return sorted(set(found), key=lambda s: (s.split(":")[0], int(s.split(":")[1])))


def test_affine_grid_check_scanner_sees_multiline_calls():
    """The scanner finds a comparison split over lines (as black writes them)."""
    source = "ok = a.shape == b.shape and np.allclose(\n    a.affine, b.affine\n)\n"
    tree = ast.parse(source)
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call))
    assert "affine" in " ".join(ast.unparse(a) for a in call.args)


def test_affines_are_compared_only_in_io_grid():
    found = _affine_comparisons()
    assert [f for f in found if not f.startswith("io/grid.py:")] == []
    assert any(f.startswith("io/grid.py:") for f in found)


def test_tsv_files_are_written_only_by_io_tables():
    found = _tsv_writers()
    assert [f for f in found if not f.startswith("io/tables.py:")] == []
    assert any(f.startswith("io/tables.py:") for f in found)


# ------------------------------------------------------------- CLI windowed fit
@pytest.fixture(scope="module")
def noise_free_files(tmp_path_factory):
    from napari_mor.sample import make_sample_study, write_sample_study

    study = make_sample_study(seed=0, noise_cv=0.0)
    return study, write_sample_study(study, tmp_path_factory.mktemp("noise_free"))


def _sidecar(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_cli_two_windows_write_baseline_and_challenge_with_one_k2p(
    noise_free_files, tmp_path, capsys
):
    study, paths = noise_free_files
    out = tmp_path / "d" / "bp.nii.gz"
    inputs = ["fit", str(paths["pet"]), "--labels", str(paths["labels"]), "--lut",
              str(paths["lut"])]  # fmt: skip
    windows = ["--window", "0", "45", "--window", "45", "90"]
    given = ((0.0, 45.0), (45.0, 90.0))
    assert main([*inputs, *windows, "--out", str(out)]) == 0
    assert not out.exists()  # two conditions: OUT_<condition>.nii.gz only
    sidecars = {}
    for condition, window in zip(("baseline", "challenge"), given, strict=True):
        bp = tmp_path / "d" / f"bp_{condition}.nii.gz"
        assert (
            bp.is_file() and (tmp_path / "d" / f"bp_{condition}_DVR.nii.gz").is_file()
        )
        sidecars[condition] = car = _sidecar(tmp_path / "d" / f"bp_{condition}.json")
        assert car["Condition"] == condition and car["Quantity"] == "bp_nd"
        assert car["WindowMin"] == list(window)
        assert car["WindowsMin"] == {"baseline": [0.0, 45.0], "challenge": [45.0, 90.0]}
        assert car["Model"] == defaults.DEFAULT_MODEL
        assert car["ReferenceRegion"] == "label 1 (occipital_ref)"  # by name, default
        assert car["K2PrimeSource"]
    base, chal = sidecars["baseline"], sidecars["challenge"]
    assert base["K2PrimePerMin"] == chal["K2PrimePerMin"]
    assert base["K2PrimeSource"] == chal["K2PrimeSource"]
    assert "frames 0-45 min" in base["K2PrimeSource"]  # from the baseline
    assert base["K2PrimePerMin"] == pytest.approx(study.truth["k2p_per_min"], rel=0.05)
    capsys.readouterr()
    # the ROI table of the same request: one row per ROI and condition, same k2'
    table = tmp_path / "rois.tsv"
    assert main([*inputs, *windows, "--rois-only", "--out", str(table)]) == 0
    with table.open() as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        assert tuple(reader.fieldnames) == napari_mor.workflows.fit.FIT_COLUMNS
        rows = list(reader)
    n_rois = len(study.labels.present_labels) - 1  # all but the reference
    assert [r["condition"] for r in rows] == ["baseline"] * n_rois + [
        "challenge"
    ] * n_rois
    for row in rows:
        window = given[row["condition"] == "challenge"]
        assert (float(row["window_start_min"]), float(row["window_end_min"])) == window
        assert float(row["k2p"]) == pytest.approx(base["K2PrimePerMin"], rel=1e-5)
        assert row["k2p_source"] == base["K2PrimeSource"]
        assert row["name"] != "occipital_ref"


def test_cli_one_window_writes_out_itself(noise_free_files, tmp_path):
    _study, paths = noise_free_files
    out = tmp_path / "bp.nii.gz"
    argv = ["fit", str(paths["pet"]), "--labels", str(paths["labels"]), "--lut",
            str(paths["lut"]), "--model", "mrtm", "--window", "10", "45",
            "--ref-label", "occipital_ref", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert out.is_file() and not (tmp_path / "bp_baseline.nii.gz").exists()
    car = _sidecar(tmp_path / "bp.json")
    assert car["WindowMin"] == [10.0, 45.0] and car["Model"] == "mrtm"
    assert car["ReferenceRegion"] == "label 1 (occipital_ref)"


# ------------------------------------------------------ batch and CLI: same numbers
@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from napari_mor.sample import write_bids_cohort

    root = tmp_path_factory.mktemp("cohort")
    write_bids_cohort(
        root, n_subjects=1, seed=7, pet_voxel_mm=6.0, mr_voxel_mm=6.0, noise_cv=0.03
    )
    return root


@pytest.mark.parametrize("with_mask", [True, False], ids=["atlas mask", "no mask"])
def test_batch_and_cli_fit_give_the_same_maps_and_sidecars(cohort, tmp_path, with_mask):
    from napari_mor.group.batch import BatchSettings, discover_cohort, process_subject
    from napari_mor.io import load_pet, write_nifti

    (subject,) = discover_cohort(cohort).subjects
    labels = cohort / "atlas" / "space-MNI_labels.nii.gz"
    lut = cohort / "atlas" / "space-MNI_labels.tsv"
    mask = cohort / "atlas" / "space-MNI_brainmask.nii.gz"
    settings = BatchSettings(fwhm_mm=0.0, registration="identity")
    status = process_subject(
        subject, tmp_path / "batch", settings, labels, mask if with_mask else None
    )
    assert status["status"] == "computed", status["message"]
    if not with_mask:  # what process_subject uses without a mask: mean PET > 0
        pet = load_pet(subject.pet)
        mask = write_nifti(
            tmp_path / "mean_pet_positive.nii.gz",
            (pet.data.mean(axis=0) > 0).astype(np.uint8),
            pet.affine,
            dtype=np.uint8,
        )
    windows = [
        arg
        for condition in ("baseline", "challenge")
        for arg in ("--window", *(f"{v!r}" for v in settings.windows_min[condition]))
    ]
    out = tmp_path / "cli" / "bp.nii.gz"
    argv = ["fit", str(subject.pet), "--labels", str(labels), "--lut", str(lut),
            *windows, "--mask", str(mask), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    for condition in ("baseline", "challenge"):
        batch_map = Path(status["outputs"][condition])
        cli_map = tmp_path / "cli" / f"bp_{condition}.nii.gz"
        batch_car = _sidecar(batch_map.with_name(batch_map.name[:-7] + ".json"))
        cli_car = _sidecar(cli_map.with_name(cli_map.name[:-7] + ".json"))
        # (BrainMask differs in wording only: the batch's mask is an array, the
        # CLI's a file; the voxels are the same)
        shared = ("ReferenceRegion", "K2PrimePerMin", "K2PrimeSource", "WindowsMin",
                  "WindowMin", "Model", "Weights", "TStarMin", "NVoxels")  # fmt: skip
        for key in shared:
            assert batch_car[key] == cli_car[key], key
        assert batch_car["K2PrimePerMin"] is not None
        np.testing.assert_allclose(
            np.asarray(nib.load(str(batch_map)).dataobj),
            np.asarray(nib.load(str(cli_map)).dataobj),
            rtol=1e-6,
            atol=1e-7,
            equal_nan=True,
        )


def test_fit_of_a_tac_table_equals_fit_of_the_images(noise_free_files, tmp_path):
    """`fit --tacs` (napari-mor tacs output, and a BIDS/PETPrep-style table
    without _sd/_n columns) gives the ROI table `fit --rois-only` gives."""
    _study, paths = noise_free_files
    tacs = tmp_path / "tacs.tsv"
    assert main(["tacs", str(paths["pet"]), "--labels", str(paths["labels"]),
                 "--out", str(tacs)]) == 0  # fmt: skip
    windows = ["--window", "20", "45", "--window", "60", "90"]
    images = tmp_path / "images.tsv"
    assert main(["fit", str(paths["pet"]), "--labels", str(paths["labels"]),
                 *windows, "--rois-only", "--out", str(images)]) == 0  # fmt: skip
    header, *rows = tacs.read_text().splitlines()
    keep = [
        i for i, c in enumerate(header.split("\t")) if not c.endswith(("_sd", "_n"))
    ]
    bids = tmp_path / "sub-01_seg-phantom_tacs.tsv"
    bids.write_text(
        "\n".join(
            "\t".join(line.split("\t")[i] for i in keep) for line in [header, *rows]
        )
        + "\n"
    )
    for table in (tacs, bids):
        out = tmp_path / f"from_{table.stem}.tsv"
        argv = ["fit", "--tacs", str(table), "--ref-column", "occipital_ref"]
        assert main([*argv, *windows, "--out", str(out)]) == 0
        got = {(r["condition"], r["name"]): r for r in _rows(out)}
        for row in _rows(images):
            other = got[(row["condition"], row["name"])]
            assert float(other["BP_ND"]) == pytest.approx(float(row["BP_ND"]), rel=1e-4)
            assert float(other["k2p"]) == pytest.approx(float(row["k2p"]), rel=1e-4)


def _rows(path):
    with path.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fit", "--tacs", "T.tsv", "P.nii.gz", "--out", "o.tsv"], "one of them"),
        (["fit", "--out", "o.tsv"], "one of them"),
        (["fit", "P.nii.gz", "--out", "o.tsv"], "--labels"),
        (
            [
                "fit",
                "--tacs",
                "T.tsv",
                "--ref-label",
                "1",
                "--ref-column",
                "x",
                "--out",
                "o.tsv",
            ],
            "--ref-column goes with --tacs",
        ),
    ],
)
def test_tac_table_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_tac_table_missing_reference_column(noise_free_files, tmp_path, capsys):
    _study, paths = noise_free_files
    tacs = tmp_path / "tacs.tsv"
    main(["tacs", str(paths["pet"]), "--labels", str(paths["labels"]),
          "--out", str(tacs)])  # fmt: skip
    argv = ["fit", "--tacs", str(tacs), "--ref-column", "cerebellum", "--out",
            str(tmp_path / "o.tsv")]  # fmt: skip
    assert main(argv) == 2
    assert "No TAC column named like 'cerebellum'" in capsys.readouterr().err
