#include "simreal_rt/observation.hpp"

#include "finite.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <unordered_map>

namespace simreal_rt {

using detail::all_finite;

namespace {

struct KnownTerm {
  const char* name;
  std::size_t width;  // 0 = number of policy joints
};
// Same order as ObservationBuilder::Kind.
constexpr KnownTerm kKnownTerms[] = {
    {"base_ang_vel", 3}, {"projected_gravity", 3}, {"velocity_command", 3}, {"joint_pos_rel", 0},
    {"joint_vel", 0},    {"last_action", 0},       {"target_pose", 7},
};

const KnownTerm* find_term(const std::string& name) {
  for (const KnownTerm& k : kKnownTerms)
    if (name == k.name) return &k;
  return nullptr;
}

}  // namespace

long observation_term_width(const std::string& name, std::size_t num_joints) {
  const KnownTerm* k = find_term(name);
  if (k == nullptr) return -1;
  return static_cast<long>(k->width ? k->width : num_joints);
}

std::string known_observation_terms() {
  std::string names;
  for (const KnownTerm& k : kKnownTerms) names += (names.empty() ? "" : ", ") + std::string(k.name);
  return names;
}

ObservationBuilder::ObservationBuilder(const ObservationConfig& config,
                                       const std::vector<std::string>& driver_joint_names) {
  const std::size_t n = config.policy_joint_names.size();
  if (config.history < 1) throw std::invalid_argument("observation history must be >= 1, got " + std::to_string(config.history));
  if (config.default_joint_pos.size() != n)
    throw std::invalid_argument("default_joint_pos has " + std::to_string(config.default_joint_pos.size()) +
                                " values for " + std::to_string(n) + " policy joints");
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(config.default_joint_pos[i]))
      throw std::invalid_argument("default_joint_pos for joint '" + config.policy_joint_names[i] + "' is not finite");
  if (config.terms.empty()) throw std::invalid_argument("observation has no terms");

  std::unordered_map<std::string, std::size_t> driver_index;
  for (std::size_t i = 0; i < driver_joint_names.size(); ++i)
    if (!driver_index.emplace(driver_joint_names[i], i).second)
      throw std::invalid_argument("duplicate driver joint name '" + driver_joint_names[i] + "'");
  std::unordered_map<std::string, std::size_t> seen;
  std::string missing;
  for (const std::string& name : config.policy_joint_names) {
    if (!seen.emplace(name, 0).second) throw std::invalid_argument("duplicate policy joint name '" + name + "'");
    const auto it = driver_index.find(name);
    if (it == driver_index.end()) {
      missing += (missing.empty() ? "'" : ", '") + name + "'";
      continue;
    }
    policy_to_driver_.push_back(it->second);
  }
  if (!missing.empty()) throw std::invalid_argument("policy joints missing from the driver joint names: " + missing);
  num_driver_joints_ = driver_joint_names.size();
  default_pos_ = config.default_joint_pos;

  for (const ObservationTerm& t : config.terms) {
    const KnownTerm* k = find_term(t.name);
    if (k == nullptr)
      throw std::invalid_argument("unknown observation term '" + t.name + "'; known terms: " + known_observation_terms());
    if (!std::isfinite(t.scale)) throw std::invalid_argument("observation term '" + t.name + "': scale is not finite");
    if (std::isnan(t.clip) || t.clip < 0.0)
      throw std::invalid_argument("observation term '" + t.name + "': clip must be >= 0");
    terms_.push_back({static_cast<Kind>(k - kKnownTerms), t.scale, t.clip});
    frame_dim_ += k->width ? k->width : n;
  }
  history_ = static_cast<std::size_t>(config.history);
  frame_.assign(frame_dim_, 0.0f);
  ring_.assign(frame_dim_ * history_, 0.0f);
}

void ObservationBuilder::reset() noexcept {
  empty_ = true;
  head_ = 0;
}

bool ObservationBuilder::build(const Inputs& in, float* out) noexcept {
  const std::size_t n = policy_to_driver_.size();
  const std::size_t nd = num_driver_joints_;
  float* f = frame_.data();
  bool ok = true;
  auto put = [&](const Term& t, double raw) {
    const double v = std::clamp(raw * t.scale, -t.clip, t.clip);
    if (!std::isfinite(v)) ok = false;
    *f++ = static_cast<float>(v);
  };
  for (const Term& t : terms_) {
    if (!ok) break;
    switch (t.kind) {
      case Kind::BASE_ANG_VEL:
        if (!all_finite(in.imu_ang_vel, 3)) { ok = false; break; }
        for (int i = 0; i < 3; ++i) put(t, in.imu_ang_vel[i]);
        break;
      case Kind::PROJECTED_GRAVITY: {
        const double* q = in.imu_quat_wxyz;
        if (!all_finite(q, 4)) { ok = false; break; }
        const double norm = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
        if (!(norm > 0.0) || !std::isfinite(norm)) { ok = false; break; }
        const double w = q[0] / norm, x = q[1] / norm, y = q[2] / norm, z = q[3] / norm;
        // R(q)^T v for v = (0, 0, -1), same formula as sim/rotations.py:
        // t = 2 (xyz x v); v - w t + xyz x t
        const double tx = -2.0 * y, ty = 2.0 * x, tz = 0.0;
        put(t, 0.0 - w * tx + (y * tz - z * ty));
        put(t, 0.0 - w * ty + (z * tx - x * tz));
        put(t, -1.0 - w * tz + (x * ty - y * tx));
        break;
      }
      case Kind::VELOCITY_COMMAND:
        if (!all_finite(in.velocity_command, 3)) { ok = false; break; }
        for (int i = 0; i < 3; ++i) put(t, in.velocity_command[i]);
        break;
      case Kind::JOINT_POS_REL:
        if (!all_finite(in.joint_pos_driver, nd)) { ok = false; break; }
        for (std::size_t i = 0; i < n; ++i) put(t, in.joint_pos_driver[policy_to_driver_[i]] - default_pos_[i]);
        break;
      case Kind::JOINT_VEL:
        if (!all_finite(in.joint_vel_driver, nd)) { ok = false; break; }
        for (std::size_t i = 0; i < n; ++i) put(t, in.joint_vel_driver[policy_to_driver_[i]]);
        break;
      case Kind::LAST_ACTION:
        if (!all_finite(in.last_action, n)) { ok = false; break; }
        for (std::size_t i = 0; i < n; ++i) put(t, in.last_action[i]);
        break;
      case Kind::TARGET_POSE:
        if (!all_finite(in.target_pose, 7)) { ok = false; break; }
        for (int i = 0; i < 7; ++i) put(t, in.target_pose[i]);
        break;
    }
  }
  const std::size_t total = size();
  if (!ok) {
    std::fill(out, out + total, 0.0f);
    return false;
  }
  if (empty_) {
    for (std::size_t s = 0; s < history_; ++s) std::copy(frame_.begin(), frame_.end(), ring_.begin() + s * frame_dim_);
    head_ = history_ - 1;
    empty_ = false;
  } else {
    head_ = (head_ + 1) % history_;
    std::copy(frame_.begin(), frame_.end(), ring_.begin() + head_ * frame_dim_);
  }
  // oldest first: the slot after head_ is the oldest
  for (std::size_t k = 0; k < history_; ++k) {
    const std::size_t slot = (head_ + 1 + k) % history_;
    std::copy_n(ring_.data() + slot * frame_dim_, frame_dim_, out + k * frame_dim_);
  }
  return true;
}

}  // namespace simreal_rt
