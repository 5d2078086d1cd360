"""The command line reports a refused extract as one line, without a traceback."""

from __future__ import annotations

import dagster as dg

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
