"""The command line reports a refused extract as one line, without a traceback."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from pipeline.cli import run_extract
from pipeline.synth.faults import apply_fault
from pipeline.synth.generator import generate
from pipeline.synth.landing import write_extract
from pipeline.synth.params import SynthParams
from tests.conftest import make_settings


def test_refused_extract_fails_with_one_line(tmp_path, capsys):
    settings = make_settings(tmp_path)
    folder = write_extract(generate(SynthParams(n_people=400, seed=3)), settings.landing_dir,
                           settings.truth_dir)
    apply_fault(folder, "id_email", seed=3)
    with dg.instance_for_test() as instance:
        ok = run_extract(folder.name, settings, instance=instance)
    err = capsys.readouterr().err
    assert not ok
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert failed and "refused by the identifier guard" in failed[0]
    assert "Traceback" not in err
    assert "@" not in err  # the offending value is never echoed


@pytest.mark.parametrize("extract_id", ["../evil_extract", "nosuch-extract", "..", "a/b",
                                        "-rf", "x" * 101])
def test_run_refuses_a_bad_extract_id_before_registering_anything(tmp_path, capsys,
                                                                  extract_id):
    settings = make_settings(tmp_path)
    settings.landing_dir.mkdir(parents=True)
    with dg.instance_for_test() as instance:
        ok = run_extract(extract_id, settings, instance=instance)
        assert instance.get_dynamic_partitions("extract") == []
        assert instance.get_runs() == []
    err = capsys.readouterr().err.strip().splitlines()
    assert not ok and len(err) == 1 and err[0].startswith("refused")
    assert not settings.reports_dir.exists() and not settings.warehouse.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landing"]


def test_run_refuses_a_folder_whose_manifest_names_another_id(tmp_path, capsys):
    settings = make_settings(tmp_path)
    folder = write_extract(generate(SynthParams(n_people=200, seed=3)), settings.landing_dir,
                           settings.truth_dir)
    moved = folder.rename(folder.with_name("renamed-extract"))
    with dg.instance_for_test() as instance:
        assert not run_extract(moved.name, settings, instance=instance)
        assert instance.get_dynamic_partitions("extract") == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the folder name" in err[0]


def test_run_refuses_a_symlinked_landing_folder(tmp_path, capsys):
    settings = make_settings(tmp_path)
    folder = write_extract(generate(SynthParams(n_people=200, seed=3)), tmp_path / "elsewhere",
                           settings.truth_dir)
    settings.landing_dir.mkdir()
    os.symlink(folder, settings.landing_dir / folder.name)
    with dg.instance_for_test() as instance:
        assert not run_extract(folder.name, settings, instance=instance)
        assert instance.get_dynamic_partitions("extract") == []
    assert "symbolic link" in capsys.readouterr().err
