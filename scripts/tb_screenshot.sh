#!/bin/sh
# tb_screenshot.sh LOGDIR OUT.png [TAG_REGEX]: a screenshot of TensorBoard showing the runs
# under LOGDIR (each run's RUN/tb), taken by headless Chromium against `tensorboard --logdir`
# served on 127.0.0.1. TAG_REGEX filters the charts (default: the valid and train curves by
# epoch and the per-step loss and learning rate).
#
# Needs tensorboard (pip install --target DIR tensorboard; PYTHONPATH=DIR, or
# $SENTIBENCH_TB_PYTHONPATH as the tests use) and chromium (Debian: apt-get install chromium).
set -eu
logdir=${1:?usage: tb_screenshot.sh LOGDIR OUT.png [TAG_REGEX]}
out=${2:?usage: tb_screenshot.sh LOGDIR OUT.png [TAG_REGEX]}
tags=${3:-'epoch/valid_acc|epoch/valid_loss|train/loss|train/learning_rate'}
port=${TB_PORT:-6123}
[ -d "$logdir" ] || { echo "tb_screenshot.sh: $logdir: no such directory" >&2; exit 2; }
export PYTHONPATH="${SENTIBENCH_TB_PYTHONPATH:-${PYTHONPATH:-}}"
python3 -m tensorboard.main --logdir "$logdir" --host 127.0.0.1 --port "$port" >/dev/null 2>&1 &
tb=$!
trap 'kill $tb 2>/dev/null || true' EXIT
i=0
until curl -sf "http://127.0.0.1:$port/" >/dev/null; do
	i=$((i + 1))
	[ $i -lt 60 ] || { echo "tb_screenshot.sh: tensorboard did not start on port $port" >&2; exit 1; }
	sleep 1
done
# The tag filter, the smoothing and the SVG renderer (headless Chromium has no WebGL) are
# TensorBoard's URL parameters; virtual time lets the
# page load its data before the picture is taken (TB_WAIT_MS, default 20000 ms of it).
filter=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$tags")
chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,1100 \
	--virtual-time-budget="${TB_WAIT_MS:-20000}" --screenshot="$out" \
	"http://127.0.0.1:$port/?tagFilter=$filter&smoothing=0&forceSVG=true#timeseries" 2>/dev/null
[ -s "$out" ] || { echo "tb_screenshot.sh: no screenshot written" >&2; exit 1; }
echo "$out"
