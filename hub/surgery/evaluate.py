"""How close an extracted adapter brings the base to the tuned model, in logits:
‖logits(base + adapter) − logits(tuned)‖ / ‖logits(tuned) − logits(base)‖ on a fixed,
seeded batch of token ids. Loads all three models with transformers and PEFT (whole, on
CPU), so it runs only when asked (`hub extract --eval-logits`)."""

from __future__ import annotations

import torch

BATCH = (4, 32)     # sequences × tokens


def logit_error(base_dir: str, tuned_dir: str, adapter_dir: str, seed: int = 0) -> float:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()   # the report is hub's; keep stderr to its own lines

    def load(path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    def logits(model, ids):
        with torch.no_grad():
            return model(input_ids=ids).logits.double()

    base = load(base_dir)
    vocab = base.config.get_text_config().vocab_size
    ids = torch.randint(0, vocab, BATCH, generator=torch.Generator().manual_seed(seed))
    l_base = logits(base, ids)
    l_tuned = logits(load(tuned_dir), ids)
    l_ext = logits(PeftModel.from_pretrained(base, adapter_dir).eval(), ids)
    denom = float((l_tuned - l_base).norm())
    return float((l_ext - l_tuned).norm()) / denom if denom > 0 else 0.0
