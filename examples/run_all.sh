#!/usr/bin/env bash
# Run every example; exit non-zero if any of them fails.
#
#   examples/run_all.sh                 # each example starts its own embedded local server
#   TINKER_BASE_URL=... TINKER_API_KEY=... examples/run_all.sh   # against another server
#   PYTHON=python3 examples/run_all.sh  # choose the interpreter (default: the repo's .venv)
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$repo/.venv/bin/python" ]]; then PYTHON="$repo/.venv/bin/python"; else PYTHON=python3; fi
fi

examples=(
    training_loop.py
    forward_inference.py
    custom_loss.py
    regularizers.py
    structured_regularizers.py
    sampling_basics.py
    concurrent_sampling.py
    async_usage.py
    sessions.py
    checkpoints.py
    checkpoint_download.py
    weights_inspection.py
    resume_from_state.py
    rl_importance_sampling.py
    telemetry_metrics.py
    retries_and_faults.py
    recovery.py
    kimi_k2_tokenization.py
    llama3_tokenizer_override.py
    model_info_and_unload.py
    telemetry_reporter.py
    adam_and_chunking.py
    cli_sampling_and_cleanup.py
    multimodal.py
    heartbeat_probe.py
    queue_state_observer.py
)

failed=()
for example in "${examples[@]}"; do
    echo "=== $example"
    start=$(date +%s%N)
    if "$PYTHON" "$here/$example"; then
        status=ok
    else
        status=FAILED
        failed+=("$example")
    fi
    elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
    printf '=== %s %s (%d.%01ds)\n\n' "$example" "$status" $((elapsed_ms / 1000)) $((elapsed_ms % 1000 / 100))
done

if (( ${#failed[@]} )); then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all ${#examples[@]} examples passed"
