#include "simreal_rt/state_machine.hpp"

#include "finite.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace simreal_rt {

namespace {

using detail::all_finite;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Rounding in from + s * (to - from) can overshoot the ideal per-tick step by
// a few ulps; shrinking the allowed progress by this factor keeps the
// max_target_step_rad guarantee strict instead of "up to rounding".
constexpr double kStepSafety = 1.0 - 1e-9;

[[noreturn]] void invalid(const std::string& msg) { throw std::invalid_argument(msg); }

void check_vector(const char* name, const std::vector<double>& v, std::size_t n,
                  bool non_negative) {
  if (v.size() != n) {
    std::ostringstream os;
    os << name << " has " << v.size() << " values, expected " << n;
    invalid(os.str());
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i]) || (non_negative && v[i] < 0.0)) {
      std::ostringstream os;
      os << name << "[" << i << "] is " << v[i] << ", expected a finite value"
         << (non_negative ? " >= 0" : "");
      invalid(os.str());
    }
  }
}

void check_scalar(const char* name, double v, bool allow_zero) {
  const bool ok = std::isfinite(v) && (allow_zero ? v >= 0.0 : v > 0.0);
  if (!ok) {
    std::ostringstream os;
    os << name << " is " << v << ", expected a finite value " << (allow_zero ? ">= 0" : "> 0");
    invalid(os.str());
  }
}

// Negated comparisons on purpose: a NaN stamp, tilt or timing must count as
// a fault, and every comparison with NaN is false.
// A stamp from the future (a skewed clock, a driver stamping garbage) cannot
// vouch for freshness either: only |now - stamp| <= timeout counts as fresh.
bool is_stale(double now, double stamp, double timeout) noexcept {
  return !(now - stamp <= timeout && stamp - now <= timeout);
}

const char* fault_refusal(Fault f) noexcept {
  switch (f) {
    case Fault::NONE: return "accepted";
    case Fault::ESTOP: return "refused: fault present: e-stop asserted";
    case Fault::STALE_JOINT_STATE: return "refused: fault present: joint state stale";
    case Fault::STALE_IMU: return "refused: fault present: IMU stale";
    case Fault::TILT: return "refused: fault present: tilt over limit";
    case Fault::NONFINITE_OBSERVATION: return "refused: fault present: non-finite observation";
    case Fault::NONFINITE_ACTION: return "refused: fault present: non-finite action";
    case Fault::INFERENCE_OVERRUN: return "refused: fault present: inference overrun";
    case Fault::OPERATOR_DAMP: return "refused: fault present: operator damp";
  }
  return "refused: fault present";
}

constexpr Result kAccepted{true, "accepted"};

}  // namespace

const char* to_string(State s) noexcept {
  switch (s) {
    case State::ZERO_TORQUE: return "ZERO_TORQUE";
    case State::STAND_UP: return "STAND_UP";
    case State::STANDING: return "STANDING";
    case State::POLICY: return "POLICY";
    case State::SIT_DOWN: return "SIT_DOWN";
    case State::DAMPING: return "DAMPING";
  }
  return "UNKNOWN";
}

const char* to_string(Fault f) noexcept {
  switch (f) {
    case Fault::NONE: return "NONE";
    case Fault::ESTOP: return "ESTOP";
    case Fault::STALE_JOINT_STATE: return "STALE_JOINT_STATE";
    case Fault::STALE_IMU: return "STALE_IMU";
    case Fault::TILT: return "TILT";
    case Fault::NONFINITE_OBSERVATION: return "NONFINITE_OBSERVATION";
    case Fault::NONFINITE_ACTION: return "NONFINITE_ACTION";
    case Fault::INFERENCE_OVERRUN: return "INFERENCE_OVERRUN";
    case Fault::OPERATOR_DAMP: return "OPERATOR_DAMP";
  }
  return "UNKNOWN";
}

const char* to_string(Request r) noexcept {
  switch (r) {
    case Request::STAND_UP: return "stand_up";
    case Request::START_POLICY: return "start_policy";
    case Request::SIT_DOWN: return "sit_down";
    case Request::DAMP: return "damp";
    case Request::RESET: return "reset";
  }
  return "unknown";
}

Controller::Controller(const ControllerConfig& config) : cfg_(config), n_(0) {
  if (cfg_.num_joints <= 0) {
    invalid("num_joints is " + std::to_string(cfg_.num_joints) + ", expected > 0");
  }
  n_ = static_cast<std::size_t>(cfg_.num_joints);
  check_vector("default_pos", cfg_.default_pos, n_, false);
  check_vector("sit_pos", cfg_.sit_pos, n_, false);
  check_vector("standing_kp", cfg_.standing_kp, n_, true);
  check_vector("standing_kd", cfg_.standing_kd, n_, true);
  check_vector("policy_kp", cfg_.policy_kp, n_, true);
  check_vector("policy_kd", cfg_.policy_kd, n_, true);
  check_scalar("damping_kd", cfg_.damping_kd, true);
  check_scalar("state_timeout_s", cfg_.state_timeout_s, false);
  check_scalar("tilt_limit_rad", cfg_.tilt_limit_rad, false);
  check_scalar("stand_up_duration_s", cfg_.stand_up_duration_s, true);
  check_scalar("sit_down_duration_s", cfg_.sit_down_duration_s, true);
  check_scalar("max_target_step_rad", cfg_.max_target_step_rad, false);
  check_scalar("inference_budget_s", cfg_.inference_budget_s, false);

  // All per-tick storage is sized here so tick() never allocates.
  ramp_from_.assign(n_, 0.0);
  ramp_to_.assign(n_, 0.0);
  // Zeros are the fallback target if the very first measurement is non-finite.
  target_.assign(n_, 0.0);
  kp_.assign(n_, 0.0);
  kd_.assign(n_, 0.0);
}

Controller::FaultInputs Controller::fault_inputs(const TickInput& in) const noexcept {
  FaultInputs f;
  f.estop = in.estop;
  f.observation_ok = in.observation_finite && all_finite(in.joint_pos, n_) &&
                     (!cfg_.use_imu || std::isfinite(in.tilt_rad));
  f.last_joint_state_s = in.last_joint_state_s;
  f.last_imu_s = in.last_imu_s;
  f.tilt_rad = in.tilt_rad;
  f.action_ok = in.action_finite && !(state_ == State::POLICY && !all_finite(in.policy_targets, n_));
  f.inference_time_s = in.inference_time_s;
  return f;
}

Fault Controller::first_fault(const FaultInputs& f, double time_s) const noexcept {
  if (f.estop) return Fault::ESTOP;
  if (!f.observation_ok) return Fault::NONFINITE_OBSERVATION;
  if (is_stale(time_s, f.last_joint_state_s, cfg_.state_timeout_s)) return Fault::STALE_JOINT_STATE;
  if (cfg_.use_imu && is_stale(time_s, f.last_imu_s, cfg_.state_timeout_s)) return Fault::STALE_IMU;
  if (cfg_.use_imu && !(std::fabs(f.tilt_rad) <= cfg_.tilt_limit_rad)) return Fault::TILT;
  if (!f.action_ok) return Fault::NONFINITE_ACTION;
  if (!(f.inference_time_s <= cfg_.inference_budget_s)) return Fault::INFERENCE_OVERRUN;
  return Fault::NONE;
}

Fault Controller::present_fault(double time_s, const double* joint_pos) const noexcept {
  // Without a single tick there is no evidence the sensors are alive.
  if (!have_tick_) return Fault::STALE_JOINT_STATE;
  FaultInputs now = last_inputs_;
  now.observation_ok = now.observation_ok && (joint_pos == nullptr || all_finite(joint_pos, n_));
  return first_fault(now, time_s);
}

void Controller::enter_damping(Fault cause) noexcept {
  state_ = State::DAMPING;
  cause_ = cause;
  rise_after_fold_ = false;
}

void Controller::begin_ramp(State s, const double* from, const std::vector<double>& to,
                            double duration_s, double time_s) noexcept {
  double max_dist = 0.0;
  for (std::size_t i = 0; i < n_; ++i) {
    ramp_from_[i] = from[i];
    ramp_to_[i] = to[i];
    max_dist = std::max(max_dist, std::fabs(to[i] - from[i]));
  }
  // Progress is shared by all joints so the pose moves on a straight line;
  // the joint with the longest way sets the speed limit.
  ramp_rate_limit_ = max_dist > 0.0 ? cfg_.max_target_step_rad * kStepSafety / max_dist : kInf;
  ramp_progress_ = 0.0;
  ramp_duration_s_ = duration_s;
  ramp_last_time_s_ = time_s;
  std::copy(ramp_from_.begin(), ramp_from_.end(), target_.begin());
  state_ = s;
}

void Controller::advance_ramp(double time_s) noexcept {
  double dt = time_s - ramp_last_time_s_;
  // Time going backwards or NaN must not move the ramp at all.
  if (!(dt > 0.0)) {
    dt = 0.0;
  } else {
    ramp_last_time_s_ = time_s;
  }
  const double by_time = ramp_duration_s_ > 0.0 ? dt / ramp_duration_s_ : kInf;
  ramp_progress_ += std::min(by_time, ramp_rate_limit_);
  if (ramp_progress_ >= 1.0) {
    // Copy instead of evaluating the formula so the end pose is exact.
    ramp_progress_ = 1.0;
    std::copy(ramp_to_.begin(), ramp_to_.end(), target_.begin());
    return;
  }
  for (std::size_t i = 0; i < n_; ++i) {
    target_[i] = ramp_from_[i] + ramp_progress_ * (ramp_to_[i] - ramp_from_[i]);
  }
}

void Controller::fill_measured_targets(const double* joint_pos) noexcept {
  // A non-finite reading keeps that joint's previous target, which is finite
  // by construction, so the command stays finite whatever the sensors say.
  if (joint_pos == nullptr) return;
  for (std::size_t i = 0; i < n_; ++i) {
    if (std::isfinite(joint_pos[i])) target_[i] = joint_pos[i];
  }
}

void Controller::set_gains(const std::vector<double>& kp, const std::vector<double>& kd) noexcept {
  std::copy(kp.begin(), kp.end(), kp_.begin());
  std::copy(kd.begin(), kd.end(), kd_.begin());
}

void Controller::set_gains(double kp, double kd) noexcept {
  std::fill(kp_.begin(), kp_.end(), kp);
  std::fill(kd_.begin(), kd_.end(), kd);
}

Command Controller::tick(const TickInput& in) noexcept {
  last_inputs_ = fault_inputs(in);
  have_tick_ = true;
  const Fault fault = first_fault(last_inputs_, in.time_s);
  last_fault_ = fault;

  // DAMPING is latched: a later, different fault must not overwrite the cause.
  if (fault != Fault::NONE && state_ != State::DAMPING) enter_damping(fault);

  // A finished ramp hands over one tick after reaching its end pose, so the
  // end pose itself is commanded exactly before the next state takes over.
  if (state_ == State::STAND_UP && ramp_progress_ >= 1.0) {
    if (rise_after_fold_) {
      // second leg, from the sit pose just commanded (target_ holds it exactly)
      rise_after_fold_ = false;
      begin_ramp(State::STAND_UP, target_.data(), cfg_.default_pos, cfg_.stand_up_duration_s, in.time_s);
    } else {
      state_ = State::STANDING;
    }
  }
  if (state_ == State::SIT_DOWN && ramp_progress_ >= 1.0) state_ = State::ZERO_TORQUE;

  switch (state_) {
    case State::ZERO_TORQUE:
      fill_measured_targets(in.joint_pos);
      set_gains(0.0, 0.0);
      break;
    case State::DAMPING:
      fill_measured_targets(in.joint_pos);
      set_gains(0.0, cfg_.damping_kd);
      break;
    case State::STAND_UP:
    case State::SIT_DOWN:
      advance_ramp(in.time_s);
      set_gains(cfg_.standing_kp, cfg_.standing_kd);
      break;
    case State::STANDING:
      std::copy(cfg_.default_pos.begin(), cfg_.default_pos.end(), target_.begin());
      set_gains(cfg_.standing_kp, cfg_.standing_kd);
      break;
    case State::POLICY:
      // Finiteness was verified by first_fault, otherwise we'd be DAMPING.
      std::copy(in.policy_targets, in.policy_targets + n_, target_.begin());
      set_gains(cfg_.policy_kp, cfg_.policy_kd);
      break;
  }
  return Command{state_, target_.data(), kp_.data(), kd_.data()};
}

Result Controller::request(Request r, double time_s, const double* joint_pos) noexcept {
  switch (r) {
    case Request::STAND_UP: {
      if (state_ != State::ZERO_TORQUE) {
        return {false, "stand_up is only accepted in ZERO_TORQUE"};
      }
      if (joint_pos == nullptr) {
        return {false, "stand_up needs the measured joint positions"};
      }
      const Fault f = present_fault(time_s, joint_pos);
      if (f != Fault::NONE) return {false, fault_refusal(f)};
      begin_ramp(State::STAND_UP, joint_pos, cfg_.stand_up_via_sit_pos ? cfg_.sit_pos : cfg_.default_pos,
                 cfg_.stand_up_duration_s, time_s);
      rise_after_fold_ = cfg_.stand_up_via_sit_pos;
      return kAccepted;
    }
    case Request::START_POLICY: {
      if (state_ != State::STANDING) {
        return {false, "start_policy is only accepted in STANDING"};
      }
      const Fault f = present_fault(time_s, joint_pos);
      if (f != Fault::NONE) return {false, fault_refusal(f)};
      state_ = State::POLICY;
      return kAccepted;
    }
    case Request::SIT_DOWN: {
      if (state_ != State::STANDING && state_ != State::POLICY) {
        return {false, "sit_down is only accepted in STANDING or POLICY"};
      }
      // Start from what was last commanded, not from the measurement, so the
      // target trajectory is continuous.
      begin_ramp(State::SIT_DOWN, target_.data(), cfg_.sit_pos, cfg_.sit_down_duration_s,
                 time_s);
      return kAccepted;
    }
    case Request::DAMP: {
      if (state_ == State::DAMPING) return {true, "already in DAMPING"};
      enter_damping(Fault::OPERATOR_DAMP);
      return kAccepted;
    }
    case Request::RESET: {
      if (state_ != State::DAMPING) return {false, "reset is only accepted in DAMPING"};
      const Fault f = present_fault(time_s, joint_pos);
      if (f != Fault::NONE) return {false, fault_refusal(f)};
      state_ = State::ZERO_TORQUE;
      cause_ = Fault::NONE;
      return kAccepted;
    }
  }
  return {false, "unknown request"};
}

}  // namespace simreal_rt
