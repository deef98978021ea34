"""An example plugin: the `answer_chars` gate and the `hf_logged` backend (see pyproject.toml's entry points)."""
