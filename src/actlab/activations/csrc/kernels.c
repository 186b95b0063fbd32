/* actlab's CPU kernels: each activation's float32 forward and backward as one pass over memory.

   The formulas are those of fused.py's fast float32 forms (the same clamps, flushes and limits; a few
   rearranged or refitted for fewer ops, each said where), written with GCC's vector extensions on one
   register of floats at a time (W: 16 with AVX-512, 8 with AVX, else 4), so that the compiler emits the
   machine's instructions (AVX-512, AVX2, SSE, NEON) without depending on the auto-vectoriser, which gave up
   on half of these loops. Cycle counts in the comments are for 16 floats with AVX-512 on one thread. What
   inductor cannot give: an exp of ~10 vector ops (Cody-Waite reduction, degree-6 polynomial, 2^n by
   vscalefps or the exponent bits) instead of Sleef's, the parameter-gradient sums accumulated in the same
   pass, and a plain C call instead of dynamo's guards and inductor's wrapper.

   Conventions: MAXV/MINV have the semantics of a < b ? b : a, so NaN propagates. Parameters arrive as an
   array of up to ten floats (up to five scalars; PAU's ten coefficients), and their gradients leave as as
   many double sums of float32 partial sums over blocks of BLOCK elements. The forward probes the +-inf
   limits of kernels whose formula does not give them (four scalars, once per call) and puts them in where
   the formula's values at +-inf differ; the backward of those kernels clamps x to +-FLT_MAX first, as the
   reference backward does. Products a*b + c are contracted into FMAs (-ffp-contract=fast). */
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

/* Floats per vector value: one register. Wider generic vectors than the machine's are split by GCC, but their
   compares and selects were taken lane by lane (AVX2 with 16 floats: hard_swish 68 cycles for 16 floats,
   SMU 170; one ymm of 8: see below). */
#if defined(__AVX512F__)
#define W 16
#elif defined(__AVX__)
#define W 8
#else
#define W 4
#endif
#define BLOCK 1024         /* elements per parallel work item and per float32 partial sum */
#define PARALLEL_FROM 65536 /* below this a single thread is faster than waking the others */
#define MAX_SUMS 10         /* parameter values in and gradient sums out, at most */
#define ALL_SUMS ((1 << MAX_SUMS) - 1) /* want: every gradient sum */

/* Every vector helper inlined: GCC's size heuristics otherwise leave some (erf_gauss, the exp) as calls in
   the hot loops, where each call spills its vector arguments (Pserf's forward: 73 -> 83 cycles). */
#define INLINE static inline __attribute__((always_inline))

typedef float vf __attribute__((vector_size(4 * W)));
typedef int32_t vi __attribute__((vector_size(4 * W)));

INLINE vf splat(float a) { return a - (vf){0}; } /* not 0 + a, which turns -0 into +0 */
INLINE vf sel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }

#if defined(__AVX512F__)
#include <immintrin.h>
/* One instruction each: vmaxps(b, a) is b > a ? b : a, so a NaN in a comes through, as in the generic form. */
INLINE vf MAXV(vf a, vf b) { return (vf)_mm512_max_ps((__m512)b, (__m512)a); }
INLINE vf MINV(vf a, vf b) { return (vf)_mm512_min_ps((__m512)b, (__m512)a); }
/* 1/d for finite normal d >= 1e-37: 14-bit estimate and one Newton step, within 1 ulp, 3 ops instead of a
   division (~10 cycles for 16 floats here). Not for 0, inf or huge d: the kernels only pass bounded ones. */
INLINE vf recip(vf d) {
    vf r = (vf)_mm512_rcp14_ps((__m512)d);
    return r + r * (1.0f - d * r);
}
/* 1/sqrt(s) for finite normal s > 0: 14-bit estimate and one Newton step, within 2 ulp, 4 ops instead of a
   square root and a division. */
INLINE vf rsqrt(vf s) {
    vf r = (vf)_mm512_rsqrt14_ps((__m512)s);
    return r * (1.5f - (0.5f * s) * (r * r));
}
#else
INLINE vf MAXV(vf a, vf b) { return sel(a < b, b, a); }
INLINE vf MINV(vf a, vf b) { return sel(a > b, b, a); }
INLINE vf recip(vf d) { return 1.0f / d; }
#endif
INLINE vf absv(vf x) { return (vf)((vi)x & 0x7fffffff); }
INLINE vf copysignv(vf mag, vf sign) {
    return (vf)(((vi)mag & 0x7fffffff) | ((vi)sign & (int32_t)0x80000000));
}
INLINE vf sqrtv(vf x) {
    /* one vsqrtps by intrinsic: GCC made the lane loop two 256-bit ones and their shuffles (SMU-1's forward
       42 -> 21 cycles; squares_scaled's scaling alone changed nothing) */
#if defined(__AVX512F__)
    return (vf)_mm512_sqrt_ps((__m512)x);
#else
    vf r;
    for (int k = 0; k < W; k++) r[k] = sqrtf(x[k]); /* vsqrtps: -fno-math-errno */
    return r;
#endif
}
#if !defined(__AVX512F__)
INLINE vf rsqrt(vf s) { return 1.0f / sqrtv(s); }
#endif
#define ZERO splat(0.0f)
#define ONE splat(1.0f)
#define INF splat(INFINITY)
#define BIG 3.4028234663852886e38f

/* c·exp(r) for |r| <= ln(2)/2 and a constant c (a power of 2, folded into the coefficients, so that a
   caller's factor such as -2 costs no op): degree 6, Horner, fitted towards minimax for relative error
   (1.9e-9; 1.2 ulp evaluated in float32), three ops fewer than Cephes' 1 + r + r²·P(r) of degree 7. */
INLINE vf exp_reduced_times(vf r, float c) {
    vf p = splat(0.001383653492666781f * c);
    p = p * r + 0.008375054225325584f * c;
    p = p * r + 0.04166824370622635f * c;
    p = p * r + 0.16666416823863983f * c;
    p = p * r + 0.49999991059303284f * c;
    p = p * r + c;
    return p * r + c;
}

/* n = round(x/ln 2) and r = x - n·ln 2 (Cody-Waite: ln 2 in two parts), for |x| < 2^21. */
INLINE vf exp_reduce(vf x, vf *n) {
    *n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    vf r = *n * -0.693359375f + x;
    return *n * 2.12194440e-4f + r;
}

#if defined(__AVX512F__)
/* c·exp(x) for -86.6 <= x <= 88.72: exp(r) scaled by 2^n in one vscalefps (no intermediate overflow at
   n = 128, where exp(r) < 1). Relative error < 2 ulp. */
INLINE vf exp_core_times(vf x, float c) {
    vf n, r = exp_reduce(x, &n);
    return (vf)_mm512_scalef_ps((__m512)exp_reduced_times(r, c), (__m512)n);
}
INLINE vf exp_core(vf x) { return exp_core_times(x, 1.0f); }
/* exp(x) for any x (NaN kept): vscalefps gives inf past 88.72 and the subnormals and 0 below -87.3 itself,
   so only x is clamped (to [-104, 89], where 2^(n-1) is exactly representable for scalef). */
INLINE vf exp_v(vf x) { return exp_core(MINV(MAXV(x, splat(-104.0f)), splat(89.0f))); }
/* c·exp(x) for x <= 88.72 (or NaN), |c| <= 2: clamped at -105, where even 2·exp(x) rounds to 0. */
INLINE vf exp_below88_times(vf x, float c) { return exp_core_times(MAXV(x, splat(-105.0f)), c); }
#else
/* c·exp(x) for -86.6 <= x <= 88.72 (the caller clamps): 2c·exp(r) times 2^(n-1) from the exponent bits
   (n - 1 stays in the normal range at both ends). Relative error < 2 ulp. */
INLINE vf exp_core_times(vf x, float c) {
    vf n, r = exp_reduce(x, &n);
    vi e = (__builtin_convertvector(n, vi) + 126) << 23;
    return exp_reduced_times(r, 2.0f * c) * (vf)e;
}
INLINE vf exp_core(vf x) { return exp_core_times(x, 1.0f); }
/* exp(x) for any x: inf above 88.72, 0 below -86.6 (where exp leaves float32's normal range); NaN kept. */
INLINE vf exp_v(vf x) {
    vf v = exp_core(MINV(MAXV(x, splat(-86.6f)), splat(88.72f)));
    v = sel(x > 88.72f, INF, v);
    return sel(x < -86.6f, ZERO, v);
}
/* c·exp(x) for x <= 88.72 (or NaN): 0 below -86.6; two ops cheaper than exp_v. */
INLINE vf exp_below88_times(vf x, float c) {
    return sel(x < -86.6f, ZERO, exp_core_times(MAXV(x, splat(-86.6f)), c));
}
#endif
INLINE vf exp_below88(vf x) { return exp_below88_times(x, 1.0f); }

/* 2^n for integral n in [-126, 127]. */
INLINE vf pow2i(vf n) {
#if defined(__AVX512F__)
    return (vf)_mm512_scalef_ps((__m512)ONE, (__m512)n);
#else
    return (vf)((__builtin_convertvector(n, vi) + 127) << 23);
#endif
}

/* exp(x) - 1 and exp(x) for -87 <= x <= 0 (or NaN) from one reduction: with x = n·ln 2 + r, |r| <= ln(2)/2
   and em = expm1(r) = r + r²·P(r), exp(x) - 1 is 2^n·em + (2^n - 1) and exp(x) is 2^n·em + 2^n, one FMA
   each, both at full relative precision (1 - tanh² from exp(x) - 1 would lose it where exp(x) is tiny).
   Where n = 0, exp(x) - 1 is em itself; elsewhere |exp(x) - 1| > 0.29 and the sum loses at most a bit, so
   one polynomial serves every x, where a series near 0 and exp(x) - 1 beyond took two. P has degree 4,
   fitted for relative error (1.3e-8; the Taylor series needs degree 6 for as much). */
typedef struct {
    vf em, scale; /* expm1(r) and 2^n */
} exp_parts;
INLINE exp_parts exp_parts_core(vf x) {
    vf n, r = exp_reduce(x, &n);
    vf p = splat(0.00138824712485075f);
    p = p * r + 0.008366495370864868f;
    p = p * r + 0.04166720062494278f;
    p = p * r + 0.1666654348373413f;
    p = p * r + 0.4999999701976776f;
    return (exp_parts){(p * r) * r + r, pow2i(n)};
}
/* The same for any x <= 0: below -87 exp(x) is 0 and exp(x) - 1 is -1 (a select: letting 2^n go subnormal
   costs more, as every op on a subnormal does here). */
INLINE exp_parts exp_parts_neg(vf x) {
    exp_parts parts = exp_parts_core(MAXV(x, splat(-87.0f)));
    parts.scale = sel(x < -87.0f, ZERO, parts.scale);
    return parts;
}
INLINE vf exp_of(exp_parts p) { return p.em * p.scale + p.scale; }
/* exp(x) - 1, +0 at x = 0 as expm1 gives. */
INLINE vf expm1_of(exp_parts p) { return p.em * p.scale + (p.scale - 1.0f); }
/* 1 - exp(x), the sum negated (one FNMA), with +0 at x = 0 as -expm1 gives. */
INLINE vf one_minus_exp_of(exp_parts p) { return (1.0f - p.scale) - p.em * p.scale; }
/* tanh(w) for w >= 0 from the parts of q = e^(-2w): (1 - q)/(1 + q), 1 + q in [1, 2]; +0 at w = 0. */
INLINE vf tanh_of_parts(exp_parts q) {
    vf one_minus_q = one_minus_exp_of(q);
    return one_minus_q * recip(2.0f - one_minus_q);
}
/* tanh(w) and sech²(w) = 4q/(1 + q)² for w >= 0 from the same parts, for a backward. */
INLINE vf tanh_sech2_of_parts(exp_parts parts, vf *sech2) {
    vf q = exp_of(parts), r = recip(1.0f + q);
    *sech2 = (4.0f * q) * (r * r);
    return one_minus_exp_of(parts) * r;
}

/* sigma(z) and sigma(z)·sigma(-z) from one exp of -|z|. */
INLINE void sigmoid_pair(vf z, vf *s, vf *ss) {
    vf e = exp_below88(-absv(z));
    vf r = recip(1.0f + e); /* 1 + e in [1, 2] */
    *s = sel(z >= 0.0f, r, e * r);
    *ss = e * r * r;
}

/* 2·atanh(s) for 0 <= s <= 1/3 as 2s(1 + u·P(u)), u = s², P of degree 3 fitted for relative error on that
   range (Lawson-weighted least squares, 4.5e-9; the Taylor coefficients 1/3, 1/5, 1/7... need terms to s^15
   for as much): 4 FMAs where the series took 7. */
INLINE vf atanh2_series(vf s) {
    vf u = s * s;
    vf p = u * 0.1400461196899414f + 0.14001169800758362f;
    p = u * p + 0.20010748505592346f;
    p = u * p + 0.3333320915699005f;
    p = u * p + 1.0f;
    return 2.0f * s * p;
}

/* log(1 + e) for 0 <= e <= 1 as 2·atanh(s), s = e/(2 + e). */
INLINE vf log1p_unit(vf e) { return atanh2_series(e * recip(2.0f + e)); /* 2 + e in [2, 3] */ }

/* ln(v) for a normal v > 0: v = 2^k·m with m in [2/3, 4/3) from the bits, ln(m) = 2·atanh(f/(2 + f)),
   f = m - 1 exact, |f/(2 + f)| <= 1/5; k·ln 2 in two parts. */
INLINE vf log_normal(vf v) {
    vi bits = (vi)v, k = (bits - 0x3f2aaaab) >> 23;
    vf f = (vf)(bits - (k << 23)) - 1.0f, kf = __builtin_convertvector(k, vf);
    return kf * 0.693359375f + (kf * -2.12194440e-4f + atanh2_series(f * recip(2.0f + f))); /* 2 + f >= 5/3 */
}

/* softplus(z) and sigma(z) from one exp of -|z|. */
INLINE void softplus_sigmoid(vf z, vf *sp, vf *sig) {
    vf e = exp_below88(-absv(z));
    vf r = recip(1.0f + e); /* 1 + e in [1, 2] */
    *sp = MAXV(z, ZERO) + log1p_unit(e);
    *sig = sel(z >= 0.0f, r, e * r);
}

/* scale·erfc(slope·t)·exp(slope²t²) for 0 <= slope·t <= 9.3: u·P(u), u = 1/(1 + slope·t/2), P of degree 9
   (fused._erfc_scaled; relative error 1.7e-8 before float32 rounding). */
INLINE vf erfcx_poly(vf t, float slope, float scale) {
    vf u = recip(1.0f + (0.5f * slope) * t); /* in [1, 5.7] */
    vf p = (0.01450870931148529f * scale) * u - 0.13513387739658356f * scale;
    p = p * u + 0.45631107687950134f * scale;
    p = p * u - 0.7056940793991089f * scale;
    p = p * u + 0.45013517141342163f * scale;
    p = p * u - 0.11331334710121155f * scale;
    p = p * u + 0.2305310219526291f * scale;
    p = p * u + 0.2376227229833603f * scale;
    p = p * u + 0.2829737663269043f * scale;
    p = p * u + 0.28205883502960205f * scale;
    return u * p;
}

/* a·b - c with one rounding (a hardware FMA): an intrinsic, because GCC turned the lane loop of fmaf into
   16 scalar FMAs and their shuffles per vector (Serf's backward: 114 -> 60 cycles for 16 floats). */
#if defined(__AVX512F__)
INLINE vf fms_exact(vf a, vf b, vf c) { return (vf)_mm512_fmsub_ps((__m512)a, (__m512)b, (__m512)c); }
#elif defined(__FMA__) /* AVX2 (W = 8): one ymm */
#include <immintrin.h>
INLINE vf fms_exact(vf a, vf b, vf c) { return (vf)_mm256_fmsub_ps((__m256)a, (__m256)b, (__m256)c); }
#elif defined(__FP_FAST_FMAF) /* another machine's FMA, lane by lane */
INLINE vf fms_exact(vf a, vf b, vf c) {
    vf r;
    for (int k = 0; k < W; k++) r[k] = fmaf(a[k], b[k], -c[k]);
    return r;
}
#endif

/* a·b + c with one rounding where the machine has an FMA (else two). */
INLINE vf fma_once(vf a, vf b, vf c) {
#if defined(__AVX512F__) || defined(__FMA__) || defined(__FP_FAST_FMAF)
    return fms_exact(a, b, -c);
#else
    return a * b + c;
#endif
}

/* exp(-h·t²) at full relative precision for 0 <= t, h·t² <= 86.5: the rounding error of sq = fl(t²) is
   recovered exactly and applied as exp(-h·sq)·(1 - h·err): err by one FMA where the machine has one, else
   Dekker's split. */
INLINE vf gauss_core(vf t, float h) {
    vf sq = t * t;
#if defined(__AVX512F__) || defined(__FMA__) || defined(__FP_FAST_FMAF) /* fma(t, t, -sq) is exact */
    vf err = fms_exact(t, t, sq);
#else /* no FMA: Dekker's split, hi = t rounded to 1/256 (<= 12 bits for t < 16), so hi² is exact */
    vf hi = (t * 256.0f + 12582912.0f - 12582912.0f) * (1.0f / 256.0f), lo = t - hi;
    vf err = ((hi * hi - sq) + 2.0f * hi * lo) + lo * lo;
#endif
    vf e = exp_core(-h * sq);
    return e - e * (h * err);
}

/* exp(-t²) for t >= 0 at full relative precision, flushed to 0 beyond t = 9.3; NaN kept. */
INLINE vf gauss_flushed(vf t) { return sel(t > 9.3f, ZERO, gauss_core(MINV(t, splat(9.3f)), 1.0f)); }

/* (scale·erfc(t), exp(-t²)) for t >= 0, both flushed to 0 beyond t = 9.3; NaN kept. */
INLINE void erfc_gauss(vf t0, float scale, vf *ec, vf *gauss) {
    vf e = gauss_flushed(t0);
    *ec = e * erfcx_poly(MINV(t0, splat(9.3f)), 1.0f, scale);
    *gauss = e;
}

/* erf(s) for |s| < 0.5 as s(2/sqrt(pi) + u·P(u)), u = s², P of degree 3 fitted for relative error
   (Lawson-weighted least squares, 1.6e-9; the Taylor series needs terms to s^13 for as much). */
INLINE vf erf_series(vf s) {
    vf u = s * s;
    vf p = u * 0.0047304220497608185f - 0.02676410973072052f;
    p = u * p + 0.11282950639724731f;
    p = u * p - 0.37612617015838623f;
    return s * (u * p + 1.1283791670955126f);
}

/* erfc(t)·exp(t²) for 0.5 <= t <= 4, for erf = 1 - erfc: u·P(u) + c, u = 1/(1 + 0.6t), degree 6
   (coefficients rounded one by one, the rest refitted; relative error 8.5e-8, so erfc's absolute error is
   at most 2.7e-8, under half an ulp of erf). There erf >= 0.52 needs erfc's absolute error only, and
   erfc(4) = 1.5e-8 rounds 1 - erfc to 1, so the range and degree of erfcx_poly (9, up to t = 9.3, for
   erfc's relative error in SMU's and GELU's tails) are not needed. */
INLINE vf erfcx_short(vf t) {
    vf u = recip(1.0f + 0.6f * t); /* in [0.29, 0.77] */
    vf p = 0.14844255149364471f * u - 0.572228729724884f;
    p = p * u + 0.6392940282821655f;
    p = p * u + 0.057404957711696625f;
    p = p * u + 0.39643651247024536f;
    p = p * u + 0.3302132487297058f;
    return p * u + 0.0005029820604249835f;
}

/* erf(v) for v >= 0 (or NaN). exp(-t²) needs no recovery of t²'s rounding here: its relative error
   t²·2^-24 <= 1e-6 at t = 4 is an absolute error of erfc <= 2e-14. */
INLINE vf erf_nonneg(vf v) {
    vf t = MINV(v, splat(4.0f));
    vf ec = exp_core(-(t * t)) * erfcx_short(t);
    return sel(v < 0.5f, erf_series(v), 1.0f - ec);
}

/* (erf(v), exp(-v²)) for v >= 0 (or NaN), exp(-v²) at full relative precision and 0 beyond v = 9.3. */
INLINE void erf_gauss(vf v, vf *erf, vf *gauss) {
    vf e = gauss_flushed(v);
    *erf = sel(v < 0.5f, erf_series(v), 1.0f - e * erfcx_short(MINV(v, splat(4.0f))));
    *gauss = e;
}

/* erf(s) for any s. */
INLINE vf erf_v(vf s) { return copysignv(erf_nonneg(absv(s)), s); }

/* Whether any lane has a < b (an ordered compare: NaN lanes do not count), as one compare and a branch. */
INLINE int any_less(vf a, vf b) {
#if defined(__AVX512F__)
    return _mm512_cmp_ps_mask((__m512)a, (__m512)b, _CMP_LT_OQ) != 0;
#else
    vi hit = a < b;
    int32_t any = 0;
    for (int k = 0; k < W; k++) any |= hit[k];
    return any != 0;
#endif
}

/* Whether any lane is ±inf (|x| > max): one compare and a branch that is almost never taken, instead of
   two compares and two selects on every vector. */
INLINE int any_infinite(vf x) { return any_less(splat(BIG), absv(x)); }

/* Whether every lane is finite (not ±inf, not NaN): one compare and a branch. */
INLINE int all_finite(vf x) {
#if defined(__AVX512F__)
    return _mm512_cmp_ps_mask((__m512)absv(x), (__m512)splat(BIG), _CMP_LE_OQ) == 0xFFFF;
#else
    vi ok = absv(x) <= BIG;
    int32_t all = -1;
    for (int k = 0; k < W; k++) all &= ok[k];
    return all != 0;
#endif
}

/* a·b, but 0 where either factor is 0 (functional.mul0). */
INLINE vf mul0(vf a, vf b) { return sel((a == 0.0f) | (b == 0.0f), ZERO, a * b); }

/* a·b for a finite b that is 0 wherever a overflowed to ±inf (a read as ±max): 0 where b is 0, as mul0
   gives, in two ops for its four (the zero may carry a sign). */
INLINE vf times_vanishing(vf a, vf b) { return MINV(MAXV(a, splat(-BIG)), splat(BIG)) * b; }

/* c·v for a parameter c splat over the vector: 0 where c is 0 (even where v is inf), as mul0 gives; the
   compare of c is the same for every vector, so the loop keeps one select and one multiply of mul0's four. */
INLINE vf scalar_times(vf c, vf v) { return sel(c == 0.0f, ZERO, c * v); }

/* sq·f for a square sq >= 0 that may overflow to inf and a finite f: 0 where f is 0, one op for mul0's four. */
INLINE vf square_times(vf sq, vf f) { return MINV(sq, splat(BIG)) * f; }

/* ---------------------------------------------------------------------------------------------------
   Each activation on 16 elements: NAME_val(x, P) and NAME_grad(g, x, P, d) with d[0] = dL/dx and
   d[1..] = the summands of the parameter gradients, in the order of the kernel's parameters. P holds
   the parameters, each splat over a vector. */

/* 1/(1 + e^-z) for any z, e^-z taken at -z clamped to +-86.6 so that 1 + e^-z stays a bounded divisor
   (below z = -86.6 the callers' products are below 1e-36 or flushed). */
INLINE vf sigmoid_clamped(vf z) {
    return recip(1.0f + exp_core(MINV(MAXV(-z, splat(-86.6f)), splat(86.6f))));
}

INLINE vf silu_val(vf x, const vf *P) {
    (void)P;
    return sel(x < -86.6f, splat(-0.0f), x * sigmoid_clamped(x)); /* -2e-36 < x·sigma(x) < 0 there */
}
INLINE void silu_grad(vf g, vf x, const vf *P, vf *d) {
    (void)P;
    vf s, ss;
    sigmoid_pair(x, &s, &ss);
    d[0] = g * (s + MINV(MAXV(x, splat(-104.0f)), splat(104.0f)) * ss);
}

/* Hard-Swish x·(min(max(x + 3, 0), 6)/6) (functional.hard_swish): the gate divided first, so that x·gate
   never overflows, and by a true division, as the reference: bandwidth-bound either way. */
INLINE vf hard_swish_val(vf x, const vf *P) {
    (void)P;
    return x * (MINV(MAXV(x + 3.0f, ZERO), splat(6.0f)) / 6.0f); /* NaN kept by both */
}
INLINE void hard_swish_grad(vf g, vf x, const vf *P, vf *d) {
    (void)P;
    d[0] = g * sel(x >= 3.0f, ONE, sel(x <= -3.0f, ZERO, (2.0f * x + 3.0f) / 6.0f));
}

/* The ELU family scale·(x if x > 0 else alpha·expm1(x·s)), s the input scale (functional.elu; ELU: s = 1,
   CELU: s = 1/alpha, SELU: s = 1 and scale lambda), P = (alpha, s, scale). Where s >= 0 (every preset but
   CELU with alpha < 0, a branch the same for every vector) x·s <= 0 on the lanes that use it: expm1 and exp
   from exp_parts_neg's one reduction. Otherwise expm1 may overflow: exp(t) - 1 above t = 0.5, where it has
   no cancellation. */
INLINE vf elu_expm1(vf t, int s_nonneg, vf *e) {
    exp_parts parts = exp_parts_neg(MINV(t, s_nonneg ? ZERO : splat(0.5f))); /* NaN kept */
    vf em1 = expm1_of(parts);
    *e = exp_of(parts);
    if (s_nonneg) return em1;
    vf big = exp_v(t);
    *e = sel(t > 0.5f, big, *e);
    return sel(t > 0.5f, big - 1.0f, em1);
}
INLINE vf elu_val(vf x, const vf *P) {
    vf e, em1 = elu_expm1(x * P[1], P[1][0] >= 0.0f, &e);
    return P[2] * sel(x > 0.0f, x, P[0] * em1);
}
INLINE void elu_grad(vf g, vf x, const vf *P, vf *d) {
    vf e;
    (void)elu_expm1(x * P[1], P[1][0] >= 0.0f, &e);
    d[0] = g * (P[2] * sel(x > 0.0f, ONE, (P[0] * P[1]) * e)); /* the constants are buffers: no sums */
}
#define ELU_PRESET(NAME)                                                                           \
    INLINE vf NAME##_val(vf x, const vf *P) { return elu_val(x, P); }                              \
    INLINE void NAME##_grad(vf g, vf x, const vf *P, vf *d) { elu_grad(g, x, P, d); }
ELU_PRESET(celu)
ELU_PRESET(selu)

INLINE vf swish_val(vf x, const vf *P) {
    vf bx = P[0] * x;
    /* |x·sigma(bx)| < 1e-34 there unless |x| is huge: a zero of x's sign */
    return sel(bx < -86.6f, copysignv(ZERO, x), x * sigmoid_clamped(bx));
}
INLINE void swish_grad(vf g, vf x, const vf *P, vf *d) {
    vf s, ss;
    sigmoid_pair(P[0] * x, &s, &ss);
    vf x_ss = x * ss;
    d[0] = g * (s + P[0] * x_ss);
    d[1] = g * (x * x_ss);
}

INLINE vf mish_val(vf x, const vf *P) {
    (void)P;
    vf e = exp_below88(MINV(x, splat(20.0f))), n = e * (e + 2.0f);
    return MAXV(x, splat(-104.0f)) * (n * recip(n + 2.0f)); /* n + 2 in [2, 2.4e17] */
}
INLINE void mish_grad(vf g, vf x0, const vf *P, vf *d) {
    (void)P;
    vf x = MAXV(x0, splat(-104.0f));
    vf e = exp_below88(MINV(x, splat(20.0f))), n = e * (e + 2.0f), r = recip(n + 2.0f);
    vf slope = n * r + x * (4.0f * e * (1.0f + e) * (r * r));
    d[0] = g * sel(x > 20.0f, ONE, slope);
}

/* Softplus ln(1 + e^(beta·x))/beta, x itself above the threshold (of beta·x): its own limits. */
INLINE vf softplus_val(vf x, const vf *P) {
    vf z = P[0] * x, sp, sig;
    softplus_sigmoid(z, &sp, &sig);
    return sel(z > P[1], x, sp * (1.0f / P[0])); /* 1/beta: once per call, hoisted out of the loop */
}
INLINE void softplus_grad(vf g, vf x, const vf *P, vf *d) {
    vf z = P[0] * x, s, ss;
    sigmoid_pair(z, &s, &ss);
    d[0] = g * sel(z > P[1], ONE, s); /* beta and the threshold are buffers: d[1], d[2] stay 0 */
}

#define GELU_ZERO 13.152186130069785f /* 9.3·sqrt(2): Phi(-x) and phi(x) flushed to 0 beyond */

/* Phi(x) and exp(-x²/2) sharing one exp; exp(-x²/2) from x itself, erfc's factor from x/sqrt(2). */
INLINE void gelu_parts(vf x, vf *cdf, vf *gauss) {
    vf a = absv(x), t = MINV(a, splat(GELU_ZERO));
    vf e = sel(a > GELU_ZERO, ZERO, gauss_core(t, 0.5f));
    vf tail = e * erfcx_poly(t, 0.7071067811865475f, 0.5f);
    *cdf = sel(x > 0.0f, 1.0f - tail, tail);
    *gauss = e;
}
INLINE vf gelu_val(vf x, const vf *P) {
    (void)P;
    vf cdf, gs;
    gelu_parts(x, &cdf, &gs);
    return MAXV(x, splat(-GELU_ZERO)) * cdf;
}
INLINE void gelu_grad(vf g, vf x, const vf *P, vf *d) {
    (void)P;
    vf cdf, gs;
    gelu_parts(x, &cdf, &gs);
    vf x_gauss = MINV(MAXV(x, splat(-GELU_ZERO)), splat(GELU_ZERO)) * gs;
    d[0] = g * (cdf + x_gauss * 0.3989422804014327f);
}

/* smooth max(a·x, b·x), erf form; SMU is a = 1, b = alpha. */
INLINE vf smooth_erf_val(vf x, vf a, vf b, vf mu) {
    vf d = a - b, z = mu * d * x, he, gs;
    erfc_gauss(absv(z), 0.5f, &he, &gs);
    return x * (b + d * sel(z > 0.0f, 1.0f - he, he));
}
INLINE void smooth_erf_grad(vf g, vf x, vf a, vf b, vf mu, vf *d4) {
    vf d = a - b, z = mu * d * x, he, gs;
    erfc_gauss(absv(z), 0.5f, &he, &gs);
    vi right = z > 0.0f;
    vf upper = sel(right, 1.0f - he, he), lower = sel(right, he, 1.0f - he);
    gs = gs * 0.5641895835477563f;
    vf z_gauss = MINV(MAXV(z, splat(-9.3f)), splat(9.3f)) * gs;
    vf gx = g * x, dx = d * x;
    d4[0] = g * (b + d * upper + d * z_gauss);
    d4[1] = gx * (upper + z_gauss);
    d4[2] = gx * (lower - z_gauss);
    d4[3] = g * square_times(dx * dx, gs);
}

/* smooth max(a·x, b·x) with parameters (a, b, mu), and SMU's form of it, a = 1 and b = alpha, with (alpha, mu)
   (functional.smu_pair). */
#define SMOOTH_MAX_PAIR(MAX, SMU, FORM)                                                                     \
    INLINE vf MAX##_val(vf x, const vf *P) { return FORM##_val(x, P[0], P[1], P[2]); }              \
    INLINE void MAX##_grad(vf g, vf x, const vf *P, vf *d) { FORM##_grad(g, x, P[0], P[1], P[2], d); } \
    INLINE vf SMU##_val(vf x, const vf *P) { return FORM##_val(x, ONE, P[0], P[1]); }               \
    INLINE void SMU##_grad(vf g, vf x, const vf *P, vf *d) {                                        \
        vf d4[4];                                                                                           \
        FORM##_grad(g, x, ONE, P[0], P[1], d4);                                                             \
        d[0] = d4[0], d[1] = d4[2], d[2] = d4[3];                                                           \
    }

SMOOTH_MAX_PAIR(smooth_max_erf, smu, smooth_erf)

/* smooth max, sqrt form, everything scaled by 2^-k, 2^k <= m < 2^(k+1) for m = max(|x|, |mu|, 1e-30)
   (fused._sqrt_scaled divides by m itself; a power of 2 from the exponent bits is exact, where x/m rounds,
   and as fast). k is at most 126 (inf and NaN lanes too), so 2^-k is normal;
   *half_scale is 2^(k-1). */
INLINE vf squares_scaled(vf x, vf d, vf mu, vf *half_scale, vf *xs, vf *ms) {
    vf big = MAXV(MAXV(absv(x), absv(mu)), splat(1e-30f));
    vi k = (((vi)big >> 23) & 0xff) - 127, over = k > 126;
    k = (over & 126) | (~over & k);
    vf inv = (vf)((127 - k) << 23);
    *half_scale = (vf)((126 + k) << 23);
    *xs = x * inv, *ms = mu * inv;
    vf dxs = d * *xs;
    return dxs * dxs + *ms * *ms;
}
/* Whether rsqrt serves for 1/r (scaled): with max(|xs|, |ms|) in [1, 2), r² = (d·xs)² + ms² is 0 or at
   least min(d², 1), so |a - b| in [2^-40, 2^40] keeps it normal and bounded. A branch the same for every
   vector; other parameters take the square root and divide. */
INLINE int sqrt_rsqrt_ok(vf a, vf b) {
    float d = fabsf(a[0] - b[0]);
    return d >= 0x1p-40f && d <= 0x1p40f;
}
INLINE vf smooth_sqrt_val(vf x, vf a, vf b, vf mu) {
    vf half_scale, xs, ms, rs = sqrtv(squares_scaled(x, a - b, mu, &half_scale, &xs, &ms)), sxs = (a + b) * xs;
    /* a true division: the divider is otherwise idle here, and recip was no faster */
    vf opposite = (ms * ms - 4.0f * (a * b) * (xs * xs)) / (rs - sxs);
    return half_scale * sel(sxs >= 0.0f, sxs + rs, opposite);
}
INLINE void smooth_sqrt_grad(vf g, vf x, vf a, vf b, vf mu, vf *d4) {
    vf d = a - b, half_scale, xs, ms, r2 = squares_scaled(x, d, mu, &half_scale, &xs, &ms);
    vf inv_rs = sel(r2 == 0.0f, ZERO, sqrt_rsqrt_ok(a, b) ? rsqrt(r2) : 1.0f / sqrtv(r2));
    vf u = d * xs * inv_rs, half_g = 0.5f * g;
    d4[0] = half_g * ((a + b) + d * u);
    d4[1] = half_g * x * (1.0f + u);
    d4[2] = half_g * x * (1.0f - u);
    d4[3] = half_g * (ms * inv_rs);
}
SMOOTH_MAX_PAIR(smooth_max_sqrt, smu1, smooth_sqrt)

/* Logish alpha·x·ln(1 + sigma(z)), z = beta·x. With E = e^-|z|, ln(1 + sigma) = 2·atanh(s) where
   s = sigma/(2 + sigma) is 1/(3 + 2E) for z >= 0 and E/(2 + 3E) below: one division, not sigma's and then
   s's. The backward's sigma(z)sigma(-z)/(1 + sigma(z)) is E/((1 + E)(2 + E)), or E/((1 + E)(1 + 2E)) below;
   both come from one reciprocal of the product of the three divisors (in [2, 30]). */
INLINE vf logish_val(vf x, const vf *P) {
    vf z = P[1] * x, E = exp_below88(-absv(z));
    vi right = z >= 0.0f;
    vf s = sel(right, ONE, E) * recip(sel(right, 3.0f + 2.0f * E, 2.0f + 3.0f * E)); /* in [2, 5] */
    return P[0] * (x * atanh2_series(s));
}
INLINE void logish_grad(vf g, vf x, const vf *P, vf *d) {
    vf z = P[1] * x, E = exp_below88(-absv(z));
    vi right = z >= 0.0f;
    vf c = sel(right, 3.0f + 2.0f * E, 2.0f + 3.0f * E), b = sel(right, 2.0f + E, 1.0f + 2.0f * E);
    vf eb = (1.0f + E) * b, inv = recip(c * eb);
    vf log_term = atanh2_series(sel(right, ONE, E) * eb * inv), ss = E * c * inv, ga = g * P[0];
    d[0] = ga * (log_term + times_vanishing(z, ss)); /* ss = 0 where z = beta·x overflowed */
    d[1] = g * (x * log_term);
    d[2] = ga * square_times(x * x, ss);
}

/* TanhExp x·tanh(e^x): with q = e^(-2w), w = e^x, tanh(w) = (1 - q)/(1 + q) and sech²(w) = 4q/(1 + q)²,
   1 - q and q from one reduction. x is clamped at 3.77 (w = 43.4, so -2w >= -86.8 needs no clamp of its own):
   tanh(w) is 1 in float32 from w = 9 on, and x·w·sech²(w) < 4e-36 beyond, 0 next to tanh(w) = 1. */
#define TANHEXP_FLAT 3.77f
INLINE vf tanhexp_val(vf x, const vf *P) {
    (void)P;
    /* the -2 folded into the exp's polynomial; below x = -105 even -2w rounds to 0 */
    return x * tanh_of_parts(exp_parts_core(exp_below88_times(MINV(x, splat(TANHEXP_FLAT)), -2.0f)));
}
INLINE void tanhexp_grad(vf g, vf x, const vf *P, vf *d) {
    (void)P;
    vf flat = MINV(x, splat(TANHEXP_FLAT)), e = exp_below88(flat); /* NaN kept */
    vf sech2, tanh_w = tanh_sech2_of_parts(exp_parts_core(-2.0f * e), &sech2);
    d[0] = g * (tanh_w + flat * (e * sech2));
}

/* TanhSoft with delta = 0 (Echo's default): ln(e^x) = x and e = e^(-inf) = 0; a branch the same for every
   vector. */
INLINE int tanhsoft_delta_zero(const vf *P) { return P[3][0] == 0.0f; }
/* TanhSoft with beta = 0 (TanhSoft-1): w = alpha·x, so e^(gamma·x) is needed only for beta's own gradient
   (taken apart, where asked for) and the value skips an exp (~20 % of TanhSoft-1's forward). */
INLINE int tanhsoft_beta_zero(const vf *P) { return P[1][0] == 0.0f; }

/* TanhSoft tanh(alpha·x + beta·e^(gamma·x))·ln(delta + e^x): tanh(w) = sign(w)·(1 - q)/(1 + q) and
   sech²(w) = 4q/(1 + q)², 1 - q and q = e^(-2|w|) from one reduction; ln(delta + e^x) = max(x, ln delta) + ln(1 + e),
   e = e^(-|x - ln delta|) (fused._tanhsoft_fast_parts). */
INLINE void tanhsoft_parts(vf x, const vf *P, vf *e_gx, vf *w, exp_parts *q, vf *log_term, vf *u,
                                  vf *e) {
    *e_gx = tanhsoft_beta_zero(P) ? ZERO : exp_v(P[2] * x);
    *w = P[0] * x + scalar_times(P[1], *e_gx); /* beta = 0: 0 even where e^(gamma·x) overflowed */
    *q = exp_parts_neg(-2.0f * absv(*w));
    if (tanhsoft_delta_zero(P)) {
        *u = INF, *e = ZERO, *log_term = x;
        return;
    }
    *u = x - P[4];
    *e = exp_below88(-absv(*u));
    *log_term = MAXV(x, P[4]) + log1p_unit(*e);
}
INLINE vf tanhsoft_general_val(vf x, const vf *P) {
    vf e_gx, w, log_term, u, e;
    exp_parts q;
    tanhsoft_parts(x, P, &e_gx, &w, &q, &log_term, &u, &e);
    vf tanh_w = copysignv(tanh_of_parts(q), w);
    /* delta = 0: the log term is x, so mul0 differs from the product only in the sign of a zero (+ 0 makes
       -0 +0, as mul0 gives) and at x = ±inf, where the forward puts the limits */
    if (tanhsoft_delta_zero(P)) return tanh_w * x + 0.0f;
    return mul0(tanh_w, log_term);
}
/* beta's summand where beta = 0 (e^(gamma·x) not computed for the rest): mul0's zeros, as the general path;
   dead code, so no exp, where beta's gradient is not asked for. */
INLINE vf tanhsoft_beta_grad(vf g, vf x, const vf *P, vf sech2, vf log_term) {
    return g * mul0(mul0(sech2, exp_v(P[2] * x)), log_term);
}
INLINE void tanhsoft_general_grad(vf g, vf x, const vf *P, vf *d) {
    vf e_gx, w, log_term, u, e;
    exp_parts parts;
    tanhsoft_parts(x, P, &e_gx, &w, &parts, &log_term, &u, &e);
    vf sech2, tanh_w = copysignv(tanh_sech2_of_parts(parts, &sech2), w);
    vf d_log = ONE, r_log = ONE; /* sigma(x - ln delta), from the same exp; 1 for delta = 0 (the log term is x) */
    if (!tanhsoft_delta_zero(P)) {
        r_log = recip(1.0f + e);
        d_log = sel(u >= 0.0f, r_log, e * r_log);
    }
    d[1] = g * sech2 * x * log_term;
    /* delta's summand tanh(w)/(delta + e^x): for 0 < delta with a finite 1/delta that is
       tanh(w)·sigma(-u)/delta, sigma(-u) from the same e and r, an exp fewer than e^(-log term) (and at
       full relative precision, where e^(-log term) inherits the log term's absolute rounding error) */
    if (!tanhsoft_delta_zero(P) && P[5][0] <= BIG)
        d[4] = g * tanh_w * (sel(u >= 0.0f, e * r_log, r_log) * P[5]);
    else
        d[4] = g * tanh_w * exp_v(-log_term);
    vf beta_x = P[1] * x; /* inf for x near -max with beta > 1, where e^(gamma·x) is 0 */
    if (all_finite(e_gx + absv(beta_x))) { /* no overflow, no NaN: mul0's zero rule changes nothing */
        vf sech2_e = sech2 * e_gx, s_log = sech2_e * log_term;
        d[0] = g * ((sech2 * P[0] + (P[1] * P[2]) * sech2_e) * log_term + tanh_w * d_log);
        d[2] = g * s_log;
        d[3] = g * (beta_x * s_log);
    } else {
        vf sech2_e = mul0(sech2, e_gx);
        d[0] = g * (mul0(sech2 * P[0] + mul0(P[1] * P[2], sech2_e), log_term) + tanh_w * d_log);
        d[2] = g * mul0(sech2_e, log_term);
        d[3] = g * mul0(mul0(beta_x, sech2_e), log_term); /* beta = 0: 0 where e^(gamma·x) overflowed */
    }
    if (tanhsoft_beta_zero(P)) d[2] = tanhsoft_beta_grad(g, x, P, sech2, log_term);
}

/* TanhSoft with alpha = 0 and delta = 0 (Echo's default, TanhSoft-2), for beta in [1e-30, max] and a finite
   gamma > 0: x·tanh(w), w = beta·e^u, u = gamma·x, by TanhExp's scheme (q = e^(-2w), 1 - q and q from one
   reduction) with u clamped at P[4] = ln(43/beta), where tanh(w) is 1 in float32 (and -2w >= -86.8 needs no
   clamp of its own): the general form's second exp, its selects for alpha·x, delta and the sign of w go
   (~30 % of its forward and backward). Its backward gives dL/dx alone (tanhsoft_bwd sends it no sums). */
INLINE int tanhsoft_is_exp(const float *p) {
    return p[0] == 0.0f && p[3] == 0.0f && p[1] >= 1e-30f && p[1] <= BIG && p[2] > 0.0f && p[2] <= BIG;
}
INLINE void tanhsoft_exp_params(const float *p, vf *P) {
    for (int k = 0; k < 4; k++) P[k] = splat(p[k]);
    P[4] = splat((float)log(43.0 / (double)p[1])); /* at most 73.8 */
    P[5] = ZERO;
}
INLINE vf tanhsoft_exp_val(vf x, const vf *P) {
    vf w2 = exp_below88_times(MINV(P[2] * x, P[4]), -2.0f) * P[1]; /* -2w */
    /* + 0: mul0's +0 where tanh(w) underflowed, as the general form gives */
    return x * tanh_of_parts(exp_parts_core(w2)) + 0.0f;
}
INLINE void tanhsoft_exp_grad(vf g, vf x, const vf *P, vf *d) {
    /* u clamped below at -max too: u·w is 0, not -inf·0, where gamma·x overflowed and w is 0 */
    vf u = MINV(MAXV(P[2] * x, splat(-BIG)), P[4]), w = exp_below88(u) * P[1];
    vf sech2, tanh_w = tanh_sech2_of_parts(exp_parts_core(-2.0f * w), &sech2);
    d[0] = g * (tanh_w + u * (w * sech2)); /* tanh(w) + gamma·x·w·sech²(w) */
}

/* TanhSoft with beta = 0 and delta = 1 (TanhSoft-1) for a finite alpha: tanh(alpha·x)·sp(x), the general
   form's steps without its selects for beta·e^(gamma·x), ln delta and mul0's zeros (+ 0 gives its +0 where
   tanh(w)·sp is -0). Its backward gives dL/dx alone (tanhsoft_bwd sends it no sums). */
INLINE int tanhsoft_is_softplus(const float *p) {
    return p[1] == 0.0f && p[3] == 1.0f && isfinite(p[0]);
}
INLINE vf tanhsoft_softplus_val(vf x, const vf *P) {
    vf w = P[0] * x, E = exp_below88(-absv(x));
    vf tanh_w = copysignv(tanh_of_parts(exp_parts_neg(-2.0f * absv(w))), w);
    return tanh_w * (MAXV(x, ZERO) + log1p_unit(E)) + 0.0f;
}
INLINE void tanhsoft_softplus_grad(vf g, vf x, const vf *P, vf *d) {
    vf w = P[0] * x, sp, sig, sech2;
    vf tanh_w = copysignv(tanh_sech2_of_parts(exp_parts_neg(-2.0f * absv(w)), &sech2), w);
    softplus_sigmoid(x, &sp, &sig);
    d[0] = g * ((P[0] * sech2) * sp + tanh_w * sig); /* sech2 = 0 where sp is max */
}

/* BEGIN fitted tables: generated by tools/fit_tables.py, do not edit. Polynomials in t = x - centre on
   32 intervals of width NAME_W from NAME_X0; row k holds t^k's coefficients. */
#define SERF_G_X0 -9.5f
#define SERF_G_W 0.4375f
#define SERF_G_DEG 5
static const float SERF_G[6][32] __attribute__((aligned(64))) = {
    {0.00010510882566450164f, 0.00016279156261589378f, 0.000252126541454345f, 0.00039047724567353725f, 0.0006047255592420697f, 0.0009364794241264462f, 0.001450117095373571f, 0.0022451921831816435f, 0.003475519362837076f, 0.00537842558696866f, 0.00831932108849287f, 0.012858957052230835f, 0.01985335908830166f, 0.030598461627960205f, 0.04702990874648094f, 0.0719752088189125f, 0.10941076278686523f, 0.16455978155136108f, 0.24341866374015808f, 0.35092025995254517f, 0.48683851957321167f, 0.6400812864303589f, 0.7865418791770935f, 0.8985666036605835f, 0.9633657336235046f, 0.9903832077980042f, 0.9982240200042725f, 0.9997739791870117f, 0.9999803900718689f, 0.9999988675117493f, 0.9999999403953552f, 1.0f},
    {0.00010510392166906968f, 0.0001627798192203045f, 0.0002520983398426324f, 0.0003904096665792167f, 0.0006045633926987648f, 0.0009360904805362225f, 0.0014491841429844499f, 0.002242953982204199f, 0.003470150288194418f, 0.005365546327084303f, 0.008288427256047726f, 0.01278485357761383f, 0.019675642251968384f, 0.03017241135239601f, 0.0460093654692173f, 0.06953530758619308f, 0.10360211133956909f, 0.1508558690547943f, 0.21167704463005066f, 0.2799171805381775f, 0.3373384177684784f, 0.3536573648452759f, 0.30449622869491577f, 0.20238180458545685f, 0.09809121489524841f, 0.033168431371450424f, 0.007602200843393803f, 0.0011633994290605187f, 0.00011825267574749887f, 7.98784094513394e-06f, 3.597888849071751e-07f, 1.0852668985705805e-08f},
    {5.254688221612014e-05f, 8.1377882452216e-05f, 0.00012602056085597724f, 0.0001951365702552721f, 0.00030211854027584195f, 0.0004676546959672123f, 0.0007236566161736846f, 0.0011192351812496781f, 0.0017297007143497467f, 0.002669886453077197f, 0.004113310482352972f, 0.0063183242455124855f, 0.00966017134487629f, 0.014660602435469627f, 0.021986695006489754f, 0.032341670244932175f, 0.04606601223349571f, 0.06209740415215492f, 0.07587543874979019f, 0.07667126506567001f, 0.04847114533185959f, -0.016560057178139687f, -0.09356091171503067f, -0.12899838387966156f, -0.10069022327661514f, -0.048343416303396225f, -0.014541665092110634f, -0.0027665109373629093f, -0.00033613189589232206f, -2.6353091016062535e-05f, -1.3464181165545597e-06f, -4.52138912976352e-08f},
    {1.7512576960143633e-05f, 2.711845991143491e-05f, 4.198858005111106e-05f, 6.500125164166093e-05f, 0.00010059930355055258f, 0.00015562748012598604f, 0.00024059973657131195f, 0.00037159069324843585f, 0.0005729943513870239f, 0.0008813866297714412f, 0.0013505264651030302f, 0.0020567537285387516f, 0.003101763781160116f, 0.004603756126016378f, 0.006653513293713331f, 0.009180814027786255f, 0.011623692698776722f, 0.012265067547559738f, 0.007374857552349567f, -0.008354920893907547f, -0.03600011020898819f, -0.059994056820869446f, -0.04957123473286629f, -0.0010210613254457712f, 0.03803197294473648f, 0.035700373351573944f, 0.015864241868257523f, 0.003973925951868296f, 0.0005963995936326683f, 5.5463162425439805e-05f, 3.2695602385501843e-06f, 1.2420137807112042e-07f},
    {4.386896307551069e-06f, 6.791757186874747e-06f, 1.0512560038478114e-05f, 1.6266052625724114e-05f, 2.515468622732442e-05f, 3.8867583498358727e-05f, 5.997678090352565e-05f, 9.236009645974264e-05f, 0.00014176982222124934f, 0.0002165068144677207f, 0.0003279702505096793f, 0.0004903314984403551f, 0.0007172503392212093f, 0.0010103719541803002f, 0.0013274369994178414f, 0.001505665946751833f, 0.0011079058749601245f, -0.0007813425036147237f, -0.005436199717223644f, -0.012799383141100407f, -0.017144905403256416f, -0.0064356084913015366f, 0.01917855441570282f, 0.030218154191970825f, 0.01039650198072195f, -0.009648438543081284f, -0.01001003198325634f, -0.0037932652048766613f, -0.0007582080434076488f, -8.842254464980215e-05f, -6.318724899756489e-06f, -2.8505999694061757e-07f},
    {8.731448133403319e-07f, 1.351242190139601e-06f, 2.090179805236403e-06f, 3.2309410471498268e-06f, 4.988843556930078e-06f, 7.690084203204606e-06f, 1.1822387932625134e-05f, 1.8099191947840154e-05f, 2.752487489487976e-05f, 4.141396493650973e-05f, 6.122579361544922e-05f, 8.784676174400374e-05f, 0.00011940620606765151f, 0.00014550978085026145f, 0.00013355094415601343f, 7.607929433106619e-07f, -0.00042547506745904684f, -0.001392195001244545f, -0.0028742668218910694f, -0.0034507522359490395f, 0.00048350237193517387f, 0.009457879699766636f, 0.011302056722342968f, -0.0028370388317853212f, -0.012230376712977886f, -0.004436388146132231f, 0.0026706235948950052f, 0.0022806033957749605f, 0.0006543654017150402f, 9.675996261648834e-05f, 8.264339157904033e-06f, 4.3037263708356477e-07f}
};
#define SERF_D_X0 -9.5f
#define SERF_D_W 0.4375f
#define SERF_D_DEG 6
static const float SERF_D[7][32] __attribute__((aligned(64))) = {
    {-0.0008703870116733015f, -0.0012767924927175045f, -0.0018670752178877592f, -0.0027205997612327337f, -0.003948392812162638f, -0.005703912582248449f, -0.008196014910936356f, -0.01170317828655243f, -0.016586286947131157f, -0.023293713107705116f, -0.03234577551484108f, -0.04427335783839226f, -0.05946407839655876f, -0.0778336450457573f, -0.098187156021595f, -0.1170739009976387f, -0.1269315481185913f, -0.11358071118593216f, -0.054252155125141144f, 0.07975047826766968f, 0.30762746930122375f, 0.606925904750824f, 0.891212522983551f, 1.0566773414611816f, 1.0829143524169922f, 1.0453184843063354f, 1.0141412019729614f, 1.0027188062667847f, 1.0003314018249512f, 1.0000261068344116f, 1.000001311302185f, 1.0f},
    {-0.0007651970954611897f, -0.0011138166300952435f, -0.0016145313857123256f, -0.002329180482774973f, -0.0033415493089705706f, -0.004762693308293819f, -0.006735343020409346f, -0.009434626437723637f, -0.01305942889302969f, -0.017803404480218887f, -0.023785118013620377f, -0.030900442972779274f, -0.03853396698832512f, -0.045028313994407654f, -0.04677211120724678f, -0.036786578595638275f, -0.002970511093735695f, 0.07272987067699432f, 0.20995639264583588f, 0.41128289699554443f, 0.6231725811958313f, 0.7104189395904541f, 0.5446667075157166f, 0.20319072902202606f, -0.04924909025430679f, -0.09378329664468765f, -0.04568368196487427f, -0.01168343611061573f, -0.0017623306484892964f, -0.00016425900685135275f, -9.714450243336614e-06f, -3.7110143580321164e-07f},
    {-0.0003299703821539879f, -0.0004753459361381829f, -0.0006808273610658944f, -0.0009685110417194664f, -0.0013665372971445322f, -0.0019089501583948731f, -0.0026334580034017563f, -0.0035747140645980835f, -0.004748669918626547f, -0.006119932979345322f, -0.007537945173680782f, -0.008618147112429142f, -0.008531174622476101f, -0.005652201361954212f, 0.002959650009870529f, 0.02214338444173336f, 0.05864638835191727f, 0.11844673752784729f, 0.19650763273239136f, 0.25429317355155945f, 0.2027997076511383f, -0.03279304876923561f, -0.33181846141815186f, -0.3894033432006836f, -0.1629927009344101f, 0.032366059720516205f, 0.0560075081884861f, 0.021873265504837036f, 0.004305568989366293f, 0.0004888162366114557f, 3.3848733437480405e-05f, 1.4753907180420356e-06f},
    {-9.242686064681038e-05f, -0.00013121536176186055f, -0.00018469477072358131f, -0.00025725344312377274f, -0.00035361034679226577f, -0.00047779027954675257f, -0.0006308084703050554f, -0.0008059050305746496f, -0.0009792603086680174f, -0.0010926189133897424f, -0.001021933276206255f, -0.0005231769173406065f, 0.0008552717044949532f, 0.0038968510925769806f, 0.009836994111537933f, 0.020277515053749084f, 0.03622244670987129f, 0.05456474423408508f, 0.05985637009143829f, 0.016280751675367355f, -0.10715994238853455f, -0.2374821901321411f, -0.1716279238462448f, 0.09178855270147324f, 0.20270264148712158f, 0.07693923264741898f, -0.02095234952867031f, -0.021978721022605896f, -0.006277598440647125f, -0.000904333486687392f, -7.476165046682581e-05f, -3.7528823213506257e-06f},
    {-1.8706485207076184e-05f, -2.5974632080760784e-05f, -3.556572846719064e-05f, -4.7816818550927565e-05f, -6.270923768170178e-05f, -7.935005123727024e-05f, -9.496780694462359e-05f, -0.00010303156886948273f, -8.982694271253422e-05f, -2.8411575840436853e-05f, 0.00013161245442461222f, 0.0004801910254172981f, 0.0011684548808261752f, 0.0024253695737570524f, 0.004522925242781639f, 0.007534040603786707f, 0.010472171939909458f, 0.00913657620549202f, -0.006634591147303581f, -0.04717070236802101f, -0.08789414912462234f, -0.03782457485795021f, 0.11663009226322174f, 0.14188997447490692f, -0.02407963015139103f, -0.0861438661813736f, -0.021354738622903824f, 0.010241699405014515f, 0.0058414083905518055f, 0.0011512947967275977f, 0.00011745320080081001f, 6.927533377165673e-06f},
    {-2.859928144971491e-06f, -3.823532097158022e-06f, -4.9761583795771e-06f, -6.226917321328074e-06f, -7.31963564248872e-06f, -7.670751074329019e-06f, -6.0731981648132205e-06f, -1.6766946941970673e-07f, 1.4474901036010124e-05f, 4.587580042425543e-05f, 0.0001079716021195054f, 0.00022351669031195343f, 0.0004254913656041026f, 0.0007484249654226005f, 0.0011812380980700254f, 0.0015030921204015613f, 0.0008505798759870231f, -0.0029582050628960133f, -0.012608647346496582f, -0.022851666435599327f, -0.005586062092334032f, 0.055111177265644073f, 0.061828214675188065f, -0.04718261584639549f, -0.0710156261920929f, 0.013967873528599739f, 0.02808307856321335f, 0.0025526906829327345f, -0.0031934110447764397f, -0.0010623878333717585f, -0.00014511951303575188f, -1.0634553291311022e-05f},
    {-3.2805721161821566e-07f, -4.056048226175335e-07f, -4.673638613894582e-07f, -4.7038116690600873e-07f, -3.2707407626730856e-07f, 1.3263712617117562e-07f, 1.2280524970265105e-06f, 3.5419077448750613e-06f, 8.106569111987483e-06f, 1.6679077816661447e-05f, 3.205533357686363e-05f, 5.808892456116155e-05f, 9.796798985917121e-05f, 0.0001478154445067048f, 0.00017045793356373906f, 2.6294716008123942e-05f, -0.000659768411424011f, -0.0024700420908629894f, -0.0047182259149849415f, -0.0014664990594610572f, 0.016052668914198875f, 0.023104149848222733f, -0.024593411013484f, -0.04072560742497444f, 0.024199331179261208f, 0.02458706684410572f, -0.009070659056305885f, -0.0063269976526498795f, 0.0004803388728760183f, 0.0006567311356775463f, 0.0001282965240534395f, 1.1676475878630299e-05f}
};
#define ERFACT_H_X0 -10.5f
#define ERFACT_H_W 0.375f
#define ERFACT_H_DEG 6
static const float ERFACT_H[7][32] __attribute__((aligned(64))) = {
    {3.747945083887316e-05f, 5.4532280046259984e-05f, 7.934399764053524e-05f, 0.00011544483277248219f, 0.00016797124408185482f, 0.0002443967096041888f, 0.0003555951116140932f, 0.0005173878162167966f, 0.0007527947891503572f, 0.0010953097371384501f, 0.001593665685504675f, 0.002318768296390772f, 0.003373782616108656f, 0.004908808507025242f, 0.007142223417758942f, 0.010391718707978725f, 0.015119384974241257f, 0.021997103467583656f, 0.0320010669529438f, 0.046547334641218185f, 0.06768305599689484f, 0.09834631532430649f, 0.14268812537193298f, 0.20637263357639313f, 0.29652249813079834f, 0.4202938377857208f, 0.5796387195587158f, 0.758973240852356f, 0.9119671583175659f, 0.986936092376709f, 0.999695360660553f, 0.9999998807907104f},
    {3.747945083887316e-05f, 5.4532280046259984e-05f, 7.934399764053524e-05f, 0.00011544483277248219f, 0.00016797124408185482f, 0.0002443967096041888f, 0.00035559508251026273f, 0.0005173877580091357f, 0.0007527945563197136f, 0.0010953090386465192f, 0.001593663590028882f, 0.0023187617771327496f, 0.003373762359842658f, 0.00490874657407403f, 0.007142032962292433f, 0.010391131043434143f, 0.015117574483156204f, 0.021991530433297157f, 0.03198390454053879f, 0.0464944951236248f, 0.06752047687768936f, 0.09784674644470215f, 0.14115718007087708f, 0.2017076462507248f, 0.28247717022895813f, 0.3790554702281952f, 0.46469682455062866f, 0.4704776108264923f, 0.31767988204956055f, 0.09099758416414261f, 0.004241669550538063f, 4.48455466539599e-06f},
    {1.873972541943658e-05f, 2.726613820414059e-05f, 3.967199882026762e-05f, 5.772241638624109e-05f, 8.39856147649698e-05f, 0.00012219834025017917f, 0.0001777975121513009f, 0.00025869376258924603f, 0.0003763969289138913f, 0.0005476534715853631f, 0.0007968285935930908f, 0.0011593711096793413f, 0.0016868510283529758f, 0.002454280387610197f, 0.003570730332285166f, 0.005194684490561485f, 0.007556072901934385f, 0.01098740566521883f, 0.01596621423959732f, 0.023168038576841354f, 0.03351672366261482f, 0.04817630350589752f, 0.06829699873924255f, 0.09395177662372589f, 0.12077601999044418f, 0.13139772415161133f, 0.0814834013581276f, -0.08811583369970322f, -0.3033820688724518f, -0.23478834331035614f, -0.025546124204993248f, -5.712409983971156e-05f},
    {6.246566954359878e-06f, 9.088701517612208e-06f, 1.3223982023191638e-05f, 1.9240778783569112e-05f, 2.7995165510219522e-05f, 4.0732717025093734e-05f, 5.9265727031743154e-05f, 8.623103349236771e-05f, 0.00012546515790745616f, 0.0001825499057304114f, 0.00026560600963421166f, 0.0003864467435050756f, 0.0005622528260573745f, 0.0008179994765669107f, 0.0011899558594450355f, 0.0017306780209764838f, 0.00251597398892045f, 0.0036541076842695475f, 0.005296343471854925f, 0.007643562741577625f, 0.010929332114756107f, 0.015315588563680649f, 0.02050893008708954f, 0.024573344737291336f, 0.02078542858362198f, -0.0083891237154603f, -0.09106744080781937f, -0.20457985997200012f, -0.11485777795314789f, 0.21675759553909302f, 0.08434685319662094f, 0.0004047125403303653f},
    {1.5616487871739082e-06f, 2.2721853838447714e-06f, 3.306010057713138e-06f, 4.810215614270419e-06f, 6.998820026637986e-06f, 1.0183216545556206e-05f, 1.4816471775702666e-05f, 2.155777474399656e-05f, 3.136617669952102e-05f, 4.563690526993014e-05f, 6.639942148467526e-05f, 9.660477371653542e-05f, 0.00014054121857043356f, 0.00020443111134227365f, 0.00029727566288784146f, 0.0004320104781072587f, 0.0006269608857110143f, 0.000907264999113977f, 0.0013048140099272132f, 0.0018516674172133207f, 0.0025508622638881207f, 0.0032761560287326574f, 0.003464887849986553f, 0.0012785886647179723f, -0.008211198262870312f, -0.03426724299788475f, -0.07590949535369873f, -0.04820623621344566f, 0.19513048231601715f, 0.10845185071229935f, -0.15118418633937836f, -0.002479391871020198f},
    {3.1278551659852383e-07f, 4.551002064090426e-07f, 6.62166769416217e-07f, 9.63446495916287e-07f, 1.4018049796504783e-06f, 2.0396100808284245e-06f, 2.9676025405933615e-06f, 4.31779699283652e-06f, 6.28223642706871e-06f, 9.140228030446451e-06f, 1.3297805708134547e-05f, 1.9344659449416213e-05f, 2.8135429602116346e-05f, 4.0903287299443036e-05f, 5.941068957326934e-05f, 8.61241205711849e-05f, 0.00012433112715370953f, 0.00017788952391128987f, 0.00024957547429949045f, 0.0003347807505633682f, 0.00040074746357277036f, 0.0003233455354347825f, -0.0002895787183661014f, -0.0025120603386312723f, -0.008600314147770405f, -0.019715070724487305f, -0.01736920140683651f, 0.06982028484344482f, 0.13283663988113403f, -0.24659354984760284f, 0.08338640630245209f, 0.013398886658251286f},
    {5.199761332619346e-08f, 7.565606097159616e-08f, 1.1007885802882811e-07f, 1.6016356596537662e-07f, 2.3303593366108544e-07f, 3.390632059563359e-07f, 4.933277750751586e-07f, 7.177682164183352e-07f, 1.0442865914228605e-06f, 1.5192432556432323e-06f, 2.2099170564615633e-06f, 3.2136576919583604e-06f, 4.670445832744008e-06f, 6.77883144817315e-06f, 9.811940799409058e-06f, 1.4118639228399843e-05f, 2.005735950660892e-05f, 2.7691827199305408e-05f, 3.57161698048003e-05f, 3.799650221480988e-05f, 1.3044839761278126e-05f, -0.00010602353722788393f, -0.0005069085163995624f, -0.0016243619611486793f, -0.003947913181036711f, -0.004992059897631407f, 0.012816226109862328f, 0.0642438605427742f, -0.07288723438978195f, -0.09318149834871292f, 0.1325099915266037f, -0.03222975507378578f}
};
/* END fitted tables */

/* Fixed smooth functions of one variable as polynomials on TABLE_N intervals (tools/fit_tables.py, the
   block above, exact to float32's rounding): each lane takes its interval's coefficients by one permute of
   two registers (AVX-512) or a gather, ~15 vector ops for a function whose formula takes two exps and more. */
#define TABLE_N 32
INLINE vf table_coef(const float *row, vi idx) {
#if defined(__AVX512F__)
    return (vf)_mm512_permutex2var_ps(_mm512_load_ps(row), (__m512i)idx, _mm512_load_ps(row + 16));
#elif defined(__AVX2__) /* vgatherdps: GCC's lane loop made Serf's forward slower than the formula */
    return (vf)_mm256_i32gather_ps(row, (__m256i)(idx & (TABLE_N - 1)), 4);
#else
    vf r;
    for (int k = 0; k < W; k++) r[k] = row[idx[k] & (TABLE_N - 1)]; /* NaN lanes: any index, NaN stays in t */
    return r;
#endif
}
/* Each lane's interval of [x0, x0 + 32w) (clamped to the end ones) and its centre, which has few bits (t =
   x - centre is exact); NaN stays NaN in x - centre. */
INLINE vf table_centre_of(vf x, vf x0, vf inv_w, vf w, vf first_centre, vi *idx) {
    vf u = MINV(MAXV((x - x0) * inv_w, ZERO), splat(TABLE_N - 0.5f));
    *idx = __builtin_convertvector(u, vi);
    return __builtin_convertvector(*idx, vf) * w + first_centre;
}
INLINE vf table_centre(vf x, float x0, float w, vi *idx) {
    return table_centre_of(x, splat(x0), splat(1.0f / w), splat(w), splat(x0 + 0.5f * w), idx);
}
/* The polynomial of degree deg (a constant once inlined) with coefficient rows[k] for t^k, at t in each lane's
   interval idx (Horner). */
INLINE vf table_poly(const float (*rows)[TABLE_N], int deg, vf t, vi idx) {
    vf out = table_coef(rows[deg], idx);
    _Pragma("GCC unroll 8") for (int k = deg - 1; k >= 0; k--) out = out * t + table_coef(rows[k], idx);
    return out;
}
#define TABLE_END(NAME) (NAME##_X0 + TABLE_N * NAME##_W)

/* ErfAct x·erf(alpha·e^(beta·x)). The forward is sign(alpha)·x·h(u), u = beta·x + ln|alpha|, h = erf(e^u)
   from the table ERFACT_H (1 from its end on, erfc(e^1.5) ~ 2e-10), for parameters erfact_params marks
   (below: P[5] = sign(alpha), alpha != 0 and both finite; AVX-512 and SSE2 builds); vectors with a lane
   below the table's start (u < -10.5, x < -13.6 for the defaults) and other parameters take the formula.
   u itself would carry half an ulp of error (4.8e-7 at the start, where h'/h ~ 1), so t = u - centre is
   beta·x + (hi - centre) in one FMA plus lo, with ln|alpha| = hi + lo and hi a multiple of 2^-10
   (hi - centre exact): ~1e-8. */
INLINE vf erfact_formula_val(vf x, const vf *P) { return x * erf_v(scalar_times(P[0], exp_v(P[1] * x))); }
INLINE vf erfact_general_val(vf x, const vf *P) {
    vf u = P[1] * x + P[4];
    if (P[5][0] == 0.0f || any_less(u, splat(ERFACT_H_X0))) return erfact_formula_val(x, P);
    vi idx;
    vf t = fma_once(P[1], x, P[4] - table_centre(u, ERFACT_H_X0, ERFACT_H_W, &idx)) + P[6];
    return (x * P[5]) * sel(u >= TABLE_END(ERFACT_H), ONE, table_poly(ERFACT_H, ERFACT_H_DEG, t, idx));
}
INLINE void erfact_general_grad(vf g, vf x, const vf *P, vf *d) {
    vf e_bx = exp_v(P[1] * x), w = P[0] * e_bx, x2 = x * x, erf_w, gs;
    /* e^(beta·x), w and x² finite (and x not NaN; a sum that overflows only sends a vector the safe way):
       mul0's zero rules change nothing, so plain products serve */
    const int plain = all_finite(e_bx + absv(w) + x2);
    if (!plain) w = mul0(P[0], e_bx); /* 0 for alpha = 0 even at a NaN input */
    erf_gauss(absv(w), &erf_w, &gs);
    erf_w = copysignv(erf_w, w);
    vf k = 1.1283791670955126f * gs;
    if (plain) {
        vf k_w = w * k;
        d[0] = g * (erf_w + x * P[1] * k_w);
        d[1] = g * x * (e_bx * k);
        d[2] = g * (x2 * k_w);
        return;
    }
    vf k_w = times_vanishing(w, k); /* k = 0 where w overflowed */
    d[0] = g * (erf_w + x * P[1] * k_w);
    d[1] = g * x * mul0(e_bx, k);
    d[2] = g * mul0(x2, k_w); /* 0 where alpha = 0, as the reference, even at a NaN input */
}

/* Serf x·erf(softplus(x)) and Pserf x·erf(gamma·softplus(delta·x)). Serf has no parameters, so
   g = erf(softplus(x)) and its derivative d = g + x·g' are tables (SERF_G and SERF_D, the same intervals):
   ~20 vector ops per direction where the formula as written takes two exps, a log-sum, an erf
   polynomial and a reciprocal (~60). Beyond the tables' end g and d are 1 in float32 (erfc(4.5) ~ 2e-10);
   below their start (e = e^x < 7.5e-5) g = (2/sqrt(pi))·e·(1 - e/2) and d = (2/sqrt(pi))·e·((1 + x) -
   e·(x + 1/2)), to O(e²) relative, taken only for vectors with such a lane. */
/* Serf's table rows (SERF_G or SERF_D) at x, 1 from their end on; below their start, the tail of g or of d. */
INLINE vf serf_table(vf x, const float (*rows)[TABLE_N], int deg, int derivative) {
    vi idx;
    vf t = x - table_centre(x, SERF_G_X0, SERF_G_W, &idx); /* before table_poly reads idx */
    vf v = sel(x >= TABLE_END(SERF_G), ONE, table_poly(rows, deg, t, idx));
    if (any_less(x, splat(SERF_G_X0))) {
        vf e = exp_below88(x), tail = derivative ? (1.0f + x) - e * (x + 0.5f) : 1.0f - 0.5f * e;
        v = sel(x < SERF_G_X0, (1.1283791670955126f * e) * tail, v);
    }
    return v;
}
INLINE vf serf_val(vf x, const vf *P) {
    (void)P;
    return x * serf_table(x, SERF_G, SERF_G_DEG, 0);
}
INLINE void serf_grad(vf g, vf x, const vf *P, vf *d) {
    (void)P;
    d[0] = g * serf_table(x, SERF_D, SERF_D_DEG, 1);
}
INLINE vf pserf_general_val(vf x, const vf *P) {
    vf sp, sig;
    softplus_sigmoid(P[1] * x, &sp, &sig);
    return x * erf_v(P[0] * sp);
}
INLINE void pserf_general_grad(vf g, vf x, const vf *P, vf *d) {
    vf sp, sig, erf_v_, gs;
    softplus_sigmoid(P[1] * x, &sp, &sig);
    vf v = P[0] * sp;
    erf_gauss(absv(v), &erf_v_, &gs);
    erf_v_ = copysignv(erf_v_, v);
    vf k = 1.1283791670955126f * gs, k_sig = k * sig;
    d[0] = g * (erf_v_ + (x * k_sig) * (P[0] * P[1]));
    d[1] = g * x * mul0(k, sp);
    d[2] = g * P[0] * square_times(x * x, k_sig);
}

/* ---------------------------------------------------------------------------------------------------
   Tables fitted at run time. Pserf and ErfAct are x·G(z) with z = s·x for a scale parameter s (Pserf's
   delta, ErfAct's beta) and a G that depends on the other parameter p (Pserf's gamma, ErfAct's alpha). For
   a given p, G, the x-derivative D(z) = G + z·G'(z) and the parameters' summand factors are functions of z
   alone: each a polynomial of degree 6 on 32 intervals (~20 vector ops where the formulas take two exps
   and an erf per direction). Each interval is fitted by interpolation at Chebyshev nodes in double,
   rounded to float32 and checked against the double formula at 9 points, as the kernel evaluates it: G
   within FIT_TOL of |G|, D of |G| + |z·G'| (D crosses 0); otherwise the tables are not used. The summand
   factors decay fast to the right (like exp(-w²)), where a polynomial keeps only their absolute
   precision: from the first interval where one misses FIT_SUMMAND_TOL (z_rel) a vector's summands take the
   formula, so that every summand keeps float32's relative precision. Beyond z_end G and D are sign(p) to
   float32 rounding. Vectors with a lane below the first interval take the formula, as do tensors under
   FIT_FROM elements (a fit costs 55-70 us, what the tables save on ~50k elements; each calling thread keeps
   the last FIT_CACHED fits per kernel, so that a layer's backward reuses its forward's). ErfAct's G' also
   decays like that; it is held as G'(centre)·exp(q(t)) instead, which keeps its relative precision. */
#define FIT_DEG 6
#define FIT_FNS 4
#define FIT_TOL 3e-7           /* G and D: within 3e-7 of float64 (their tests: 4e-7) */
#define FIT_SUMMAND_TOL 1e-6   /* the summand factors: the erfc-based kernels' 1e-6 */
#define FIT_RECIPROCAL_D_TOL 6e-7 /* D = N·r² from R ~ 1, where float32's ulp is 1.2e-7 (tests: 7e-7) */
#define FIT_FROM 65536
#define RATIO_DEG 4 /* a summand factor held as its ratio to G' (smooth where both decay): rows above it 0 */
#define FIT_CACHED 4
#define FIT_KEYS 5             /* parameters a fit depends on, at most (EIS's five) */
enum { FIT_G, FIT_D, FIT_DG, FIT_SCALE = 3 }; /* rows: G, D, G' (then any further summand factor) */
typedef struct fitted_tables_s {
    float rows[FIT_FNS][FIT_DEG + 1][TABLE_N] __attribute__((aligned(64)));
    float key[FIT_KEYS];       /* the parameters fitted for (compared bitwise); key[0] is p */
    int nkey;
    int usable;                /* G and D passed their check on every interval */
    int fns;                   /* rows in use: G, D, G' and fns - 3 more summand factors */
    int log_dg;                /* G' as rows[FIT_SCALE][0]·exp(rows[FIT_DG]'s polynomial), see erfact_make */
    int reciprocal;            /* rows[FIT_G] hold R = 1/G and rows[FIT_D] D·R², see eis_make */
    int ratio;                 /* if not 0: rows[ratio] hold that factor over G', of degree RATIO_DEG, see pserf_make */
    float z0, w, z_end, z_rel; /* the first interval's start, the width, sign(p) from z_end; see above */
} fitted_tables;
/* out[0..fns) at z in double for the parameters fit->key: G, D, G' and the further summand factors. */
typedef void (*exact_fn)(double z, const fitted_tables *fit, double *out);

/* The monomial coefficients c of the polynomial through (t_i, y_i), i < n: Newton's divided differences,
   then the Newton form multiplied out. */
static void interpolate(const double *t, const double *y, int n, double *c) {
    double a[FIT_DEG + 1];
    for (int i = 0; i < n; i++) a[i] = y[i], c[i] = 0.0;
    for (int j = 1; j < n; j++)
        for (int i = n - 1; i >= j; i--) a[i] = (a[i] - a[i - 1]) / (t[i] - t[i - j]);
    for (int i = n - 1; i >= 0; i--) { /* c := c·(t - t_i) + a_i */
        for (int k = n - 1; k >= 1; k--) c[k] = c[k - 1] - t[i] * c[k];
        c[0] = a[i] - t[i] * c[0];
    }
}

/* The degree-6 polynomial c[0] + c[1]·t + ... by Estrin's scheme, as fitted_poly evaluates it: half Horner's
   latency (three FMAs deep after t², t⁴). */
static float estrin6(const float *c, float t) {
    const float t2 = t * t, t4 = t2 * t2;
    const float q0 = fmaf(t2, fmaf(c[3], t, c[2]), fmaf(c[1], t, c[0]));
    return fmaf(t4, fmaf(t2, c[6], fmaf(c[5], t, c[4])), q0);
}
static float fitted_at(const float (*rows)[TABLE_N], int j, float t) {
    float c[FIT_DEG + 1];
    for (int k = 0; k <= FIT_DEG; k++) c[k] = rows[k][j];
    return estrin6(c, t);
}

/* c (degree FIT_DEG, on an interval of width w) replaced by its interpolant of degree RATIO_DEG at that
   many Chebyshev nodes, the coefficients above it 0: estrin6 then computes what the kernel's degree-4 form does. */
static void lower_degree(double w, double *c) {
    const int m = RATIO_DEG + 1;
    double t[FIT_DEG + 1], y[FIT_DEG + 1], d[FIT_DEG + 1];
    for (int i = 0; i < m; i++) {
        t[i] = 0.5 * w * cos(M_PI * (i + 0.5) / m), y[i] = 0.0;
        for (int k = FIT_DEG; k >= 0; k--) y[i] = y[i] * t[i] + c[k];
    }
    interpolate(t, y, m, d);
    for (int k = 0; k <= FIT_DEG; k++) c[k] = k < m ? d[k] : 0.0;
}

/* Fits interval j of f and checks it (see above): whether G and D pass, and into *rel_ok whether the
   summand factors do. */
static int fit_interval(fitted_tables *f, exact_fn exact, int j, int *rel_ok) {
    const int n = FIT_DEG + 1;
    const double centre = f->z0 + (j + 0.5) * f->w;
    double t[FIT_DEG + 1], y[FIT_FNS][FIT_DEG + 1], c[FIT_DEG + 1], v[FIT_FNS] = {0.0}, dg_centre = 0.0;
    if (f->log_dg) {
        exact(centre, f, v);
        dg_centre = v[FIT_DG];
        f->rows[FIT_SCALE][0][j] = (float)dg_centre;
    }
    for (int i = 0; i < n; i++) {
        t[i] = 0.5 * f->w * cos(M_PI * (i + 0.5) / n);
        exact(centre + t[i], f, v);
        for (int q = 0; q < f->fns; q++) y[q][i] = v[q];
        if (f->log_dg) y[FIT_DG][i] = log(v[FIT_DG] / dg_centre);
        if (f->reciprocal) y[FIT_G][i] = 1.0 / v[FIT_G], y[FIT_D][i] = v[FIT_D] / (v[FIT_G] * v[FIT_G]);
        if (f->ratio) y[f->ratio][i] = v[f->ratio] / v[FIT_DG];
    }
    for (int q = 0; q < f->fns; q++) {
        interpolate(t, y[q], n, c);
        if (f->log_dg && q == FIT_DG) c[0] = 0.0; /* the node t = 0 */
        if (q == f->ratio && q) lower_degree(f->w, c);
        for (int k = 0; k < n; k++) f->rows[q][k][j] = (float)c[k];
    }
    int ok = 1;
    *rel_ok = 1;
    for (int i = 0; i <= 8; i++) {
        const float tf = (float)(f->w * (i / 8.0 - 0.5));
        exact(centre + tf, f, v);
        double err[FIT_FNS] = {0.0};
        for (int q = 0; q < f->fns; q++) err[q] = fabs(fitted_at(f->rows[q], j, tf) - v[q]);
        if (f->reciprocal) { /* as the kernel: r = 1/R, G = r, D = N·r² */
            const float r = 1.0f / fitted_at(f->rows[FIT_G], j, tf);
            err[FIT_G] = fabs(r - v[FIT_G]);
            err[FIT_D] = fabs(fitted_at(f->rows[FIT_D], j, tf) * r * r - v[FIT_D]);
        }
        if (f->ratio) { /* as the kernel: G'·ratio */
            const float ratio = fitted_at(f->rows[f->ratio], j, tf);
            err[f->ratio] = fabs(fitted_at(f->rows[FIT_DG], j, tf) * ratio - v[f->ratio]);
        }
        if (f->log_dg) /* the kernel's exp: within an ulp */
            err[FIT_DG] = fabs(f->rows[FIT_SCALE][0][j] * (float)exp(fitted_at(f->rows[FIT_DG], j, tf)) - v[FIT_DG]);
        const double terms = fabs(v[FIT_G]) + fabs(v[FIT_D] - v[FIT_G]); /* |G| + |z·G'| */
        const double d_tol = f->reciprocal ? FIT_RECIPROCAL_D_TOL : FIT_TOL;
        ok &= err[FIT_G] <= FIT_TOL * fabs(v[FIT_G]) && err[FIT_D] <= d_tol * terms;
        for (int q = FIT_DG; q < f->fns; q++) *rel_ok &= err[q] <= FIT_SUMMAND_TOL * fabs(v[q]);
    }
    return ok;
}

/* Fits f (p, fns, w and z_end set) for intervals from z0 (rounded up to 2^-7, so that the centres have few
   bits) past reach >= z_end, and checks it. */
static void fit_tables(fitted_tables *f, exact_fn exact, double reach) {
    f->z0 = (float)(ceil((reach - TABLE_N * (double)f->w) * 128.0) / 128.0);
    int usable = 1, rel_ok = 1, first_loose = TABLE_N;
    for (int j = 0; j < TABLE_N; j++) {
        usable &= fit_interval(f, exact, j, &rel_ok);
        if (!rel_ok && first_loose == TABLE_N) first_loose = j;
    }
    f->usable = usable;
    f->z_rel = f->z0 + first_loose * f->w;
}

/* The fit for p from cache (one thread's, FIT_CACHED entries), made there by `make` if it is not among the
   last FIT_CACHED. */
static const fitted_tables *fitted_for(fitted_tables *cache, int *filled, int *next, const float *key, int nkey,
                                       void (*make)(fitted_tables *)) {
    for (int i = 0; i < *filled; i++)
        if (cache[i].nkey == nkey && memcmp(cache[i].key, key, nkey * sizeof *key) == 0) return &cache[i];
    fitted_tables *f = &cache[*next];
    *next = (*next + 1) % FIT_CACHED, *filled += *filled < FIT_CACHED;
    memcpy(f->key, key, nkey * sizeof *key);
    f->nkey = nkey, f->usable = 0, f->log_dg = f->reciprocal = f->ratio = 0, f->w = 1.0f;
    f->z0 = f->z_end = f->z_rel = INFINITY;
    make(f);
    return f;
}

/* NAME##_fit_for(p): the fit for the parameters p[0..NKEY) from this thread's cache for NAME (made by
   NAME##_make). */
#define DEFINE_FIT_CACHE(NAME, NKEY)                                                                        \
    static const fitted_tables *NAME##_fit_for(const float *key) {                                          \
        static _Thread_local fitted_tables cache[FIT_CACHED];                                               \
        static _Thread_local int filled = 0, next = 0;                                                      \
        return fitted_for(cache, &filled, &next, key, NKEY, NAME##_make);                                   \
    }

/* Whether the fitted tables serve parameters p (p[0] fitted, the scale p[1] finite): the entry points take
   the formula's kernels otherwise. */
static int fit_serves(const fitted_tables *f, const float *p) { return f->usable && isfinite(p[1]); }

/* The kernels' parameter vectors: P[0], P[1] the kernel's own (p and s), then the fit's z0, -z0/w, 1/w, w,
   the first centre, z_end, z_rel, sign(p), 1/p, the last interval's end and, in P[FIT_ADDRESS]'s first lanes,
   the fit's address. */
enum { FIT_Z0 = 2, FIT_SHIFT, FIT_INV_W, FIT_W, FIT_CENTRE, FIT_Z_END, FIT_Z_REL, FIT_SIGN, FIT_INV_P, FIT_Z_MAX,
       FIT_ADDRESS, FIT_NPV };
INLINE void fitted_params(const float *p, const fitted_tables *f, vf *P) {
    P[0] = splat(p[0]), P[1] = splat(p[1]);
    P[FIT_Z0] = splat(f->z0), P[FIT_SHIFT] = splat(-f->z0 / f->w), P[FIT_INV_W] = splat(1.0f / f->w);
    P[FIT_W] = splat(f->w), P[FIT_CENTRE] = splat(f->z0 + 0.5f * f->w);
    P[FIT_Z_END] = splat(f->z_end), P[FIT_Z_REL] = splat(f->z_rel);
    P[FIT_SIGN] = splat(copysignf(1.0f, p[0])), P[FIT_INV_P] = splat(1.0f / p[0]);
    P[FIT_Z_MAX] = splat(f->z0 + TABLE_N * f->w);
    P[FIT_ADDRESS] = ZERO;
    memcpy(&P[FIT_ADDRESS], &f, sizeof f);
}
INLINE const fitted_tables *fit_of(const vf *P) {
    const fitted_tables *f;
    memcpy(&f, &P[FIT_ADDRESS], sizeof f);
    return f;
}
/* t = s·x - centre in one rounding, and each lane's interval, for z = s·x >= z0. No clamp: only the low five
   bits of an index pick the coefficients, and the lanes past the last interval are replaced. */
INLINE vf fitted_t(vf z, vf x, const vf *P, vi *idx) {
    *idx = __builtin_convertvector(fma_once(z, P[FIT_INV_W], P[FIT_SHIFT]), vi);
    return fma_once(P[1], x, -(__builtin_convertvector(*idx, vf) * P[FIT_W] + P[FIT_CENTRE]));
}
/* Row set q's polynomial of degree RATIO_DEG at t in each lane's interval (estrin6 with its top two 0). */
INLINE vf fitted_poly4(const vf *P, int q, vf t, vi idx) {
    const float(*rows)[TABLE_N] = fit_of(P)->rows[q];
    vf c[RATIO_DEG + 1];
    for (int k = 0; k <= RATIO_DEG; k++) c[k] = table_coef(rows[k], idx);
    vf t2 = t * t, t4 = t2 * t2;
    return fma_once(t4, c[4], fma_once(t2, fma_once(c[3], t, c[2]), fma_once(c[1], t, c[0])));
}
/* Row set q's polynomial at t in each lane's interval (estrin6). */
INLINE vf fitted_poly(const vf *P, int q, vf t, vi idx) {
    const float(*rows)[TABLE_N] = fit_of(P)->rows[q];
    vf c[FIT_DEG + 1];
    for (int k = 0; k <= FIT_DEG; k++) c[k] = table_coef(rows[k], idx);
    vf t2 = t * t, t4 = t2 * t2;
    vf q0 = fma_once(t2, fma_once(c[3], t, c[2]), fma_once(c[1], t, c[0]));
    return fma_once(t4, fma_once(t2, c[6], fma_once(c[5], t, c[4])), q0);
}
/* x·G(z) (FORMULA_VAL where a lane is below z0). The tables are read before that check: a branch ahead of
   them, on the value just loaded, made the forward of every fitted kernel up to twice as slow once its data
   came from DRAM (AMD EPYC, 2^22 elements, ns per 16 floats: Pserf 8.4 -> 5.1, TanhExp 8.1 -> 4.8; 2^20
   unchanged). The backward kept its early checks: moved last there, it got slower. */
#define FITTED_VAL(x, P, FORMULA_VAL)                                                                       \
    do {                                                                                                    \
        vf z_ = P[1] * x;                                                                                   \
        vi idx_;                                                                                            \
        vf t_ = fitted_t(z_, x, P, &idx_);                                                                  \
        vf v_ = x * sel(z_ >= P[FIT_Z_END], P[FIT_SIGN], fitted_poly(P, FIT_G, t_, idx_));                 \
        if (any_less(z_, P[FIT_Z0])) return FORMULA_VAL(x, P);                                              \
        return v_;                                                                                          \
    } while (0)

/* The backward's common part, declaring t and idx: FORMULA_GRAD where a lane is below z0; else D from the
   tables into d[0], and the summands by FORMULA_GRAD where a lane is past z_rel (dead code where no parameter
   gradient is asked for); otherwise the caller's summands from t and idx follow. */
#define FITTED_GRAD_HEAD(g, x, P, d, FORMULA_GRAD, t, idx)                                                  \
    vi idx;                                                                                                 \
    vf t;                                                                                                   \
    do {                                                                                                    \
        vf z_ = P[1] * x;                                                                                   \
        if (any_less(z_, P[FIT_Z0])) {                                                                      \
            FORMULA_GRAD(g, x, P, d);                                                                       \
            return;                                                                                         \
        }                                                                                                   \
        t = fitted_t(z_, x, P, &idx);                                                                       \
        d[0] = g * sel(z_ >= P[FIT_Z_END], P[FIT_SIGN], fitted_poly(P, FIT_D, t, idx));                    \
        if (any_less(P[FIT_Z_REL], z_)) {                                                                   \
            vf e_[3];                                                                                       \
            FORMULA_GRAD(g, x, P, e_);                                                                      \
            d[1] = e_[1], d[2] = e_[2];                                                                     \
            return;                                                                                         \
        }                                                                                                   \
    } while (0)

/* Whether a kernel's fits pay in this build: with AVX2 alone the backward's tables take 7 gathers each,
   which cost more than they save where the parameter summands take two or three tables (this Xeon, ns per
   16 floats, Pserf: 74 -> 86), so that backward keeps the formula; the one-table directions do pay
   (Pserf's forward 56 -> 33). */
#if defined(__AVX2__) && !defined(__AVX512F__)
#define FIT_SUMMANDS_TABLED 0
#else
#define FIT_SUMMANDS_TABLED 1
#endif
#define FITTED_SUMS (FIT_SUMMANDS_TABLED ? ALL_SUMS : 0) /* the sums the fitted tables give */

/* Pserf, x·erf(gamma·sp(delta·x)): p = gamma, s = delta; G(z) = erf(gamma·sp(z)), G' = gamma·sigma(z)·k and
   the gamma summand's factor Gg = sp(z)·k, k = (2/sqrt(pi))·exp(-(gamma·sp)²). The intervals are 0.375/|gamma|
   wide (0.375 for |gamma| <= 1: the steepest part of G has a width of ~1/|gamma|) and end past z_end, where
   gamma·sp = 4.5; |gamma| outside [1/4, 8] takes the formula. Gg is held as its ratio to G', sp(z)/(gamma·sigma(z)),
   which has no exp(-v²) in it: degree 4 holds it (its singularities are pi off the real axis), five permutes
   instead of seven (ns per 16 floats, the backward with both sums, 2^18: one thread 8.6 -> 8.1, two 4.5 -> 4.1). */
enum { PSERF_GG = FIT_DG + 1 };
static void pserf_exact(double z, const fitted_tables *fit, double *f) {
    const double gamma = fit->key[0];
    const double e = exp(-fabs(z)), s = fmax(z, 0.0) + log1p(e), sig = (z >= 0.0 ? 1.0 : e) / (1.0 + e);
    const double v = gamma * s, k = 1.1283791670955126 * exp(-v * v);
    f[FIT_G] = erf(v);
    f[FIT_DG] = gamma * sig * k;
    f[FIT_D] = f[FIT_G] + z * f[FIT_DG];
    f[PSERF_GG] = s * k;
}
static void pserf_make(fitted_tables *f) {
    const double a = fabs((double)f->key[0]);
    if (!(a >= 0.25 && a <= 8.0)) return; /* NaN too */
    const double s_end = 4.5 / a;
    f->fns = 4, f->ratio = PSERF_GG; /* Gg/G' = sp(z)/(gamma·sigma(z)): smooth, degree 4 does */
    f->w = (float)(floor(64.0 * 0.375 / fmax(1.0, a)) / 64.0);
    f->z_end = (float)(s_end + log(-expm1(-s_end))); /* sp(z_end) = s_end */
    fit_tables(f, pserf_exact, f->z_end);
}
DEFINE_FIT_CACHE(pserf, 1)
INLINE void pserf_tabled_params(const float *p, vf *P) { fitted_params(p, pserf_fit_for(p), P); }
INLINE vf pserf_tabled_val(vf x, const vf *P) { FITTED_VAL(x, P, pserf_general_val); }
INLINE void pserf_tabled_grad(vf g, vf x, const vf *P, vf *d) {
    FITTED_GRAD_HEAD(g, x, P, d, pserf_general_grad, t, idx);
    vf dg = fitted_poly(P, FIT_DG, t, idx);
    d[1] = (g * x) * (dg * fitted_poly4(P, PSERF_GG, t, idx));
    d[2] = g * square_times(x * x, dg);
}

/* ErfAct's backward, x·erf(alpha·e^(beta·x)): p = alpha, s = beta; G(z) = erf(w), w = alpha·e^z, and
   G' = w·k, k = (2/sqrt(pi))·exp(-w²), whose alpha summand is x·G'/alpha and beta summand x²·G'. The
   intervals are 0.1875 wide (where D keeps its precision at the steep end) and reach |w| = 7, past z_end,
   where |w| = 5 (z_end·G' < 1e-9 there for any float alpha). G' decays like exp(-w²), which no polynomial
   holds to relative precision (from w ~ 2.8 at this width), so it is G'(centre)·exp(q(t)) with q the
   polynomial of ln(G'/G'(centre)) (log_dg; |q| <= 9.2 there, so its rounding costs < 6e-7). |alpha| outside
   [1e-30, 1e30] (or not finite) takes the formula. Smaller tensors' forward keeps the fixed table ERFACT_H. */
static void erfact_exact(double z, const fitted_tables *fit, double *f) {
    const double w = fit->key[0] * exp(z);
    f[FIT_G] = erf(w);
    f[FIT_DG] = w * 1.1283791670955126 * exp(-w * w);
    f[FIT_D] = f[FIT_G] + z * f[FIT_DG];
}
static void erfact_make(fitted_tables *f) {
    const double a = fabs((double)f->key[0]);
    if (!(a >= 1e-30 && a <= 1e30)) return; /* NaN too; 1/alpha, the alpha summand's factor, stays normal */
    f->fns = 3, f->log_dg = 1;
    f->w = 0.1875f;
    f->z_end = (float)log(5.0 / a);
    fit_tables(f, erfact_exact, log(7.0 / a));
}
DEFINE_FIT_CACHE(erfact, 1)
INLINE void erfact_tabled_params(const float *p, vf *P) { fitted_params(p, erfact_fit_for(p), P); }
INLINE vf erfact_tabled_val(vf x, const vf *P) { FITTED_VAL(x, P, erfact_formula_val); }
INLINE void erfact_tabled_grad(vf g, vf x, const vf *P, vf *d) {
    FITTED_GRAD_HEAD(g, x, P, d, erfact_general_grad, t, idx);
    vf dg = table_coef(fit_of(P)->rows[FIT_SCALE][0], idx) * exp_core(fitted_poly(P, FIT_DG, t, idx));
    d[1] = (g * x) * (dg * P[FIT_INV_P]);
    d[2] = g * square_times(x * x, dg);
}

/* For the tests: whether the kernel's tables serve parameter p, then z0, w, z_end and z_rel. */
void fitted_table_range(int erfact, const float *p, float *out) {
    const fitted_tables *f = erfact ? erfact_fit_for(p) : pserf_fit_for(p);
    out[0] = (float)f->usable, out[1] = f->z0, out[2] = f->w, out[3] = f->z_end, out[4] = f->z_rel;
}

/* ---------------------------------------------------------------------------------------------------
   The loops. NAME_fwd(x, y, n, params, threads), NAME_limits(params, out) and
   NAME_bwd(g, x, grad_x, n, params, want (bit k: the gradient sum of parameter value k), sums, threads).
   Work is split in blocks of BLOCK elements; the last vector of the last block is read from and written
   through a padded copy. */

/* Full vectors are one unaligned move; the last, partial one goes through a lane loop (zeros beyond). */
INLINE vf load(const float *p, int64_t m) {
    vf v;
    if (m >= W) {
        memcpy(&v, p, sizeof v);
        return v;
    }
    v = ZERO;
    for (int64_t k = 0; k < m; k++) v[k] = p[k];
    return v;
}
INLINE void store(float *p, vf v, int64_t m) {
    if (m >= W) {
        memcpy(p, &v, sizeof v);
        return;
    }
    for (int64_t k = 0; k < m; k++) p[k] = v[k];
}

/* Streaming stores for calls whose traffic is more than the last-level cache holds: their outputs would be
   pushed out to memory anyway, and a store that goes around the caches saves the read of each line before
   it is written (a quarter of a backward's traffic). AMD EPYC, 2^22 floats, two threads, ns per 16 floats:
   Pserf's backward with both parameter sums 7.4-7.7 -> 6.0, silu's 2.8 -> 2.5; 2^24: 7.4-8.3 -> 5.1, 3.8-4.2 ->
   3.0-3.2. Smaller calls keep ordinary stores, so that the next layer finds their output in the cache. */
#if defined(__AVX512F__)
INLINE void stream_store(float *p, vf v) { _mm512_stream_ps(p, (__m512)v); }
#elif defined(__AVX__)
INLINE void stream_store(float *p, vf v) { _mm256_stream_ps(p, (__m256)v); }
#elif defined(__SSE2__)
INLINE void stream_store(float *p, vf v) { _mm_stream_ps(p, (__m128)v); }
#else
#define NO_STREAM_STORES
INLINE void stream_store(float *p, vf v) { memcpy(p, &v, sizeof v); }
#endif
/* One full vector to p, streamed or not (stream: a constant or the same for a whole call). */
INLINE void store_full(float *p, vf v, int stream) {
    if (stream)
        stream_store(p, v);
    else
        memcpy(p, &v, sizeof v);
}
/* Streamed stores are weakly ordered: each thread fences its own before the others may read them. */
INLINE void stream_fence(int stream) {
#ifndef NO_STREAM_STORES
    if (stream) _mm_sfence();
#else
    (void)stream;
#endif
}
static int64_t stream_from = -1; /* bytes a call must move to stream: the L3's size by default */
/* The L3 of the first CPU as Linux's sysfs gives it (what lscpu shows; sysconf's figure was the whole host's
   384 MiB in a VM that has 32 MiB); 32 MiB where there is none to read. */
static int64_t default_stream_from(void) {
    long kib = 0;
    FILE *f = fopen("/sys/devices/system/cpu/cpu0/cache/index3/size", "r");
    if (f) {
        if (fscanf(f, "%ldK", &kib) != 1) kib = 0;
        fclose(f);
    }
    return (int64_t)(kib > 0 ? kib : 32 << 10) << 10;
}
/* Sets the threshold in bytes (-1: back to the default; -2: leaves it) and returns the one in force. */
int64_t actlab_stream_from(int64_t bytes) {
    if (bytes >= -1) stream_from = bytes < 0 ? default_stream_from() : bytes;
    if (stream_from < 0) stream_from = default_stream_from();
    return stream_from;
}
/* Whether a call that moves more than the threshold's bytes streams its output `out` (aligned to a vector:
   what the streaming store needs; torch's CPU allocator aligns to 64 bytes). Called before the threads start. */
static int streams(const float *out, int64_t bytes) {
    return bytes > actlab_stream_from(-2) && (uintptr_t)out % sizeof(vf) == 0;
}
INLINE vf lanes_below(int64_t m) {
    vf keep;
    for (int k = 0; k < W; k++) keep[k] = k < m ? 1.0f : 0.0f;
    return keep;
}
/* bfloat16 and float16 tensors (io == IO_BF16, IO_F16 in the entry points): each block of BLOCK elements is
   widened into float32 scratch on the thread's stack (exact), run through the same float32 block loop and
   rounded back to the nearest even as torch's .to() rounds on the CPU: bfloat16 by its bits (NaN to 0xFFFF),
   float16 by F16C's vcvtps2ph (NaN quieted, its payload truncated), or _Float16 where the machine has no F16C.
   So a result is bit for bit the float32 kernel's on x.float(), rounded (the parameter sums but for their order
   of summation), at half float32's memory traffic. Blocks this small keep the loads from memory going while
   the block is computed (chunks of 16k elements converted apart took twice float32's time). */
enum { IO_F32 = 0, IO_BF16 = 1, IO_F16 = 2 };
typedef uint16_t bf16;
typedef uint32_t vu __attribute__((vector_size(4 * W)));
typedef uint16_t vh __attribute__((vector_size(2 * W)));
/* The bfloat16 bits of float bits u (a scalar or a vector), rounded to the nearest even; not for NaN. */
#define ROUND_BF16(u) (((u) + 0x7fffu + (((u) >> 16) & 1u)) >> 16)
#if defined(__AVX512F__)
/* By intrinsics: GCC's __builtin_convertvector took 7 instructions for 16 lanes, where 2 do. */
INLINE vf widen_vec(const bf16 *p) {
    return (vf)_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16);
}
INLINE void narrow_vec(bf16 *p, vf v) {
    const __m512i u = (__m512i)v, r = (__m512i)ROUND_BF16((vu)u);
    const __m512i nan_as = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask((__m512)v, (__m512)v, _CMP_UNORD_Q),
                                                 _mm512_set1_epi32(0xffff));
    _mm256_storeu_si256((__m256i *)p, _mm512_cvtepi32_epi16(nan_as));
}
#else
INLINE vf widen_vec(const bf16 *p) {
    vh h;
    memcpy(&h, p, sizeof h);
    return (vf)(__builtin_convertvector(h, vu) << 16);
}
INLINE void narrow_vec(bf16 *p, vf v) {
    vu u = (vu)v, r = (vu)sel(v != v, (vf)(u | 0xffffu), (vf)ROUND_BF16(u));
    vh h = __builtin_convertvector(r, vh);
    memcpy(p, &h, sizeof h);
}
#endif
static void widen_bf16(const bf16 *src, float *dst, int64_t m) {
    int64_t i = 0;
    for (; i + W <= m; i += W) {
        vf v = widen_vec(src + i);
        memcpy(dst + i, &v, sizeof v);
    }
    for (; i < m; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(dst + i, &u, sizeof u);
    }
}
static void narrow_bf16(const float *src, bf16 *dst, int64_t m) {
    int64_t i = 0;
    for (; i + W <= m; i += W) {
        vf v;
        memcpy(&v, src + i, sizeof v);
        narrow_vec(dst + i, v);
    }
    for (; i < m; i++) {
        uint32_t u;
        memcpy(&u, src + i, sizeof u);
        dst[i] = (bf16)(isnan(src[i]) ? 0xffffu : ROUND_BF16(u));
    }
}
/* float16: the vector conversions of AVX-512 or F16C (8 lanes, W with AVX), else lane by lane. */
#if defined(__F16C__) || defined(__AVX512F__)
#define HAVE_F16 1
INLINE float f16_to_float(uint16_t h) { return _cvtsh_ss(h); }
INLINE uint16_t float_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
#elif defined(__FLT16_MAX__)
#define HAVE_F16 1
INLINE float f16_to_float(uint16_t h) {
    _Float16 v;
    memcpy(&v, &h, sizeof v);
    return (float)v;
}
INLINE uint16_t float_to_f16(float f) {
    _Float16 v = (_Float16)f;
    uint16_t h;
    memcpy(&h, &v, sizeof h);
    return h;
}
#else
#define HAVE_F16 0
INLINE float f16_to_float(uint16_t h) { return (float)h; } /* never called: actlab_has_f16() says 0 */
INLINE uint16_t float_to_f16(float f) { return (uint16_t)f; }
#endif
/* Whether this build converts float16 (the loader asks before it sends a float16 tensor). */
int actlab_has_f16(void) { return HAVE_F16; }
static void widen_f16(const uint16_t *src, float *dst, int64_t m) {
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= m; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
#elif defined(__F16C__)
    for (; i + 8 <= m; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < m; i++) dst[i] = f16_to_float(src[i]);
}
static void narrow_f16(const float *src, uint16_t *dst, int64_t m) {
    int64_t i = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= m; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__)
    for (; i + 8 <= m; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < m; i++) dst[i] = float_to_f16(src[i]);
}
/* The m elements of a half-precision tensor (io: IO_BF16 or IO_F16) from `start` on, as float32, and back. */
static void widen_half(int io, const void *src, int64_t start, float *dst, int64_t m) {
    if (io == IO_BF16)
        widen_bf16((const bf16 *)src + start, dst, m);
    else
        widen_f16((const uint16_t *)src + start, dst, m);
}
static void narrow_half(int io, const float *src, void *dst, int64_t start, int64_t m) {
    if (io == IO_BF16)
        narrow_bf16(src, (bf16 *)dst + start, m);
    else
        narrow_f16(src, (uint16_t *)dst + start, m);
}
/* A block's float32 scratch, on the stack of the thread that runs it. */
#define HALF_SCRATCH(...) float __VA_ARGS__ __attribute__((aligned(64)))

/* A float32 call is split into parts(n, nt) parts of whole blocks, one per thread, part c from part_start(c)
   to part_start(c + 1), each one call of the kernel's NAME##_run; that function is not inlined, so that the
   half-precision loop, which calls it once per block, shares its code (inlined twice, the library took 37 s
   to build instead of 18). */
INLINE int64_t parts(int64_t n, int nt) { return n >= PARALLEL_FROM && nt > 1 ? nt : 1; }
INLINE int64_t part_start(int64_t c, int64_t parts, int64_t n) {
    const int64_t blocks = (n + BLOCK - 1) / BLOCK, start = blocks * c / parts * BLOCK;
    return start < n ? start : n;
}

/* The four scalar parameters splat, P[4] = ln(p[3]) and P[5] = 1/p[3] (TanhSoft's ln delta and 1/delta),
   computed once per call. */
#define SCALAR_NPV 6
INLINE void splat_params(const float *p, vf *P) {
    for (int k = 0; k < 4; k++) P[k] = splat(p[k]);
    P[4] = splat(logf(p[3]));
    P[5] = splat(1.0f / p[3]);
}
INLINE vf clamp_big(vf x) { return copysignv(MINV(absv(x), splat(BIG)), x); }
INLINE double lane_sum(vf v) {
    double s = 0.0;
    for (int k = 0; k < W; k++) s += v[k];
    return s;
}

/* f(-inf) and f(+inf) by the rule of autograd._limits: where f(±max) = f(±max/2) the function has
   saturated there and that is the limit, else it keeps growing and the limit is ±inf in its direction. */
INLINE float limit_of(float far, float half) {
    return far == half ? far : (far > half ? INFINITY : -INFINITY);
}

/* Whether the formula's own values at -inf and +inf (ends[0], ends[1]) are the limits bit for bit: then the
   forward has nothing to put in (SMU with alpha != 0, swish...) and its loop skips the two compares and
   selects per vector, ~10 % of SMU's forward. */
INLINE int gives_limits(vf ends, const float *lim) {
    float lo = ends[0], hi = ends[1];
    return memcmp(&lo, &lim[0], sizeof lo) == 0 && memcmp(&hi, &lim[1], sizeof hi) == 0;
}

#define DEFINE_FWD(NAME, PROBE, PREP, NPV)                                                                  \
    void NAME##_limits(const float *p, float *out) {                                                        \
        vf P[NPV], probe = ZERO;                                                                            \
        PREP(p, P);                                                                                         \
        probe[0] = -BIG, probe[1] = -0.5f * BIG, probe[2] = 0.5f * BIG, probe[3] = BIG;                     \
        vf v = NAME##_val(probe, P);                                                                        \
        out[0] = limit_of(v[0], v[1]), out[1] = limit_of(v[3], v[2]);                                       \
    }                                                                                                       \
    INLINE void NAME##_fwd_vec(const float *x, float *y, int64_t m, const vf *P, vf lo, vf hi,      \
                                      int fix) {                                                            \
        vf xv = load(x, m), v = NAME##_val(xv, P);                                                          \
        if (fix && any_infinite(xv)) v = sel(xv == -INFINITY, lo, sel(xv == INFINITY, hi, v));            \
        store(y, v, m);                                                                                     \
    }                                                                                                       \
    /* Two vectors in one basic block: their dependency chains (60-80 ops deep for the erf kernels) are  \
       interleaved by the pre-RA scheduler (-fschedule-insns), which the out-of-order core's scheduler   \
       alone did not do (Zen 3, AVX2: Pserf's forward 76 -> 60 cycles for 8 floats). */                  \
    INLINE void NAME##_fwd_pair(const float *x, float *y, const vf *P, vf lo, vf hi, int fix, int stream) { \
        vf xa = load(x, W), xb = load(x + W, W), va = NAME##_val(xa, P), vb = NAME##_val(xb, P);            \
        if (fix && any_infinite(xa)) va = sel(xa == -INFINITY, lo, sel(xa == INFINITY, hi, va));            \
        if (fix && any_infinite(xb)) vb = sel(xb == -INFINITY, lo, sel(xb == INFINITY, hi, vb));            \
        store_full(y, va, stream);                                                                          \
        store_full(y + W, vb, stream);                                                                      \
    }                                                                                                       \
    INLINE void NAME##_fwd_block(const float *x, float *y, int64_t i, int64_t end, const vf *P,     \
                                        vf lo, vf hi, int fix, int stream) {                                \
        vf Q[NPV]; /* a copy whose address stays here, so the loop keeps the parameters in registers */     \
        memcpy(Q, P, sizeof Q);                                                                             \
        for (; i + 2 * W <= end; i += 2 * W) NAME##_fwd_pair(x + i, y + i, Q, lo, hi, fix, stream);        \
        for (; i + W <= end; i += W) NAME##_fwd_vec(x + i, y + i, W, Q, lo, hi, fix);                      \
        if (i < end) NAME##_fwd_vec(x + i, y + i, end - i, Q, lo, hi, fix);                                \
        stream_fence(stream);                                                                               \
    }                                                                                                       \
    static __attribute__((noinline)) void NAME##_fwd_run(const float *x, float *y, int64_t i, int64_t end,  \
                                                         const vf *P, vf lo, vf hi, int fix, int stream) {  \
        if (fix) /* two copies of the loop, with and without the substitution */                            \
            NAME##_fwd_block(x, y, i, end, P, lo, hi, 1, stream);                                           \
        else                                                                                                \
            NAME##_fwd_block(x, y, i, end, P, lo, hi, 0, stream);                                           \
    }                                                                                                       \
    /* Whether the forward must put the probed limits (into lim) at ±inf for these parameters. */         \
    int NAME##_substitutes(const float *p, float *lim) {                                                    \
        vf P[NPV], ends = ZERO;                                                                             \
        lim[0] = lim[1] = 0.0f;                                                                             \
        if (!PROBE) return 0;                                                                               \
        PREP(p, P);                                                                                         \
        NAME##_limits(p, lim);                                                                              \
        ends[0] = -INFINITY, ends[1] = INFINITY;                                                            \
        return !gives_limits(NAME##_val(ends, P), lim);                                                     \
    }                                                                                                       \
    void NAME##_fwd(const void *x, void *y, int64_t n, const float *p, int nt, int io) {                   \
        vf P[NPV];                                                                                          \
        float lim[2];                                                                                       \
        PREP(p, P);                                                                                         \
        const int fix = NAME##_substitutes(p, lim);                                                         \
        const vf lo = splat(lim[0]), hi = splat(lim[1]);                                                    \
        if (io == IO_F32) {                                                                                 \
            const int stream = streams(y, 8 * n);                                                           \
            const int64_t np = parts(n, nt);                                                                \
            _Pragma("omp parallel for schedule(static) num_threads(nt) if(np > 1)")                         \
            for (int64_t c = 0; c < np; c++)                                                                \
                NAME##_fwd_run(x, y, part_start(c, np, n), part_start(c + 1, np, n), P, lo, hi, fix, stream); \
            return;                                                                                         \
        }                                                                                                   \
        const int64_t blocks = (n + BLOCK - 1) / BLOCK;                                                     \
        _Pragma("omp parallel for schedule(static) num_threads(nt) if(parts(n, nt) > 1)")                   \
        for (int64_t b = 0; b < blocks; b++) {                                                              \
            const int64_t start = b * BLOCK, end = start + BLOCK < n ? start + BLOCK : n;                   \
            HALF_SCRATCH(xs[BLOCK], ys[BLOCK]);                                                             \
            widen_half(io, x, start, xs, end - start);                                                      \
            NAME##_fwd_run(xs, ys, 0, end - start, P, lo, hi, fix, 0);                                      \
            narrow_half(io, ys, y, start, end - start);                                                     \
        }                                                                                                   \
    }

/* want: bit k asks for the gradient sum of parameter value k. The block loop is inlined with want as a
   constant for no sums, for the second or third value alone (SMU's and SMU-1's mu, smooth max's mu: the
   other parameters fixed, as by default) and for all, so that each copy computes only the summands it
   adds up: SMU's backward without alpha's is ~7 % less. */
/* A backward's loops over RUN(g, x, grad_x, start, end, P, want, s, stream) (a kernel's NAME##_bwd_run, or PAU's):
   one part per thread in float32, block by block through float32 scratch in half precision. The parameter sums
   go into the caller's double s[MAX_SUMS] (the reduction names it). */
#define RUN_BWD(RUN, g, x, gx, n, nt, io, P, want)                                                          \
    do {                                                                                                    \
        const int64_t np_ = parts(n, nt);                                                                   \
        if ((io) == IO_F32) {                                                                               \
            const int stream_ = streams(gx, 12 * (n));                                                      \
            _Pragma("omp parallel for schedule(static) num_threads(nt) if(np_ > 1) reduction(+:s[:MAX_SUMS])") \
            for (int64_t c = 0; c < np_; c++)                                                               \
                RUN(g, x, gx, part_start(c, np_, n), part_start(c + 1, np_, n), P, want, s, stream_);       \
        } else {                                                                                            \
            const int64_t blocks_ = ((n) + BLOCK - 1) / BLOCK;                                              \
            _Pragma("omp parallel for schedule(static) num_threads(nt) if(np_ > 1) reduction(+:s[:MAX_SUMS])") \
            for (int64_t b = 0; b < blocks_; b++) {                                                         \
                const int64_t start = b * BLOCK, end = start + BLOCK < (n) ? start + BLOCK : (n);           \
                HALF_SCRATCH(gs[BLOCK], xs[BLOCK], gxs[BLOCK]);                                             \
                widen_half(io, g, start, gs, end - start);                                                  \
                widen_half(io, x, start, xs, end - start);                                                  \
                RUN(gs, xs, gxs, 0, end - start, P, want, s, 0);                                            \
                narrow_half(io, gxs, gx, start, end - start);                                               \
            }                                                                                               \
        }                                                                                                   \
    } while (0)

#define DEFINE_BWD(NAME, CLAMP, PREP, NPV, NPAR)                                                            \
    INLINE void NAME##_bwd_vec(const float *g, const float *x, float *gx, int64_t m, const vf *P,   \
                                      int want, vf *acc) {                                                  \
        vf d[NPAR + 1] = {ZERO}, xv = load(x, m);                                                           \
        if (CLAMP && any_infinite(xv)) xv = clamp_big(xv); /* it changes only ±inf */                       \
        NAME##_grad(load(g, m), xv, P, d);                                                                  \
        store(gx, d[0], m);                                                                                 \
        if (!want) return;                                                                                  \
        if (m < W) { /* the padded lanes of the last vector may give inf·0 */                               \
            vi keep = lanes_below(m) != 0.0f;                                                               \
            for (int k = 1; k <= NPAR; k++) d[k] = sel(keep, d[k], ZERO);                                   \
        }                                                                                                   \
        for (int k = 0; k < NPAR; k++)                                                                      \
            if (want >> k & 1) acc[k] += d[k + 1];                                                          \
    }                                                                                                       \
    /* Two full vectors in one basic block, as NAME##_fwd_pair. */                                        \
    INLINE void NAME##_bwd_pair(const float *g, const float *x, float *gx, const vf *P, int want, vf *acc,  \
                                int stream) {                                                               \
        vf da[NPAR + 1] = {ZERO}, db[NPAR + 1] = {ZERO}, xa = load(x, W), xb = load(x + W, W);           \
        if (CLAMP && (any_infinite(xa) || any_infinite(xb))) xa = clamp_big(xa), xb = clamp_big(xb);    \
        NAME##_grad(load(g, W), xa, P, da);                                                                 \
        NAME##_grad(load(g + W, W), xb, P, db);                                                             \
        store_full(gx, da[0], stream);                                                                      \
        store_full(gx + W, db[0], stream);                                                                  \
        for (int k = 0; k < NPAR; k++)                                                                      \
            if (want >> k & 1) acc[k] += da[k + 1] + db[k + 1];                                             \
    }                                                                                                       \
    INLINE void NAME##_bwd_block(const float *g, const float *x, float *gx, int64_t i, int64_t end,  \
                                        const vf *Q, int want, vf *acc, int stream) {                       \
        for (; i + 2 * W <= end; i += 2 * W) NAME##_bwd_pair(g + i, x + i, gx + i, Q, want, acc, stream);  \
        for (; i + W <= end; i += W) NAME##_bwd_vec(g + i, x + i, gx + i, W, Q, want, acc);                \
        if (i < end) NAME##_bwd_vec(g + i, x + i, gx + i, end - i, Q, want, acc);                          \
        stream_fence(stream);                                                                               \
    }                                                                                                       \
    /* Elements [i, end), block by block (a float32 partial sum each), the summands added to s. */       \
    static __attribute__((noinline)) void NAME##_bwd_run(const float *g, const float *x, float *gx,         \
                                                         int64_t i, int64_t end, const vf *P, int want,     \
                                                         double *s, int stream) {                           \
        for (; i < end; i += BLOCK) {                                                                       \
            const int64_t stop = i + BLOCK < end ? i + BLOCK : end;                                         \
            vf acc[NPAR], Q[NPV];                                                                           \
            for (int k = 0; k < NPAR; k++) acc[k] = ZERO;                                                   \
            memcpy(Q, P, sizeof Q);                                                                         \
            switch (want) {                                                                                 \
            case 0: NAME##_bwd_block(g, x, gx, i, stop, Q, 0, acc, stream); break;                          \
            case 2: NAME##_bwd_block(g, x, gx, i, stop, Q, 2, acc, stream); break;                          \
            case 4: NAME##_bwd_block(g, x, gx, i, stop, Q, 4, acc, stream); break;                          \
            default: NAME##_bwd_block(g, x, gx, i, stop, Q, ALL_SUMS, acc, stream); break;                  \
            }                                                                                               \
            for (int k = 0; k < NPAR; k++) s[k] += lane_sum(acc[k]);                                        \
        }                                                                                                   \
    }                                                                                                       \
    void NAME##_bwd(const void *g, const void *x, void *gx, int64_t n, const float *p, int want,          \
                    double *sums, int nt, int io) {                                                         \
        vf P[NPV];                                                                                          \
        PREP(p, P);                                                                                         \
        double s[MAX_SUMS] = {0.0}; /* the pragma sees global macros only, not NPAR */                     \
        RUN_BWD(NAME##_bwd_run, g, x, gx, n, nt, io, P, want);                                              \
        for (int k = 0; k < NPAR; k++) sums[k] = s[k];                                                      \
    }

/* PROBE: the formula does not give its own limits, so the forward puts the probed ones at ±inf and the
   backward sees x clamped to ±FLT_MAX (autograd.evaluate and evaluate_backward). */
#define DEFINE_KERNEL(NAME, PROBE)                                                                          \
    DEFINE_FWD(NAME, PROBE, splat_params, SCALAR_NPV) DEFINE_BWD(NAME, PROBE, splat_params, SCALAR_NPV, 4)

/* A kernel's four entry points, for a dispatcher to choose from. */
typedef struct {
    void (*fwd)(const void *, void *, int64_t, const float *, int, int);
    void (*bwd)(const void *, const void *, void *, int64_t, const float *, int, double *, int, int);
    void (*limits)(const float *, float *);
    int (*substitutes)(const float *, float *);
} kernel_fns;
#define KERNEL_FNS(NAME) {NAME##_fwd, NAME##_bwd, NAME##_limits, NAME##_substitutes}

/* NAME's entry points where NAME##_special(p) names a simpler kernel that computes NAME for parameters p
   (or gives NULL): those take it (the backward only where no parameter gradient is asked for: the special
   kernels give dL/dx alone), the rest NAME##_general's. */
#define DEFINE_DISPATCH(NAME, ENTRY)                                                                        \
    void ENTRY##_fwd(const void *x, void *y, int64_t n, const float *p, int nt, int io) {                 \
        const kernel_fns *k = NAME##_special(p);                                                            \
        (k ? k->fwd : NAME##_general_fwd)(x, y, n, p, nt, io);                                              \
    }                                                                                                       \
    void ENTRY##_bwd(const void *g, const void *x, void *gx, int64_t n, const float *p, int want,         \
                     double *sums, int nt, int io) {                                                        \
        const kernel_fns *k = want ? NULL : NAME##_special(p);                                              \
        (k ? k->bwd : NAME##_general_bwd)(g, x, gx, n, p, want, sums, nt, io);                              \
    }                                                                                                       \
    void ENTRY##_limits(const float *p, float *out) {                                                       \
        const kernel_fns *k = NAME##_special(p);                                                            \
        (k ? k->limits : NAME##_general_limits)(p, out);                                                    \
    }                                                                                                       \
    int ENTRY##_substitutes(const float *p, float *lim) {                                                   \
        const kernel_fns *k = NAME##_special(p);                                                            \
        return (k ? k->substitutes : NAME##_general_substitutes)(p, lim);                                   \
    }

/* The four entry points of a kernel with tables (NAME##_tabled_*) over FORMULA's kernels: the tables where
   SERVES (an expression in n and p) holds, the backward only where every sum asked for is among TABLED_SUMS
   (want's bits); the limits are the formula's. */
#define DEFINE_TABLED_DISPATCH(NAME, FORMULA, SERVES, TABLED_SUMS)                                          \
    void NAME##_fwd(const void *x, void *y, int64_t n, const float *p, int nt, int io) {                   \
        ((SERVES) ? NAME##_tabled_fwd : FORMULA##_fwd)(x, y, n, p, nt, io);                                 \
    }                                                                                                       \
    void NAME##_bwd(const void *g, const void *x, void *gx, int64_t n, const float *p, int want,          \
                    double *sums, int nt, int io) {                                                         \
        const int tabled = !(want & ~(TABLED_SUMS)) && (SERVES);                                            \
        (tabled ? NAME##_tabled_bwd : FORMULA##_bwd)(g, x, gx, n, p, want, sums, nt, io);                   \
    }                                                                                                       \
    void NAME##_limits(const float *p, float *out) { FORMULA##_limits(p, out); }                            \
    int NAME##_substitutes(const float *p, float *lim) { return FORMULA##_substitutes(p, lim); }

DEFINE_KERNEL(silu, 0)
DEFINE_KERNEL(hard_swish, 1)
DEFINE_KERNEL(elu, 1)
DEFINE_KERNEL(celu, 1)
DEFINE_KERNEL(selu, 1)
DEFINE_KERNEL(swish, 1)
DEFINE_KERNEL(mish, 0)
DEFINE_KERNEL(softplus, 0)
DEFINE_KERNEL(gelu, 0)
/* SMU's and smooth max's (erf form) formula kernels; their entry points take fitted tables too (after Pserf's). */
#define smu_formula_val smu_val
#define smu_formula_grad smu_grad
#define smooth_max_erf_formula_val smooth_max_erf_val
#define smooth_max_erf_formula_grad smooth_max_erf_grad
DEFINE_KERNEL(smu_formula, 1)
DEFINE_KERNEL(smooth_max_erf_formula, 1)
DEFINE_KERNEL(smu1, 1)
DEFINE_KERNEL(smooth_max_sqrt, 1)
/* Logish's and TanhExp's formula kernels; their entry points take fitted tables too (after EIS's). */
#define logish_formula_val logish_val
#define logish_formula_grad logish_grad
#define tanhexp_formula_val tanhexp_val
#define tanhexp_formula_grad tanhexp_grad
DEFINE_KERNEL(logish_formula, 1)
DEFINE_KERNEL(tanhexp_formula, 1)
DEFINE_KERNEL(tanhsoft_general, 1)
DEFINE_FWD(tanhsoft_exp, 1, tanhsoft_exp_params, SCALAR_NPV)
DEFINE_BWD(tanhsoft_exp, 1, tanhsoft_exp_params, SCALAR_NPV, 1)
DEFINE_FWD(tanhsoft_softplus, 1, splat_params, SCALAR_NPV)
DEFINE_BWD(tanhsoft_softplus, 1, splat_params, SCALAR_NPV, 1)
static const kernel_fns TANHSOFT_EXP = KERNEL_FNS(tanhsoft_exp),
                        TANHSOFT_SOFTPLUS = KERNEL_FNS(tanhsoft_softplus);
static const kernel_fns *tanhsoft_special(const float *p) {
    return tanhsoft_is_exp(p) ? &TANHSOFT_EXP : tanhsoft_is_softplus(p) ? &TANHSOFT_SOFTPLUS : NULL;
}
DEFINE_DISPATCH(tanhsoft, tanhsoft_formula) /* the entry points, with fitted tables, after EIS's */
/* ErfAct's PREP for its tabled forward: ln|alpha| = P[4] + P[6] (P[4] a multiple of 2^-10) and sign(alpha) in
   P[5], which is 0 where the forward takes the formula (alpha = 0 or non-finite parameters). */
#define ERFACT_NPV 7
/* With AVX2 alone the table's seven gathers cost what they save (this Xeon, ns per 16 floats: forward 46 ->
   47-51), so the forward keeps the formula there; SSE2's lane-by-lane lookups do pay (147 -> 110). */
#if defined(__AVX2__) && !defined(__AVX512F__)
#define ERFACT_TABLED 0
#else
#define ERFACT_TABLED 1
#endif
/* Whether this build's ErfAct forward uses its table (for the tests). */
int erfact_tabled(void) { return ERFACT_TABLED; }
INLINE void erfact_params(const float *p, vf *P) {
    splat_params(p, P);
    const int tabled = ERFACT_TABLED && p[0] != 0.0f && isfinite(p[0]) && isfinite(p[1]);
    const double ln_alpha = tabled ? log(fabs((double)p[0])) : 0.0;
    const float hi = (float)(nearbyint(ln_alpha * 1024.0) / 1024.0);
    P[4] = splat(hi);
    P[5] = splat(tabled ? copysignf(1.0f, p[0]) : 0.0f);
    P[6] = splat((float)(ln_alpha - hi));
}
DEFINE_FWD(erfact_general, 1, erfact_params, ERFACT_NPV)
DEFINE_BWD(erfact_general, 1, splat_params, SCALAR_NPV, 4)
DEFINE_FWD(erfact_tabled, 1, erfact_tabled_params, FIT_NPV)
DEFINE_BWD(erfact_tabled, 1, erfact_tabled_params, FIT_NPV, 2)
/* ErfAct from its fitted tables from FIT_FROM elements on, else from ERFACT_H (forward) and the formula. */
#define erfact_tables_serve(n, p) ((n) >= FIT_FROM && fit_serves(erfact_fit_for(p), p))
DEFINE_TABLED_DISPATCH(erfact, erfact_general, erfact_tables_serve(n, p), FITTED_SUMS)
DEFINE_KERNEL(serf, 1)
DEFINE_KERNEL(pserf_general, 1)
DEFINE_FWD(pserf_tabled, 1, pserf_tabled_params, FIT_NPV)
DEFINE_BWD(pserf_tabled, 1, pserf_tabled_params, FIT_NPV, 2)
/* Pserf from its fitted tables from FIT_FROM elements on (the fit's cost), else the formula. */
#define pserf_tables_serve(n, p) ((n) >= FIT_FROM && fit_serves(pserf_fit_for(p), p))
DEFINE_TABLED_DISPATCH(pserf, pserf_general, pserf_tables_serve(n, p), FITTED_SUMS)

/* SMU and smooth max (erf form) from tables fitted at run time: f = x·G(z) with z = mu·(a - b)·x and
   G(z) = b + (a - b)·(1 + erf(z))/2 (SMU: a = 1, b = alpha), a function of z for given (a, b). mu, the
   parameter usually learnt, only scales z, so one fit serves every step. Beyond the tables G and D = G + z·G'
   are flat to float32's rounding: a from z_end on, b below z0; both ends are put where the rest, (a - b)·(U,
   z·U'), falls under 2^-25 of |a| and |b| (checked in double), so no vector needs the formula and the loop has
   no branch. Where a or b is 0 or too small for that within 32 intervals of at most 0.5, the formula serves.
   mu's summand is g·((a - b)·x)²·exp(-z²)/sqrt(pi), the formula's own; a's and b's (alpha's) take the formula
   kernel. AMD EPYC, 2^20 floats (in the L3), ns per 16 floats, SMU's default (alpha 0.01, mu 2.5), one thread:
   forward 5.3 -> 3.1, backward with mu's sum 6.9 -> 6.2 (exp(-z²) for mu's summand is most of it), without
   6.4 -> 3.8; forward+backward of simple_cnn's three activations, two threads: 427-434 -> 367-389 us. A fit
   takes ~21 us (a learnable alpha: each step's forward; its backward keeps the formula). */
static void smooth_erf_exact(double z, const fitted_tables *fit, double *f) {
    const double a = fit->key[0], b = fit->key[1];
    f[FIT_G] = b + (a - b) * 0.5 * erfc(-z);
    f[FIT_D] = f[FIT_G] + z * (a - b) * 0.5641895835477563 * exp(-z * z);
}
/* Whether G and D at z are `flat` (the end value) to 2^-25 of it. */
static int smooth_erf_flat(const fitted_tables *f, double z, double flat) {
    double v[FIT_FNS];
    smooth_erf_exact(z, f, v);
    return fabs(v[FIT_G] - flat) <= 0x1p-25 * fabs(flat) && fabs(v[FIT_D] - flat) <= 0x1p-25 * fabs(flat);
}
static void smooth_erf_make(fitted_tables *f) {
    const double a = f->key[0], b = f->key[1];
    if (!(isfinite(a) && isfinite(b) && a != b && a != 0.0 && b != 0.0)) return;
    double z_end = 2.0, z_start = -2.0;
    while (z_end < 10.0 && !smooth_erf_flat(f, z_end, a)) z_end += 0.125;
    while (z_start > -10.0 && !smooth_erf_flat(f, z_start, b)) z_start -= 0.125;
    f->fns = 2;
    f->w = (float)(ceil((z_end - z_start) / TABLE_N * 64.0) / 64.0);
    f->z_end = (float)z_end;
    if (f->w > 0.5f) return;
    fit_tables(f, smooth_erf_exact, z_end);
    f->usable &= smooth_erf_flat(f, f->z0, b) && smooth_erf_flat(f, z_end, a);
}
DEFINE_FIT_CACHE(smooth_erf, 2)
/* P as fitted_params gives it for p = a and s = mu·(a - b) (as the formula rounds it), then G's right end a,
   its left end b and a - b. */
#define SMOOTH_ERF_NPV (FIT_NPV + 2)
INLINE void smooth_erf_tabled_prep(float a, float b, float mu, vf *P) {
    const float key[2] = {a, b}, ps[2] = {a, mu * (a - b)};
    fitted_params(ps, smooth_erf_fit_for(key), P);
    P[FIT_SIGN] = splat(a), P[FIT_NPV] = splat(b), P[FIT_NPV + 1] = splat(a - b);
}
/* Whether the tables serve a call of n elements with these parameters (the scale mu·(a - b) finite). */
INLINE int smooth_erf_tables_serve(int64_t n, float a, float b, float mu) {
    const float key[2] = {a, b}, ps[2] = {a, mu * (a - b)};
    return n >= FIT_FROM && fit_serves(smooth_erf_fit_for(key), ps);
}
/* G's or D's table (row set q) at z = s·x, the flat ends beyond. */
INLINE vf smooth_erf_tabled(vf x, const vf *P, int q) {
    vf z = P[1] * x;
    vi idx;
    vf t = fitted_t(z, x, P, &idx), v = fitted_poly(P, q, t, idx);
    return sel(z >= P[FIT_Z_END], P[FIT_SIGN], sel(z < P[FIT_Z0], P[FIT_NPV], v));
}
INLINE vf smooth_erf_tabled_val(vf x, const vf *P) { return x * smooth_erf_tabled(x, P, FIT_G); }
INLINE void smooth_erf_tabled_grad(vf g, vf x, const vf *P, vf *d4) {
    vf dx = P[FIT_NPV + 1] * x;
    d4[0] = g * smooth_erf_tabled(x, P, FIT_D);
    d4[3] = g * square_times(dx * dx, gauss_flushed(absv(P[1] * x)) * 0.5641895835477563f);
}
INLINE void smooth_max_erf_tabled_params(const float *p, vf *P) { smooth_erf_tabled_prep(p[0], p[1], p[2], P); }
INLINE void smu_tabled_params(const float *p, vf *P) { smooth_erf_tabled_prep(1.0f, p[0], p[1], P); }
#define smooth_max_erf_tabled_val smooth_erf_tabled_val
#define smu_tabled_val smooth_erf_tabled_val
INLINE void smooth_max_erf_tabled_grad(vf g, vf x, const vf *P, vf *d) { smooth_erf_tabled_grad(g, x, P, d); }
INLINE void smu_tabled_grad(vf g, vf x, const vf *P, vf *d) {
    vf d4[4];
    smooth_erf_tabled_grad(g, x, P, d4);
    d[0] = d4[0], d[2] = d4[3];
}
DEFINE_FWD(smu_tabled, 1, smu_tabled_params, SMOOTH_ERF_NPV)
DEFINE_BWD(smu_tabled, 1, smu_tabled_params, SMOOTH_ERF_NPV, 2)
DEFINE_FWD(smooth_max_erf_tabled, 1, smooth_max_erf_tabled_params, SMOOTH_ERF_NPV)
DEFINE_BWD(smooth_max_erf_tabled, 1, smooth_max_erf_tabled_params, SMOOTH_ERF_NPV, 3)
/* The entry points: the tables where they serve and no sum but mu's is asked for (bit 1 of SMU's want, bit 2
   of smooth max's), else the formula. */
DEFINE_TABLED_DISPATCH(smu, smu_formula, smooth_erf_tables_serve(n, 1.0f, p[0], p[1]), 2)
DEFINE_TABLED_DISPATCH(smooth_max_erf, smooth_max_erf_formula, smooth_erf_tables_serve(n, p[0], p[1], p[2]),
                       4)
/* For the tests: whether the tables serve (a, b), then z0, w, z_end. */
void smooth_erf_table_range(const float *key, float *out) {
    const fitted_tables *f = smooth_erf_fit_for(key);
    out[0] = (float)f->usable, out[1] = f->z0, out[2] = f->w, out[3] = f->z_end;
}

/* ---------------------------------------------------------------------------------------------------
   PAU, the safe Padé unit P(x)/Q(x) of degrees (5, 4) (functional.pau): P = a0 + a1·x + ... + a5·x^5 and
   Q = 1 + |b1||x| + ... + |b4||x|^4, ten parameters p = (a0..a5, b1..b4). Horner in x and |x| where every
   |x| of a vector is at most 2^20: x^5 <= 2^100 and Q stay far inside float32's range, where the reference
   divides through by max(1, |x|)^4 first. A vector with a larger (or infinite) lane is taken lane by lane
   in double, where x^5 cannot overflow either. The parameter-gradient summands are summed in
   float32 per block, as the other kernels'; a block whose float32 sums overflow is summed again in double
   (the reference sums in float64, so that huge terms of both signs do not make inf - inf). */
#define PAU_NPV 10
#define PAU_DIRECT 1048576.0f
#define PAU_NPAR 10

/* P[0..5] = a_j, P[6..9] = |b_k|. The derivatives come from the same coefficients, by Horner's scheme
   for a polynomial and its derivative at once: nine more splat coefficients (j·a_j, k·|b_k|) took the
   backward's loop past the 32 vector registers with its ten sums, and its spills doubled its time when
   the data came from memory (40 -> 20 cycles per 16 floats, one thread, 2^24 floats). */
INLINE void pau_prepare(const float *p, vf *P) {
    for (int j = 0; j < 6; j++) P[j] = splat(p[j]);
    for (int k = 0; k < 4; k++) P[6 + k] = splat(fabsf(p[6 + k]));
}

/* Whether any lane has |x| > lim (NaN lanes do not count). */
INLINE int any_beyond(vf x, float lim) { return any_less(splat(lim), absv(x)); }

INLINE vf pau_num(vf x, const vf *P) {
    return ((((P[5] * x + P[4]) * x + P[3]) * x + P[2]) * x + P[1]) * x + P[0];
}
INLINE vf pau_den(vf a, const vf *P) { return (((P[9] * a + P[8]) * a + P[7]) * a + P[6]) * a + 1.0f; }

/* One lane in double: the value, the x-gradient factor and (into sums, if given) the ten summands. */
static inline double pau_lane(double x, double g, const vf *P, double *sums, double *grad_x) {
    double a = fabs(x), num = 0.0, den = 0.0, dnum = 0.0, dden = 0.0;
    for (int j = 5; j >= 0; j--) dnum = dnum * x + num, num = num * x + (double)P[j][0];
    for (int k = 3; k >= 0; k--) dden = dden * a + den, den = den * a + (double)P[6 + k][0];
    dden = dden * a + den, den = den * a + 1.0;
    double y = num / den;
    if (!grad_x && !sums) return y;
    dden = x == 0.0 ? 0.0 : copysign(dden, x); /* sign(0) = 0, as torch.sign */
    double gr = g / den;
    if (grad_x) *grad_x = gr * (dnum - y * dden);
    if (sums) {
        double power = 1.0, abs_power = a, ngy = -gr * y;
        for (int j = 0; j < 6; j++, power *= x) sums[j] += gr * power;
        for (int k = 0; k < 4; k++, abs_power *= a) sums[6 + k] += ngy * abs_power;
    }
    return y;
}

INLINE vf pau_val(vf x, const vf *P) {
    if (any_beyond(x, PAU_DIRECT)) {
        vf y;
        for (int k = 0; k < W; k++) y[k] = (float)pau_lane(x[k], 0.0, P, NULL, NULL);
        return y;
    }
    return pau_num(x, P) / pau_den(absv(x), P);
}

DEFINE_FWD(pau, 1, pau_prepare, PAU_NPV)

/* One vector of the backward: dL/dx stored, the summands added to acc (float32) or, lane by lane in
   double, to dacc. */
INLINE void pau_bwd_vec(const float *g, const float *x, float *gx, int64_t m, const vf *P, int want,
                               vf *acc, double *dacc, int stream) {
    vf xv = load(x, m), gv = load(g, m); /* zeros beyond m: summands of 0 */
    if (any_infinite(xv)) xv = clamp_big(xv);
    if (any_beyond(xv, PAU_DIRECT)) {
        vf d;
        for (int k = 0; k < W; k++) {
            double grad_x = 0.0;
            pau_lane(xv[k], gv[k], P, want && k < m ? dacc : NULL, &grad_x);
            d[k] = (float)grad_x;
        }
        store(gx, d, m);
        return;
    }
    vf a = absv(xv), num = P[5] * xv + P[4], dnum = P[5], den = P[9] * a + P[8], dden = P[9];
    for (int j = 3; j >= 0; j--) dnum = dnum * xv + num, num = num * xv + P[j];
    dden = dden * a + den, den = den * a + P[7];
    dden = dden * a + den, den = den * a + P[6];
    dden = dden * a + den, den = den * a + 1.0f;
    vf r = 1.0f / den, y = num * r;
    dden = sel(xv == 0.0f, ZERO, copysignv(dden, xv)); /* sign(0) = 0, as torch.sign */
    vf gr = gv * r;
    vf grad_x = gr * (dnum - y * dden);
    if (m >= W)
        store_full(gx, grad_x, stream);
    else
        store(gx, grad_x, m);
    if (!want) return;
    vf x2 = xv * xv, x4 = x2 * x2, ngy = -(gr * y);
    acc[0] += gr;
    acc[1] += gr * xv;
    acc[2] += gr * x2;
    acc[3] += gr * (x2 * xv);
    acc[4] += gr * x4;
    acc[5] += gr * (x4 * xv);
    acc[6] += ngy * a;
    acc[7] += ngy * x2;
    acc[8] += ngy * (x2 * a);
    acc[9] += ngy * x4;
}

/* Elements [start, end) of PAU's backward, block by block, its sums added to s. Inlined in both element types'
   loops: a call made this loop slower (float32, ns per 16 floats, one thread, 2^22: 6.3 -> 7.7). */
INLINE void pau_bwd_run(const float *g, const float *x, float *gx, int64_t start, int64_t end, const vf *P,
                        int want, double *s, int stream) {
    for (int64_t b = start; b < end; b += BLOCK) {
        const int64_t stop = b + BLOCK < end ? b + BLOCK : end;
        vf acc[PAU_NPAR], Q[PAU_NPV];
        double dacc[PAU_NPAR] = {0.0}, block[PAU_NPAR];
        memcpy(Q, P, sizeof Q);
        for (int k = 0; k < PAU_NPAR; k++) acc[k] = ZERO;
        int64_t i = b;
        for (; i + W <= stop; i += W) pau_bwd_vec(g + i, x + i, gx + i, W, Q, want, acc, dacc, stream);
        if (i < stop) pau_bwd_vec(g + i, x + i, gx + i, stop - i, Q, want, acc, dacc, 0);
        stream_fence(stream);
        if (!want) continue;
        int overflowed = 0;
        for (int k = 0; k < PAU_NPAR; k++) {
            block[k] = lane_sum(acc[k]);
            overflowed |= !isfinite(block[k]);
        }
        if (overflowed) { /* the whole block again, in double */
            for (int k = 0; k < PAU_NPAR; k++) block[k] = dacc[k] = 0.0;
            for (int64_t j = b; j < stop; j++) {
                double xj = x[j];
                if (isinf(xj)) xj = copysign(BIG, xj);
                pau_lane(xj, g[j], Q, block, NULL);
            }
        }
        for (int k = 0; k < PAU_NPAR; k++) s[k] += block[k] + dacc[k];
    }
}

void pau_bwd(const void *g, const void *x, void *gx, int64_t n, const float *p, int want, double *sums, int nt,
             int io) {
    vf P[PAU_NPV];
    pau_prepare(p, P);
    double s[MAX_SUMS] = {0.0};
    RUN_BWD(pau_bwd_run, g, x, gx, n, nt, io, P, want);
    for (int k = 0; k < PAU_NPAR; k++) sums[k] = s[k];
    for (int k = 0; k < 4; k++) /* d|b|/db = sign(b), 0 at b = 0 as torch.sign */
        sums[6 + k] *= p[6 + k] > 0.0f ? 1.0 : (p[6 + k] < 0.0f ? -1.0 : (p[6 + k] == 0.0f ? 0.0 : NAN));
}


/* ---------------------------------------------------------------------------------------------------
   EIS x·softplus(x)^alpha / (sqrt(beta + gamma·x²) + delta·e^(-theta·x)) (functional.eis), five parameters.
   With f = e^(-|theta·x|), x/D is x·f/(H·f + delta) where theta·x < 0 and x/D = x/(H + delta·f) elsewhere,
   so that the exponential never overflows (the reference's form, without its division by max(1, |x|)).
   softplus^alpha is exp(alpha·ln softplus), ln softplus = x - e^x/2 below x = -15 (where softplus leaves
   float32's normal range from x = -87). Vectors whose every |x| is at most 2^20 take this float32 form
   (x² and H far inside the range); the others are taken lane by lane in double, the reference's formulas
   with its zero rules (mul0), where nothing overflows before the result does. */
#define EIS_NPV 6
#define EIS_DIRECT 1048576.0f
/* P[0..4] the parameters; P[5] = sqrt(1e-30/gamma) where beta < 1e-20, else 0: there H = sqrt(beta + gamma·x²)
   rests on gamma·x², which float32 flushes to 0 (or a subnormal) for tiny nonzero x although H and x/H are
   normal numbers, so vectors with 0 < |x| < P[5] are taken lane by lane as well. With beta >= 1e-20, a
   gamma·x² below 1e-30 changes H by less than an ulp. */
INLINE void eis_prepare(const float *p, vf *P) {
    for (int k = 0; k < 5; k++) P[k] = splat(p[k]);
    P[5] = splat(p[1] < 1e-20f && p[2] > 0.0f ? sqrtf(1e-30f / p[2]) : 0.0f);
}
INLINE int eis_needs_double(vf x, const vf *P) {
    return any_beyond(x, EIS_DIRECT) || any_less(sel(x == 0.0f, INF, absv(x)), P[5]);
}
static inline double mul0_d(double a, double b) { return a == 0.0 || b == 0.0 ? 0.0 : a * b; }

/* One lane in double: the value, and with d the x-gradient and the five summands (times g). */
static inline double eis_lane(double x, double g, const vf *P, double *d) {
    double alpha = P[0][0], beta = P[1][0], gamma = P[2][0], delta = P[3][0], theta = P[4][0];
    double sp = x > 20.0 ? x : log1p(exp(x)), p = pow(sp, alpha), h = sqrt(beta + gamma * x * x);
    double tx = theta * x, f = exp(-fabs(tx));
    double den_neg = h * f + delta, den_pos = h + delta * f;
    int neg = tx < 0.0, by_f = neg && den_neg != 0.0; /* delta = 0 and h·f underflowed: D = h */
    double inv_d = by_f ? f / den_neg : 1.0 / den_pos, e_inv_d = neg ? 1.0 / den_neg : f / den_pos;
    double r = x * inv_d;
    if (!d) return p * r;
    double sig = 1.0 / (1.0 + exp(-x)), ratio = x < -20.0 ? 1.0 - 0.5 * exp(x) : sig / sp;
    double x_over_h = h == 0.0 ? 0.0 : x / h, q = mul0_d(delta, e_inv_d), pr = p * r;
    double dr = inv_d - mul0_d(r * gamma, x_over_h) * inv_d + theta * mul0_d(r, q);
    d[0] = g * (alpha * p * ratio * r + p * dr);
    d[1] = g * mul0_d(p, log(sp)) * r;
    d[2] = g * (h == 0.0 ? 0.0 : -pr * inv_d / (2.0 * h));
    d[3] = g * (-0.5 * mul0_d(pr * r, x_over_h));
    d[4] = g * (-pr * e_inv_d);
    d[5] = g * pr * mul0_d(x, q);
    return p * r;
}

/* The double form, lane by lane, for vectors the float32 form cannot take (P as eis_prepare's); out of line,
   so that the hot loops keep their registers. */
static __attribute__((noinline)) vf eis_val_in_double(vf x, const vf *P) {
    vf y;
    for (int k = 0; k < W; k++) y[k] = (float)eis_lane(x[k], 0.0, P, NULL);
    return y;
}
/* d[0] = dL/dx and d[1..5] the five summands. */
static __attribute__((noinline)) void eis_grad_in_double(vf g, vf x, const vf *P, vf *d) {
    for (int k = 0; k < W; k++) {
        double dk[6];
        eis_lane(x[k], g[k], P, dk);
        for (int j = 0; j < 6; j++) d[j][k] = (float)dk[j];
    }
}

/* The float32 form's shared parts (every |x| <= 2^20). */
typedef struct {
    vf sp, sig, e, ln_sp, p, h, f, inv_d, e_inv_d; /* 1/D and e^(-theta·x)/D */
} eis_parts;
INLINE eis_parts eis_float(vf x, const vf *P, int need_log) {
    eis_parts t;
    /* alpha = 1 (softplus^alpha is softplus) and theta = 1 (e^(-|theta·x|) is softplus's own e^(-|x|)),
       EIS-1's values, and alpha = 0 (EIS-3: softplus^0 is 1 for every softplus, NaN included, as pow
       gives, so its forward needs no softplus at all): branches the same way for every vector, each
       saves an exp (and a log) */
    const int alpha_one = P[0][0] == 1.0f, alpha_zero = P[0][0] == 0.0f, theta_one = P[4][0] == 1.0f,
              theta_zero = P[4][0] == 0.0f;
    const int need_sp = need_log || !alpha_zero;
    t.e = need_sp || theta_one ? exp_below88(-absv(x)) : ZERO;
    if (need_sp) {
        vf r1 = recip(1.0f + t.e); /* in [1/2, 1] */
        t.sp = MAXV(x, ZERO) + log1p_unit(t.e);
        t.sig = sel(x >= 0.0f, r1, t.e * r1);
    } else {
        t.sp = t.sig = ONE;
    }
    if (need_log || !(alpha_one || alpha_zero)) t.ln_sp = sel(x < -15.0f, x - 0.5f * t.e, log_normal(t.sp));
    else t.ln_sp = ZERO;
    t.p = alpha_one ? t.sp : (alpha_zero ? ONE : exp_v(P[0] * t.ln_sp));
    t.h = sqrtv(P[1] + P[2] * (x * x));
    vf tx = P[4] * x, den_neg, den_pos;
    t.f = theta_one ? t.e : (theta_zero ? ONE : exp_below88(-absv(tx))); /* e^-0 = 1 (EIS-2) */
    den_neg = t.h * t.f + P[3], den_pos = t.h + P[3] * t.f;
    vi neg = tx < 0.0f, by_f = neg & (den_neg != 0.0f); /* delta = 0 and h·f underflowed: D = h */
    vf den = sel(by_f, den_neg, den_pos);
    /* D·f tiny or 0 (delta ~ 0, f underflowed): 1/(D·f) may overflow where f/(D·f) does not, and where
       D·f is 0, by_f is not neg. The test is on D·f itself, not on den, which is D there. */
    if (any_less(sel(neg, den_neg, den_pos), splat(1e-30f))) {
        t.inv_d = sel(by_f, t.f, ONE) / den;
        t.e_inv_d = sel(neg, ONE, t.f) / sel(neg, den_neg, den_pos); /* inf where D·f is 0 */
    } else { /* one division for both (by_f is neg here: den_neg >= 1e-30 on every neg lane) */
        vf rd = 1.0f / den;
        t.inv_d = sel(neg, t.f, ONE) * rd;
        t.e_inv_d = sel(neg, ONE, t.f) * rd;
    }
    return t;
}

INLINE vf eis_general_val(vf x, const vf *P) {
    if (eis_needs_double(x, P)) return eis_val_in_double(x, P);
    eis_parts t = eis_float(x, P, 0);
    return t.p * (x * t.inv_d);
}
INLINE void eis_general_grad(vf g, vf x, const vf *P, vf *d) {
    if (eis_needs_double(x, P)) {
        /* through a local: d's address passed out of line made GCC keep every caller's d in memory and zero
           it for every vector with a rep stos of 384 bytes (~30 cycles to start). Intel Xeon, 2^20, one
           thread, ns per 16 floats: EIS-1's backward from its tables 21.7-22.7 -> 12.6, EIS-2's 18.6 ->
           8.2, the learnable general kernel's 56.8 -> 51.0 */
        vf all[6];
        eis_grad_in_double(g, x, P, all);
        for (int k = 0; k < 6; k++) d[k] = all[k];
        return;
    }
    eis_parts t = eis_float(x, P, 1);
    vf inv_d = t.inv_d, e_inv_d = t.e_inv_d, r = x * inv_d;
    vi flat = t.h == 0.0f;
    vf inv_h = 1.0f / t.h; /* inf at h = 0, selected away */
    vf x_over_h = sel(flat, ZERO, x * inv_h), q = scalar_times(P[3], e_inv_d), pr = t.p * r;
    vf ratio = sel(x < -20.0f, 1.0f - 0.5f * t.e, t.sig / t.sp);
    vf dr = inv_d - (r * P[2] * x_over_h) * inv_d + P[4] * (r * q);
    d[0] = g * (P[0] * t.p * ratio * r + t.p * dr);
    d[1] = g * (t.p * t.ln_sp) * r;
    d[2] = g * sel(flat, ZERO, (-0.5f * pr) * (inv_d * inv_h));
    d[3] = g * (-0.5f * (pr * r) * x_over_h);
    d[4] = g * (-pr * e_inv_d);
    d[5] = g * pr * (x * q);
}

/* EIS with alpha = 0 and gamma = 0 (EIS-3), beta in [1e-30, max], delta and theta in (0, max]:
   x/(sqrt(beta) + delta·e^(-theta·x)) = x·c·sigma(z) with c = 1/sqrt(beta) and z = theta·x - ln(delta·c), a
   Swish with its argument shifted: one exp and no division, where the general form takes a square root and
   divisions (its forward half, its backward a third of the general one's). Its backward gives dL/dx alone (eis_bwd sends it no sums). */
INLINE int eis_is_sigmoid(const float *p) {
    return p[0] == 0.0f && p[2] == 0.0f && p[1] >= 1e-30f && p[1] <= BIG && p[3] > 0.0f && p[3] <= BIG &&
           p[4] > 0.0f && p[4] <= BIG;
}
/* P[0] = theta, P[1] = -ln(delta·c), P[2] = c. */
INLINE void eis_sigmoid_params(const float *p, vf *P) {
    const double c = 1.0 / sqrt((double)p[1]);
    P[0] = splat(p[4]), P[1] = splat((float)-log((double)p[3] * c)), P[2] = splat((float)c);
    P[3] = P[4] = P[5] = ZERO;
}
INLINE vf eis_sigmoid_val(vf x, const vf *P) {
    vf s, ss;
    /* not sigmoid_clamped: its sigma(-86.6) at z = -inf made x·c·sigma -8 at x = -max, not -0 */
    sigmoid_pair(P[0] * x + P[1], &s, &ss);
    (void)ss;
    /* x·(c·sigma): c·sigma <= 1e15 stays finite where x·c would overflow next to sigma = 0 */
    return x * (P[2] * s);
}
INLINE void eis_sigmoid_grad(vf g, vf x, const vf *P, vf *d) {
    vf tx = P[0] * x, s, ss;
    sigmoid_pair(tx + P[1], &s, &ss);
    d[0] = g * (P[2] * (s + times_vanishing(tx, ss))); /* c·(sigma + theta·x·sigma·sigma(-z)) */
}

/* EIS with alpha = 1 and delta = 0 (EIS-2), beta in [1e-20, 1e20] and gamma in [0, 1e20]: x·sp(x)·r with
   r = 1/sqrt(beta + gamma·x²) from one rsqrt (normal for |x| <= 2^20), where the general form takes a
   square root and divisions; the derivative is r·(x·sigma + sp·beta·r²). */
INLINE int eis_is_root(const float *p) {
    return p[0] == 1.0f && p[3] == 0.0f && p[1] >= 1e-20f && p[1] <= 1e20f && p[2] >= 0.0f && p[2] <= 1e20f;
}
INLINE vf eis_root_val(vf x, const vf *P) {
    if (any_beyond(x, EIS_DIRECT)) return eis_val_in_double(x, P);
    vf e = exp_below88(-absv(x)), sp = MAXV(x, ZERO) + log1p_unit(e);
    return (x * rsqrt(P[1] + P[2] * (x * x))) * sp;
}
INLINE void eis_root_grad(vf g, vf x, const vf *P, vf *d) {
    if (any_beyond(x, EIS_DIRECT)) {
        vf all[6];
        eis_grad_in_double(g, x, P, all);
        d[0] = all[0];
        return;
    }
    vf sp, sig, r = rsqrt(P[1] + P[2] * (x * x));
    softplus_sigmoid(x, &sp, &sig);
    d[0] = g * (r * (x * sig + sp * (P[1] * (r * r)))); /* 1 - gamma·x²·r² = beta·r², no cancellation */
}

/* EIS with alpha = 1, beta = 0 and theta = 1 (EIS-1), gamma and delta in [1e-6, 1e6]: x·sp(x)/D with
   D = sqrt(gamma)·|x| + delta·e^-x, where e^-x is softplus's own E = e^-|x| or 1/E. Below 0 numerator
   and D are taken times E (N = E there, else 1; M = N·D in [1e-9, 2^31]): one reciprocal, no square
   root. D' = sqrt(gamma)·sign(x) - delta·e^-x, and N²·D' = sqrt(gamma)·sign(x)·N² - delta·E. */
#define EIS_ABS_NPV 7
INLINE int eis_is_abs(const float *p) {
    return p[0] == 1.0f && p[1] == 0.0f && p[4] == 1.0f && p[2] >= 1e-6f && p[2] <= 1e6f && p[3] >= 1e-6f &&
           p[3] <= 1e6f;
}
INLINE void eis_abs_params(const float *p, vf *P) {
    eis_prepare(p, P);
    P[6] = splat(sqrtf(p[2]));
}
INLINE vf eis_abs_den(vf x, vf E, const vf *P, vi neg) {
    return sel(neg, P[6] * (absv(x) * E) + P[3], P[6] * x + P[3] * E);
}
INLINE vf eis_abs_val(vf x, const vf *P) {
    if (any_beyond(x, EIS_DIRECT)) return eis_val_in_double(x, P);
    vf E = exp_below88(-absv(x)), sp = MAXV(x, ZERO) + log1p_unit(E);
    vi neg = x < 0.0f;
    return (x * sp) * (sel(neg, E, ONE) * recip(eis_abs_den(x, E, P, neg)));
}
INLINE void eis_abs_grad(vf g, vf x, const vf *P, vf *d) {
    if (any_beyond(x, EIS_DIRECT)) {
        vf all[6];
        eis_grad_in_double(g, x, P, all);
        d[0] = all[0];
        return;
    }
    vf E = exp_below88(-absv(x)), r1 = recip(1.0f + E); /* 1 + E in [1, 2] */
    vf sp = MAXV(x, ZERO) + log1p_unit(E), sig = sel(x >= 0.0f, r1, E * r1);
    vi neg = x < 0.0f;
    vf M = eis_abs_den(x, E, P, neg), inv_m = recip(M), x_sp = x * sp;
    /* -x·sp·N²·D': x·sp·(sqrt(gamma)·E + delta)·E below 0, -x·sp·(sqrt(gamma) - delta·E) from 0 on */
    vf a = sel(neg, x_sp * (P[6] * E + P[3]), x_sp * (P[3] * E - P[6]));
    d[0] = g * (sel(neg, E, ONE) * (((sp + x * sig) * M + a) * (inv_m * inv_m)));
}

/* EIS's backward, with its branches to the double form, was ~10 % slower with the pre-RA scheduler (Zen 3,
   AVX2): without it here. */
#pragma GCC push_options
#pragma GCC optimize("no-schedule-insns")
DEFINE_FWD(eis_general, 1, eis_prepare, EIS_NPV)
DEFINE_BWD(eis_general, 1, eis_prepare, EIS_NPV, 5)
#pragma GCC pop_options
DEFINE_FWD(eis_sigmoid, 1, eis_sigmoid_params, SCALAR_NPV)
DEFINE_BWD(eis_sigmoid, 1, eis_sigmoid_params, SCALAR_NPV, 1)
DEFINE_FWD(eis_root, 1, eis_prepare, EIS_NPV)
DEFINE_BWD(eis_root, 1, eis_prepare, EIS_NPV, 1)
DEFINE_FWD(eis_abs, 1, eis_abs_params, EIS_ABS_NPV)
DEFINE_BWD(eis_abs, 1, eis_abs_params, EIS_ABS_NPV, 1)
static const kernel_fns EIS_SIGMOID = KERNEL_FNS(eis_sigmoid), EIS_ROOT = KERNEL_FNS(eis_root),
                        EIS_ABS = KERNEL_FNS(eis_abs);
static const kernel_fns *eis_special(const float *p) {
    return eis_is_sigmoid(p) ? &EIS_SIGMOID : eis_is_root(p) ? &EIS_ROOT : eis_is_abs(p) ? &EIS_ABS : NULL;
}

/* EIS from tables fitted at run time for its five parameters (see "Tables fitted at run time"), x·G(x) and
   D(x) = G + x·G' on [-7.5, 4.5) (0 an interval's end: with beta = 0, sqrt(gamma·x²) has a kink there),
   from eis_lane's double formula; vectors with a lane outside take the formulas, whose tails are algebraic
   (no constant beyond an end). The backward takes them only where no parameter gradient is asked for (the
   presets, as the modules' learnable=False): five summand tables would cost what the formula does. Where
   the check fails (EIS-1, x·sp/(|x| + e^-x): each side's continuation of the denominator vanishes at
   x = ∓0.567, too near the intervals at 0 even at half this width), eis_make fits the reciprocal 1/G on
   [-6.25, 3.75) instead (eis_tabled_rcp_*: one more reciprocal, a third to half under eis_abs); EIS-3 keeps
   eis_sigmoid, as fast (one exp). From FIXED_FIT_FROM elements on: a fit that fails both ways (a learnable
   EIS's each step) costs ~100 us, under a quarter of the formula's one-thread forward there. */
#define FIXED_FIT_FROM (4 * FIT_FROM)
static void eis_exact(double x, const fitted_tables *fit, double *f) {
    vf P[EIS_NPV];
    double d[6];
    eis_prepare(fit->key, P);
    const double y = eis_lane(x, 1.0, P, d);
    f[FIT_G] = x == 0.0 ? d[0] : y / x;
    f[FIT_D] = d[0];
}
static void eis_make(fitted_tables *f) {
    const float *p = f->key;
    for (int k = 0; k < 5; k++)
        if (!(p[k] >= 0.0f && isfinite(p[k]))) return; /* NaN too */
    if (!(p[1] + p[3] > 0.0f)) return;
    f->fns = 2;
    f->w = 0.375f;
    f->z_end = INFINITY;
    fit_tables(f, eis_exact, 4.5);
    if (f->usable) return;
    /* else R = 1/G and N = D·R² = R - x·R' (G > 0 here): EIS-1's G = sp/(|x| + e^-x) has each side's
       continuation of the denominator vanish at x = ∓0.567, too near the intervals at 0, where R is smooth;
       at 5/6 the width, for the rounding of N·r·r */
    f->reciprocal = 1, f->w = 0.3125f;
    fit_tables(f, eis_exact, 3.75);
}
/* Tables of G = f(x)/x and D = f'(x) on [-7.5, 4.5) for a kernel's fixed parameters, fitted at run time by
   NAME##_make into NAME##_fit_for's cache (NKEY parameters); f(x) = x·G(x). FORMULA##_val and _grad (parameters
   from FORMULA_PREP, FORMULA_NPV vectors, after the fit's block) serve vectors with a lane outside; the
   entry points (NAME##_fwd, _bwd) choose between NAME##_tabled_* and the formula's kernels by
   fixed_tables_serve. The tables give no parameter gradient: their backward runs where none is asked for. */
#define DEFINE_FIXED_TABLES(NAME, NKEY, FORMULA, FORMULA_PREP, FORMULA_NPV, NPAR)                          \
    DEFINE_FIT_CACHE(NAME, NKEY)                                                                            \
    INLINE void NAME##_tabled_params(const float *p, vf *P) {                                               \
        static const float unit[2] = {1.0f, 1.0f};                                                          \
        fitted_params(unit, NAME##_fit_for(p), P);                                                          \
        FORMULA_PREP(p, P + FIT_NPV);                                                                       \
    }                                                                                                       \
    INLINE vf NAME##_tabled_val(vf x, const vf *P) { /* the check after the tables, as in FITTED_VAL */     \
        vi idx;                                                                                             \
        vf t = fitted_t(x, x, P, &idx), v = x * fitted_poly(P, FIT_G, t, idx);                              \
        if (outside_fixed_table(x, P)) return FORMULA##_val(x, P + FIT_NPV);                                \
        return v;                                                                                           \
    }                                                                                                       \
    INLINE void NAME##_tabled_grad(vf g, vf x, const vf *P, vf *d) {                                        \
        if (outside_fixed_table(x, P)) {                                                                    \
            FORMULA##_grad(g, x, P + FIT_NPV, d);                                                           \
            return;                                                                                         \
        }                                                                                                   \
        vi idx;                                                                                             \
        vf t = fitted_t(x, x, P, &idx);                                                                     \
        d[0] = g * fitted_poly(P, FIT_D, t, idx);                                                           \
    }                                                                                                       \
    DEFINE_FWD(NAME##_tabled, 1, NAME##_tabled_params, FIT_NPV + FORMULA_NPV)                               \
    DEFINE_BWD(NAME##_tabled, 1, NAME##_tabled_params, FIT_NPV + FORMULA_NPV, NPAR)                         \
    /* For the tests: whether the tables serve parameters p, z0, w, the last interval's end, reciprocal. */ \
    void NAME##_table_range(const float *p, float *out) {                                                   \
        const fitted_tables *f = NAME##_fit_for(p);                                                         \
        out[0] = (float)f->usable, out[1] = f->z0, out[2] = f->w, out[3] = f->z0 + TABLE_N * f->w;          \
        out[4] = (float)f->reciprocal;                                                                      \
    }
INLINE int outside_fixed_table(vf x, const vf *P) { return any_less(x, P[FIT_Z0]) || any_less(P[FIT_Z_MAX], x); }
/* Whether NAME's fixed tables serve a call of n elements: from FIXED_FIT_FROM on, where a fit that fails (a
   learnable parameter's each step) costs a quarter of the formula's one-thread forward or less. */
#define fixed_tables_serve(NAME, n, p) ((n) >= FIXED_FIT_FROM && NAME##_fit_for(p)->usable)
/* The four entry points of a kernel with fixed tables over FORMULA's kernels (no parameter sums). */
#define DEFINE_FIXED_DISPATCH(NAME, FORMULA)                                                                \
    DEFINE_TABLED_DISPATCH(NAME, FORMULA, fixed_tables_serve(NAME, n, p), 0)

DEFINE_FIXED_TABLES(eis, 5, eis_general, eis_prepare, EIS_NPV, 5)
/* The same from the reciprocal tables R = 1/G and N = D·R² (eis_make): G = 1/R, D = N/R². */
INLINE vf eis_tabled_rcp_val(vf x, const vf *P) {
    vi idx;
    vf t = fitted_t(x, x, P, &idx), v = x * recip(fitted_poly(P, FIT_G, t, idx));
    if (outside_fixed_table(x, P)) return eis_general_val(x, P + FIT_NPV);
    return v;
}
INLINE void eis_tabled_rcp_grad(vf g, vf x, const vf *P, vf *d) {
    if (outside_fixed_table(x, P)) {
        eis_general_grad(g, x, P + FIT_NPV, d);
        return;
    }
    vi idx;
    vf t = fitted_t(x, x, P, &idx), r = recip(fitted_poly(P, FIT_G, t, idx));
    d[0] = g * (fitted_poly(P, FIT_D, t, idx) * r * r);
}
DEFINE_FWD(eis_tabled_rcp, 1, eis_tabled_params, FIT_NPV + EIS_NPV)
DEFINE_BWD(eis_tabled_rcp, 1, eis_tabled_params, FIT_NPV + EIS_NPV, 5)
/* As DEFINE_DISPATCH, but tensors of FIXED_FIT_FROM elements or more take the fitted tables where they serve. */
INLINE int eis_tables_serve(int64_t n, const float *p, const kernel_fns *special) {
    return special != &EIS_SIGMOID && fixed_tables_serve(eis, n, p);
}
void eis_fwd(const void *x, void *y, int64_t n, const float *p, int nt, int io) {
    const kernel_fns *k = eis_special(p);
    if (eis_tables_serve(n, p, k))
        (eis_fit_for(p)->reciprocal ? eis_tabled_rcp_fwd : eis_tabled_fwd)(x, y, n, p, nt, io);
    else
        (k ? k->fwd : eis_general_fwd)(x, y, n, p, nt, io);
}
void eis_bwd(const void *g, const void *x, void *gx, int64_t n, const float *p, int want, double *sums, int nt,
             int io) {
    const kernel_fns *k = want ? NULL : eis_special(p);
    if (!want && eis_tables_serve(n, p, k))
        (eis_fit_for(p)->reciprocal ? eis_tabled_rcp_bwd : eis_tabled_bwd)(g, x, gx, n, p, want, sums, nt, io);
    else
        (k ? k->bwd : eis_general_bwd)(g, x, gx, n, p, want, sums, nt, io);
}
void eis_limits(const float *p, float *out) {
    const kernel_fns *k = eis_special(p);
    (k ? k->limits : eis_general_limits)(p, out);
}
int eis_substitutes(const float *p, float *lim) {
    const kernel_fns *k = eis_special(p);
    return (k ? k->substitutes : eis_general_substitutes)(p, lim);
}

/* Logish, TanhExp and TanhSoft with fixed parameters from tables of G = f(x)/x and f' (DEFINE_FIXED_TABLES):
   about half the formulas' cost (two exps and a division or more). TanhSoft's f(0) = tanh(beta)·ln(1 + delta)
   must be 0 (beta = 0 or delta = 0, as its presets), else G has a pole at 0 and the formula serves. */
static void logish_exact(double x, const fitted_tables *fit, double *f) {
    const double a = fit->key[0], b = fit->key[1], z = b * x, e = exp(-fabs(z));
    const double sig = z >= 0.0 ? 1.0 / (1.0 + e) : e / (1.0 + e), log_term = log1p(sig);
    f[FIT_G] = a * log_term;
    f[FIT_D] = a * (log_term + x * b * sig * (1.0 - sig) / (1.0 + sig));
}
static void tanhexp_exact(double x, const fitted_tables *fit, double *f) {
    (void)fit;
    const double e = exp(x), t = tanh(e), sech = 1.0 / cosh(e);
    f[FIT_G] = t;
    f[FIT_D] = t + x * e * sech * sech;
}
static void tanhsoft_exact(double x, const fitted_tables *fit, double *f) {
    const double a = fit->key[0], b = fit->key[1], c = fit->key[2], d = fit->key[3];
    const double egx = b == 0.0 ? 0.0 : exp(c * x), w = a * x + b * egx, t = tanh(w), sech = 1.0 / cosh(w);
    const double ex = exp(x), log_term = d == 0.0 ? x : log(d + ex), dlog = d == 0.0 ? 1.0 : ex / (d + ex);
    const double y = t * log_term, dy = sech * sech * (a + b * c * egx) * log_term + t * dlog;
    f[FIT_G] = x == 0.0 ? dy : y / x;
    f[FIT_D] = dy;
}
static void fixed_fit(fitted_tables *f, exact_fn exact) {
    f->fns = 2, f->w = 0.375f, f->z_end = INFINITY;
    fit_tables(f, exact, 4.5);
}
static int finite_key(const float *p, int n) {
    for (int k = 0; k < n; k++)
        if (!isfinite(p[k])) return 0;
    return 1;
}
static void logish_make(fitted_tables *f) {
    if (finite_key(f->key, 2)) fixed_fit(f, logish_exact);
}
static void tanhexp_make(fitted_tables *f) { fixed_fit(f, tanhexp_exact); }
static void tanhsoft_make(fitted_tables *f) {
    const float *p = f->key;
    if (finite_key(p, 4) && p[3] >= 0.0f && (p[1] == 0.0f || p[3] == 0.0f)) fixed_fit(f, tanhsoft_exact);
}
DEFINE_FIXED_TABLES(logish, 2, logish_formula, splat_params, SCALAR_NPV, 4)
DEFINE_FIXED_DISPATCH(logish, logish_formula)
DEFINE_FIXED_TABLES(tanhexp, 0, tanhexp_formula, splat_params, SCALAR_NPV, 4)
DEFINE_FIXED_DISPATCH(tanhexp, tanhexp_formula)
DEFINE_FIXED_TABLES(tanhsoft, 4, tanhsoft_general, splat_params, SCALAR_NPV, 4)
DEFINE_FIXED_DISPATCH(tanhsoft, tanhsoft_formula)

/* Bumped whenever a signature changes; the loader refuses a library built from other code. */
int actlab_kernels_abi(void) { return 7; }
