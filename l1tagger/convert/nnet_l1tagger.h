// l1tagger hls4ml extension kernels (io_parallel, flat arrays, batch axis dropped).
//
// Every tensor is an ap_fixed / ap_ufixed whose width is chosen by l1tagger.convert.fixed so that each
// operation is exact; only Quant layers round (with the QONNX node's rounding) and saturate. Index tables for
// broadcasting and layout ops are generated in Python and emitted into each layer's config struct.
// The softmax implements docs/firmware_softmax.md with EXP/INV tables generated from SoftmaxSpec (no expf).
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

} // namespace l1t

#endif
