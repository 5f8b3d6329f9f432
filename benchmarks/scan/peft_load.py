"""The PEFT way to read adapters, for comparison with `hub scan`: for every adapter
folder under DIR, PeftConfig.from_pretrained + safetensors.torch.load_file.

Prints one JSON line: {"import_s", "loop_s", "count", "bytes"}.
"""

from __future__ import annotations

import json
import os
import sys
import time


def main(root: str) -> None:
    t0 = time.perf_counter()
    from peft import PeftConfig
    from safetensors.torch import load_file

    t1 = time.perf_counter()
    count = nbytes = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if "adapter_config.json" not in filenames:
            continue
        PeftConfig.from_pretrained(dirpath)
        tensors = load_file(os.path.join(dirpath, "adapter_model.safetensors"))
        nbytes += sum(t.numel() * t.element_size() for t in tensors.values())
        count += 1
        del tensors
    t2 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "loop_s": t2 - t1, "count": count, "bytes": nbytes}))


if __name__ == "__main__":
    main(sys.argv[1])
