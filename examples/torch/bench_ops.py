"""Side by side on one GPU: each torch.ops.rodimus operator called eagerly from Python, the same call
replayed from a CUDA graph (the kernels alone: no Python, no dispatcher, no binding), and a
plain-PyTorch implementation of the same step, at the Rodimus shapes (one GLA head, K = 64,
V = 4096; conv over 4096 channels, W = 4; SW-SKA 16 q / 1 k / 16 v heads, D = 128, left window
2048). eager - graph is what the Python call and the binding add per call. Prints a markdown table.

Run on the GPU machine (scripts/torch_gpu_check.sh runs it): python3 examples/torch/bench_ops.py
"""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rodimus_torch as rt  # noqa: E402

DEV = torch.device("cuda")
BF16 = torch.bfloat16
ITERS = int(os.environ.get("RODIMUS_BENCH_ITERS", "200"))


def time_eager(fn):
    for _ in range(5):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(ITERS):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1e3 / ITERS  # us


def time_graph(fn):
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(10):
            fn()
    return time_eager(graph.replay) / 10


def gla_decode_case(B):
    H, K, V, P = 1, 64, 4096, max(B, 1) * 2
    q, k = torch.randn(B, H, K, device=DEV, dtype=BF16), torch.randn(B, H, K, device=DEV, dtype=BF16)
    v = torch.randn(B, H, V, device=DEV, dtype=BF16)
    g = -torch.rand(B, H, K, device=DEV, dtype=BF16)
    pool = torch.randn(P, H, K, V, device=DEV)
    slots = torch.arange(0, 2 * B, 2, dtype=torch.int32, device=DEV)
    idx = slots.long()

    def ours():
        rt.gla_decode(q, k, v, g, pool, slots, scale=0.125)

    def plain():
        S = pool[idx] * g.float().exp()[..., None] + k.float()[..., None] * v.float()[..., None, :]
        o = 0.125 * torch.einsum("bhk,bhkv->bhv", q.float(), S)
        pool[idx] = S
        return o.to(BF16)

    return f"gla_decode B={B}", ours, plain


def conv_update_case(B):
    C, W, P = 4096, 4, max(B, 1) * 2
    x = torch.randn(B, C, device=DEV, dtype=BF16)
    pool = torch.randn(P, C, W, device=DEV, dtype=BF16)
    weight, bias = torch.randn(C, W, device=DEV), torch.randn(C, device=DEV)
    slots = torch.arange(0, 2 * B, 2, dtype=torch.int32, device=DEV)
    idx = slots.long()

    def ours():
        rt.causal_conv1d_update(x, pool, weight, bias, "silu", conv_state_indices=slots)

    def plain():
        s = torch.cat([pool[idx][:, :, 1:], x[:, :, None]], dim=2)
        pool[idx] = s
        return torch.nn.functional.silu((s.float() * weight).sum(-1) + bias).to(BF16)

    return f"causal_conv1d_update B={B}", ours, plain


def chunk_gla_case(T):
    H, K, V = 1, 64, 4096
    q, k = torch.randn(1, T, H, K, device=DEV, dtype=BF16), torch.randn(1, T, H, K, device=DEV, dtype=BF16)
    v = torch.randn(1, T, H, V, device=DEV, dtype=BF16)
    g = torch.nn.functional.logsigmoid(torch.randn(1, T, H, K, device=DEV)).to(BF16)

    def ours():
        rt.chunk_gla(q, k, v, g, scale=0.125, output_final_state=True)

    return f"chunk_gla T={T}", ours, None


def swska_decode_case(B):
    Hq, Hk, D, left = 16, 1, 128, 2048
    W, P = left + 1, B
    q = torch.randn(B, Hq, D, device=DEV, dtype=BF16)
    k, v = torch.randn(B, Hk, D, device=DEV, dtype=BF16), torch.randn(B, Hq, D, device=DEV, dtype=BF16)
    ring_k = torch.randn(P, W, Hk, D, device=DEV, dtype=BF16)
    ring_v = torch.randn(P, W, Hq, D, device=DEV, dtype=BF16)
    slots = torch.arange(B, dtype=torch.int32, device=DEV)
    pos = torch.full((B,), 4 * W, dtype=torch.int64, device=DEV)

    def ours():
        rt.swska_decode(q, k, v, ring_k, ring_v, slots, pos, window_left=left)

    def plain():  # the whole ring is the window here (position >= W)
        attn = torch.nn.functional.scaled_dot_product_attention(
            q[:, :, None], ring_k.transpose(1, 2).expand(-1, Hq, -1, -1),
            ring_v.transpose(1, 2))
        return attn

    return f"swska_decode B={B}", ours, plain


def main():
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {ITERS} iterations")
    print("| operator | ours eager (us) | ours graph (us) | eager - graph | plain PyTorch eager (us) |")
    print("| --- | --- | --- | --- | --- |")
    cases = [gla_decode_case(1), gla_decode_case(64), conv_update_case(1), conv_update_case(64),
             swska_decode_case(1), swska_decode_case(16), chunk_gla_case(2048)]
    for name, ours, plain in cases:
        eager, graph = time_eager(ours), time_graph(ours)
        ref = f"{time_eager(plain):.1f}" if plain else "-"
        print(f"| {name} | {eager:.1f} | {graph:.1f} | {eager - graph:.1f} | {ref} |")


if __name__ == "__main__":
    main()
