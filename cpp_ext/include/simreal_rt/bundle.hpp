// The deploy bundle (DESIGN.md §4): deploy.yaml validated into a typed spec,
// and policy.safetensors checked against it (hash and tensor shapes).
//
// Bundle files are untrusted: every field is checked and every problem throws
// BundleError naming the file and field, e.g.
// "deploy.yaml: safety.torque_limit_nm: missing joint 'RL_calf'".
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "simreal_rt/observation.hpp"
#include "simreal_rt/safetensors.hpp"

namespace simreal_rt {

constexpr int kBundleFormatVersion = 1;

struct NetworkSpec {
  std::string type;        // "mlp" or "gru"
  std::size_t input_dim = 0;
  std::size_t output_dim = 0;
  std::vector<std::size_t> hidden_sizes;  // mlp: hidden layers; gru: the head's hidden layers
  std::string activation;  // elu, relu or tanh
  std::size_t rnn_hidden_dim = 0;  // gru only
  std::size_t rnn_num_layers = 0;  // gru only
};

// Per-joint vectors are in policy order (joint_names), converted from the
// by-name mappings of deploy.yaml.
struct SafetySpec {
  std::vector<double> joint_pos_lower_rad, joint_pos_upper_rad;
  std::vector<double> velocity_limit_rad_s;
  std::vector<double> torque_limit_nm;
  double tilt_limit_rad = 0.0;
  double state_timeout_s = 0.0;
  std::vector<double> standing_kp, standing_kd;
  double damping_kd = 0.0;
};

struct BundleSpec {
  int format_version = 0;
  std::string robot;
  std::vector<std::string> joint_names;  // policy order
  std::vector<double> default_joint_pos, kp, kd;
  std::string action_type;  // joint_position_offset
  double action_scale = 0.0, action_clip = 0.0;
  double control_dt_s = 0.0;
  std::vector<ObservationTerm> observation_terms;
  int observation_history = 1;
  NetworkSpec network;
  SafetySpec safety;
  std::string provenance_task, provenance_run, provenance_git_commit, provenance_date;
  long provenance_iteration = 0;
  std::string sha256;  // of policy.safetensors, 64 lowercase hex characters

  std::size_t num_joints() const { return joint_names.size(); }
  std::size_t observation_dim() const;  // frame width x history
};

// Parse and validate deploy.yaml text; `source` names the file in messages.
BundleSpec parse_bundle_spec(const std::string& yaml_text, const std::string& source = "deploy.yaml");

// Refuses weights whose SHA-256 differs from spec.sha256 (checked before parsing them).
void check_sha256(const BundleSpec& spec, const std::vector<unsigned char>& weights_bytes,
                  const std::string& source = "policy.safetensors");

// Refuses weights lacking a tensor the spec's network needs, or holding one of the wrong shape.
void check_weights(const BundleSpec& spec, const SafetensorsFile& weights, const std::string& source = "policy.safetensors");

}  // namespace simreal_rt
