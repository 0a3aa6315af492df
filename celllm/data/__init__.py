"""Datasets that need no download: the simulator and scanpy's pbmc68k_reduced."""
