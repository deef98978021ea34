"""The rich console: status spinners and progress bars for every step that takes more than a moment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, highlight=False)
if not console.is_terminal:
    console.width = 120  # logs and CI: wide enough for the gate table


def quiet() -> bool:
    return os.environ.get("HARNESS_QUIET") == "1"


@contextmanager
def status(message: str) -> Iterator[None]:
    if quiet():
        yield
        return
    if not console.is_terminal:
        console.print(f"[dim]…[/dim] {message}")
        yield
        return
    with console.status(message):
        yield


def progress(disable: bool = False) -> Progress:
    """A progress bar with count, elapsed time and ETA (renders plainly when not on a terminal)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        disable=disable or quiet(),  # off a terminal rich prints only the final state: fine for CI logs
    )


def quiet_hf_progress() -> None:
    """Silence the libraries' own tqdm bars and log spam; the harness shows its own progress."""
    import warnings

    # one known third-party notice (peft reads a property transformers 5 deprecated), not every FutureWarning:
    # the warnings of the libraries whose internals the harness patches must stay visible
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
    try:
        import datasets

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    except ImportError:
        pass
    import logging

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    try:
        import huggingface_hub

        huggingface_hub.utils.disable_progress_bars()
    except (ImportError, AttributeError):
        pass
    import transformers

    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    try:  # the GGUF reader draws a plain tqdm bar per load, which no setting above reaches
        import transformers.modeling_gguf_pytorch_utils as gguf_utils

        gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    except ImportError:
        pass
