#!/usr/bin/env bash
# The whole Seaquest chain, each stage resuming where it stopped (Ctrl-C or kill -9, then run it again):
#   1. DQN on Seaquest RAM, every episode recorded (scripts/seaquest_dqn.sh; runs for DQN_MINUTES, then reports);
#   2. the 500k-step replay subset drawn from the recording (kept once made);
#   3. the Decision Transformer, linear against Fourier heads × the paper's seeds, and the table
#      (scripts/seaquest_dt.sh; finished runs are kept).
#
#   scripts/seaquest.sh [DQN_MINUTES]      default 0: train no further than the recording already reaches
#                                          (the first run needs minutes > 0: there is no recording yet)
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-0}"
if [ "$minutes" -gt 0 ] || [ ! -f runs/seaquest/dqn-seaquest-ram/episodes/metadata.json ]; then
  scripts/seaquest_dqn.sh "$(( minutes > 0 ? minutes : 60 ))"
fi
scripts/seaquest_dt.sh
