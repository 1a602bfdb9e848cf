"""`invoke bench --only a,b`: which figures a run of some rows measures, and one paragraph for a wrong name."""

from __future__ import annotations

import pytest

from bench import run


def test_without_only_every_figure_runs():
    assert run.parse_only("") == ()


def test_only_names_the_figures_it_runs():
    assert run.parse_only("phase2") == ("phase2",)
    assert run.parse_only(" write, phase2 ,") == ("write", "phase2")


@pytest.mark.parametrize("only", ["phase3", "write,drifts"])
def test_an_unknown_figure_is_refused_naming_the_ones_there_are(only):
    with pytest.raises(ValueError) as refused:
        run.parse_only(only)
    assert f"bench --only {only}" in str(refused.value)
    assert "write, bulk, phase2, backfill, drift, cleanup, deploy" in str(refused.value)
