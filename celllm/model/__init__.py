"""The CellLM encoder and its attention."""

from celllm.model.encoder import CellLMEncoder, EncoderConfig

__all__ = ["CellLMEncoder", "EncoderConfig"]
