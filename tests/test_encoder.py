import numpy as np
import torch

from celllm.model import CellLMEncoder, EncoderConfig
from celllm.tokens import TokenConfig, pad_batch
from tests.fixtures.data import token_cells


def _encoder():
    torch.manual_seed(0)
    return CellLMEncoder(
        n_genes=50, n_bin_tokens=TokenConfig().n_bin_tokens, cfg=EncoderConfig(dim=16, depth=2, heads=2, dim_head=8, nb_features=12)
    ).eval()


def test_cell_embedding_does_not_depend_on_batch_or_padding():
    encoder, cfg, cells = _encoder(), TokenConfig(), token_cells(6)
    with torch.no_grad():
        together = encoder.embed(**pad_batch(cells, 50, cfg))
        for i, cell in enumerate(cells):
            alone = encoder.embed(**pad_batch([cell], 50, cfg))
            # extra padding: batch it with a cell much longer than any other
            long_cell = (np.arange(45), np.zeros(45, dtype=int))
            padded = encoder.embed(**pad_batch([cell, long_cell], 50, cfg))[0]
            torch.testing.assert_close(together[i], alone[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(padded, alone[0], rtol=1e-5, atol=1e-6)


def test_padding_token_content_is_ignored():
    encoder, cfg = _encoder(), TokenConfig()
    batch = pad_batch(token_cells(3), 50, cfg)
    scrambled = {k: v.clone() for k, v in batch.items()}
    pad = ~batch["mask"]
    scrambled["gene_ids"][pad] = 7  # a real gene id where padding sits
    scrambled["bins"][pad] = 3
    with torch.no_grad():
        torch.testing.assert_close(encoder.embed(**batch), encoder.embed(**scrambled), rtol=0, atol=0)


def test_paper_size_is_about_52m_parameters():
    encoder = CellLMEncoder(19_379, TokenConfig().n_bin_tokens, EncoderConfig())
    assert 50e6 < sum(p.numel() for p in encoder.parameters()) < 54e6
