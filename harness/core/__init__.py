"""The bottom layer: errors, files, paths, hashing, data, the measurement cache, model files and loading, the
Runtime engines, tokenizer facts, the console, tracking and the manifests. It imports nothing of the packages above
it (gates, probes, judges, fine_tune, reports, nor the top of `harness`); the import-linter `layers` contract in
pyproject.toml enforces it."""
