// Controller state machine and watchdog for the simreal real-time core.
//
// Pure logic: every decision is driven by the timestamps passed in, so the
// same code runs inside the ROS 2 node and in deterministic unit tests. No
// clock is read, no thread is started, nothing is allocated after
// construction and tick()/request() never throw, because they sit on the
// real-time control path.
#pragma once

#include <cstddef>
#include <vector>

namespace simreal_rt {

enum class State { ZERO_TORQUE, STAND_UP, STANDING, POLICY, SIT_DOWN, DAMPING };

enum class Fault {
  NONE,
  ESTOP,
  STALE_JOINT_STATE,
  STALE_IMU,
  TILT,
  NONFINITE_OBSERVATION,
  NONFINITE_ACTION,
  INFERENCE_OVERRUN,
  OPERATOR_DAMP,
};

enum class Request { STAND_UP, START_POLICY, SIT_DOWN, DAMP, RESET };

const char* to_string(State s) noexcept;
const char* to_string(Fault f) noexcept;
const char* to_string(Request r) noexcept;

struct ControllerConfig {
  int num_joints = 12;
  std::vector<double> default_pos;  // standing pose, rad
  std::vector<double> sit_pos;      // pose SIT_DOWN ends in, rad
  std::vector<double> standing_kp, standing_kd;  // STAND_UP/STANDING/SIT_DOWN
  std::vector<double> policy_kp, policy_kd;      // POLICY
  double damping_kd = 1.0;
  double state_timeout_s = 0.1;  // max age of joint state / IMU
  double tilt_limit_rad = 0.8;
  // false for a robot without an IMU (e.g. a fixed-base arm): no STALE_IMU or TILT fault, and the IMU stamp
  // and tilt inputs are ignored (a NaN tilt is then no fault either). tilt_limit_rad is still validated.
  bool use_imu = true;
  double stand_up_duration_s = 2.0;  // per leg of the stand-up ramp
  // Stand up in two legs: fold into sit_pos first (the trunk still on the ground), then rise to
  // default_pos. A legged robot lying with its legs splayed tips over if it rises straight.
  bool stand_up_via_sit_pos = false;
  double sit_down_duration_s = 2.0;
  double max_target_step_rad = 0.01;  // per tick, STAND_UP and SIT_DOWN
  double inference_budget_s = 0.005;
};

struct TickInput {
  double time_s = 0.0;
  double last_joint_state_s = 0.0;  // stamp of newest joint state message
  double last_imu_s = 0.0;          // stamp of newest IMU message (ignored without use_imu)
  const double* joint_pos = nullptr;  // num_joints measured positions
  bool estop = false;
  double tilt_rad = 0.0;  // measured tilt from upright (ignored without use_imu)
  bool observation_finite = true;
  const double* policy_targets = nullptr;  // required in POLICY only
  bool action_finite = true;
  double inference_time_s = 0.0;
};

// Pointers refer to buffers owned by the controller; valid until the next
// tick() and always num_joints long and finite.
struct Command {
  State state;
  const double* target_pos;
  const double* kp;
  const double* kd;
};

struct Result {
  bool accepted;
  const char* reason;  // static string, never null
};

class Controller {
 public:
  // Throws std::invalid_argument naming the offending field.
  explicit Controller(const ControllerConfig& config);

  Command tick(const TickInput& in) noexcept;

  // joint_pos is required for STAND_UP (it is the interpolation start) and
  // optional otherwise; when given it is also checked for finiteness.
  Result request(Request r, double time_s, const double* joint_pos) noexcept;

  State state() const noexcept { return state_; }
  // Why the controller is in DAMPING (NONE outside DAMPING).
  Fault damping_cause() const noexcept { return cause_; }
  // Highest-priority fault seen in the most recent tick (NONE if clean).
  Fault active_fault() const noexcept { return last_fault_; }
  const ControllerConfig& config() const noexcept { return cfg_; }

 private:
  // What the fault checks read, condensed from one tick's inputs.
  struct FaultInputs {
    bool estop = false;
    bool observation_ok = true;  // observation, joint positions and tilt all finite
    double last_joint_state_s = 0.0;
    double last_imu_s = 0.0;
    double tilt_rad = 0.0;
    bool action_ok = true;  // action finite, and policy targets present and finite in POLICY
    double inference_time_s = 0.0;
  };
  FaultInputs fault_inputs(const TickInput& in) const noexcept;
  // The one place that orders the faults: the most safety-relevant cause wins.
  Fault first_fault(const FaultInputs& f, double time_s) const noexcept;
  Fault present_fault(double time_s, const double* joint_pos) const noexcept;
  void enter_damping(Fault cause) noexcept;
  void begin_ramp(State s, const double* from, const std::vector<double>& to,
                  double duration_s, double time_s) noexcept;
  void advance_ramp(double time_s) noexcept;
  void fill_measured_targets(const double* joint_pos) noexcept;
  void set_gains(const std::vector<double>& kp, const std::vector<double>& kd) noexcept;
  void set_gains(double kp, double kd) noexcept;

  ControllerConfig cfg_;
  std::size_t n_;
  State state_ = State::ZERO_TORQUE;
  Fault cause_ = Fault::NONE;
  Fault last_fault_ = Fault::NONE;

  // Latest tick inputs, kept so requests can tell whether a fault persists.
  bool have_tick_ = false;
  FaultInputs last_inputs_;

  // Ramp (STAND_UP / SIT_DOWN) bookkeeping.
  std::vector<double> ramp_from_, ramp_to_;
  double ramp_progress_ = 0.0;  // 0..1 along ramp_from_ -> ramp_to_
  double ramp_rate_limit_ = 0.0;  // max progress per tick from max_target_step_rad
  double ramp_duration_s_ = 0.0;
  double ramp_last_time_s_ = 0.0;
  bool rise_after_fold_ = false;  // STAND_UP is in its first leg (to sit_pos); default_pos follows

  std::vector<double> target_, kp_, kd_;
};

}  // namespace simreal_rt
