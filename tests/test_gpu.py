"""Checks that need a CUDA GPU (marked gpu; skipped without one). benchmarks/gpu_train.sh runs them on a
lent GPU machine."""

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def test_enhancing_on_the_gpu_matches_the_cpu():
    from denoiselab.core.enhancer import load_model

    x = np.random.default_rng(0).standard_normal((2, 16000 * 7 + 123)).astype(np.float32) * 0.1
    cpu = load_model("default").enhance(x, 16000)
    gpu = load_model("default", accelerator="cuda").enhance(x, 16000)
    assert np.abs(cpu - gpu).max() < 1e-3


def test_mixing_on_the_gpu_matches_the_cpu():
    from denoiselab.training.data.mixing import Mixer

    mixer = Mixer(mode="snr", snr_db=(0.0, 10.0))
    g = torch.Generator().manual_seed(0)
    batch = {"clean": torch.randn(4, 16000, generator=g) * 0.1, "noise": torch.randn(4, 1, 16000, generator=g),
             "clean_gain": torch.ones(4), "noise_gain": torch.ones(4, 1), "snr_db": torch.tensor([0.0, 3, 6, 9])}
    cpu = mixer.mix(batch)
    gpu = mixer.mix({k: v.cuda() for k, v in batch.items()})
    for k in ("noisy", "clean", "noise"):
        assert torch.allclose(cpu[k], gpu[k].cpu(), atol=1e-5)


def test_a_few_bf16_mixed_training_steps_on_the_gpu(corpus, cache_dir, tmp_path):
    from denoiselab.training.instantiate import close_loggers
    from denoiselab.training.train import run

    from hydra_helpers import TINY_NET, compose_train, corpus_overrides

    cfg = compose_train(["experiment=tiny", *TINY_NET["dpunet"], "model/net=dpunet", "trainer=gpu",
                         "trainer.precision=bf16-mixed", *corpus_overrides(corpus, cache_dir), "trainer.max_steps=6",
                         "callbacks.quality=null"], tmp_path / "run")
    try:
        metrics = run(cfg)
    finally:
        close_loggers()
    assert np.isfinite(metrics["val/si_sdr"])
