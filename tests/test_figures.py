import pandas as pd
import pytest

from benchmarks.figures.pretraining import plot_loss_curves
from celllm.errors import InputError


def test_loss_curves_written_as_png_and_pdf(tmp_path):
    log = pd.DataFrame({"step": range(1, 31), "contrastive": range(30, 0, -1), "mlm": [1.0] * 30, "tissue": [0.7] * 30})
    log.to_csv(tmp_path / "train_log.csv", index=False)
    plot_loss_curves(tmp_path / "train_log.csv", tmp_path / "losses.png")
    assert (tmp_path / "losses.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "losses.pdf").read_bytes()[:4] == b"%PDF"


def test_a_log_without_losses_is_refused(tmp_path):
    pd.DataFrame({"step": [1], "loss": [1.0]}).to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(InputError, match="other.csv: not a pretraining log"):
        plot_loss_curves(tmp_path / "other.csv", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
