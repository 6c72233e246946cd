#include "simreal_rt/gru.hpp"

#include "dense.hpp"
#include "tensor_names.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace simreal_rt {

namespace {

using detail::shape_string;

[[noreturn]] void fail(const std::string& tensor, const std::string& what) { detail::tensor_error(tensor, what); }

std::string tensor_name(std::size_t layer, const char* field) {
  return "gru." + std::to_string(layer) + "." + field;
}

long gru_layer_index(const std::string& name) {
  return detail::layer_index(name, "gru.", {"weight_ih", "weight_hh", "bias_ih", "bias_hh"});
}

const Tensor& require(const SafetensorsFile& file, const std::string& name) {
  if (!file.has(name)) fail(name, "missing (GRU layers must be numbered consecutively from 0)");
  return file.get(name);
}

void check_shape(const std::string& name, const Tensor& t, const std::vector<int64_t>& want) {
  if (t.shape != want) fail(name, "shape " + shape_string(t.shape) + " must be " + shape_string(want));
}

// H from gru.0.weight_hh [3H, H]; every other shape is checked against it.
std::size_t hidden_size_of(const SafetensorsFile& file) {
  long max_index = -1;
  for (const std::string& n : file.names()) max_index = std::max(max_index, gru_layer_index(n));
  if (max_index < 0) fail("gru.0.weight_ih", "not found; the network has no GRU layers");
  const std::string name = tensor_name(0, "weight_hh");
  const Tensor& w = require(file, name);
  if (w.shape.size() != 2 || w.shape[1] <= 0 || w.shape[0] != 3 * w.shape[1])
    fail(name, "shape " + shape_string(w.shape) + " must be [3H, H] with H > 0");
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
        fail(ih, "shape " + shape_string(w_ih.shape) + " must be [" + std::to_string(3 * h) + ", input_dim > 0]");
    } else {
      check_shape(ih, w_ih, {3 * h, h});
    }
    check_shape(hh, w_hh, {3 * h, h});
    check_shape(bih, b_ih, {3 * h});
    check_shape(bhh, b_hh, {3 * h});
    Layer layer;
    layer.in = static_cast<std::size_t>(w_ih.shape[1]);
    layer.weight_ih_t = detail::transpose(w_ih.data, 3 * hidden, layer.in);
    layer.weight_hh_t = detail::transpose(w_hh.data, 3 * hidden, hidden);
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

// out = bias + W x with W stored transposed ([cols, rows]); sums in double.
void affine(const std::vector<float>& w_t, const std::vector<float>& bias, const float* x, std::size_t cols,
            double* out) noexcept {
  std::copy(bias.begin(), bias.end(), out);
  detail::accumulate_columns(w_t.data(), x, cols, bias.size(), out);
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
    affine(L.weight_ih_t, L.bias_ih, x, L.in, gi);
    affine(L.weight_hh_t, L.bias_hh, h, H, gh);
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
