#include "simreal_rt/mlp.hpp"

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
    L.weight = w.data;
    L.bias = b.data;
    if (!layers_.empty()) width = std::max(width, L.in);
    layers_.push_back(std::move(L));
  }
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
    const float* w = L.weight.data();
    for (std::size_t o = 0; o < L.out; ++o) {
      double acc = L.bias[o];
      const float* row = w + o * L.in;
      for (std::size_t k = 0; k < L.in; ++k) acc += static_cast<double>(row[k]) * x[k];
      float v = static_cast<float>(acc);
      if (!last) {
        switch (activation_) {
          case Activation::ELU: v = v > 0.0f ? v : std::expm1(v); break;
          case Activation::RELU: v = v > 0.0f ? v : 0.0f; break;
          case Activation::TANH: v = std::tanh(v); break;
        }
      }
      y[o] = v;
    }
    x = y;
  }
}

}  // namespace simreal_rt
