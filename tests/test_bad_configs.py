"""Every bad-config class of tests/bad_configs.py is refused by `eqscale validate` with its key and reason, before any
work; a sample of them through `snakemake` too (both run eqscale.validate.check_study)."""

import sys
from pathlib import Path

import pytest
from bad_configs import BAD_CONFIGS

from eqscale import validate

sys.path.insert(0, str(Path(__file__).parent / "workflow"))
from snakemake_helpers import snakemake  # noqa: E402


@pytest.mark.parametrize("name, text, message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_eqscale_validate_refuses_it_by_name(tmp_path, capsys, name, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert validate.main(["--configfile", str(path)]) == 1
    err = capsys.readouterr().err
    assert message in err, err


def test_there_are_enough_classes():
    assert len(BAD_CONFIGS) >= 45 and len({c[0] for c in BAD_CONFIGS}) == len(BAD_CONFIGS)


def test_the_presets_pass(capsys):
    root = Path(__file__).resolve().parents[1]
    for config in ("config.yaml", "presets/tiny.yaml", "presets/paper.yaml"):
        assert validate.main(["--configfile", str(root / config)]) == 0, capsys.readouterr().err
        assert "config OK" in capsys.readouterr().out


SNAKEMAKE_SAMPLE = ["duplicate key", "NaN budget", "float for a count", "empty validation split",
                    "budget below one step", "fractions naming one directory"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SNAKEMAKE_SAMPLE)
def test_snakemake_refuses_it_before_any_job(tmp_path, name):
    _, text, message = next(c for c in BAD_CONFIGS if c[0] == name)
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    proc = snakemake(tmp_path, "--cores", "1", configfile=config, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not (tmp_path / "results").exists()
