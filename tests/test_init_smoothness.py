"""bench/init_smoothness.py: the correlation it reports, checked by hand, and the init
claim the wire recipe rests on (w 20, s0 10 starts as white noise in demo.txt's 4x128 trunk)."""
import json

import pytest
import torch

from bench.init_smoothness import feature_correlation, main


@pytest.mark.parametrize("b, expected", [
    ([[2.0], [4.0], [6.0]], 1.0),     # b = 2a
    ([[3.0], [2.0], [1.0]], -1.0),    # reversed
    ([[5.0], [5.0], [5.0]], 0.0),     # constant: counted as 0
    ([[1.0], [3.0], [2.0]], 0.5),     # centred a = (-1, 0, 1), b = (-1, 1, 0): 1 / (sqrt 2 sqrt 2)
])
def test_feature_correlation_by_hand(b, expected):
    a = torch.tensor([[1.0], [2.0], [3.0]])
    assert feature_correlation(a, torch.tensor(b)) == pytest.approx(expected, abs=1e-6)


def test_feature_correlation_averages_columns():
    a = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    b = torch.tensor([[2.0, 3.0], [4.0, 2.0], [6.0, 1.0]])  # +1 and -1
    assert feature_correlation(a, b) == pytest.approx(0.0, abs=1e-6)


def correlations(tmp_path, *flags):
    out = tmp_path / "s.json"
    assert main(["--points", "1024", "--seeds", "0", "--distances", "0.01", "0.3",
                 "--json", str(out), *flags]) == 0
    return [row["mean"] for row in json.loads(out.read_text())["correlations"]]


def test_wire_at_the_image_values_is_white_noise_at_init_and_the_recipe_is_not(tmp_path):
    noise = correlations(tmp_path, "--activation", "wire", "--wire_omega0", "20", "--wire_s0", "10")
    recipe = correlations(tmp_path, "--activation", "wire")
    relu = correlations(tmp_path, "--activation", "relu")
    # demo.txt's 4x128 trunk, at d = 0.01 (3 seeds x 4096 points: 0.04, 0.97, 0.43)
    assert abs(noise[0]) < 0.1 and abs(noise[1]) < 0.05
    assert recipe[0] > 0.9 and relu[0] > 0.3
    assert recipe[1] < recipe[0] and relu[1] < relu[0]  # farther points, less alike
