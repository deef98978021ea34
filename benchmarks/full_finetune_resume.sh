#!/usr/bin/env bash
# A full fine-tune of the embedded SmolLM2-135M (every weight, 8 steps at batch 4) killed with SIGKILL once its
# checkpoint at step 4 is written, resumed with --resume, then gated with the perplexity gate as a candidate.
#     bash benchmarks/full_finetune_resume.sh [WORK_DIR]
# Prints when it was killed, the resumed run's steps / resumed_from / logged steps / peak memory, and the verdict.
set -u
H="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin"
work=${1:-$(mktemp -d /tmp/full-resume-XXXX)}
mkdir -p "$work" && cd "$work" || exit 2
"$H/python" -c "from pathlib import Path; from fine_tune import write_demo_data; write_demo_data(Path('data'), policy=False)"
cat > full.toml <<'TOML'
[model]
base = "smollm2-135m-instruct"
candidate = "run/sft/model"

[fine_tune]
train = "data/train.jsonl"
valid_fraction = 0
method = "full"
learning_rate = 2e-5
warmup_steps = 1
max_steps = 8
batch_size = 4
save_steps = 4
logging_steps = 1

[gates.perplexity]
data = "data/eval.jsonl"
min_relative_improvement = 0.05
TOML
start=$(date +%s)
"$H/harness" train --config full.toml --out run > train1.log 2>&1 &
pid=$!
while [ ! -f run/sft/checkpoints/checkpoint-4/trainer_state.json ] && kill -0 $pid 2>/dev/null; do sleep 0.2; done
kill -9 $pid; wait $pid 2>/dev/null
echo "killed at $(( $(date +%s) - start )) s; model written before the kill: $(test -d run/sft/model && echo yes || echo no)"
"$H/harness" train --config full.toml --out run --resume > train2.log 2>&1; echo "resume exit $?"
"$H/python" -c "
import json; m = json.load(open('run/sft/training_manifest.json'))
print('steps', m['steps'], 'resumed_from', m['resumed_from_step'], 'logged', [r['step'] for r in m['loss_log'] if r['train_loss'] is not None], 'peak MB', m['peak_memory_mb'])"
"$H/harness" gate --config full.toml --out report > gate.log 2>&1; echo "gate exit $?"
grep -A2 '### .*perplexity' report/report.md | tail -1
echo "total $(( $(date +%s) - start )) s; everything is in $work"
