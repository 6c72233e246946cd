#include "simreal_rt/action.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace simreal_rt {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::invalid_argument("ActionConfig." + what); }

std::string at(const char* field, std::size_t i) { return std::string(field) + "[" + std::to_string(i) + "]"; }

void check_vector(const char* field, const std::vector<double>& v, std::size_t n) {
  if (v.size() != n)
    fail(std::string(field) + ": length " + std::to_string(v.size()) + ", expected " + std::to_string(n) +
         " (length of default_pos)");
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(v[i])) fail(at(field, i) + " is not finite");
}

double clamp(double x, double lo, double hi) { return std::min(std::max(x, lo), hi); }

}  // namespace

ActionProcessor::ActionProcessor(const ActionConfig& config) : config_(config) {
  const std::size_t n = config.default_pos.size();
  if (n == 0) fail("default_pos is empty");
  check_vector("default_pos", config.default_pos, n);
  check_vector("lower", config.lower, n);
  check_vector("upper", config.upper, n);
  check_vector("kp", config.kp, n);
  check_vector("kd", config.kd, n);
  check_vector("torque_limit", config.torque_limit, n);
  for (std::size_t i = 0; i < n; ++i) {
    if (config.lower[i] > config.upper[i]) fail(at("lower", i) + " > upper[" + std::to_string(i) + "]");
    if (config.kp[i] < 0) fail(at("kp", i) + " is negative");
    if (config.kd[i] < 0) fail(at("kd", i) + " is negative");
    if (!(config.torque_limit[i] > 0)) fail(at("torque_limit", i) + " must be > 0");
  }
  if (!std::isfinite(config.scale) || !(config.scale > 0)) fail("scale must be finite and > 0");
  if (!std::isfinite(config.clip) || !(config.clip > 0)) fail("clip must be finite and > 0");
  targets_.assign(n, 0.0);
  last_action_.assign(n, 0.0);
  scratch_.assign(n, 0.0);
  reset();
}

void ActionProcessor::reset() noexcept {
  std::copy(config_.default_pos.begin(), config_.default_pos.end(), targets_.begin());
  std::fill(last_action_.begin(), last_action_.end(), 0.0);
}

bool ActionProcessor::process(const float* action, const double* q, const double* qdot,
                              double* target_out) noexcept {
  const std::size_t n = targets_.size();
  bool ok = action != nullptr && q != nullptr && qdot != nullptr;
  for (std::size_t i = 0; ok && i < n; ++i)
    ok = std::isfinite(action[i]) && std::isfinite(q[i]) && std::isfinite(qdot[i]);
  if (ok) {
    const ActionConfig& c = config_;
    for (std::size_t i = 0; i < n; ++i) {
      const double a = clamp(static_cast<double>(action[i]), -c.clip, c.clip);
      double x = clamp(c.default_pos[i] + c.scale * a, c.lower[i], c.upper[i]);
      if (c.kp[i] > 0) {
        // PD torque kp (x - q) - kd qdot within [-tau_max, tau_max]; the bounds
        // may overflow to +-inf for tiny kp, which clamp() handles.
        const double damping = c.kd[i] * qdot[i];
        const double lo = q[i] + (-c.torque_limit[i] + damping) / c.kp[i];
        const double hi = q[i] + (c.torque_limit[i] + damping) / c.kp[i];
        x = clamp(x, lo, hi);
      }
      x = clamp(x, c.lower[i], c.upper[i]);  // joint limits win if the bands do not intersect
      ok = ok && std::isfinite(x);           // cannot fail with a valid config; kept as a guard
      scratch_[i] = x;
    }
  }
  if (ok) {
    std::copy(scratch_.begin(), scratch_.end(), targets_.begin());
    for (std::size_t i = 0; i < n; ++i) last_action_[i] = static_cast<double>(action[i]);
  }
  if (target_out != nullptr) std::copy(targets_.begin(), targets_.end(), target_out);
  return ok;
}

}  // namespace simreal_rt
