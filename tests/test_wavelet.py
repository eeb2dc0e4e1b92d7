"""The learned wavelet family (codecs/neural/lifting.py): invertible by construction, coded deterministically."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mzc.codecs.neural.lifting import LiftingVR  # noqa: E402 - after the torch check
from mzc.codecs.neural.lifting_coding import WaveletCoder  # noqa: E402 - after the torch check
from mzc.errors import MzcError  # noqa: E402 - after the torch check


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    model = LiftingVR().eval()
    for predictor in model.modules():  # non-zero learned predictors: the transform must stay invertible
        if isinstance(predictor, torch.nn.Conv2d):
            torch.nn.init.normal_(predictor.weight, std=0.05)
    model.requires_grad_(False)
    model.update(force=True)
    return model


def plane(shape=(64, 96), seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    img = np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 300.0) + 0.05 * rng.random(shape)
    return (img / img.max()).astype(np.float32)


def test_the_step_weights_are_cdf97s_synthesis_norms():
    from mzc.codecs.neural.lifting import CDF97_NORMS
    torch.manual_seed(0)
    np.testing.assert_allclose(LiftingVR().synthesis_norms().numpy(), CDF97_NORMS, rtol=2e-3)


def test_the_transform_is_invertible_whatever_its_predictors(net):
    x = torch.rand(1, 1, 64, 96, dtype=torch.float64)
    model = net.double()
    ll, details = model.analyse(x)
    assert float((model.synthesise(ll, details) - x).abs().max()) < 1e-10
    net.float()


def test_round_trip_equals_the_encoders_reconstruction_and_rate_orders_size(net):
    coder, img = WaveletCoder(net), plane()
    sizes = []
    for rate in (0.0, 3.5, 7.0):
        records, recon = coder.encode(img, rate=rate)
        back = coder.decode(records, *img.shape, rate=rate)
        np.testing.assert_array_equal(back, recon)
        sizes.append(sum(len(s) for s in records[0][0]))
    assert sizes[0] < sizes[1] < sizes[2]


def test_decode_is_bit_identical_with_one_or_two_threads(net):
    coder, img = WaveletCoder(net), plane()
    records, _ = coder.encode(img, rate=4.0)
    threads = torch.get_num_threads()
    try:
        outs = []
        for n in (1, 2):
            torch.set_num_threads(n)
            outs.append(coder.decode(records, *img.shape, rate=4.0))
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_damaged_records_are_errors_not_garbage(net):
    coder, img = WaveletCoder(net), plane((64, 64))
    records, _ = coder.encode(img, rate=3.0)
    strings, crc_idx, crc_sym = records[0]
    bad = [[], [[strings, crc_idx]], [[strings[:-1], crc_idx, crc_sym]], [[strings, crc_idx, crc_sym ^ 1]],
           [[[b""] * len(strings), crc_idx, crc_sym]], [[strings, crc_idx, "x"]]]
    for record in bad:
        with pytest.raises(MzcError):
            coder.decode(record, 64, 64, rate=3.0)
    with pytest.raises(MzcError, match="rate parameter"):
        coder.decode(records, 64, 64, rate=9.0)
