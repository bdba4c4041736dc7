// l1tagger hls4ml extension kernels (io_parallel, flat arrays, batch axis dropped).
//
// Every tensor is an ap_fixed / ap_ufixed whose width is chosen by l1tagger.convert.fixed so that each
// operation is exact; only Quant layers round (with the QONNX node's rounding) and saturate. Index tables for
// broadcasting and layout ops are generated in Python and emitted into each layer's config struct.
// The softmax implements docs/firmware_softmax.md with EXP/INV tables generated from SoftmaxSpec (no expf); the
// l1w_* kernels compute features from L1 particle words (docs/l1_inputs.md) with tables from L1FeatureSpec.
#ifndef NNET_L1TAGGER_H_
#define NNET_L1TAGGER_H_

#include "ap_fixed.h"
#include "ap_int.h"

namespace l1t {

// y = Quant(x): round onto the output grid (mid_t carries the rounding mode, wraps never because it is wide
// enough), then saturate into the output type (AP_SAT / AP_SAT_SYM).
template <class data_T, class res_T, typename CONFIG_T>
void quant(const data_T x[CONFIG_T::n_out], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        typename CONFIG_T::mid_t m = x[i];
        y[i] = m;
    }
}

// y = max(x, 0), exact (the output type holds every input value).
template <class data_T, class res_T, typename CONFIG_T>
void relu(const data_T x[CONFIG_T::n_out], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        if (x[i] > 0)
            y[i] = x[i];
        else
            y[i] = 0;
    }
}

// Constant tensor (folded weights / biases), exactly representable in res_T.
template <class res_T, typename CONFIG_T>
void constant(res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        y[i] = CONFIG_T::value(i);
    }
}

// Layout ops (Transpose, Reshape, Squeeze, Unsqueeze, Flatten, Slice, Gather, Identity): y[i] = x[idx(i)].
template <class data_T, class res_T, typename CONFIG_T>
void permute(const data_T x[CONFIG_T::n_in], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        y[i] = x[CONFIG_T::idx(i)];
    }
}

// Concat of two tensors: y[i] = src(i) ? b[idx(i)] : a[idx(i)] (exact: res_T holds both input types).
template <class a_T, class b_T, class res_T, typename CONFIG_T>
void concat2(const a_T a[CONFIG_T::n_a], const b_T b[CONFIG_T::n_b], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        if (CONFIG_T::src(i))
            y[i] = b[CONFIG_T::idx(i)];
        else
            y[i] = a[CONFIG_T::idx(i)];
    }
}

// Elementwise Add / Mul with numpy broadcasting through index tables; res_T is the exact result type.
template <class a_T, class b_T, class res_T, typename CONFIG_T>
void add(const a_T a[CONFIG_T::n_a], const b_T b[CONFIG_T::n_b], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        y[i] = a[CONFIG_T::a_idx(i)] + b[CONFIG_T::b_idx(i)];  // full-precision sum, exact in res_T
    }
}

template <class a_T, class b_T, class res_T, typename CONFIG_T>
void mul(const a_T a[CONFIG_T::n_a], const b_T b[CONFIG_T::n_b], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_out; i++) {
        #pragma HLS UNROLL
        y[i] = a[CONFIG_T::a_idx(i)] * b[CONFIG_T::b_idx(i)];
    }
}

// Batched matmul (numpy semantics): y[b, m, p] = sum_k A[b, m, k] * B[b, k, p]. Either operand may be an
// activation or a constant (weights, Linformer particle-axis projections), so this one kernel covers
// act x weight, const (k,N) @ act (N,d), and act x act (Q K^T, A V). accum_t = exact product/sum type
// (input widths + ceil(log2 K)), which is also the output type: the following Quant layer rounds.
template <class a_T, class b_T, class res_T, typename CONFIG_T>
void matmul(const a_T a[CONFIG_T::n_a], const b_T b[CONFIG_T::n_b], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned bt = 0; bt < CONFIG_T::n_batch; bt++) {
        #pragma HLS UNROLL
        for (unsigned m = 0; m < CONFIG_T::n_m; m++) {
            #pragma HLS UNROLL
            for (unsigned p = 0; p < CONFIG_T::n_p; p++) {
                #pragma HLS UNROLL
                typename CONFIG_T::accum_t acc = 0;
                for (unsigned k = 0; k < CONFIG_T::n_k; k++) {
                    #pragma HLS UNROLL
                    acc += a[CONFIG_T::a_off(bt) + m * CONFIG_T::n_k + k] * b[CONFIG_T::b_off(bt) + k * CONFIG_T::n_p + p];
                }
                y[(bt * CONFIG_T::n_m + m) * CONFIG_T::n_p + p] = acc;
            }
        }
    }
}

// x * 2^s as a reinterpretation of the bits (da4ml's bit_shift; the shift-and-add code of cmatmul uses it).
template <int s, int b, int i, ap_q_mode Q, ap_o_mode O, int N>
ap_fixed<b, i + s> bit_shift(ap_fixed<b, i, Q, O, N> x) {
    #pragma HLS INLINE
    ap_fixed<b, i + s> r;
    r.range() = x.range();
    return r;
}
template <int s, int b, int i, ap_q_mode Q, ap_o_mode O, int N>
ap_ufixed<b, i + s> bit_shift(ap_ufixed<b, i, Q, O, N> x) {
    #pragma HLS INLINE
    ap_ufixed<b, i + s> r;
    r.range() = x.range();
    return r;
}
template <int s, int b> ap_fixed<b, s> bit_shift(ap_int<b> x) {
    #pragma HLS INLINE
    ap_fixed<b, s> r;
    r.range() = x.range();
    return r;
}
template <int s, int b> ap_ufixed<b, s> bit_shift(ap_uint<b> x) {
    #pragma HLS INLINE
    ap_ufixed<b, s> r;
    r.range() = x.range();
    return r;
}

// Product by a constant matrix as shift-and-add (distributed arithmetic): for each of n_rows input vectors
// (gathered by in_idx: a row of x for x @ W, a column for W @ x) CONFIG_T::cmvm, da4ml's constant matrix-vector
// solution generated for this layer, sums shifted copies of the inputs (a zero weight reads nothing); results
// scattered by out_idx. Exact: every intermediate has its exact type, accum_t holds every output.
template <class a_T, class res_T, typename CONFIG_T>
void cmatmul(const a_T a[CONFIG_T::n_a], res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    for (unsigned r = 0; r < CONFIG_T::n_rows; r++) {
        #pragma HLS UNROLL
        a_T v[CONFIG_T::n_k];
        typename CONFIG_T::accum_t w[CONFIG_T::n_p];
        for (unsigned k = 0; k < CONFIG_T::n_k; k++) {
            #pragma HLS UNROLL
            v[k] = a[CONFIG_T::in_idx(r * CONFIG_T::n_k + k)];
        }
        CONFIG_T::template cmvm<a_T, typename CONFIG_T::accum_t>(v, w);
        for (unsigned p = 0; p < CONFIG_T::n_p; p++) {
            #pragma HLS UNROLL
            y[CONFIG_T::out_idx(r * CONFIG_T::n_p + p)] = w[p];
        }
    }
}

// Right shift of a non-negative product onto the output grid with the spec's rounding
// (0 = floor, 1 = half_up, 2 = half_even).
template <int SHIFT, int ROUNDING> inline ap_uint<64> round_shift(ap_uint<64> p) {
    if (SHIFT <= 0)
        return p << (-SHIFT);
    ap_uint<64> q = p >> SHIFT;
    if (ROUNDING == 0)
        return q;
    ap_uint<64> half = ap_uint<64>(1) << (SHIFT - 1);
    ap_uint<64> rem = p & ((ap_uint<64>(1) << SHIFT) - 1);
    if (ROUNDING == 1)
        return q + (rem >= half ? 1 : 0);
    bool up = (rem > half) || (rem == half && (q & 1) == 1);
    return q + (up ? 1 : 0);
}

// Firmware softmax over the last axis (docs/firmware_softmax.md): key mask, optional top-k (ties to the lower
// index), max-subtract, EXP table, exact sum, INV table, exact product, rounding, saturation.
template <class data_T, class mask_T, class res_T, typename CONFIG_T>
void softmax(const data_T x[CONFIG_T::n_rows * CONFIG_T::n_cols], const mask_T msk[CONFIG_T::n_mask],
             res_T y[CONFIG_T::n_rows * CONFIG_T::n_cols]) {
    #pragma HLS INLINE
    const unsigned N = CONFIG_T::n_cols;
    for (unsigned r = 0; r < CONFIG_T::n_rows; r++) {
        #pragma HLS UNROLL
        typename CONFIG_T::q_t q[N];
        bool valid[N], keep[N];
        for (unsigned j = 0; j < N; j++) {
            // the logit's raw integer: value * 2^in_frac (exact, x is on the input grid)
            typename CONFIG_T::scaled_t s = x[r * N + j];
            s = s << CONFIG_T::in_frac;
            q[j] = s;
            valid[j] = msk[CONFIG_T::mask_idx(r * N + j)] != 0;
        }
        for (unsigned i = 0; i < N; i++) {
            keep[i] = valid[i];
            if (CONFIG_T::topk > 0 && CONFIG_T::topk < N && valid[i]) {
                unsigned rank = 0;
                for (unsigned j = 0; j < N; j++) {
                    if (valid[j] && (q[j] > q[i] || (j < i && q[j] == q[i])))
                        rank++;
                }
                keep[i] = rank < CONFIG_T::topk;
            }
        }
        typename CONFIG_T::q_t mx = CONFIG_T::in_min;
        for (unsigned j = 0; j < N; j++)
            if (keep[j] && q[j] > mx)
                mx = q[j];
        typename CONFIG_T::exp_t e[N];
        typename CONFIG_T::sum_t sum = 0;
        for (unsigned j = 0; j < N; j++) {
            if (keep[j]) {
                ap_uint<CONFIG_T::in_bits + 1> d = mx - q[j];  // 0 <= d <= 2^in_bits - 1
                ap_uint<CONFIG_T::in_bits + 1> t = d >> CONFIG_T::exp_shift;
                if (t > CONFIG_T::exp_n - 1)
                    t = CONFIG_T::exp_n - 1;
                e[j] = CONFIG_T::exp_table(t);
            } else {
                e[j] = 0;
            }
            sum += e[j];
        }
        ap_uint<64> ti = sum >> CONFIG_T::inv_shift;
        if (ti > CONFIG_T::inv_n - 1)
            ti = CONFIG_T::inv_n - 1;
        typename CONFIG_T::inv_t rinv = CONFIG_T::inv_table(ti);
        for (unsigned j = 0; j < N; j++) {
            ap_uint<64> p = ap_uint<64>(e[j]) * ap_uint<64>(rinv);
            ap_uint<64> o = round_shift<CONFIG_T::product_shift, CONFIG_T::rounding>(p);
            if (o > CONFIG_T::out_max)
                o = CONFIG_T::out_max;
            typename CONFIG_T::out_int_t oi = o;   // raw output integer, value o * 2^-out_frac
            typename CONFIG_T::out_wide_t v = oi;
            v = v >> CONFIG_T::out_frac;
            y[r * N + j] = v;
        }
    }
}

// Fused FirmwareSoftmax(topk) -> MatMul(A, V) (docs/firmware_softmax.md, "Top-k in hardware"). Per query row:
//   select   u_j = valid_j ? q_j - in_min + 1 : 0 (> 0 exactly for real keys); topk rounds of a balanced argmax
//            tree (the left operand holds the lower indices and wins ties) give the kept keys in rank order
//            idx_s with key us_s; the winner's u is cleared before the next round; us_s = 0: padding slot.
//   softmax  slot 0 holds the maximum: e_s = EXP[min((us_0 - us_s) >> exp_shift, last)] for the topk slots only,
//            S = sum of the topk entries (the same integer as over N keys: dropped keys contribute 0), INV, o_s.
//   product  y[p] = sum_s o_s * V[idx_s, p]: topk products per output instead of N (a multiplexer per slot).
template <class data_T, class mask_T, class v_T, class res_T, typename CONFIG_T>
void topk_attention(const data_T x[CONFIG_T::n_x], const mask_T msk[CONFIG_T::n_mask], const v_T v[CONFIG_T::n_v],
                    res_T y[CONFIG_T::n_out]) {
    #pragma HLS INLINE
    const unsigned N = CONFIG_T::n_cols, K = CONFIG_T::topk, P = CONFIG_T::n_p;
    for (unsigned bt = 0; bt < CONFIG_T::n_batch; bt++) {
        #pragma HLS UNROLL
        for (unsigned m = 0; m < CONFIG_T::n_m; m++) {
            #pragma HLS UNROLL
            const unsigned row = CONFIG_T::a_off(bt) + m * N;  // first logit of the row (flat index into x)
            typename CONFIG_T::key_t u[N];
            for (unsigned j = 0; j < N; j++) {
                #pragma HLS UNROLL
                typename CONFIG_T::scaled_t s = x[row + j];
                s = s << CONFIG_T::in_frac;
                typename CONFIG_T::q_t q = s;  // the logit's raw integer, exact
                const bool valid = msk[CONFIG_T::mask_idx(row + j)] != 0;
                u[j] = valid ? typename CONFIG_T::key_t(q - CONFIG_T::in_min + 1) : typename CONFIG_T::key_t(0);
            }
            typename CONFIG_T::key_t us[K];
            ap_uint<CONFIG_T::idx_bits> idx[K];
            for (unsigned sl = 0; sl < K; sl++) {
                #pragma HLS UNROLL
                typename CONFIG_T::key_t bu[N];
                ap_uint<CONFIG_T::idx_bits> bi[N];
                for (unsigned j = 0; j < N; j++) {
                    #pragma HLS UNROLL
                    bu[j] = u[j];
                    bi[j] = j;
                }
                for (unsigned stride = 1; stride < N; stride *= 2) {  // balanced argmax tree, ties to the left
                    #pragma HLS UNROLL
                    for (unsigned j = 0; j + stride < N; j += 2 * stride) {
                        #pragma HLS UNROLL
                        if (bu[j + stride] > bu[j]) {
                            bu[j] = bu[j + stride];
                            bi[j] = bi[j + stride];
                        }
                    }
                }
                us[sl] = bu[0];
                idx[sl] = bi[0];
                u[bi[0]] = 0;
            }
            typename CONFIG_T::exp_t e[K];
            typename CONFIG_T::sum_t sum = 0;
            for (unsigned sl = 0; sl < K; sl++) {
                #pragma HLS UNROLL
                if (us[sl] > 0) {
                    ap_uint<CONFIG_T::in_bits + 1> d = us[0] - us[sl];
                    ap_uint<CONFIG_T::in_bits + 1> t = d >> CONFIG_T::exp_shift;
                    if (t > CONFIG_T::exp_n - 1)
                        t = CONFIG_T::exp_n - 1;
                    e[sl] = CONFIG_T::exp_table(t);
                } else {
                    e[sl] = 0;
                }
                sum += e[sl];
            }
            ap_uint<64> ti = sum >> CONFIG_T::inv_shift;
            if (ti > CONFIG_T::inv_n - 1)
                ti = CONFIG_T::inv_n - 1;
            typename CONFIG_T::inv_t rinv = CONFIG_T::inv_table(ti);
            typename CONFIG_T::w_t w[K];
            for (unsigned sl = 0; sl < K; sl++) {
                #pragma HLS UNROLL
                ap_uint<64> p = ap_uint<64>(e[sl]) * ap_uint<64>(rinv);
                ap_uint<64> o = round_shift<CONFIG_T::product_shift, CONFIG_T::rounding>(p);
                if (o > CONFIG_T::out_max)
                    o = CONFIG_T::out_max;
                typename CONFIG_T::out_int_t oi = o;
                typename CONFIG_T::out_wide_t wv = oi;
                wv = wv >> CONFIG_T::out_frac;
                w[sl] = wv;  // exact: the softmax output grid
            }
            for (unsigned p = 0; p < P; p++) {
                #pragma HLS UNROLL
                typename CONFIG_T::accum_t acc = 0;
                for (unsigned sl = 0; sl < K; sl++) {
                    #pragma HLS UNROLL
                    acc += w[sl] * v[CONFIG_T::b_off(bt) + idx[sl] * P + p];  // an N-way multiplexer per slot
                }
                y[(bt * CONFIG_T::n_m + m) * P + p] = acc;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Features computed on chip from L1 particle words (docs/l1_inputs.md, l1tagger.contract.l1features): the word
// fields are reinterpreted with their own widths (wrapping, as wires of that width would), padded particles
// (valid bit 0) count as all-zero words, logs are table reads at a floor-log code, tables generated from the spec.

// The fields of particle i (masked by its valid bit).
template <class data_T, typename CONFIG_T>
inline void l1w_unpack(const data_T w[CONFIG_T::n_part * CONFIG_T::n_fields], unsigned i,
                       ap_uint<CONFIG_T::pt_bits> &p, ap_int<CONFIG_T::eta_bits> &h, ap_int<CONFIG_T::phi_bits> &f,
                       ap_uint<3> &id, ap_uint<1> &v) {
    #pragma HLS INLINE
    const unsigned b = i * CONFIG_T::n_fields;
    v = w[b + CONFIG_T::i_valid].to_int();
    p = w[b + CONFIG_T::i_pt].to_int();
    h = w[b + CONFIG_T::i_eta].to_int();
    f = w[b + CONFIG_T::i_phi].to_int();
    id = w[b + CONFIG_T::i_pid].to_int();
    if (!v) {
        p = 0;
        h = 0;
        f = 0;
        id = 0;
    }
}

// Floor-log code of a W-bit unsigned integer: s = #{k in [M+1, W-1]: x >= 2^k}, c = s * 2^M + (x >> s).
template <int W, int M> inline int l1w_flog_code(ap_uint<W> x) {
    #pragma HLS INLINE
    int s = 0;
    for (int k = M + 1; k < W; k++) {
        #pragma HLS UNROLL
        if (x >= (ap_uint<W + 1>(1) << k))
            s++;
    }
    ap_uint<W> u = x >> s;
    return s * (1 << M) + (int)u.to_int();
}

// d - 2pi [d >= pi] + 2pi [d < -pi] (pi in phi LSBs)
template <int PI> inline int l1w_phi_wrap(int d) {
    if (d >= PI)
        return d - 2 * PI;
    if (d < -PI)
        return d + 2 * PI;
    return d;
}

inline int l1w_clip(int q, int lo, int hi) { return q < lo ? lo : (q > hi ? hi : q); }

// The integer q on the output grid (value q * 2^-frac; q already inside the output range).
template <class res_T, typename CONFIG_T> inline res_T l1w_value(int q) {
    typename CONFIG_T::out_wide_t v = q;
    v = v >> CONFIG_T::frac;
    return v;
}

// Key mask (B, N): the valid bit.
template <class data_T, class res_T, typename CONFIG_T>
void l1w_mask(const data_T w[CONFIG_T::n_part * CONFIG_T::n_fields], res_T y[CONFIG_T::n_part]) {
    #pragma HLS INLINE
    for (unsigned i = 0; i < CONFIG_T::n_part; i++) {
        #pragma HLS UNROLL
        ap_uint<1> v = w[i * CONFIG_T::n_fields + CONFIG_T::i_valid].to_int();
        y[i] = l1w_value<res_T, CONFIG_T>(v);
    }
}

// Per-particle features x (N, n_feat): feat(k) codes 0 logpt, 1 logptrel, 2 deta, 3 dphi (to the seed: the valid
// particle with the largest pt, ties to the lowest index), 4 charge, 5..9 is_neutral_hadron, is_photon,
// is_charged_hadron, is_electron, is_muon (l1ct particle ids, value 1.0).
template <class data_T, class res_T, typename CONFIG_T>
void l1w_particles(const data_T w[CONFIG_T::n_part * CONFIG_T::n_fields],
                   res_T y[CONFIG_T::n_part * CONFIG_T::n_feat]) {
    #pragma HLS INLINE
    const unsigned N = CONFIG_T::n_part;
    ap_uint<CONFIG_T::pt_bits> p[N];
    ap_int<CONFIG_T::eta_bits> h[N];
    ap_int<CONFIG_T::phi_bits> f[N];
    ap_uint<3> id[N];
    ap_uint<1> v[N];
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        l1w_unpack<data_T, CONFIG_T>(w, i, p[i], h[i], f[i], id[i], v[i]);
    }
    long long best = -1;
    int hs = 0, fs = 0;
    ap_uint<CONFIG_T::w_sum> sum = 0;
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        long long key = v[i] ? 2 * (long long)p[i].to_int() + 1 : 0;
        if (key > best) {
            best = key;
            hs = h[i].to_int();
            fs = f[i].to_int();
        }
        sum += p[i];
    }
    const int ljet = (int)CONFIG_T::logpt(l1w_flog_code<CONFIG_T::w_sum, CONFIG_T::log_m>(sum));
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        const int lp = (int)CONFIG_T::logpt(l1w_flog_code<CONFIG_T::pt_bits, CONFIG_T::log_m>(p[i]));
        const int pid = id[i].to_int();
        const int ge1 = pid >= 1, ge2 = pid >= 2, ge4 = pid >= 4, ge6 = pid >= 6, odd = pid & 1;
        for (unsigned k = 0; k < CONFIG_T::n_feat; k++) {
            #pragma HLS UNROLL
            int q = 0;
            switch (CONFIG_T::feat(k)) {
            case 0: q = lp; break;
            case 1: q = lp - ljet; break;
            case 2: q = h[i].to_int() - hs; break;
            case 3: q = l1w_phi_wrap<CONFIG_T::phi_pi>(f[i].to_int() - fs); break;
            case 4: q = ge2 * (2 * odd - 1) * CONFIG_T::one; break;
            case 5: q = (1 - ge1) * CONFIG_T::one; break;
            case 6: q = (ge1 - ge2) * CONFIG_T::one; break;
            case 7: q = (ge2 - ge4) * CONFIG_T::one; break;
            case 8: q = (ge4 - ge6) * CONFIG_T::one; break;
            case 9: q = ge6 * CONFIG_T::one; break;
            }
            q = l1w_clip(q, CONFIG_T::out_lo, CONFIG_T::out_hi);
            y[i * CONFIG_T::n_feat + k] = l1w_value<res_T, CONFIG_T>(v[i] ? q : 0);
        }
    }
}

// ln Delta of a pair from its angle differences (eta LSBs; dphi wrapped), by the spec's delta method
// (l1tagger.contract.l1features.lndelta_int): delta_lse = 0 - LOGDR of the code of deta^2 + dphi^2 (two squares);
// delta_lse = 1 - max(a, b) + HALFSP[min(|a - b|, last)] of a, b = LOGABS of the codes of |deta|, |dphi| (no products).
template <int LSE> struct l1w_lndelta;
template <> struct l1w_lndelta<0> {
    template <typename CONFIG_T> static int of(long long de, long long dp) {
        #pragma HLS INLINE
        ap_uint<CONFIG_T::w_d2> d2 = de * de + dp * dp;
        return (int)CONFIG_T::logdr(l1w_flog_code<CONFIG_T::w_d2, CONFIG_T::log_m>(d2));
    }
};
template <> struct l1w_lndelta<1> {
    template <typename CONFIG_T> static int of(long long de, long long dp) {
        #pragma HLS INLINE
        ap_uint<CONFIG_T::w_dabs> ae = de < 0 ? -de : de, ap = dp < 0 ? -dp : dp;
        const int a = (int)CONFIG_T::logabs(l1w_flog_code<CONFIG_T::w_dabs, CONFIG_T::log_m>(ae));
        const int b = (int)CONFIG_T::logabs(l1w_flog_code<CONFIG_T::w_dabs, CONFIG_T::log_m>(ap));
        const int r = a > b ? a - b : b - a;
        return (a > b ? a : b) + (int)CONFIG_T::halfsp(r < CONFIG_T::n_halfsp - 1 ? r : CONFIG_T::n_halfsp - 1);
    }
};

// The four pair features of one unordered pair by the spec's pair_set (l1tagger.contract.l1features.features_int):
// SET = 0 - ParT's [ln kT, ln z, ln Delta, ln m^2]; SET = 1 - straight from the words: [code(|deta|),
// code(|dphi|), min(L_i, L_j), |L_i - L_j|] (floor-log codes with code_m mantissa bits; no angle log, no softplus);
// SET = 2 - ParT's set in code units: c = code(octagonal distance), [min L + K c, |L_i - L_j|, c, L_i + L_j + 2 K c].
template <int SET> struct l1w_pairq;
template <> struct l1w_pairq<0> {
    template <typename CONFIG_T> static void of(long long de, long long dp, int li, int lj, int q[4]) {
        #pragma HLS INLINE
        const int lnd = l1w_lndelta<CONFIG_T::delta_lse>::template of<CONFIG_T>(de, dp);
        const int r = li > lj ? li - lj : lj - li;
        const int sp = (int)CONFIG_T::softplus(r < CONFIG_T::n_softplus - 1 ? r : CONFIG_T::n_softplus - 1);
        q[0] = (li < lj ? li : lj) + lnd;
        q[1] = -(r + sp);
        q[2] = lnd;
        q[3] = li + lj + 2 * lnd;
    }
};
template <> struct l1w_pairq<1> {
    template <typename CONFIG_T> static void of(long long de, long long dp, int li, int lj, int q[4]) {
        #pragma HLS INLINE
        ap_uint<CONFIG_T::w_dabs> ae = de < 0 ? -de : de, ap = dp < 0 ? -dp : dp;
        q[0] = (int)l1w_flog_code<CONFIG_T::w_dabs, CONFIG_T::code_m>(ae);
        q[1] = (int)l1w_flog_code<CONFIG_T::w_dabs, CONFIG_T::code_m>(ap);
        q[2] = li < lj ? li : lj;
        q[3] = li > lj ? li - lj : lj - li;
    }
};

template <> struct l1w_pairq<2> {
    template <typename CONFIG_T> static void of(long long de, long long dp, int li, int lj, int q[4]) {
        #pragma HLS INLINE
        const long long a = de < 0 ? -de : de, b = dp < 0 ? -dp : dp;
        ap_uint<CONFIG_T::w_dist> d = (a > b ? a : b) + ((a > b ? b : a) >> 1);  // octagonal distance
        const int c = (int)l1w_flog_code<CONFIG_T::w_dist, CONFIG_T::code_m>(d);
        q[0] = (li < lj ? li : lj) + CONFIG_T::code_step * c;
        q[1] = li > lj ? li - lj : lj - li;
        q[2] = c;
        q[3] = li + lj + 2 * CONFIG_T::code_step * c;
    }
};

// Pair features (N, N, 4) of the spec's pair_set (l1w_pairq), computed once per unordered pair (symmetric).
template <class data_T, class res_T, typename CONFIG_T>
void l1w_pairs(const data_T w[CONFIG_T::n_part * CONFIG_T::n_fields],
               res_T y[CONFIG_T::n_part * CONFIG_T::n_part * 4]) {
    #pragma HLS INLINE
    const unsigned N = CONFIG_T::n_part;
    ap_uint<CONFIG_T::pt_bits> p[N];
    ap_int<CONFIG_T::eta_bits> h[N];
    ap_int<CONFIG_T::phi_bits> f[N];
    ap_uint<3> id[N];
    ap_uint<1> v[N];
    int lp[N];
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        l1w_unpack<data_T, CONFIG_T>(w, i, p[i], h[i], f[i], id[i], v[i]);
        lp[i] = (int)CONFIG_T::logpt(l1w_flog_code<CONFIG_T::pt_bits, CONFIG_T::log_m>(p[i]));
    }
    for (unsigned i = 0; i < N; i++) {
        #pragma HLS UNROLL
        for (unsigned j = i; j < N; j++) {
            #pragma HLS UNROLL
            const long long de = h[i].to_int() - h[j].to_int();
            const long long dp = l1w_phi_wrap<CONFIG_T::phi_pi>(f[i].to_int() - f[j].to_int());
            int q[4];
            l1w_pairq<CONFIG_T::pair_set>::template of<CONFIG_T>(de, dp, lp[i], lp[j], q);
            for (unsigned k = 0; k < 4; k++) {
                #pragma HLS UNROLL
                const int c = (v[i] && v[j]) ? l1w_clip(q[k], CONFIG_T::out_lo, CONFIG_T::out_hi) : 0;
                y[(i * N + j) * 4 + k] = l1w_value<res_T, CONFIG_T>(c);
                y[(j * N + i) * 4 + k] = l1w_value<res_T, CONFIG_T>(c);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Interaction bias U from tables of the quantized pair features (docs/interaction.md, l1tagger.contract.pairtable):
// per row and feature f the index clip((xi - lo(f)) >> sh(f), 0, n_entries - 1) of the input's raw integer xi
// (a left shift for sh < 0), per head h the exact sum over f of table((f * n_heads + h) * n_entries + idx_f).
template <class data_T, class res_T, typename CONFIG_T>
void pairtable(const data_T x[CONFIG_T::n_rows * CONFIG_T::n_feat], res_T y[CONFIG_T::n_rows * CONFIG_T::n_heads]) {
    #pragma HLS INLINE
    for (unsigned r = 0; r < CONFIG_T::n_rows; r++) {
        #pragma HLS UNROLL
        int idx[CONFIG_T::n_feat];
        for (unsigned f = 0; f < CONFIG_T::n_feat; f++) {
            #pragma HLS UNROLL
            typename CONFIG_T::scaled_t s = x[r * CONFIG_T::n_feat + f];
            s = s << CONFIG_T::in_frac;  // the raw integer, exact
            const long long d = (long long)s.to_int64() - CONFIG_T::lo(f);
            const int sh = CONFIG_T::sh(f);
            const long long q = sh >= 0 ? (d >> sh) : (d * (1LL << (-sh)));
            idx[f] = q < 0 ? 0 : (q > (long long)(CONFIG_T::n_entries - 1) ? CONFIG_T::n_entries - 1 : (int)q);
        }
        for (unsigned h = 0; h < CONFIG_T::n_heads; h++) {
            #pragma HLS UNROLL
            long long acc = 0;
            for (unsigned f = 0; f < CONFIG_T::n_feat; f++) {
                #pragma HLS UNROLL
                acc += CONFIG_T::table((f * CONFIG_T::n_heads + h) * CONFIG_T::n_entries + idx[f]);
            }
            typename CONFIG_T::out_wide_t v = acc;
            v = v >> CONFIG_T::out_frac;
            y[r * CONFIG_T::n_heads + h] = v;
        }
    }
}

} // namespace l1t

#endif
