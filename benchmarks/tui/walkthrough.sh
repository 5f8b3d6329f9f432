#!/usr/bin/env bash
# A reviewer's tour of `hub tui` in tmux: builds the demo registry (tiny real adapters,
# offline) in a temporary HUB_HOME, then at 120x40, 80x24 and 60x20 opens each screen with
# real key presses and prints what the terminal shows.
#
#   bash benchmarks/tui/walkthrough.sh            # all three sizes
#   SIZES="80x24" bash benchmarks/tui/walkthrough.sh
#   KEEP=1 ... keeps the session open at the end: tmux attach -t hubtour
set -euo pipefail
cd "$(dirname "$0")/../.."
HUB=${HUB:-hub}
export HUB_HOME=${HUB_HOME:-$(mktemp -d /tmp/hub-tour-XXXX)}
export HF_HUB_OFFLINE=1
SIZES=${SIZES:-"120x40 80x24 60x20"}
S=hubtour

if [ ! -e "$HUB_HOME/registry.db" ]; then
  echo "building the demo registry in $HUB_HOME (tiny real models, offline) …"
  "$HUB" demo --dir "${HUB_HOME%/}-demo" >/dev/null   # models outside HUB_HOME (the write guard refuses inside)
  "$HUB" tag "$("$HUB" list --json | python -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')" prod >/dev/null
fi

show() {  # title; prints the pane
  sleep "${2:-1.2}"
  echo
  echo "━━━ $1 ━━━"
  tmux capture-pane -p -t "$S"
}
keys() { tmux send-keys -t "$S" "$@"; }
esc() { tmux send-keys -t "$S" Escape; sleep 0.5; }   # a key right after Esc would read as alt+key

for size in $SIZES; do
  w=${size%x*}; h=${size#*x}
  tmux kill-session -t "$S" 2>/dev/null || true
  tmux new-session -d -s "$S" -x "$w" -y "$h" "HUB_HOME=$HUB_HOME $HUB tui"
  echo; echo "################ $size ################"
  show "main screen ($size): table, details, footer" 3
  keys / ; keys -l "base:tiny r:8"; show "filter language: base:tiny r:8 (matches highlighted)"
  esc; esc; show "Esc cleared the filter"
  keys s; show "s: sorted by the next column, cursor on the first row"
  keys Space Space; show "two adapters marked"
  keys F1; show "F1: help (every key, mouse, filter language, flags)"
  keys j j j j j; show "help scrolled with j"
  esc; keys 2; show "details tab 2: modules"
  keys c; show "c: check against a base"
  esc; keys t; show "t: tag the marked adapters"
  esc; keys d; show "d: delete asks and names what depends on the marked ones"
  keys n; keys o; show "o: combine form with its live preview" 4
  esc; keys m; show "m: merge form (plan first)"
  esc; keys p; show "p: pull from the Hub"
  esc; keys y; show "y: copy name / sha256 / path"
  esc; keys E; show "E: export as GGUF (file, base, tensor type)"
  esc; keys v; show "v: versions and aliases of the adapter"
  esc; keys a; show "a: add an adapter folder, or scan a tree"
  esc; keys P; show "P: push to the Hub (repo id, base model id for the card)"
  esc; keys T; show "T: task list"
  esc; keys :; keys -l "sor"; show ": command mode (Tab completes)"
  esc
  if [ -z "${KEEP:-}" ]; then keys C-c; sleep 1; fi
done
echo; echo "HUB_HOME was $HUB_HOME"
