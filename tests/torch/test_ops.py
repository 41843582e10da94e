"""torch.ops.rodimus.* against plain-PyTorch float64 references (issue 11).

Run: /usr/bin/python3 -m unittest discover -s tests/torch -v   (scripts/test.sh stage 6)
Device: RODIMUS_TORCH_DEVICE=cuda runs the same tests on CUDA tensors (scripts/torch_gpu_check.sh),
plus a CUDA-graph capture of the engine operators with padded slots.
Seed: RODIMUS_TEST_SEED (fresh by default, printed on failure to replay).

Tolerances: every reference runs in float64 on the inputs as stored (16-bit inputs converted
exactly), and errors are compared relative to max(floor, max|want|), as tests/cases/*_cases.hpp do:
  f32 outputs and states  1e-5 GLA, 1e-5 conv (f32 arithmetic against f64; decays are <= 1 so
                          errors do not grow along T)
  bf16 o / y              2^-7: the reference is not rounded, and rounding to bf16 (8 significant
                          bits) moves a value by up to half a step, 2^-8 of it, which for the
                          largest element is the whole 2^-8 (measured: up to 0.94 of it); twice
                          that leaves room for the f32 arithmetic
  f16 o / y               2^-10 (half a step is at most 2^-11 of the value, plus f32)
  states                  GLA states stay f32 (1e-5); conv states are copies of the inputs (exact)
Outputs are allocated by the operators, so they cannot be filled with NaN beforehand; instead the
allocator is handed a NaN-filled block of the same size just before each call (poison_allocator),
which the caching CUDA allocator reuses, and every state row an operator must not touch is
compared bit for bit.
"""

import os
import sys
import unittest

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../examples/torch"))
import rodimus_torch as rt  # noqa: E402

DEVICE = torch.device(os.environ.get("RODIMUS_TORCH_DEVICE", "cpu"))
SEED = int(os.environ.get("RODIMUS_TEST_SEED", str(int.from_bytes(os.urandom(4), "little"))))
TOL = {torch.float32: 1e-5, torch.bfloat16: 2.0**-7, torch.float16: 2.0**-10}
STATE_TOL = 1e-5
DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def gen(salt):
    g = torch.Generator()
    g.manual_seed(SEED * 1000003 + salt)
    return g


def randn(g, *shape, dtype=torch.float32, scale=1.0):
    return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).to(DEVICE)


def log_decay(g, *shape, dtype=torch.float32):
    """g <= 0 over strong and weak decays: logsigmoid of a wide normal, a few -1e4 entries."""
    x = torch.nn.functional.logsigmoid(torch.randn(*shape, generator=g, dtype=torch.float64) * 4)
    x = torch.where(torch.rand(*shape, generator=g, dtype=torch.float64) < 0.02,
                    torch.full_like(x, -1e4), x)
    return x.to(dtype).to(DEVICE)


def poison_allocator(numel):
    """Hands the allocator a NaN block of at least numel f32 elements, then frees it."""
    block = torch.full((max(int(numel), 1) + 64,), float("nan"), device=DEVICE)
    del block


def check_close(tc, got, want, rel, name, floor=1e-3):
    got64 = got.detach().to("cpu", torch.float64)
    want64 = want.detach().to("cpu", torch.float64)
    tc.assertEqual(tuple(got64.shape), tuple(want64.shape), name)
    err = (got64 - want64).abs().max().item() if want64.numel() else 0.0
    bound = rel * max(floor, want64.abs().max().item() if want64.numel() else 0.0)
    if not err <= bound:  # also catches NaN
        tc.fail(f"{name}: max|got - want| = {err:.3e} > {bound:.3e} (RODIMUS_TEST_SEED={SEED})")


# ---- float64 references (plain PyTorch loops, docs/MODEL.md §2.4 and §2.3) ----

def ref_gla(q, k, v, g, scale, S):
    """One sequence: q, k, g (T, H, K), v (T, H, V), S (H, K, V); returns o (T, H, V), S."""
    q, k, v, g = (t.to("cpu", torch.float64) for t in (q, k, v, g))
    S = S.to("cpu", torch.float64).clone()
    o = torch.zeros(q.shape[0], q.shape[1], v.shape[2], dtype=torch.float64)
    for t in range(q.shape[0]):
        S = torch.exp(g[t])[:, :, None] * S + k[t][:, :, None] * v[t][:, None, :]
        o[t] = scale * torch.einsum("hk,hkv->hv", q[t], S)
    return o, S


def ref_conv(x, weight, bias, state, silu):
    """One sequence: x (C, L), state (C, W) the last W inputs; returns y (C, L), final state."""
    x, state = x.to("cpu", torch.float64), state.to("cpu", torch.float64)
    w = weight.to("cpu", torch.float64)
    W = w.shape[1]
    full = torch.cat([state, x], dim=1)  # inputs from x_{-W} on
    y = torch.zeros_like(x)
    for t in range(x.shape[1]):
        acc = (w * full[:, t + 1:t + 1 + W]).sum(1)
        if bias is not None:
            acc = acc + bias.to("cpu", torch.float64)
        y[:, t] = torch.nn.functional.silu(acc) if silu else acc
    return y, full[:, -W:]


class GlaOps(unittest.TestCase):
    H, K, V = 3, 20, 33  # odd sizes: K, V no multiple of a SIMD width or tile

    def inputs(self, salt, B, T, dtype):
        g = gen(salt)
        q = randn(g, B, T, self.H, self.K, dtype=dtype)
        k = randn(g, B, T, self.H, self.K, dtype=dtype)
        v = randn(g, B, T, self.H, self.V, dtype=dtype)
        gk = log_decay(g, B, T, self.H, self.K, dtype=dtype)
        return g, q, k, v, gk

    def run_fla_form(self, fn, dtype, salt, **kw):
        B, T = 2, 37
        g, q, k, v, gk = self.inputs(salt, B, T, dtype)
        h0 = randn(g, B, self.H, self.K, self.V)
        scale = self.K ** -0.5
        poison_allocator(B * T * self.H * self.V)
        o, ht = fn(q, k, v, gk, scale=scale, initial_state=h0, output_final_state=True, **kw)
        for b in range(B):
            want_o, want_s = ref_gla(q[b], k[b], v[b], gk[b], scale, h0[b])
            check_close(self, o[b], want_o, TOL[dtype], f"o[{b}] {dtype}")
            check_close(self, ht[b], want_s, STATE_TOL, f"final_state[{b}] {dtype}")
        # no initial state, no final state
        o2, none = fn(q, k, v, gk, scale=scale, **kw)
        self.assertIsNone(none)
        want_o, _ = ref_gla(q[1], k[1], v[1], gk[1], scale, torch.zeros(self.H, self.K, self.V))
        check_close(self, o2[1], want_o, TOL[dtype], f"o without state {dtype}")

    def run_varlen(self, fn, dtype, salt, **kw):
        lengths = [5, 0, 35, 13, 1]
        cu = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), dtype=torch.int64,
                          device=DEVICE)
        T = sum(lengths)
        g, q, k, v, gk = self.inputs(salt, 1, T, dtype)
        h0 = randn(g, len(lengths), self.H, self.K, self.V)
        poison_allocator(T * self.H * self.V)
        o, ht = fn(q, k, v, gk, scale=0.3, initial_state=h0, output_final_state=True,
                   cu_seqlens=cu, **kw)
        for n in range(len(lengths)):
            a, e = int(cu[n]), int(cu[n + 1])
            want_o, want_s = ref_gla(q[0, a:e], k[0, a:e], v[0, a:e], gk[0, a:e], 0.3, h0[n])
            check_close(self, o[0, a:e], want_o, TOL[dtype], f"varlen o seq {n} {dtype}")
            check_close(self, ht[n], want_s, STATE_TOL, f"varlen state seq {n} {dtype}")

    def test_chunk_gla(self):
        for i, dtype in enumerate(DTYPES):
            for chunk in (16, 64):
                with self.subTest(dtype=dtype, chunk=chunk):
                    self.run_fla_form(rt.chunk_gla, dtype, 10 + i, chunk_size=chunk)
                    self.run_varlen(rt.chunk_gla, dtype, 20 + i, chunk_size=chunk)

    def test_fused_recurrent_gla(self):
        def fn(q, k, v, g, **kw):
            return rt.fused_recurrent_gla(q, k, v, gk=g, **kw)
        for i, dtype in enumerate(DTYPES):
            with self.subTest(dtype=dtype):
                self.run_fla_form(fn, dtype, 30 + i)
                self.run_varlen(fn, dtype, 40 + i)

    def test_head_first_is_a_stride_view(self):
        g, q, k, v, gk = self.inputs(50, 2, 9, torch.float32)
        o, _ = rt.chunk_gla(q, k, v, gk)
        tr = [t.transpose(1, 2).contiguous() for t in (q, k, v, gk)]
        o_hf, _ = rt.chunk_gla(*tr, head_first=True)
        check_close(self, o_hf.transpose(1, 2), o, 1e-6, "head_first")

    def make_pool(self, g, P):
        return randn(g, P, self.H, self.K, self.V)

    def test_pooled_prefill_then_decode(self):
        """Packed prefill into a pool (fresh, continuing, padding), then decode steps with padding
        rows; rows no sequence uses stay bit for bit unchanged."""
        for i, dtype in enumerate(DTYPES):
            with self.subTest(dtype=dtype):
                g = gen(60 + i)
                P = 7
                pool = self.make_pool(g, P)
                pool[5] = float("nan")  # a fresh sequence's slot holds garbage: must be zeroed
                before = pool.clone()
                lengths = [9, 0, 22, 3]
                slots = torch.tensor([2, -1, 5, 0], dtype=torch.int32, device=DEVICE)
                has_init = torch.tensor([True, False, False, True], device=DEVICE)
                cu = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), device=DEVICE)
                T = sum(lengths)
                _, q, k, v, gk = self.inputs(70 + i, 1, T, dtype)
                poison_allocator(T * self.H * self.V)
                o = rt.chunk_gla_pooled(q, k, v, gk, pool, slots, cu, has_initial_state=has_init,
                                        scale=0.25, chunk_size=16)
                want_pool = before.to("cpu", torch.float64).clone()
                for n, L in enumerate(lengths):
                    s = int(slots[n])
                    if s < 0:
                        continue
                    a, e = int(cu[n]), int(cu[n + 1])
                    h0 = before[s] if bool(has_init[n]) else torch.zeros_like(before[s])
                    want_o, want_s = ref_gla(q[0, a:e], k[0, a:e], v[0, a:e], gk[0, a:e], 0.25, h0)
                    check_close(self, o[0, a:e], want_o, TOL[dtype], f"pooled o seq {n}")
                    want_pool[s] = want_s
                for s in (1, 3, 4, 6):
                    self.assertTrue(torch.equal(pool[s], before[s]), f"unused slot {s} changed")
                for s in (0, 2, 5):
                    check_close(self, pool[s], want_pool[s], STATE_TOL, f"pool slot {s}")

                # decode: rows on slots 5, padding, 0, 2, padding
                dslots = torch.tensor([5, -1, 0, 2, -1], dtype=torch.int32, device=DEVICE)
                for step in range(3):
                    _, dq, dk, dv, dg = self.inputs(80 + 10 * i + step, 5, 1, dtype)
                    dq, dk, dv, dg = (t[:, 0] for t in (dq, dk, dv, dg))
                    before = pool.clone()
                    poison_allocator(5 * self.H * self.V)
                    o = rt.gla_decode(dq, dk, dv, dg, pool, dslots, scale=0.25)
                    for b in range(5):
                        s = int(dslots[b])
                        if s < 0:
                            continue  # a padding row: its o row is unspecified (never written)
                        want_o, want_s = ref_gla(dq[b][None], dk[b][None], dv[b][None],
                                                 dg[b][None], 0.25, before[s])
                        check_close(self, o[b], want_o[0], TOL[dtype], f"decode o row {b}")
                        check_close(self, pool[s], want_s, STATE_TOL, f"decode slot {s}")
                    for s in (1, 3, 4, 6):
                        self.assertTrue(torch.equal(pool[s], before[s]), f"decode touched {s}")

    def test_meta_shapes(self):
        m = dict(device="meta")
        q = torch.empty(1, 11, 3, 8, **m)
        v = torch.empty(1, 11, 3, 5, **m)
        cu = torch.empty(4, dtype=torch.int64, **m)
        o, s = torch.ops.rodimus.chunk_gla(q, q, v, q, 1.0, None, True, cu, 64)
        self.assertEqual((tuple(o.shape), tuple(s.shape)), ((1, 11, 3, 5), (3, 3, 8, 5)))
        self.assertEqual(o.device.type, "meta")
        o = torch.ops.rodimus.gla_decode(q[0], q[0], v[0], q[0], 1.0,
                                         torch.empty(4, 3, 8, 5, **m),
                                         torch.empty(11, dtype=torch.int32, **m))
        self.assertEqual(tuple(o.shape), (11, 3, 5))

    def test_bad_arguments(self):
        g, q, k, v, gk = self.inputs(90, 1, 4, torch.float32)
        with self.assertRaisesRegex(RuntimeError, "k must be"):
            rt.chunk_gla(q, k.double(), v, gk)
        with self.assertRaisesRegex(RuntimeError, r"bad shape \(v\)"):
            rt.chunk_gla(q, k, v[:, :3], gk)
        with self.assertRaisesRegex(RuntimeError, "unsupported dtype"):
            rt.chunk_gla(q.double(), k.double(), v.double(), gk.double())
        if DEVICE.type == "cpu":  # host index arrays: the contents are checked
            pool = torch.zeros(2, self.H, self.K, self.V)
            with self.assertRaisesRegex(RuntimeError, r"bad argument \(slot\)"):
                rt.gla_decode(q[:, 0].expand(2, -1, -1), k[:, 0].expand(2, -1, -1),
                              v[:, 0].expand(2, -1, -1), gk[:, 0].expand(2, -1, -1), pool,
                              torch.tensor([1, 1], dtype=torch.int32))


class ConvOps(unittest.TestCase):
    C, W = 37, 4

    def weights(self, g):
        return randn(g, self.C, self.W, scale=0.5), randn(g, self.C)

    def test_causal_conv1d_fn(self):
        for i, dtype in enumerate(DTYPES):
            for silu in (True, False):
                for channel_last in (True, False):
                    with self.subTest(dtype=dtype, silu=silu, channel_last=channel_last):
                        self.run_fn(dtype, silu, channel_last, 100 + 4 * i + 2 * silu + channel_last)

    def run_fn(self, dtype, silu, channel_last, salt):
        g = gen(salt)
        weight, bias = self.weights(g)
        lengths = [2, 0, 17, 6, 1]  # shorter than W, empty, padding (empty), longer
        slots = torch.tensor([4, -1, 0, 2, 5], dtype=torch.int32, device=DEVICE)
        has_init = torch.tensor([True, False, False, True, True], device=DEVICE)
        qsl = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), device=DEVICE)
        T = sum(lengths)
        # vLLM's x (C, T): a transposed (T, C) tensor (channel-contiguous) or a contiguous one
        x = randn(g, T, self.C, dtype=dtype).t() if channel_last else randn(g, self.C, T, dtype=dtype)
        pool = randn(g, 6, self.C, self.W, dtype=dtype)
        pool[0] = float("nan")  # a fresh sequence's slot: must be zeroed
        before = pool.clone()
        poison_allocator(T * self.C)
        y = rt.causal_conv1d_fn(x, weight, bias, pool, qsl, slots, has_init,
                                activation="silu" if silu else None)
        self.assertEqual(tuple(y.shape), (self.C, T))
        for n in range(len(lengths)):
            s = int(slots[n])
            if s < 0:
                continue
            a, e = int(qsl[n]), int(qsl[n + 1])
            h0 = before[s] if bool(has_init[n]) else torch.zeros_like(before[s])
            want_y, want_s = ref_conv(x[:, a:e], weight, bias, h0, silu)
            check_close(self, y[:, a:e], want_y, TOL[dtype], f"y seq {n}")
            check_close(self, pool[s], want_s, 0.0, f"conv state slot {s}")
        for s in (1, 3):
            self.assertTrue(torch.equal(pool[s], before[s]), f"unused conv slot {s} changed")

    def test_causal_conv1d_update(self):
        for i, dtype in enumerate(DTYPES):
            with self.subTest(dtype=dtype):
                g = gen(200 + i)
                weight, bias = self.weights(g)
                pool = randn(g, 6, self.C, self.W, dtype=dtype)
                idx = torch.tensor([3, -1, 0, 5], dtype=torch.int32, device=DEVICE)
                for step in range(3):  # each step reads the state the previous one wrote
                    x = randn(g, 4, self.C, dtype=dtype)
                    before = pool.clone()
                    poison_allocator(4 * self.C)
                    y = rt.causal_conv1d_update(x, pool, weight, bias, activation="silu",
                                                conv_state_indices=idx)
                    for b in range(4):
                        s = int(idx[b])
                        if s < 0:
                            continue  # a padding row: its y row is unspecified (never written)
                        want_y, want_s = ref_conv(x[b][:, None], weight, bias, before[s], True)
                        check_close(self, y[b], want_y[:, 0], TOL[dtype], f"update y row {b}")
                        check_close(self, pool[s], want_s, 0.0, f"update state slot {s}")
                    for s in (1, 2, 4):
                        self.assertTrue(torch.equal(pool[s], before[s]), f"update touched {s}")

    def test_meta_shapes(self):
        x = torch.empty(37, 10, device="meta")
        y = torch.ops.rodimus.causal_conv1d_fn(
            x, torch.empty(37, 4, device="meta"), None, torch.empty(3, 37, 4, device="meta"),
            torch.empty(3, dtype=torch.int64, device="meta"),
            torch.empty(2, dtype=torch.int32, device="meta"), None, True)
        self.assertEqual(tuple(y.shape), (37, 10))

    def test_bad_arguments(self):
        g = gen(300)
        weight, bias = self.weights(g)
        x = randn(g, 2, self.C)
        with self.assertRaisesRegex(RuntimeError, r"bad shape \(state\)"):
            rt.causal_conv1d_update(x, randn(g, 2, self.C, self.W + 1), weight, bias)
        with self.assertRaisesRegex(RuntimeError, "conv_state must be"):
            rt.causal_conv1d_update(x, randn(g, 2, self.C, self.W, dtype=torch.float16), weight)


def ref_ddts(gate_preact, bias, k, eps):
    gp, kk = gate_preact.to("cpu", torch.float64), k.to("cpu", torch.float64)
    n = kk.shape[1]
    if bias is not None:
        gp = gp + bias.to("cpu", torch.float64)
    gamma = torch.nn.functional.softplus(gp[:, :n])  # threshold 20, as PyTorch's default
    tau = torch.sigmoid(gp[:, n:])
    denom = kk.norm(dim=1, keepdim=True).clamp_min(eps)
    return kk / denom * gamma.pow(tau), -(gamma * tau)


def ref_gated_rmsnorm(x, gate, weight, eps):
    z = x.to("cpu", torch.float64) * torch.nn.functional.silu(gate.to("cpu", torch.float64))
    return z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + eps) * weight.to("cpu", torch.float64)


class RowOps(unittest.TestCase):
    """Row-wise operators (no state). ddts writes f32 from f32 arithmetic for every input dtype
    (the inputs convert exactly): 1e-5; gated_rmsnorm rounds y to the input dtype (TOL)."""

    def test_ddts(self):
        for i, dtype in enumerate(DTYPES):
            for with_bias in (True, False):
                with self.subTest(dtype=dtype, bias=with_bias):
                    g = gen(500 + 2 * i + with_bias)
                    M, N = 13, 19
                    gp = randn(g, 2, M, 2 * N, dtype=dtype, scale=6.0)  # past softplus's 20
                    k = randn(g, 2, M, N, dtype=dtype)
                    k[0, 3] = 0  # a zero-norm key: the eps floor
                    bias = randn(g, 2 * N) if with_bias else None
                    poison_allocator(4 * M * N)
                    k_hat, log_decay = rt.ddts(gp, k, bias)
                    self.assertEqual(k_hat.dtype, torch.float32)
                    want_k, want_d = ref_ddts(gp.reshape(-1, 2 * N), bias, k.reshape(-1, N), 1e-12)
                    check_close(self, k_hat.reshape(-1, N), want_k, 1e-5, "k_hat")
                    check_close(self, log_decay.reshape(-1, N), want_d, 1e-5, "log_decay")

    def test_gated_rmsnorm(self):
        for i, dtype in enumerate(DTYPES):
            with self.subTest(dtype=dtype):
                g = gen(600 + i)
                x, gate = randn(g, 3, 7, 45, dtype=dtype), randn(g, 3, 7, 45, dtype=dtype)
                w = randn(g, 45)
                poison_allocator(3 * 7 * 45)
                y = rt.gated_rmsnorm(x, gate, w)
                want = ref_gated_rmsnorm(x, gate, w, 1e-5)
                check_close(self, y, want, TOL[dtype], f"gated_rmsnorm {dtype}")

    def test_meta_shapes(self):
        m = dict(device="meta")
        k_hat, d = torch.ops.rodimus.ddts(torch.empty(5, 8, **m), None, torch.empty(5, 4, **m),
                                          1e-12)
        self.assertEqual((tuple(k_hat.shape), k_hat.dtype), ((5, 4), torch.float32))
        y = torch.ops.rodimus.gated_rmsnorm(torch.empty(5, 8, dtype=torch.bfloat16, **m),
                                            torch.empty(5, 8, dtype=torch.bfloat16, **m),
                                            torch.empty(8, **m), 1e-5)
        self.assertEqual((tuple(y.shape), y.dtype), ((5, 8), torch.bfloat16))

    def test_bad_arguments(self):
        g = gen(700)
        with self.assertRaisesRegex(RuntimeError, r"bad shape \(gate_preact\)"):
            rt.ddts(randn(g, 4, 7), randn(g, 4, 3))
        with self.assertRaisesRegex(RuntimeError, r"bad shape \(weight\)"):
            rt.gated_rmsnorm(randn(g, 4, 6), randn(g, 4, 6), randn(g, 5))


def ref_attend(q, keys, values, window_left, scale):
    """The last query of a sequence: q (Hq, D) at position p = len(keys) - 1 attends keys
    max(0, p - window_left) .. p; query head h reads key head h % Hk and value head h % Hv."""
    p = keys.shape[0] - 1
    lo = 0 if window_left < 0 else max(0, p - window_left)
    kk, vv = keys[lo:p + 1], values[lo:p + 1]
    hq, hk, hv = q.shape[0], kk.shape[1], vv.shape[1]
    out = torch.zeros(hq, q.shape[1], dtype=torch.float64)
    for h in range(hq):
        w = torch.softmax(scale * kk[:, h % hk] @ q[h], dim=0)
        out[h] = w @ vv[:, h % hv]
    return out


class SwskaOps(unittest.TestCase):
    """Chunked prefill (fresh, continuing from the ring, padding) then decode, against softmax
    attention over the whole history in float64. f32: 1e-5 (softmax weights sum to 1, so o is a
    convex combination of values; f32 against f64); 16-bit o: TOL."""
    HQ, HK, HV, D, WL = 4, 1, 4, 24, 5

    def test_prefill_chunks_then_decode(self):
        for i, dtype in enumerate(DTYPES):
            with self.subTest(dtype=dtype):
                self.run_sequences(dtype, 800 + i)

    def run_sequences(self, dtype, salt):
        g = gen(salt)
        W, P = self.WL + 1, 5
        ring_k = randn(g, P, W, self.HK, self.D, dtype=dtype)
        ring_v = randn(g, P, W, self.HV, self.D, dtype=dtype)
        slots = torch.tensor([3, -1, 0], dtype=torch.int32, device=DEVICE)
        hist = {0: [], 2: []}  # sequence -> list of (k, v) rows seen so far (float64)
        scale = self.D ** -0.5

        def tokens(n):
            return (randn(g, n, self.HQ, self.D, dtype=dtype), randn(g, n, self.HK, self.D, dtype=dtype),
                    randn(g, n, self.HV, self.D, dtype=dtype))

        for chunk_lengths in ([9, 0, 3], [4, 0, 7]):
            cu = torch.tensor([0] + list(torch.tensor(chunk_lengths).cumsum(0)), device=DEVICE)
            T = sum(chunk_lengths)
            q, k, v = tokens(T)
            history_len = torch.tensor([len(hist[0]), 0, len(hist[2])], device=DEVICE)
            untouched = [ring_k[s].clone() for s in (1, 2, 4)]
            poison_allocator(T * self.HQ * self.D)
            o = rt.swska_prefill(q[None], k[None], v[None], ring_k, ring_v, slots, history_len,
                                 cu_seqlens=cu, window_left=self.WL)
            for n in (0, 2):
                a = int(cu[n])
                for t in range(chunk_lengths[n]):
                    hist[n].append((k[a + t].to("cpu", torch.float64), v[a + t].to("cpu", torch.float64)))
                    keys = torch.stack([kv[0] for kv in hist[n]])
                    values = torch.stack([kv[1] for kv in hist[n]])
                    want = ref_attend(q[a + t].to("cpu", torch.float64), keys, values, self.WL, scale)
                    check_close(self, o[0, a + t], want, TOL[dtype], f"prefill seq {n} token {t}")
            for s, before in zip((1, 2, 4), untouched):
                self.assertTrue(torch.equal(ring_k[s], before), f"prefill touched ring {s}")

        dslots = torch.tensor([0, -1, 3], dtype=torch.int32, device=DEVICE)  # seqs 2, pad, 0
        for step in range(3):
            q, k, v = tokens(3)
            positions = torch.tensor([len(hist[2]), 0, len(hist[0])], device=DEVICE)
            untouched = [(ring_k[s].clone(), ring_v[s].clone()) for s in (1, 2, 4)]
            poison_allocator(3 * self.HQ * self.D)
            o = rt.swska_decode(q, k, v, ring_k, ring_v, dslots, positions, window_left=self.WL)
            # Row 1 is padding: its o row is unspecified (never written), and no ring but those of
            # rows 0 and 2 (slots 0 and 3) may change.
            for s, (bk, bv) in zip((1, 2, 4), untouched):
                self.assertTrue(torch.equal(ring_k[s], bk) and torch.equal(ring_v[s], bv),
                                f"decode touched ring {s}")
            for b, n in ((0, 2), (2, 0)):
                hist[n].append((k[b].to("cpu", torch.float64), v[b].to("cpu", torch.float64)))
                keys = torch.stack([kv[0] for kv in hist[n]])
                values = torch.stack([kv[1] for kv in hist[n]])
                want = ref_attend(q[b].to("cpu", torch.float64), keys, values, self.WL, scale)
                check_close(self, o[b], want, TOL[dtype], f"decode seq {n} step {step}")

    def test_meta_shapes(self):
        m = dict(device="meta")
        q = torch.empty(1, 7, 4, 8, **m)
        o = torch.ops.rodimus.swska_prefill(
            q, torch.empty(1, 7, 1, 8, **m), torch.empty(1, 7, 4, 8, **m),
            torch.empty(2, 3, 1, 8, **m), torch.empty(2, 3, 4, 8, **m),
            torch.empty(2, dtype=torch.int32, **m), torch.empty(2, dtype=torch.int64, **m),
            torch.empty(3, dtype=torch.int64, **m), 2, 0.0)
        self.assertEqual(tuple(o.shape), (1, 7, 4, 8))


def graph_matches_eager(tc, make_inputs, step, states, replays=2, specified=lambda outs: outs):
    """Captures step() in a CUDA graph, then for each replay: new inputs copied into the captured
    tensors (make_inputs(rep) -> {tensor: new value}), the graph replayed from saved states, and
    the same step run eagerly from the same states: outputs and states must be equal bit for bit
    (the same kernels on the same data). specified(outputs) -> the parts of the outputs that are
    defined (the rows of padding slots are never written, so they hold whatever was there)."""
    saved = [t.clone() for t in states]
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        step()  # warm up outside the capture (kernel attributes, allocator pools)
    torch.cuda.current_stream().wait_stream(stream)
    for t, s in zip(states, saved):
        t.copy_(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = step()
    for rep in range(replays):
        for t, new in make_inputs(rep).items():
            t.copy_(new)
        before = [t.clone() for t in states]
        graph.replay()
        torch.cuda.synchronize()
        got_out = [t.clone() for t in captured]
        got_states = [t.clone() for t in states]
        for t, b in zip(states, before):
            t.copy_(b)
        want_out = step()
        for i, (g, w) in enumerate(zip(specified(got_out), specified(want_out))):
            tc.assertTrue(torch.equal(g, w), f"graph output {i} differs from eager (replay {rep})")
        for i, (g, w) in enumerate(zip(got_states, states)):
            tc.assertTrue(torch.equal(g, w), f"graph state {i} differs from eager (replay {rep})")
    return before


@unittest.skipUnless(DEVICE.type == "cuda", "CUDA graphs: RODIMUS_TORCH_DEVICE=cuda")
class CudaGraph(unittest.TestCase):
    def test_decode_step_in_a_graph_with_padded_slots(self):
        """conv update, GLA decode, SW-SKA decode (split-window workspace from the caching
        allocator) and gated RMSNorm captured once, replayed with new inputs and permuted slots
        (padding rows -1): equal to eager calls; padded slots untouched."""
        H, K, V, C, W, B, P, D = 2, 16, 24, 37, 4, 8, 10, 32
        g = gen(400)
        state, conv = randn(g, P, H, K, V), randn(g, P, C, W)
        ring_k, ring_v = randn(g, P, 64, 1, D), randn(g, P, 64, H, D)
        weight, bias, nw = randn(g, C, W), randn(g, C), randn(g, V)
        q, k, v, gk = randn(g, B, H, K), randn(g, B, H, K), randn(g, B, H, V), log_decay(g, B, H, K)
        sq, sk, sv = randn(g, B, H, D), randn(g, B, 1, D), randn(g, B, H, D)
        x = randn(g, B, C)
        slots = torch.tensor([3, 1, -1, 7, 0, -1, 9, -1], dtype=torch.int32, device=DEVICE)
        positions = torch.tensor([40, 2, 0, 63, 100, 0, 7, 0], dtype=torch.int64, device=DEVICE)

        def step():
            y = rt.causal_conv1d_update(x, conv, weight, bias, "silu", conv_state_indices=slots)
            o = rt.gla_decode(q, k, v, gk, state, slots, scale=0.5)
            a = rt.swska_decode(sq, sk, sv, ring_k, ring_v, slots, positions, window_left=63)
            n = rt.gated_rmsnorm(o.reshape(B * H, V), o.reshape(B * H, V), nw)
            return y, o, a, n

        def make_inputs(rep):
            g2 = gen(410 + rep)
            return {q: randn(g2, B, H, K), x: randn(g2, B, C), sq: randn(g2, B, H, D),
                    slots: slots[torch.randperm(B, generator=g2).to(DEVICE)],
                    positions: positions + 1}

        def specified(outs):  # rows of live slots only (slots as make_inputs left them)
            live = slots >= 0
            y, o, a, n = outs
            return y[live], o[live], a[live], n.reshape(B, H, V)[live]

        states = [state, conv, ring_k, ring_v]
        before = graph_matches_eager(self, make_inputs, step, states, specified=specified)
        used = set(int(s) for s in slots.tolist() if s >= 0)
        for s in set(range(P)) - used:
            for t, b in zip(states, before):
                self.assertTrue(torch.equal(t[s], b[s]), f"padded slot {s} changed")

    def test_prefill_in_a_graph_with_padding_and_fresh_sequences(self):
        """Packed prefill (chunk_gla_pooled, causal_conv1d_fn, swska_prefill) with a padding
        sequence and has_initial_state, captured and replayed: equal to eager calls."""
        H, K, V, C, W, P, D = 2, 16, 24, 37, 4, 6, 32
        lengths = [5, 0, 19, 8]
        T = sum(lengths)
        g = gen(450)
        state, conv = randn(g, P, H, K, V), randn(g, P, C, W)
        ring_k, ring_v = randn(g, P, 16, 1, D), randn(g, P, 16, H, D)
        weight = randn(g, C, W)
        q, k, v, gk = (randn(g, 1, T, H, K), randn(g, 1, T, H, K), randn(g, 1, T, H, V),
                       log_decay(g, 1, T, H, K))
        sq, sk, sv = randn(g, 1, T, H, D), randn(g, 1, T, 1, D), randn(g, 1, T, H, D)
        x = randn(g, T, C).t()
        cu = torch.tensor([0] + list(torch.tensor(lengths).cumsum(0)), device=DEVICE)
        slots = torch.tensor([4, -1, 0, 2], dtype=torch.int32, device=DEVICE)
        has_init = torch.tensor([True, False, False, True], device=DEVICE)
        hist = torch.tensor([9, 0, 0, 3], dtype=torch.int64, device=DEVICE)

        def step():
            o = rt.chunk_gla_pooled(q, k, v, gk, state, slots, cu, has_initial_state=has_init)
            y = rt.causal_conv1d_fn(x, weight, None, conv, cu, slots, has_init)
            a = rt.swska_prefill(sq, sk, sv, ring_k, ring_v, slots, hist, cu, window_left=15)
            return o, y, a

        def make_inputs(rep):
            g2 = gen(460 + rep)
            return {q: randn(g2, 1, T, H, K), x: randn(g2, T, C).t(), sq: randn(g2, 1, T, H, D)}

        graph_matches_eager(self, make_inputs, step, [state, conv, ring_k, ring_v])


@unittest.skipUnless(hasattr(torch, "compile"), "torch.compile: PyTorch 2")
class Compile(unittest.TestCase):
    def test_engine_step_compiles_without_graph_breaks(self):
        """The Meta kernels serve as fake implementations: a decode step of mutating operators
        compiles in one graph (aot_eager: fake tensors and functionalization, no code generation)
        and matches the eager result."""
        H, K, V, C, W, B, P = 2, 16, 24, 37, 4, 4, 6
        g = gen(500)
        state, conv = randn(g, P, H, K, V), randn(g, P, C, W)
        weight = randn(g, C, W)
        q, k, v, gk = randn(g, B, H, K), randn(g, B, H, K), randn(g, B, H, V), log_decay(g, B, H, K)
        x = randn(g, B, C)
        slots = torch.tensor([2, -1, 0, 5], dtype=torch.int32, device=DEVICE)

        def step(state, conv):
            y = torch.ops.rodimus.causal_conv1d_update(x, conv, weight, None, True, slots)
            o = torch.ops.rodimus.gla_decode(q, k, v, gk, 0.5, state, slots)
            return y, o

        s0, c0 = state.clone(), conv.clone()
        want = step(state, conv)
        want_states = (state.clone(), conv.clone())
        state.copy_(s0)
        conv.copy_(c0)
        got = torch.compile(step, backend="aot_eager", fullgraph=True)(state, conv)
        live = slots >= 0  # the padding row's outputs are never written: not compared
        for a, b in zip(tuple(t[live] for t in got) + (state, conv),
                        tuple(t[live] for t in want) + want_states):
            self.assertTrue(torch.equal(a, b), "compiled step differs from eager")


if __name__ == "__main__":
    print(f"rodimus torch ops on {DEVICE}, RODIMUS_TEST_SEED={SEED}")
    unittest.main()
