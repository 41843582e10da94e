#!/usr/bin/env python3
# Host emulation of the algorithm of include/rodimus/backend/cuda/gla_chunked_mma.cuh (not its
# fragment layout): chunks of 64 in sub-chunks of 16, the f32 products of e = exp(g) (F, R, Tot),
# the exact diagonal blocks, the bf16 roundings of q~, k~ (times their factors), A and S, against
# the f64 recurrence on the rounded inputs, with the per-element bound of tests/cases/gla_cases.hpp
# (gla_rounded_tol). Prints the worst error / bound for o and the final state (must be < 1), then
# the same with one decay factor dropped (d: between sub-chunks, P: inter-chunk q, Q: state k,
# dec: state decay), which must break the bound. Needs numpy (Debian python3-numpy):
#   /usr/bin/python3 scripts/gla_mma_emulate.py      (about 10 minutes on one core)
import numpy as np
def bf(x):
    x = np.asarray(x, np.float32); u = x.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7fff + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)
def run(T, K, V, gates, positive, drop=None, seed=0):
    r = np.random.default_rng(seed)
    lo = 0.0 if positive else -1.0
    q = r.uniform(lo, 1, (T, K)).astype(np.float32); k = r.uniform(lo, 1, (T, K)).astype(np.float32)
    v = r.uniform(lo, 1, (T, V)).astype(np.float32); S0 = r.uniform(lo, 1, (K, V)).astype(np.float32)
    if gates == 'mild': g = -np.exp(r.uniform(-8, 1.5, (T, K)))
    elif gates == 'extreme': g = -np.exp(r.uniform(-14, 9.2, (T, K)))
    else:
        g = -np.exp(r.uniform(-14, 9.2, (T, K))); g[::3] = -1e4
    g = g.astype(np.float32); scale = np.float32(1 / np.sqrt(K))
    qr, kr, vr = bf(q), bf(k), bf(v)
    # reference (f64) and |terms|
    def ref(q, k, v, S):
        S = S.astype(np.float64).copy(); o = np.zeros((T, V))
        for t in range(T):
            S = np.exp(g[t].astype(np.float64))[:, None] * S + np.outer(k[t], v[t]); o[t] = scale * (q[t] @ S)
        return o, S
    o_ref, s_ref = ref(qr, kr, vr, S0); o_abs, s_abs = ref(np.abs(qr), np.abs(kr), np.abs(vr), np.abs(S0))
    # emulation
    S = S0.copy(); o = np.zeros((T, V), np.float32)
    for c0 in range(0, T, 64):
        L = min(64, T - c0); Q = np.zeros((64, K), np.float32); Kk = np.zeros((64, K), np.float32)
        E = np.ones((64, K), np.float32); Vv = np.zeros((64, V), np.float32)
        Q[:L] = qr[c0:c0 + L]; Kk[:L] = kr[c0:c0 + L]; E[:L] = np.exp(g[c0:c0 + L]); Vv[:L] = vr[c0:c0 + L]
        Qf = np.zeros_like(Q); Kp = np.zeros_like(Kk); Tot = np.ones((4, K), np.float32)
        for i in range(4):
            F = np.ones(K, np.float32)
            for u in range(16):
                t = 16 * i + u; F = F * E[t]; Qf[t] = scale * Q[t] * F
            Tot[i] = F; R = np.ones(K, np.float32)
            for u in range(15, -1, -1):
                t = 16 * i + u; Kp[t] = Kk[t] * R; R = R * E[t]
        tot = lambda lo_, hi_: np.prod(Tot[lo_:hi_], axis=0).astype(np.float32) if hi_ > lo_ else np.ones(K, np.float32)
        A = np.zeros((64, 64), np.float32)
        for i in range(4):
            for s in range(16):
                w = Kk[16 * i + s].copy()
                for t in range(s, 16):
                    A[16 * i + t, 16 * i + s] = scale * np.float32(np.dot(Q[16 * i + t], w))
                    if t + 1 < 16: w = w * E[16 * i + t + 1]
            for j in range(i):
                d = tot(j + 1, i)
                if drop == 'd': d = np.ones(K, np.float32)
                A[16*i:16*i+16, 16*j:16*j+16] = bf(Qf[16*i:16*i+16]).astype(np.float64) @ bf(Kp[16*j:16*j+16] * d).astype(np.float64).T
        A = bf(A)
        Sb = bf(S)
        for i in range(4):
            P = tot(0, i)
            if drop == 'P': P = np.ones(K, np.float32)
            rows = slice(16 * i, 16 * i + 16)
            oi = bf(Qf[rows] * P).astype(np.float64) @ Sb.astype(np.float64) + A[rows].astype(np.float64) @ Vv.astype(np.float64)
            o[c0 + 16 * i: c0 + min(16 * i + 16, L)] = oi[:max(0, min(16, L - 16 * i))]
        dec = tot(0, 4)
        if drop == 'dec': dec = np.ones(K, np.float32)
        S = (dec[:, None] * S).astype(np.float32)
        for j in range(4):
            Qj = tot(j + 1, 4)
            if drop == 'Q': Qj = np.ones(K, np.float32)
            S = (S + (bf(Kp[16*j:16*j+16] * Qj).astype(np.float64).T @ Vv[16*j:16*j+16].astype(np.float64))).astype(np.float32)
    u = 2.0 ** -8; ulp = 2.0 ** -24
    ddec = np.expm1(6 * ulp * (T + 16)); df = (2 * K + 128 + T + 16) * 4 * ulp
    rel_o = (1 + u) ** 3 * (1 + ddec) * (1 + df) - 1; rel_s = (1 + u) * (1 + ddec) * (1 + df) - 1
    wo = np.max(np.abs(o - o_ref) / (rel_o * o_abs + ulp * (np.abs(o_ref) + rel_o * o_abs) + 1e-30))
    ws = np.max(np.abs(S - s_ref) / (rel_s * s_abs + 1e-30))
    return wo, ws, rel_o
for args in [(200, 64, 48, 'mild', True), (200, 64, 48, 'mild', False), (130, 64, 32, 'extreme', False),
             (129, 32, 32, 'huge', True), (1000, 64, 16, 'extreme', True)]:
    print(args, 'ok: worst o %.3f s %.3f (rel_o %.4f)' % run(*args))
    for d in ['d', 'P', 'Q', 'dec']:
        wo, ws, _ = run(*args, drop=d); print('   drop', d, 'worst o %.2f s %.2f' % (wo, ws))
