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


    def test_chunked_prefill_then_decode_with_padding(self):
        """Each sequence in a permuted slot of a larger pool: a packed prefill of a prefix, a
        second packed chunk continuing it, then one decode step per token with a padding row:
        the logits of every position equal the golden full-sequence logits."""
        for folder in ("rodimus_plus_tiny", "rodimus_plus_opts", "rodimus_tiny"):
            with self.subTest(folder=folder):
                expected = load_safetensors(os.path.join(GOLDEN, folder, "expected.safetensors"))
                ids, want = expected["input_ids"].to(DEVICE), expected["logits"]
                B, T = ids.shape
                model = RodimusForCausalLM.from_pretrained(os.path.join(GOLDEN, folder),
                                                           device=DEVICE)
                state = model.make_state(B + 2, T)
                slots = torch.arange(B + 1, 0, -1, dtype=torch.int32, device=DEVICE)[:B]
                got = torch.full((B, T, want.shape[-1]), float("nan"))
                with torch.no_grad():
                    a, b = T // 3, T // 3 + 17  # prefix lengths differ per sequence
                    for lo, hi in ((0, a), (a, b)):
                        lens = [hi - lo - n % 2 * (n > 0) for n in range(B)]  # uneven chunks
                        starts = [int(state.seen[s]) for s in slots.tolist()]
                        packed = torch.cat([ids[n, starts[n]:starts[n] + lens[n]] for n in range(B)])
                        cu = torch.tensor([0] + lens, device=DEVICE).cumsum(0)
                        logits = model.prefill(state, packed, cu, slots).cpu()
                        for n in range(B):
                            got[n, starts[n]:starts[n] + lens[n]] = logits[int(cu[n]):int(cu[n + 1])]
                    pad = torch.tensor([-1], dtype=torch.int32, device=DEVICE)
                    while True:
                        pos = [int(state.seen[s]) for s in slots.tolist()]
                        if min(pos) >= T:
                            break
                        rows = [n for n in range(B) if pos[n] < T]
                        step_ids = torch.stack([ids[n, pos[n]] for n in rows] + [ids[0, 0]])
                        step_slots = torch.cat([slots[rows], pad])
                        logits = model.decode(state, step_ids, step_slots).cpu()
                        for i, n in enumerate(rows):
                            got[n, pos[n]] = logits[i]
                err = (got.double() - want.double()).abs().max().item()
                bound = 1e-4 * max(1.0, want.abs().max().item())
                self.assertLessEqual(err, bound, f"{folder}: chunked + decode, error {err:.3e}")
                self.assertEqual(int(state.seen[0]), 0, "the unused slot 0 was touched")
                self.assertEqual(int(state.seen[B + 1]), T, "slot of sequence 0")

    @unittest.skipUnless(hasattr(torch, "compile") and DEVICE.type == "cuda",
                         "torch.compile of the model: PyTorch 2 on CUDA (the GPU machine)")
    def test_torch_compile(self):
        """torch.compile (inductor: the operators run as opaque kernels through their fake
        implementations) of the whole forward and of a decode step: the compiled forward
        reproduces the golden logits; compiled decode steps equal eager ones on a twin state."""
        folder = "rodimus_plus_tiny"
        expected = load_safetensors(os.path.join(GOLDEN, folder, "expected.safetensors"))
        model = RodimusForCausalLM.from_pretrained(os.path.join(GOLDEN, folder), device=DEVICE)
        ids, want = expected["input_ids"].to(DEVICE), expected["logits"]
        with torch.no_grad():
            logits = torch.compile(model)(ids).cpu()
        err = (logits.double() - want.double()).abs().max().item()
        bound = 1e-4 * max(1.0, want.abs().max().item())
        self.assertLessEqual(err, bound, f"compiled forward: max|logits - expected| = {err:.3e}")

        B, T = ids.shape
        eager_state, compiled_state = model.make_state(B + 1, T), model.make_state(B + 1, T)
        slots = torch.tensor(list(range(1, B + 1)) + [-1], dtype=torch.int32, device=DEVICE)
        step = torch.compile(model.decode)
        with torch.no_grad():
            for t in range(min(T, 6)):
                step_ids = torch.cat([ids[:, t], ids[:1, 0]])  # the last row is padding
                a = model.decode(eager_state, step_ids, slots)[:B]
                b = step(compiled_state, step_ids, slots)[:B]
                d = (a.double() - b.double()).abs().max().item()
                self.assertLessEqual(d, 1e-5 * max(1.0, a.abs().max().item()),
                                     f"compiled decode step {t}: max|eager - compiled| = {d:.3e}")


if __name__ == "__main__":
    unittest.main()
