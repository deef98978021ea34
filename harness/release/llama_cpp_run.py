"""Greedy generation with llama.cpp (llama-cpp-python) in its own process, from given token ids.

python -m harness.release.llama_cpp_run MODEL.gguf REQUEST.json   ->  one JSON line: {"version", "outputs"}
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    import llama_cpp

    path, request = (argv or sys.argv[1:])[:2]
    req = json.loads(open(request, encoding="utf-8").read())
    stop = set(req["stop"])
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=2, verbose=False, seed=0)
    stop.add(llm.token_eos())
    outputs = []
    for ids in req["prompts"]:
        got: list[int] = []
        for t in llm.generate(ids, temp=0.0, top_k=1, reset=True):
            if t in stop or len(got) >= req["max_new_tokens"]:
                break
            got.append(int(t))
        outputs.append(got)
    print(json.dumps({"version": llama_cpp.__version__, "outputs": outputs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
