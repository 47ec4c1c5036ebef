#!/usr/bin/env python3
"""Read a TensorBoard log directory (or one event file) with TensorBoard's own reader, the
EventAccumulator, and print what it holds as JSON on stdout:

  {"scalars": {TAG: [[STEP, VALUE, WALL_TIME], ...]},   every scalar, in the reader's order
   "hparams": {NAME: VALUE} or null,                   the HParams plugin's session start info
   "group_name": STR or null}

internal/tensorboard's test runs it (when SENTIBENCH_TB_PYTHONPATH names a directory holding the
`tensorboard` package) to check that the event files it writes are read back as written.

Usage:  PYTHONPATH=DIR python3 scripts/tb_read.py LOGDIR
"""
import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.hparams import plugin_data_pb2


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tb_read.py LOGDIR")
    # 0: keep every event (the default keeps a reservoir sample of 10,000 scalars per tag).
    acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.TENSORS: 0})
    acc.Reload()
    out = {"scalars": {}, "hparams": None, "group_name": None}
    for tag in acc.Tags()["scalars"]:
        out["scalars"][tag] = [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)]
    content = acc.PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    if hparams_metadata.SESSION_START_INFO_TAG in content:
        data = plugin_data_pb2.HParamsPluginData.FromString(content[hparams_metadata.SESSION_START_INFO_TAG])
        info = data.session_start_info
        out["hparams"] = {name: getattr(v, v.WhichOneof("kind")) for name, v in info.hparams.items()}
        out["group_name"] = info.group_name
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
