#include "simreal_rt/gru.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace simreal_rt {

namespace {

const char* const kFields[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};

[[noreturn]] void fail(const std::string& tensor, const std::string& what) {
  throw BundleError("tensor '" + tensor + "': " + what);
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

std::string tensor_name(std::size_t layer, const char* field) {
  return "gru." + std::to_string(layer) + "." + field;
}

// Parses "gru.<l>.<field>" for the four GRU fields; returns -1 if the name is not a GRU tensor.
long gru_layer_index(const std::string& name) {
  const std::string prefix = "gru.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  std::size_t p = prefix.size();
  const std::size_t start = p;
  long idx = 0;
  while (p < name.size() && name[p] >= '0' && name[p] <= '9' && p - start < 9) idx = idx * 10 + (name[p++] - '0');
  if (p == start || p >= name.size() || name[p] != '.') return -1;
  const std::string rest = name.substr(p + 1);
  for (const char* field : kFields)
    if (rest == field) return idx;
  return -1;
}

const Tensor& require(const SafetensorsFile& file, const std::string& name) {
  if (!file.has(name)) fail(name, "missing (GRU layers must be numbered consecutively from 0)");
  return file.get(name);
}

void check_shape(const std::string& name, const Tensor& t, const std::vector<int64_t>& want) {
  if (t.shape != want) fail(name, "shape " + shape_str(t.shape) + " must be " + shape_str(want));
}

// H from gru.0.weight_hh [3H, H]; every other shape is checked against it.
std::size_t hidden_size_of(const SafetensorsFile& file) {
  long max_index = -1;
  for (const std::string& n : file.names()) max_index = std::max(max_index, gru_layer_index(n));
  if (max_index < 0) fail("gru.0.weight_ih", "not found; the network has no GRU layers");
  const std::string name = tensor_name(0, "weight_hh");
  const Tensor& w = require(file, name);
  if (w.shape.size() != 2 || w.shape[1] <= 0 || w.shape[0] != 3 * w.shape[1])
    fail(name, "shape " + shape_str(w.shape) + " must be [3H, H] with H > 0");
  return static_cast<std::size_t>(w.shape[1]);
}

}  // namespace

std::vector<GruPolicy::Layer> GruPolicy::read_layers(const SafetensorsFile& file, std::size_t hidden) {
  long max_index = -1;
  for (const std::string& n : file.names()) max_index = std::max(max_index, gru_layer_index(n));
  const auto h = static_cast<int64_t>(hidden);
  std::vector<Layer> layers;
  for (long i = 0; i <= max_index; ++i) {
    const auto l = static_cast<std::size_t>(i);
    const std::string ih = tensor_name(l, "weight_ih"), hh = tensor_name(l, "weight_hh");
    const std::string bih = tensor_name(l, "bias_ih"), bhh = tensor_name(l, "bias_hh");
    const Tensor& w_ih = require(file, ih);
    const Tensor& w_hh = require(file, hh);
    const Tensor& b_ih = require(file, bih);
    const Tensor& b_hh = require(file, bhh);
    if (l == 0) {
      if (w_ih.shape.size() != 2 || w_ih.shape[0] != 3 * h || w_ih.shape[1] <= 0)
        fail(ih, "shape " + shape_str(w_ih.shape) + " must be [" + std::to_string(3 * h) + ", input_dim > 0]");
    } else {
      check_shape(ih, w_ih, {3 * h, h});
    }
    check_shape(hh, w_hh, {3 * h, h});
    check_shape(bih, b_ih, {3 * h});
    check_shape(bhh, b_hh, {3 * h});
    Layer layer;
    layer.in = static_cast<std::size_t>(w_ih.shape[1]);
    layer.weight_ih = w_ih.data;
    layer.weight_hh = w_hh.data;
    layer.bias_ih = b_ih.data;
    layer.bias_hh = b_hh.data;
    layers.push_back(std::move(layer));
  }
  return layers;
}

GruPolicy::GruPolicy(const SafetensorsFile& file, Activation head_activation)
    : hidden_(hidden_size_of(file)), layers_(read_layers(file, hidden_)), head_(file, head_activation) {
  if (head_.input_dim() != hidden_)
    fail("layers.0.weight", "head input " + std::to_string(head_.input_dim()) + " != GRU hidden size " +
                                std::to_string(hidden_));
  state_.assign(layers_.size() * hidden_, 0.0f);
  gates_ih_.assign(3 * hidden_, 0.0);
  gates_hh_.assign(3 * hidden_, 0.0);
}

namespace {

// out[o] = bias[o] + sum_k w[o, k] x[k] for o < rows, accumulated in double.
void affine(const float* w, const float* bias, const float* x, std::size_t rows, std::size_t cols,
            double* out) noexcept {
  for (std::size_t o = 0; o < rows; ++o) {
    double acc = bias[o];
    const float* row = w + o * cols;
    for (std::size_t k = 0; k < cols; ++k) acc += static_cast<double>(row[k]) * x[k];
    out[o] = acc;
  }
}

double sigmoid(double v) noexcept { return 1.0 / (1.0 + std::exp(-v)); }

}  // namespace

void GruPolicy::evaluate(const float* input, float* output) noexcept {
  const std::size_t H = hidden_;
  double* gi = gates_ih_.data();
  double* gh = gates_hh_.data();
  const float* x = input;
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    float* h = state_.data() + l * H;
    affine(L.weight_ih.data(), L.bias_ih.data(), x, 3 * H, L.in, gi);
    affine(L.weight_hh.data(), L.bias_hh.data(), h, 3 * H, H, gh);
    // Both gate vectors are complete before h is overwritten, so the update can be in place.
    for (std::size_t j = 0; j < H; ++j) {
      const double r = sigmoid(gi[j] + gh[j]);
      const double z = sigmoid(gi[H + j] + gh[H + j]);
      const double n = std::tanh(gi[2 * H + j] + r * gh[2 * H + j]);
      h[j] = static_cast<float>((1.0 - z) * n + z * static_cast<double>(h[j]));
    }
    x = h;  // the next layer (or the head) reads this layer's new hidden state
  }
  head_.evaluate(x, output);
}

void GruPolicy::reset() noexcept { std::fill(state_.begin(), state_.end(), 0.0f); }

}  // namespace simreal_rt
