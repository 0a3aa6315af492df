"""One file per model; each registers itself with benchmarks.registry.register."""
