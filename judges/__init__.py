"""LLM judges (pairwise blind A/B, rubric scoring, OpenAI-compatible and local backends).

Not built yet: the `judge` gate is tracked as its own issue. Nothing here is registered as a gate,
so a config that names `[gates.judge]` is refused with the list of gates that exist.
"""

__all__: list[str] = []
