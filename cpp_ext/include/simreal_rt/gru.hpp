// Recurrent (GRU) policy network evaluated one control tick at a time without allocation.
#pragma once

#include <cstddef>
#include <vector>

#include "simreal_rt/mlp.hpp"
#include "simreal_rt/safetensors.hpp"

namespace simreal_rt {

// A stack of L GRU layers (torch.nn.GRU semantics, gate order r, z, n) followed
// by an MLP head. Tensors, for l = 0..L-1 (consecutive from 0):
//   gru.{l}.weight_ih [3H, in_l]   in_0 = input_dim, in_l = H for l > 0
//   gru.{l}.weight_hh [3H, H]
//   gru.{l}.bias_ih   [3H]
//   gru.{l}.bias_hh   [3H]
// and the head layers.{i}.weight / layers.{i}.bias as read by Mlp, with
// layers.0 taking the top layer's hidden state (in = H). Per layer and tick:
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   n = tanh(W_in x + b_in + r * (W_hn h + b_hn))
//   h = (1 - z) * n + z * h
// Gate pre-activations are summed like the MLP's layers (float partial sums of
// eight products, accumulated in double), the gates are computed in double, and
// the hidden state is stored as float (as torch keeps it). The hidden state is zeros at construction and
// after reset().
class GruPolicy {
 public:
  // Throws BundleError naming the offending tensor.
  GruPolicy(const SafetensorsFile& file, Activation head_activation);

  // One control tick: input is input_dim() floats, output receives
  // output_dim() floats (may not alias input). Advances the hidden state.
  // No heap allocation, no locks, no system calls.
  void evaluate(const float* input, float* output) noexcept;

  // Hidden state of every layer back to zeros (start of an episode).
  void reset() noexcept;

  std::size_t input_dim() const { return layers_.front().in; }
  std::size_t output_dim() const { return head_.output_dim(); }
  std::size_t hidden_size() const { return hidden_; }
  std::size_t num_layers() const { return layers_.size(); }
  // Layer l's hidden state (hidden_size() floats), for tests and diagnostics.
  const float* hidden_state(std::size_t layer) const { return state_.data() + layer * hidden_; }

 private:
  struct Layer {
    std::size_t in = 0;
    std::vector<float> weight_ih_t;  // transposed: row-major [in, 3H]
    std::vector<float> weight_hh_t;  // transposed: row-major [H, 3H]
    std::vector<float> bias_ih;    // [3H]
    std::vector<float> bias_hh;    // [3H]
  };
  // Reads and checks gru.{l}.* for every l up to the highest index present.
  static std::vector<Layer> read_layers(const SafetensorsFile& file, std::size_t hidden);

  std::size_t hidden_ = 0;
  std::vector<Layer> layers_;
  Mlp head_;
  std::vector<float> state_;      // [L, H]
  std::vector<double> gates_ih_;  // [3H] scratch: W_ih x + b_ih
  std::vector<double> gates_hh_;  // [3H] scratch: W_hh h + b_hh
};

}  // namespace simreal_rt
