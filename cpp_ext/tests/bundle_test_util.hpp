// Test helper: a small valid deploy bundle (two joints, MLP) built in memory.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "safetensors_test_util.hpp"
#include "simreal_rt/control_core.hpp"
#include "simreal_rt/safetensors.hpp"

namespace test_util {

// A valid two-joint bundle: terms base_ang_vel (3) + joint_pos_rel (2) +
// last_action (2) = 7 per frame, history 2 -> input 14; MLP 14 -> 4 -> 2.
struct TestBundle {
  std::string yaml;
  std::vector<unsigned char> weights;
};

inline std::vector<float> ramp(std::size_t n, float start) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = start + 0.01f * static_cast<float>(i);
  return v;
}

inline std::vector<unsigned char> mlp_weights() {
  return serialize({{"layers.0.weight", {4, 14}, ramp(56, -0.2f)},
                    {"layers.0.bias", {4}, ramp(4, 0.1f)},
                    {"layers.1.weight", {2, 4}, ramp(8, -0.05f)},
                    {"layers.1.bias", {2}, ramp(2, 0.0f)}});
}

// The fields every two-joint test bundle shares, up to its observation terms.
inline std::string two_joint_yaml_head(const std::string& robot) {
  return "format_version: 1\n"
         "robot: " + robot + "\n"
         "joint_names:\n- j1\n- j2\n"
         "default_joint_pos:\n  j1: 0.1\n  j2: -0.2\n"
         "kp: {j1: 20.0, j2: 20.0}\n"
         "kd: {j1: 0.5, j2: 0.5}\n"
         "action:\n  type: joint_position_offset\n  scale: 0.25\n  clip: 100.0\n"
         "control_dt: 0.02\n"
         "observation:\n  terms:\n";
}

// true when every commanded target and gain of the first n joints is finite
inline bool finite_command(const simreal_rt::CoreOutput& out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(out.target_pos[i]) || !std::isfinite(out.kp[i]) || !std::isfinite(out.kd[i])) return false;
  return true;
}

inline std::string bundle_yaml(const std::string& sha256) {
  return two_joint_yaml_head("two_link") +
         "  - name: base_ang_vel\n    dim: 3\n    scale: 0.25\n    clip: 100.0\n"
         "  - name: joint_pos_rel\n    dim: 2\n    scale: 1.0\n    clip: 100.0\n"
         "  - name: last_action\n    dim: 2\n    scale: 1.0\n    clip: 100.0\n"
         "  history: 2\n"
         "network:\n  type: mlp\n  input_dim: 14\n  output_dim: 2\n  hidden_sizes:\n  - 4\n  activation: elu\n"
         "  normalizer: folded into layers.0\n"
         "safety:\n"
         "  joint_pos_limits_rad:\n    j1:\n    - -1.0\n    - 1.0\n    j2: [-2.0, 0.5]\n"
         "  velocity_limit_rad_s: {j1: 30.0, j2: 30.0}\n"
         "  torque_limit_nm: {j1: 10.0, j2: 12.0}\n"
         "  tilt_limit_rad: 1.0\n  state_timeout_s: 0.1\n"
         "  standing_kp: {j1: 20.0, j2: 20.0}\n  standing_kd: {j1: 0.5, j2: 0.5}\n  damping_kd: 2.0\n"
         "provenance:\n  task: test\n  run: r\n  iteration: 3\n  git_commit: abc\n  date: '2026-11-22T00:00:00+00:00'\n"
         "sha256: " + sha256 + "\n";
}

inline TestBundle valid_bundle() {
  TestBundle b;
  b.weights = mlp_weights();
  b.yaml = bundle_yaml(simreal_rt::sha256_hex(b.weights));
  return b;
}

}  // namespace test_util
