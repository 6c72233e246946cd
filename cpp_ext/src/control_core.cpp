#include "simreal_rt/control_core.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "finite.hpp"

namespace simreal_rt {

namespace {

ObservationConfig observation_config(const BundleSpec& spec) {
  ObservationConfig c;
  c.policy_joint_names = spec.joint_names;
  c.default_joint_pos = spec.default_joint_pos;
  c.terms = spec.observation_terms;
  c.history = spec.observation_history;
  return c;
}

ActionConfig action_config(const BundleSpec& spec) {
  ActionConfig c;
  c.default_pos = spec.default_joint_pos;
  c.lower = spec.safety.joint_pos_lower_rad;
  c.upper = spec.safety.joint_pos_upper_rad;
  c.kp = spec.kp;
  c.kd = spec.kd;
  c.torque_limit = spec.safety.torque_limit_nm;
  c.scale = spec.action_scale;
  c.clip = spec.action_clip;
  return c;
}

std::vector<double> sit_pose(const BundleSpec& spec, const std::map<std::string, double>& by_name) {
  if (by_name.empty()) return spec.default_joint_pos;
  std::vector<double> pose;
  for (std::size_t i = 0; i < spec.num_joints(); ++i) {
    const std::string& joint = spec.joint_names[i];
    const auto it = by_name.find(joint);
    if (it == by_name.end()) throw std::invalid_argument("sit_joint_pos: missing joint '" + joint + "'");
    // SIT_DOWN commands this pose verbatim, so it must respect the bundle's joint limits
    const double lower = spec.safety.joint_pos_lower_rad[i], upper = spec.safety.joint_pos_upper_rad[i];
    if (!(it->second >= lower && it->second <= upper))
      throw std::invalid_argument("sit_joint_pos: joint '" + joint + "' at " + std::to_string(it->second) +
                                  " rad is outside the bundle's joint limits [" + std::to_string(lower) + ", " +
                                  std::to_string(upper) + "]");
    pose.push_back(it->second);
  }
  for (const auto& [joint, value] : by_name)
    if (std::find(spec.joint_names.begin(), spec.joint_names.end(), joint) == spec.joint_names.end())
      throw std::invalid_argument("sit_joint_pos: joint '" + joint + "' is not in the bundle's joint_names");
  return pose;
}

bool observes_term(const BundleSpec& spec, const char* name) noexcept {
  for (const ObservationTerm& t : spec.observation_terms)
    if (t.name == name) return true;
  return false;
}

// Whether the controller watches the IMU; throws for ImuUse::NONE when the policy needs one.
bool resolve_imu_use(const BundleSpec& spec, ImuUse use) {
  switch (use) {
    case ImuUse::FROM_BUNDLE: return observes_imu(spec);
    case ImuUse::REQUIRED: return true;
    case ImuUse::NONE:
      if (observes_imu(spec))
        throw std::invalid_argument(
            "CoreOptions.imu is NONE but the bundle's observation reads the IMU (base_ang_vel or projected_gravity)");
      return false;
  }
  throw std::invalid_argument("CoreOptions.imu: unknown value");
}

ControllerConfig controller_config(const BundleSpec& spec, const CoreOptions& o) {
  ControllerConfig c;
  c.num_joints = static_cast<int>(spec.num_joints());
  c.default_pos = spec.default_joint_pos;
  c.sit_pos = sit_pose(spec, o.sit_joint_pos);
  c.standing_kp = spec.safety.standing_kp;
  c.standing_kd = spec.safety.standing_kd;
  c.policy_kp = spec.kp;
  c.policy_kd = spec.kd;
  c.damping_kd = spec.safety.damping_kd;
  c.state_timeout_s = spec.safety.state_timeout_s;
  c.tilt_limit_rad = spec.safety.tilt_limit_rad;
  c.use_imu = resolve_imu_use(spec, o.imu);
  c.stand_up_duration_s = o.stand_up_duration_s;
  c.stand_up_via_sit_pos = o.stand_up_via_sit_pose;
  c.sit_down_duration_s = o.sit_down_duration_s;
  c.max_target_step_rad = o.max_target_step_rad;
  c.inference_budget_s = o.inference_budget_s > 0.0 ? o.inference_budget_s : 0.5 * spec.control_dt_s;
  return c;
}

// Angle between the body's z axis and "up", from a (w, x, y, z) quaternion;
// NaN for a missing, non-finite or zero quaternion (the controller treats NaN as a fault).
double tilt_from_quaternion(const double* q) noexcept {
  if (!detail::all_finite(q, 4)) return std::nan("");
  const double norm2 = q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3];
  if (!(norm2 > 0.0)) return std::nan("");
  // z component of the body z axis in the world frame: 1 - 2 (x^2 + y^2) for a unit quaternion
  const double up = 1.0 - 2.0 * (q[1] * q[1] + q[2] * q[2]) / norm2;
  return std::acos(std::clamp(up, -1.0, 1.0));
}

}  // namespace

bool observes_imu(const BundleSpec& spec) noexcept {
  return observes_term(spec, "base_ang_vel") || observes_term(spec, "projected_gravity");
}

bool observes_target_pose(const BundleSpec& spec) noexcept { return observes_term(spec, "target_pose"); }

ControlCore::ControlCore(Bundle bundle, const std::vector<std::string>& driver_joint_names, const CoreOptions& options)
    : bundle_(std::move(bundle)),
      observation_(observation_config(bundle_.spec), driver_joint_names),
      action_(action_config(bundle_.spec)),
      controller_(controller_config(bundle_.spec, options)) {
  if (!bundle_.policy) throw std::invalid_argument("ControlCore needs a loaded policy");
  // Bundle is a plain struct: a hand-assembled spec/policy pair must still agree, or tick() would overrun buffers
  if (bundle_.policy->input_dim() != observation_.size() || bundle_.policy->output_dim() != bundle_.spec.num_joints())
    throw std::invalid_argument("ControlCore: the policy maps " + std::to_string(bundle_.policy->input_dim()) + " -> " +
                                std::to_string(bundle_.policy->output_dim()) + " but the spec's observation has " +
                                std::to_string(observation_.size()) + " values and " +
                                std::to_string(bundle_.spec.num_joints()) + " joints");
  const std::size_t n = num_joints();
  observation_buf_.assign(observation_.size(), 0.0f);
  action_buf_.assign(bundle_.policy->output_dim(), 0.0f);
  joint_pos_.assign(n, 0.0);
  joint_vel_.assign(n, 0.0);
  policy_targets_.assign(n, 0.0);
  observes_target_pose_ = simreal_rt::observes_target_pose(bundle_.spec);
}

bool ControlCore::accept_target_pose(const double* pose) noexcept {
  if (pose == nullptr || !observes_target_pose_) return false;
  if (!detail::all_finite(pose, 7)) return true;
  const double norm = std::sqrt(pose[3] * pose[3] + pose[4] * pose[4] + pose[5] * pose[5] + pose[6] * pose[6]);
  if (!(norm > 0.0) || !std::isfinite(norm)) return true;
  for (int i = 0; i < 3; ++i) target_pose_[i] = pose[i];
  // q and -q are one rotation but not one input: the policy trained on unit quaternions whose
  // largest-magnitude component is positive (sim/rotations.canonical_quat; "w >= 0" would flip at the
  // half-turn a downward-pointing gripper sits at); ties go to the first component, as torch's argmax
  int largest = 3;
  for (int i = 4; i < 7; ++i)
    if (std::fabs(pose[i]) > std::fabs(pose[largest])) largest = i;
  const double sign = pose[largest] < 0.0 ? -1.0 : 1.0;
  for (int i = 3; i < 7; ++i) target_pose_[i] = sign * pose[i] / norm;
  have_target_pose_ = true;
  return false;
}

bool ControlCore::run_policy(const Sensors& s) noexcept {
  ObservationBuilder::Inputs in;
  in.imu_quat_wxyz = s.imu_quat_wxyz;
  in.imu_ang_vel = s.imu_ang_vel;
  in.velocity_command = s.velocity_command;
  in.joint_pos_driver = s.joint_pos;
  in.joint_vel_driver = s.joint_vel;
  in.last_action = action_.last_action();
  in.target_pose = target_pose();  // the latest valid one, whichever tick gave it
  return observation_.build(in, observation_buf_.data());
}

CoreOutput ControlCore::tick(const Sensors& s) noexcept {
  const std::size_t n = num_joints();
  const bool target_pose_rejected = accept_target_pose(s.target_pose);
  const bool imu = uses_imu();
  const bool joints_present = s.joint_pos != nullptr && s.joint_vel != nullptr;
  const std::vector<std::size_t>& policy_to_driver = observation_.policy_to_driver();
  for (std::size_t i = 0; i < n && joints_present; ++i) {
    joint_pos_[i] = s.joint_pos[policy_to_driver[i]];
    joint_vel_[i] = s.joint_vel[policy_to_driver[i]];
  }
  have_joints_ = have_joints_ || joints_present;
  const double nan = std::nan("");
  if (!joints_present) std::fill(joint_pos_.begin(), joint_pos_.end(), nan);  // a missing reading is a fault

  TickInput in;
  in.time_s = s.time_s;
  in.last_joint_state_s = s.joint_state_stamp_s;
  in.last_imu_s = s.imu_stamp_s;
  in.joint_pos = joint_pos_.data();
  in.estop = s.estop;
  in.tilt_rad = imu ? tilt_from_quaternion(s.imu_quat_wxyz) : nan;  // without an IMU: not measured
  // checked in every state, not only POLICY: a sensor gone bad is a fault before the policy ever runs
  in.observation_finite = joints_present && detail::all_finite(joint_vel_.data(), n) &&
                          (!imu || detail::all_finite(s.imu_ang_vel, 3));
  bool policy_ran = false;
  if (controller_.state() == State::POLICY) {
    const auto start = std::chrono::steady_clock::now();
    in.observation_finite = in.observation_finite && run_policy(s);
    if (in.observation_finite) {
      bundle_.policy->evaluate(observation_buf_.data(), action_buf_.data());
      in.action_finite = action_.process(action_buf_.data(), joint_pos_.data(), joint_vel_.data(), policy_targets_.data());
      policy_ran = true;
    }
    in.policy_targets = policy_targets_.data();
    inference_time_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    in.inference_time_s = inference_time_s_;
  }
  const Command c = controller_.tick(in);
  CoreOutput out;
  out.state = c.state;
  out.fault = controller_.active_fault();
  out.damping_cause = controller_.damping_cause();
  out.target_pos = c.target_pos;
  out.kp = c.kp;
  out.kd = c.kd;
  out.policy_ran = policy_ran;
  out.inference_time_s = policy_ran ? inference_time_s_ : 0.0;
  out.tilt_rad = in.tilt_rad;
  out.have_target_pose = have_target_pose_;
  out.target_pose_rejected = target_pose_rejected;
  return out;
}

Result ControlCore::request(Request r, double time_s) noexcept {
  if (r == Request::START_POLICY && observes_target_pose_ && !have_target_pose_ &&
      controller_.state() == State::STANDING)
    return {false, "refused: no target pose given yet (the policy observes target_pose)"};
  const Result result = controller_.request(r, time_s, have_joints_ ? joint_pos_.data() : nullptr);
  if (result.accepted && r == Request::START_POLICY) {
    observation_.reset();
    action_.reset();
    bundle_.policy->reset();
  }
  return result;
}

}  // namespace simreal_rt
