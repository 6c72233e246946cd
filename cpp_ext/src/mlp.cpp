#include "simreal_rt/mlp.hpp"

#include "elu.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

namespace simreal_rt {

namespace {

[[noreturn]] void fail(const std::string& tensor, const std::string& what) {
  throw BundleError("tensor '" + tensor + "': " + what);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Parses "layers.<i>.weight" / "layers.<i>.bias"; returns -1 if the name is not a layer tensor.
long layer_index(const std::string& name) {
  const std::string prefix = "layers.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::size_t p = prefix.size();
  const std::size_t start = p;
  long idx = 0;
  while (p < name.size() && name[p] >= '0' && name[p] <= '9' && p - start < 9) idx = idx * 10 + (name[p++] - '0');
  if (p == start || p >= name.size() || name[p] != '.') return -1;
  const std::string rest = name.substr(p + 1);
  return (rest == "weight" || rest == "bias") ? idx : -1;
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

}  // namespace

Mlp::Mlp(const SafetensorsFile& file, Activation activation) : activation_(activation) {
  long max_index = -1;
  for (const std::string& n : file.names()) max_index = std::max(max_index, layer_index(n));
  if (max_index < 0) fail("layers.0.weight", "not found; the network has no layers");

  std::size_t width = 0;
  for (long i = 0; i <= max_index; ++i) {
    const std::string wn = "layers." + std::to_string(i) + ".weight";
    const std::string bn = "layers." + std::to_string(i) + ".bias";
    if (!file.has(wn)) fail(wn, "missing (layers must be numbered consecutively from 0)");
    if (!file.has(bn)) fail(bn, "missing (layers must be numbered consecutively from 0)");
    const Tensor& w = file.get(wn);
    const Tensor& b = file.get(bn);
    if (w.shape.size() != 2 || w.shape[0] <= 0 || w.shape[1] <= 0)
      fail(wn, "shape " + shape_str(w.shape) + " must be [out, in] with out, in > 0");
    Layer L;
    L.out = static_cast<std::size_t>(w.shape[0]);
    L.in = static_cast<std::size_t>(w.shape[1]);
    if (!layers_.empty() && L.in != layers_.back().out)
      fail(wn, "shape " + shape_str(w.shape) + " has in = " + std::to_string(L.in) +
                   " but the previous layer outputs " + std::to_string(layers_.back().out));
    if (b.shape.size() != 1 || static_cast<std::size_t>(b.shape[0]) != L.out)
      fail(bn, "shape " + shape_str(b.shape) + " must be [" + std::to_string(L.out) + "]");
    L.weight_t.resize(w.data.size());
    for (std::size_t o = 0; o < L.out; ++o)
      for (std::size_t k = 0; k < L.in; ++k) L.weight_t[k * L.out + o] = w.data[o * L.in + k];
    L.bias = b.data;
    if (!layers_.empty()) width = std::max(width, L.in);
    layers_.push_back(std::move(L));
  }
  std::size_t widest_out = 0;
  for (const Layer& layer : layers_) widest_out = std::max(widest_out, layer.out);
  acc_.assign(widest_out, 0.0);
  buf_a_.assign(width, 0.0f);
  buf_b_.assign(width, 0.0f);
}

void Mlp::evaluate(const float* input, float* output) const noexcept {
  const float* x = input;
  const std::size_t n = layers_.size();
  for (std::size_t l = 0; l < n; ++l) {
    const Layer& L = layers_[l];
    const bool last = (l + 1 == n);
    float* y = last ? output : ((l % 2 == 0) ? buf_a_.data() : buf_b_.data());
    // y = b + sum_k x[k] * W[:, k]: the inner loop runs over contiguous outputs
    // with independent sums, so the compiler vectorizes it without reordering
    // any floating-point sum (no -ffast-math needed).
    double* acc = acc_.data();
    std::copy(L.bias.begin(), L.bias.end(), acc);
    accumulate_columns(L.weight_t.data(), x, L.in, L.out, acc);
    round_to_float(acc, L.out, y);
    if (!last) {
      switch (activation_) {
        case Activation::ELU: elu_in_place(y, L.out); break;
        case Activation::RELU:
          for (std::size_t o = 0; o < L.out; ++o) y[o] = y[o] > 0.0f ? y[o] : 0.0f;
          break;
        case Activation::TANH:
          for (std::size_t o = 0; o < L.out; ++o) y[o] = std::tanh(y[o]);
          break;
      }
    }
    x = y;
  }
}

}  // namespace simreal_rt
