#include "simreal_rt/mlp.hpp"

#include "dense.hpp"
#include "tensor_names.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace simreal_rt {

namespace {

using detail::shape_string;

[[noreturn]] void fail(const std::string& tensor, const std::string& what) { detail::tensor_error(tensor, what); }

long layer_index(const std::string& name) { return detail::layer_index(name, "layers.", {"weight", "bias"}); }

}  // namespace

Activation parse_activation(const std::string& name) {
  if (name == "elu") return Activation::ELU;
  if (name == "relu") return Activation::RELU;
  if (name == "tanh") return Activation::TANH;
  throw std::invalid_argument("unknown activation '" + name + "' (elu, relu, tanh)");
}

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
      fail(wn, "shape " + shape_string(w.shape) + " must be [out, in] with out, in > 0");
    Layer L;
    L.out = static_cast<std::size_t>(w.shape[0]);
    L.in = static_cast<std::size_t>(w.shape[1]);
    if (!layers_.empty() && L.in != layers_.back().out)
      fail(wn, "shape " + shape_string(w.shape) + " has in = " + std::to_string(L.in) +
                   " but the previous layer outputs " + std::to_string(layers_.back().out));
    if (b.shape.size() != 1 || static_cast<std::size_t>(b.shape[0]) != L.out)
      fail(bn, "shape " + shape_string(b.shape) + " must be [" + std::to_string(L.out) + "]");
    L.weight_t = detail::transpose(w.data, L.out, L.in);
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
    detail::accumulate_columns(L.weight_t.data(), x, L.in, L.out, acc);
    detail::round_to_float(acc, L.out, y);
    if (!last) {
      switch (activation_) {
        case Activation::ELU: detail::elu_in_place(y, L.out); break;
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
