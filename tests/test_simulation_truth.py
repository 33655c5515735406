"""The one reader of the simulator's truth file (workflow_scripts/simulation_truth.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workflow_scripts.simulation_truth import (
    TruthFileError,
    focus_from_truth,
    point_in_world,
    read_truth,
)


def truth_with_pose() -> dict:
    # a 90-degree turn about z, then a shift: anatomy (1, 2, 3) -> world (-2 + 10, 1 - 5, 3 + 7)
    w = np.array([[0, -1, 0, 10], [1, 0, 0, -5], [0, 0, 1, 7], [0, 0, 0, 1]], float)
    return {
        "subject": "04",
        "images": {"T1w": {"world_from_anatomy": w.tolist()}},
        "focus_anatomy_mm": [1.0, 2.0, 3.0],
        "cavity_anatomy_mm": [[0.0], [0.0], [0.0]],  # a column, as some writers store points
        "focus_radius_mm": 8.0,
    }


def test_points_in_world_hand_worked(tmp_path):
    truth = truth_with_pose()
    assert point_in_world(truth, "T1w").tolist() == [8.0, -4.0, 10.0]
    assert point_in_world(truth, "T1w", "cavity_anatomy_mm").tolist() == [10.0, -5.0, 7.0]
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(truth))
    focus, radius = focus_from_truth(path)
    assert focus.tolist() == [8.0, -4.0, 10.0] and radius == 8.0


def test_bad_truth_files_are_named(tmp_path):
    with pytest.raises(TruthFileError, match="missing.json"):
        read_truth(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(TruthFileError, match="broken.json"):
        read_truth(broken)
    with pytest.raises(TruthFileError, match="sub-04 .*'pet'"):
        point_in_world(truth_with_pose(), "pet")
