"""rodimus_torch.model.RodimusForCausalLM (the operators assembled into the model) against the
golden logits of the official implementation (tests/data/golden, float32 checkpoints).

Bound, as tests/test_model_golden.cpp: max|logits - expected| <= 1e-4 * max(1, max|expected|)
(f32 arithmetic through every layer against the reference's f32/f64 run).
Device: RODIMUS_TORCH_DEVICE (cpu by default).
"""

import os
import sys
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../examples/torch"))
from rodimus_torch.model import RodimusForCausalLM, load_safetensors  # noqa: E402

DEVICE = torch.device(os.environ.get("RODIMUS_TORCH_DEVICE", "cpu"))
GOLDEN = os.path.join(HERE, "../data/golden")


class GoldenLogits(unittest.TestCase):
    def check(self, folder, weights=None, key="logits"):
        """The model of `weights` (default: folder), computed in f32, against `key` of folder's
        expected.safetensors."""
        expected = load_safetensors(os.path.join(GOLDEN, folder, "expected.safetensors"))
        model = RodimusForCausalLM.from_pretrained(os.path.join(GOLDEN, weights or folder),
                                                   device=DEVICE, dtype=torch.float32)
        with torch.no_grad():
            logits = model(expected["input_ids"].to(DEVICE)).cpu()
        want = expected[key]
        err = (logits.double() - want.double()).abs().max().item()
        bound = 1e-4 * max(1.0, want.abs().max().item())
        self.assertLessEqual(err, bound, f"{folder}: max|logits - expected| = {err:.3e}")

    def test_rodimus_tiny(self):
        self.check("rodimus_tiny")

    def test_rodimus_plus_tiny(self):
        self.check("rodimus_plus_tiny")

    def test_rodimus_plus_opts(self):
        self.check("rodimus_plus_opts")

    def test_bf16_checkpoints_in_f32(self):
        for folder in ("rodimus_tiny", "rodimus_plus_tiny", "rodimus_plus_opts"):
            with self.subTest(folder=folder):
                self.check(folder, folder + "_bf16", "logits_bf16_weights")


if __name__ == "__main__":
    unittest.main()
