"""Loss functions behave as their definitions say."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from acula.aligner.losses import cka_loss, info_nce, linear_cka, masked_mse  # noqa: E402


def test_cka_is_one_for_identical_and_invariant_to_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 16, generator=g)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
    assert abs(float(linear_cka(x, x)) - 1) < 1e-5
    assert abs(float(linear_cka(x, 3.0 * x @ q)) - 1) < 1e-4
    assert float(linear_cka(x, torch.randn(64, 8, generator=g))) < 0.5
    assert float(cka_loss(x, x)) < 1e-5


def test_cka_handles_different_widths():
    x = torch.randn(32, 10)
    y = torch.cat([x, torch.zeros(32, 3)], 1)
    assert abs(float(linear_cka(x, y)) - 1) < 1e-5


def test_info_nce_is_low_for_matched_pairs_and_high_for_shuffled():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(16, 8, generator=g)
    scale = torch.tensor(4.0)
    matched = float(info_nce(a, a, scale))
    shuffled = float(info_nce(a, a[torch.randperm(16, generator=g)], scale))
    assert matched < 0.1 < shuffled


def test_info_nce_temperature_sharpens_the_loss():
    a = torch.nn.functional.normalize(torch.randn(8, 4), dim=-1)
    assert float(info_nce(a, a, torch.tensor(3.0))) < float(info_nce(a, a, torch.tensor(0.0)))


def test_masked_mse_ignores_visible_elements():
    pred, target = torch.zeros(2, 4, 4), torch.ones(2, 4, 4)
    mask = torch.zeros(2, 4, 4)
    mask[:, :2] = 1
    target[:, 2:] = 100.0  # visible: must not count
    assert float(masked_mse(pred, target, mask)) == 1.0
