"""pix2pix networks and losses (model/networks.py, model/losses.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from model.losses import GANLoss, ssim
from model.networks import PatchDiscriminator, UNetGenerator, count_parameters, init_weights


@pytest.mark.parametrize(
    ("net", "expected"),
    [
        (lambda: UNetGenerator(1, 1, 256, 64), 54_407_809),
        (lambda: UNetGenerator(2, 1, 256, 64), 54_408_833),
        (lambda: UNetGenerator(1, 1, 128, 64), 41_822_849),
        (lambda: PatchDiscriminator(2, 64), 2_764_609),
        (lambda: PatchDiscriminator(3, 64), 2_765_633),
    ],
)
def test_parameter_counts_match_reference_pix2pix(net, expected):
    assert count_parameters(net()) == expected


def test_shapes_depth_and_output_range():
    g = init_weights(UNetGenerator(2, 1, 64, 8))
    x = torch.randn(3, 2, 64, 64)
    y = g(x)
    assert y.shape == (3, 1, 64, 64) and y.abs().max() <= 1
    assert sum(isinstance(m, torch.nn.Dropout) for m in g.modules()) == 1  # 6 levels: 1 inner
    assert sum(isinstance(m, torch.nn.Dropout) for m in UNetGenerator(1, 1, 256, 8).modules()) == 3
    d = PatchDiscriminator(3, 8)
    assert d(torch.randn(2, 3, 256, 256)).shape == (2, 1, 30, 30)  # 70x70 receptive field patches
    with pytest.raises(ValueError, match="power of two"):
        UNetGenerator(1, 1, 100)


def test_init_follows_pix2pix():
    g = init_weights(UNetGenerator(1, 1, 256, 64))
    conv = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(conv.mean().item()) < 1e-3 and abs(conv.std().item() - 0.02) < 1e-3
    bn = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 5e-3


def test_ssim_matches_scikit_image():
    rng = np.random.default_rng(1)
    a = np.clip(rng.normal(0, 0.5, (48, 48)), -1, 1)
    b = np.clip(a + rng.normal(0, 0.2, a.shape), -1, 1)
    ref = structural_similarity(
        a, b, data_range=2.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    ours = ssim(torch.tensor(b)[None, None], torch.tensor(a)[None, None]).item()
    assert ours == pytest.approx(ref, abs=1e-6)
    assert ssim(torch.tensor(a)[None, None], torch.tensor(a)[None, None]).item() == pytest.approx(
        1.0
    )


def test_gan_loss_is_bce_on_logits():
    logits = torch.tensor([0.0, 2.0, -1.0])
    expected_real = -torch.log(torch.sigmoid(logits)).mean()
    assert GANLoss()(logits, True).item() == pytest.approx(expected_real.item(), rel=1e-6)
