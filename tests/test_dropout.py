import torch

from celllm.model import CellLMEncoder, EncoderConfig
from celllm.model.dropout import CellDropout, uniform_from_seeds
from celllm.tokens import TokenConfig, pad_batch
from tests.fixtures.data import token_cells


def test_uniforms_depend_on_seed_position_and_site_only():
    seeds = torch.tensor([3, 99, 3])
    u = uniform_from_seeds(seeds, 7, 5, site=1)
    assert u.shape == (3, 7, 5) and (u >= 0).all() and (u < 1).all()
    torch.testing.assert_close(u[0], u[2], rtol=0, atol=0)  # same seed, same draws
    assert not torch.equal(u[0], u[1])
    assert not torch.equal(u, uniform_from_seeds(seeds, 7, 5, site=2))
    torch.testing.assert_close(uniform_from_seeds(seeds, 4, 5, site=1), u[:, :4], rtol=0, atol=0)  # padding-free
    assert abs(u.mean().item() - 0.5) < 0.05


def test_cell_dropout_keeps_the_expected_share_and_scales():
    x = torch.ones(4, 50, 40)
    out = CellDropout(0.25, site=0).train()(x, torch.arange(4))
    kept = out != 0
    assert abs(kept.float().mean().item() - 0.75) < 0.03
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / 0.75))
    assert torch.equal(CellDropout(0.25, site=0).eval()(x, torch.arange(4)), x)


def test_training_output_of_a_cell_does_not_depend_on_its_batch():
    torch.manual_seed(0)
    cfg = TokenConfig()
    encoder = CellLMEncoder(50, cfg.n_bin_tokens, EncoderConfig(dim=16, depth=2, heads=2, dim_head=8, nb_features=12, dropout=0.3)).train()
    cells = token_cells(5)
    seeds = torch.tensor([11, 12, 13, 14, 15])
    together = encoder(**pad_batch(cells, 50, cfg), seeds=seeds)[:, 0]
    for i in range(5):
        alone = encoder(**pad_batch([cells[i]], 50, cfg), seeds=seeds[i : i + 1])[:, 0]
        torch.testing.assert_close(together[i], alone[0], rtol=1e-5, atol=1e-6)
