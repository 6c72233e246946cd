#include "dense.hpp"

#include "elu.hpp"

namespace simreal_rt::detail {

std::vector<float> transpose(const std::vector<float>& w, std::size_t rows, std::size_t cols) {
  std::vector<float> t(w.size());
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) t[c * rows + r] = w[r * cols + c];
  return t;
}

// The two hot loops are compiled once per x86-64 level and picked at load time
// (GCC function multiversioning): a portable binary still uses AVX2/AVX-512
// where the CPU has them. Results are identical across clones: no FMA
// contraction in ISO C++ mode and no reordering of any sum.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SIMREAL_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SIMREAL_VECTOR_CLONES
#endif

// acc[o] += sum_k w_t[k][o] * x[k]. Eight columns are summed in float (an
// error of a few float ulps of an 8-term partial sum), and the partial sums are
// accumulated in double, so the long sums over a whole layer do not lose
// precision while only one float->double conversion is paid per eight products.
SIMREAL_VECTOR_CLONES void accumulate_columns(const float* __restrict w_t, const float* __restrict x, std::size_t in,
                                              std::size_t out, double* __restrict acc) noexcept {
  std::size_t k = 0;
  for (; k + 8 <= in; k += 8) {
    const float* c = w_t + k * out;
    const float x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
    const float x4 = x[k + 4], x5 = x[k + 5], x6 = x[k + 6], x7 = x[k + 7];
    for (std::size_t o = 0; o < out; ++o) {
      const float partial = ((c[o] * x0 + c[out + o] * x1) + (c[2 * out + o] * x2 + c[3 * out + o] * x3)) +
                            ((c[4 * out + o] * x4 + c[5 * out + o] * x5) + (c[6 * out + o] * x6 + c[7 * out + o] * x7));
      acc[o] += static_cast<double>(partial);
    }
  }
  for (; k < in; ++k) {
    const double xk = x[k];
    const float* c = w_t + k * out;
    for (std::size_t o = 0; o < out; ++o) acc[o] += static_cast<double>(c[o]) * xk;
  }
}

SIMREAL_VECTOR_CLONES void round_to_float(const double* __restrict acc, std::size_t n, float* __restrict y) noexcept {
  for (std::size_t o = 0; o < n; ++o) y[o] = static_cast<float>(acc[o]);
}

SIMREAL_VECTOR_CLONES void elu_in_place(float* __restrict y, std::size_t n) noexcept {
  for (std::size_t o = 0; o < n; ++o) y[o] = y[o] > 0.0f ? y[o] : detail::expm1_nonpositive(y[o]);
}

}  // namespace simreal_rt::detail
