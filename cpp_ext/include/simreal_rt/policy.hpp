// A loaded deploy bundle: the validated spec and its policy network (MLP or GRU).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "simreal_rt/bundle.hpp"
#include "simreal_rt/gru.hpp"
#include "simreal_rt/mlp.hpp"

namespace simreal_rt {

// The bundle's network behind one interface; stateful for GRU (one step per control tick).
class Policy {
 public:
  // Throws BundleError naming the offending tensor.
  Policy(const NetworkSpec& network, const SafetensorsFile& weights);

  // input_dim() floats in, output_dim() floats out (no aliasing). No heap
  // allocation, locks or system calls. One instance per thread.
  void evaluate(const float* input, float* output) noexcept;
  // Recurrent state back to zeros (no-op for an MLP).
  void reset() noexcept;

  std::size_t input_dim() const;
  std::size_t output_dim() const;
  bool recurrent() const { return gru_ != nullptr; }

 private:
  std::unique_ptr<Mlp> mlp_;
  std::unique_ptr<GruPolicy> gru_;
};

struct Bundle {
  BundleSpec spec;
  std::unique_ptr<Policy> policy;
};

// Reads DIR/deploy.yaml and DIR/policy.safetensors; throws BundleError naming
// the file and field on any problem (missing file, bad YAML, failed
// validation, hash mismatch, malformed or mismatched tensors).
Bundle load_bundle(const std::string& dir);

// The same from bytes already in memory (tests, fuzzing); the names appear in messages.
Bundle load_bundle_from_memory(const std::string& deploy_yaml, const std::vector<unsigned char>& weights,
                               const std::string& yaml_name = "deploy.yaml",
                               const std::string& weights_name = "policy.safetensors");

}  // namespace simreal_rt
