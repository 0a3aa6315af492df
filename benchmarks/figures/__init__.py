"""Figures drawn from result files alone (tables, logs), never by running a model."""
