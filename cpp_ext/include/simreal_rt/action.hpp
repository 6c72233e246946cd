// Action processor for the joint_position_offset action type: raw policy output
// -> clip -> q0 + scale * a -> joint-limit and torque-feasibility clamps, built
// without allocation on the control path.
#pragma once

#include <cstddef>
#include <vector>

namespace simreal_rt {

// Per joint, policy order; all vectors have the same length n >= 1.
struct ActionConfig {
  std::vector<double> default_pos;   // q0
  std::vector<double> lower, upper;  // joint position limits, lower <= upper
  std::vector<double> kp, kd;        // PD gains, >= 0 (kp == 0: no torque band)
  std::vector<double> torque_limit;  // tau_max > 0
  double scale = 1.0;                // > 0
  double clip = 1.0;                 // > 0
};

class ActionProcessor {
 public:
  // Throws std::invalid_argument naming the field (and index) on a wrong
  // length, an empty config, a non-finite value, lower > upper, kp or kd < 0,
  // torque_limit <= 0, scale <= 0 or clip <= 0.
  explicit ActionProcessor(const ActionConfig& config);

  // action: n floats (raw policy output); q, qdot: n measured values; writes n
  // targets to target_out. Per joint: a' = clamp(a, -clip, clip);
  // q* = q0 + scale * a'; clamp to [lower, upper]; clamp to the torque-feasible
  // band [q + (-tau_max + kd qdot) / kp, q + (tau_max + kd qdot) / kp] (kp > 0);
  // finally clamp to [lower, upper] again, so the joint limits win when the two
  // bands do not intersect (the result is then the limit nearest the band).
  // If any action, q or qdot value is non-finite (or a pointer is null), writes
  // the last valid targets (initially default_pos), changes no state and
  // returns false. Never writes a non-finite value. No heap allocation.
  bool process(const float* action, const double* q, const double* qdot, double* target_out) noexcept;

  // Targets of the last successful process() (default_pos before the first).
  const double* last_targets() const noexcept { return targets_.data(); }
  // Raw action of the last successful process(), as given (before clipping),
  // for the last_action observation term; zeros before the first.
  const double* last_action() const noexcept { return last_action_.data(); }
  // Back to the initial state: targets = default_pos, last action = zeros.
  void reset() noexcept;

  std::size_t size() const noexcept { return targets_.size(); }

 private:
  ActionConfig config_;
  std::vector<double> targets_;      // n
  std::vector<double> last_action_;  // n
  std::vector<double> scratch_;      // n, targets being computed
};

}  // namespace simreal_rt
