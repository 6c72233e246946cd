// Fully connected policy network evaluated without allocation.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "simreal_rt/safetensors.hpp"

namespace simreal_rt {

enum class Activation { ELU, RELU, TANH };  // ELU uses alpha = 1

// "elu", "relu" or "tanh"; std::invalid_argument otherwise.
Activation parse_activation(const std::string& name);

// Layers come from tensors layers.{i}.weight [out, in] and layers.{i}.bias
// [out], i = 0..L-1 (consecutive, L >= 1, shapes chain). The activation is
// applied after every layer except the last. Weights and activations are float;
// products are summed in float eight at a time and those partial sums in
// double, then rounded once per neuron (within 2e-6 of a float64 evaluation on
// the shipped policy, where torch's own float32 result is 7e-6 away).
// Weights are stored transposed so the per-layer loops vectorize.
class Mlp {
 public:
  // Throws BundleError naming the offending tensor.
  Mlp(const SafetensorsFile& file, Activation activation);

  // input: input_dim() floats, output: output_dim() floats (may not alias
  // input). No heap allocation, no locks, no system calls.
  void evaluate(const float* input, float* output) const noexcept;

  std::size_t input_dim() const { return layers_.front().in; }
  std::size_t output_dim() const { return layers_.back().out; }
  std::size_t num_layers() const { return layers_.size(); }
  Activation activation() const { return activation_; }

 private:
  struct Layer {
    std::size_t in = 0, out = 0;
    std::vector<float> weight_t;  // transposed: row-major [in, out]
    std::vector<float> bias;    // [out]
  };
  std::vector<Layer> layers_;
  Activation activation_;
  // Ping-pong scratch buffers sized to the widest hidden layer. mutable so that
  // evaluate() can be const; an Mlp must therefore not be evaluated from two
  // threads at once.
  mutable std::vector<float> buf_a_, buf_b_;
  mutable std::vector<double> acc_;  // one layer's sums, widest layer
};

}  // namespace simreal_rt
