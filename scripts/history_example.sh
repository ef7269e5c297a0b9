#!/usr/bin/env bash
# The README's compare table and history plot, from real runs of the Ollama-API simulator:
# two runs as usual, one with decode 30 % slower (the simulator's decode_slowdown fault, the
# way a Thor slowed down after many reloads), one back to normal, one at another num_ctx.
# Usage: bash scripts/history_example.sh [OUT_DIR]   (default results/history_example)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/results/history_example}"
set +u
# shellcheck disable=SC1091
. "$ROOT/scripts/env.sh"
set -u
mkdir -p "$OUT"
RESULTS="$OUT/runs"
DB="$OUT/history.sqlite3"
rm -rf "$RESULTS" "$DB"

python -m shadowhound_llm_bench.sim --scenario small --port 0 --quiet > "$OUT/sim.out" 2>&1 &
SIM_PID=$!
trap 'kill "$SIM_PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$OUT/sim.out" && break; sleep 0.1; done
SIM="$(awk '/listening on/ {print $4}' "$OUT/sim.out")"

bench() {
    shadowhound-llm-bench run --host "$SIM" --models qwen2.5:0.5b llama3.2:1b \
        --repetitions 5 --quiet --results-dir "$RESULTS" --history-db "$DB" "$@"
}
faults() { curl -sf -X POST "$SIM/sim/faults" -d "$1" > /dev/null; }

bench --name monday
bench --name tuesday
faults '{"decode_slowdown": {"after_cycles": 0, "fraction": 0.3}}'
bench --name wednesday
faults '{"reset": true}'
bench --name thursday
bench --name ctx8k --num-ctx 8192

cd "$RESULTS"
shadowhound-llm-bench compare ./*_monday ./*_tuesday ./*_wednesday ./*_thursday ./*_ctx8k \
    --metric decode_tps --metric ttft_ms --output "$OUT/compare.md" --plot "$OUT/compare.png"
shadowhound-llm-bench history --db "$DB" --model qwen2.5:0.5b --metric decode_tps \
    --output "$OUT/history.md" --plot "$OUT/history.png"
echo "written: $OUT/compare.md $OUT/compare.png $OUT/history.md $OUT/history.png"
