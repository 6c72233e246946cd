#include "simreal_rt/policy.hpp"

#include <stdexcept>

#include "simreal_rt/file_io.hpp"
#include "simreal_rt/yaml_subset.hpp"

namespace simreal_rt {

namespace {

constexpr std::size_t kMaxWeightsBytes = std::size_t(1) << 30;  // 1 GiB: far above any policy a robot runs

std::vector<unsigned char> read_bundle_file(const std::string& path, std::size_t max_bytes) {
  try {
    return read_file_bytes(path, max_bytes);
  } catch (const std::runtime_error& e) {
    throw BundleError(std::string(e.what()) + " (a deploy bundle holds deploy.yaml and policy.safetensors)");
  }
}

}  // namespace

Policy::Policy(const NetworkSpec& network, const SafetensorsFile& weights) {
  if (network.type == "gru") gru_ = std::make_unique<GruPolicy>(weights, parse_activation(network.activation));
  else mlp_ = std::make_unique<Mlp>(weights, parse_activation(network.activation));
}

void Policy::evaluate(const float* input, float* output) noexcept {
  if (gru_) gru_->evaluate(input, output);
  else mlp_->evaluate(input, output);
}

void Policy::reset() noexcept {
  if (gru_) gru_->reset();
}

std::size_t Policy::input_dim() const { return gru_ ? gru_->input_dim() : mlp_->input_dim(); }
std::size_t Policy::output_dim() const { return gru_ ? gru_->output_dim() : mlp_->output_dim(); }

Bundle load_bundle_from_memory(const std::string& deploy_yaml, const std::vector<unsigned char>& weights,
                               const std::string& yaml_name, const std::string& weights_name) {
  Bundle bundle;
  bundle.spec = parse_bundle_spec(deploy_yaml, yaml_name);
  check_sha256(bundle.spec, weights, weights_name);
  SafetensorsFile file;
  try {
    file = SafetensorsFile::from_bytes(weights);
  } catch (const BundleError& e) {
    throw BundleError(weights_name + ": " + e.what());
  }
  check_weights(bundle.spec, file, weights_name);
  try {
    bundle.policy = std::make_unique<Policy>(bundle.spec.network, file);
  } catch (const BundleError& e) {
    throw BundleError(weights_name + ": " + e.what());
  }
  return bundle;
}

Bundle load_bundle(const std::string& dir) {
  const std::string yaml_path = dir + "/deploy.yaml";
  const std::string weights_path = dir + "/policy.safetensors";
  const std::vector<unsigned char> yaml_bytes = read_bundle_file(yaml_path, yaml::kMaxBytes);
  return load_bundle_from_memory(std::string(yaml_bytes.begin(), yaml_bytes.end()),
                                 read_bundle_file(weights_path, kMaxWeightsBytes), yaml_path, weights_path);
}

}  // namespace simreal_rt
