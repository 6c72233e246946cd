// Dense-layer kernels shared by the MLP and GRU evaluators (internal to the core).
#pragma once

#include <cstddef>
#include <vector>

namespace simreal_rt::detail {

// [rows, cols] row-major -> [cols, rows] row-major.
std::vector<float> transpose(const std::vector<float>& w, std::size_t rows, std::size_t cols);

// acc[o] += sum_k w_t[k][o] * x[k] for o < out, k < in, with w_t the transposed
// weights [in, out]. Products are summed in float eight at a time, those
// partial sums in double. No allocation.
void accumulate_columns(const float* w_t, const float* x, std::size_t in, std::size_t out, double* acc) noexcept;

// y[o] = float(acc[o]).
void round_to_float(const double* acc, std::size_t n, float* y) noexcept;

// ELU (alpha = 1) in place.
void elu_in_place(float* y, std::size_t n) noexcept;

}  // namespace simreal_rt::detail
