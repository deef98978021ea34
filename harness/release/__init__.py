"""Release engineering, what ships: merge, GGUF export, the release bundle and its rollback check, serving
measurement, llama.cpp runs. The pipeline core (harness/) asks for these through measurements."""
