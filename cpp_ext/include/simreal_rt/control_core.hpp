// The whole robot-side control tick for one bundle: joint readings reordered
// by name, observation, policy, action processing and the controller state
// machine, wired so that joint order, quaternion order, observation layout and
// gains all come from the bundle and cannot be mixed up by a caller.
#pragma once

#include <array>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "simreal_rt/action.hpp"
#include "simreal_rt/observation.hpp"
#include "simreal_rt/policy.hpp"
#include "simreal_rt/state_machine.hpp"

namespace simreal_rt {

// Whether the core watches an IMU: the stale-IMU and tilt faults and the gyro's finiteness.
enum class ImuUse {
  FROM_BUNDLE,  // exactly when the policy observes base_ang_vel or projected_gravity
  REQUIRED,     // always, e.g. a legged robot whose policy observes no IMU term still damps on tilt
  NONE,         // never (a robot without an IMU); refused for a bundle that observes an IMU term
};

// The bundle's observation reads the IMU (base_ang_vel or projected_gravity).
bool observes_imu(const BundleSpec& spec) noexcept;
// The bundle's observation has the target_pose term.
bool observes_target_pose(const BundleSpec& spec) noexcept;

// Robot-side settings the bundle does not carry.
struct CoreOptions {
  std::map<std::string, double> sit_joint_pos;  // by joint name; empty = the bundle's default pose
  double stand_up_duration_s = 2.0;  // per leg: fold into the sit pose, then rise
  bool stand_up_via_sit_pose = true;  // false: rise straight from wherever the joints are
  double sit_down_duration_s = 2.0;
  double max_target_step_rad = 0.01;  // per tick while standing up / sitting down
  double inference_budget_s = 0.0;    // <= 0: half the bundle's control_dt
  ImuUse imu = ImuUse::FROM_BUNDLE;
};

// One tick's measurements. Joint arrays are in the driver's order
// (driver_joint_names given at construction), quaternions (w, x, y, z).
struct Sensors {
  double time_s = 0.0;
  double joint_state_stamp_s = 0.0;
  const double* joint_pos = nullptr;
  const double* joint_vel = nullptr;
  // IMU: read only when the core uses one (uses_imu()); may then be null / anything otherwise.
  double imu_stamp_s = 0.0;
  const double* imu_quat_wxyz = nullptr;   // 4
  const double* imu_ang_vel = nullptr;     // 3, rad/s, IMU frame
  const double* velocity_command = nullptr;  // 3: vx m/s, vy m/s, yaw rate rad/s
  // 7: goal position, then orientation (w, x, y, z), in the base frame; only for policies that observe it.
  // The core keeps the latest valid one (quaternion normalized), so null means "no new target this tick",
  // not "no target": a goal stream that pauses must not drop the robot into DAMPING. A non-finite value or a
  // zero quaternion is ignored (CoreOutput::target_pose_rejected) and the previous target stays.
  const double* target_pose = nullptr;
  bool estop = false;
};

// Pointers refer to buffers owned by the core, valid until the next tick() and
// num_joints() long, in the bundle's joint order (joint_names()); always finite.
struct CoreOutput {
  State state;
  Fault fault;          // highest-priority fault seen this tick (NONE if clean)
  Fault damping_cause;  // why the core is in DAMPING (NONE otherwise)
  const double* target_pos;
  const double* kp;
  const double* kd;
  bool policy_ran;          // the network was evaluated this tick
  double inference_time_s;  // observation + network + action processing, this tick
  double tilt_rad;          // NaN when the core uses no IMU
  bool have_target_pose;       // a valid target pose has been given (always false without target_pose term)
  bool target_pose_rejected;   // this tick's target_pose was non-finite or had a zero quaternion
};

class ControlCore {
 public:
  // Throws BundleError/std::invalid_argument naming the problem (e.g. a policy
  // joint missing from driver_joint_names, an unknown joint in sit_joint_pos).
  ControlCore(Bundle bundle, const std::vector<std::string>& driver_joint_names, const CoreOptions& options = {});

  // One control tick. No heap allocation, no locks; reads the steady clock
  // (vDSO, no system call) to time inference. Never throws.
  CoreOutput tick(const Sensors& sensors) noexcept;

  // Operator requests (stand_up, start_policy, sit_down, damp, reset), judged
  // against the last tick's measurements. Accepting start_policy clears the
  // observation history, last action and recurrent state, so the first policy
  // tick fills the whole history with its own frame. A policy that observes
  // target_pose is not started before a tick has given a valid target pose
  // (the policy would otherwise chase whatever the zeros mean to it).
  Result request(Request r, double time_s) noexcept;

  State state() const noexcept { return controller_.state(); }
  const BundleSpec& spec() const noexcept { return bundle_.spec; }
  const std::vector<std::string>& joint_names() const noexcept { return bundle_.spec.joint_names; }
  std::size_t num_joints() const noexcept { return bundle_.spec.num_joints(); }
  std::size_t num_driver_joints() const noexcept { return observation_.num_driver_joints(); }
  // The last observation given to the policy (observation_dim floats).
  const std::vector<float>& last_observation() const noexcept { return observation_buf_; }
  const double* last_action() const noexcept { return action_.last_action(); }
  // The IMU is watched (stale / tilt faults) and read; see ImuUse.
  bool uses_imu() const noexcept { return controller_.config().use_imu; }
  bool observes_target_pose() const noexcept { return observes_target_pose_; }
  // The latest valid target pose (7: position, unit quaternion w, x, y, z), or null before the first.
  const double* target_pose() const noexcept { return have_target_pose_ ? target_pose_.data() : nullptr; }

 private:
  bool run_policy(const Sensors& s) noexcept;
  // Keeps `pose` as the latest target when it is valid; true when it was given but refused.
  bool accept_target_pose(const double* pose) noexcept;

  Bundle bundle_;
  ObservationBuilder observation_;
  ActionProcessor action_;
  Controller controller_;
  std::vector<float> observation_buf_, action_buf_;
  std::vector<double> joint_pos_, joint_vel_, policy_targets_;  // policy order
  bool have_joints_ = false;
  double inference_time_s_ = 0.0;
  bool observes_target_pose_ = false;
  bool have_target_pose_ = false;
  std::array<double, 7> target_pose_{};
};

}  // namespace simreal_rt
