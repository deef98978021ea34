"""The row shape every demo generator writes."""

from __future__ import annotations


def chat_row(id: str, prompt: str, answer: str, **fields: object) -> dict:
    """A TRL conversational prompt/completion row, plus fields for checking and auditing."""
    return {
        "id": id,
        "prompt": [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": answer}],
        **fields,
    }
