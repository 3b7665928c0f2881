"""mf's fast training: closed-form steps equal torch's Adam, no torch._dynamo warm-up, the
Trainer's optimizer-less mode, `adam_eps`, and ML-100K's fixed-epoch tuned config.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from movierec.errors import ConfigError
from movierec.experiments import TunedConfig
from movierec.models.mf import BiasedMF, _AdamStep
from movierec.training.options import RuntimeOptions
from movierec.training.trainer import Trainer, tensor_batches

ROOT = Path(__file__).resolve().parents[1]
TUNED = ROOT / "configs" / "tuned" / "ml-100k" / "ml100k-folds" / "mf.json"
SEED0 = RuntimeOptions(seed=0)
FAST = dict(dim=16, epochs=6)


def _tables(model: BiasedMF) -> np.ndarray:
    return np.hstack([model.user_embeddings_.ravel(), model.item_embeddings_.ravel(),
                      model.user_bias_, model.item_bias_])


@pytest.mark.parametrize("params", [{}, {"adam_eps": 1e-4, "output_range": True}])
def test_closed_form_steps_train_as_torch_adam(small_split, monkeypatch, params):
    """The one-process path (closed-form gradient + `_AdamStep`) learns the weights the
    network's forward/backward with `torch.optim.Adam(fused=True)` learns (DDP's path)."""
    fast = BiasedMF(**FAST, **params).fit(small_split.train, runtime=SEED0)
    monkeypatch.setattr(BiasedMF, "_closed_form_steps", lambda self: False)
    reference = BiasedMF(**FAST, **params).fit(small_split.train, runtime=SEED0)
    assert fast.best_epoch_ == reference.best_epoch_
    np.testing.assert_allclose(_tables(fast), _tables(reference), rtol=1e-5, atol=1e-6)
    assert fast.history_.column("train_loss") == pytest.approx(reference.history_.column("train_loss"), rel=1e-5)


def test_adam_step_without_the_fused_kernel_is_the_same_update():
    """Torch builds without `torch._fused_adam_` take the plain-operation branch: same update."""
    gen = torch.Generator().manual_seed(0)
    start = [torch.randn(7, 5, generator=gen), torch.randn(3, 5, generator=gen)]
    grads = [[torch.randn(7, 5, generator=gen), torch.randn(3, 5, generator=gen)] for _ in range(4)]
    tables = {}
    for fused in (True, False):
        params = [t.clone() for t in start]
        step = _AdamStep(tuple(params), lr=0.05, eps=1e-3)
        step.fused = fused
        for g in grads:
            step.step(tuple(g))
        tables[fused] = params
    reference = [t.clone().requires_grad_() for t in start]
    opt = torch.optim.Adam(reference, lr=0.05, eps=1e-3, foreach=False)
    for g in grads:
        for p, grad in zip(reference, g):
            p.grad = grad.clone()
        opt.step()
    for fused in (True, False):
        for mine, theirs in zip(tables[fused], reference):
            torch.testing.assert_close(mine, theirs.detach(), rtol=1e-5, atol=1e-6)


def test_a_fit_does_not_import_torch_dynamo(tmp_path):
    """torch.optim's first call imports torch._dynamo (1-3 s, a fresh process's first fit);
    mf's closed-form steps never do."""
    code = (
        "import sys\n"
        "from movierec.data import load_movielens\n"
        "from movierec.models.mf import BiasedMF\n"
        "ds = load_movielens('ml-100k')\n"
        "BiasedMF(dim=8, epochs=2, patience=0).fit(ds.subset(ds.user_idx < 100))\n"
        "BiasedMF(dim=8, epochs=3).fit(ds.subset(ds.user_idx < 100))\n"
        "print('dynamo imported:', 'torch._dynamo' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "dynamo imported: False" in proc.stdout


def test_trainer_without_an_optimizer_lets_the_loss_take_the_step():
    """optimizer=None: `loss_fn` updates the parameters itself; nothing is backpropagated."""
    weight = torch.nn.Parameter(torch.zeros(3), requires_grad=False)
    module = torch.nn.Module()
    module.weight = weight
    data = torch.arange(12, dtype=torch.float32)
    seen = []

    def step(m, batch):
        (values,) = batch
        seen.append(len(values))
        m.weight.add_(1.0)  # the "update"
        return values.mean()

    history = Trainer(max_epochs=2, patience=0).fit(module, None, lambda: tensor_batches((data,), 5, shuffle=False),
                                                   step)
    assert seen == [5, 5, 2] * 2 and weight.tolist() == [6.0, 6.0, 6.0] and weight.grad is None
    assert history.column("train_loss") == pytest.approx([data.mean().item()] * 2)
    with pytest.raises(ValueError, match="after_backward"):
        Trainer(max_epochs=1).fit(module, None, lambda: [(data,)], step, after_backward=lambda: None)


def test_adam_eps_is_a_checked_hyperparameter(small_split):
    for bad in (0.0, -1e-4):
        with pytest.raises(ConfigError, match="adam_eps"):
            BiasedMF(adam_eps=bad).fit(small_split.train)
    plain = BiasedMF(**FAST).fit(small_split.train, runtime=SEED0)
    damped = BiasedMF(adam_eps=1e-4, **FAST).fit(small_split.train, runtime=SEED0)
    assert damped.get_params()["adam_eps"] == 1e-4
    assert not np.allclose(_tables(plain), _tables(damped))


def test_tuned_config_trains_once_for_its_chosen_epochs(small_split):
    """ML-100K's tuned mf config is one fixed-epoch run (no hold-out, no refit), and its epoch
    count is the one its validation chose."""
    cfg = TunedConfig.load(TUNED)
    doc = json.loads(TUNED.read_text())
    assert cfg.params["patience"] == 0
    assert cfg.params["epochs"] == doc["validation"]["best_epoch"] <= doc["validation"]["max_epochs"]
    model = BiasedMF(**cfg.params).fit(small_split.train, runtime=SEED0)
    records = model.history_.records
    assert len(records) == cfg.params["epochs"] and model.best_epoch_ == cfg.params["epochs"]
    assert all("val" not in r for r in records)
