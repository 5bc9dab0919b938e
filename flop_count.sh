#!/usr/bin/env bash
# Print the FLOP table of every benchmark model as JSON (see util/flop_count.py --help).
#   ./flop_count.sh > config/model_map.json
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" -m util.flop_count "$@"
