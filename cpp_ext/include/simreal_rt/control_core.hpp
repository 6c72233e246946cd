// The whole robot-side control tick for one bundle: joint readings reordered
// by name, observation, policy, action processing and the controller state
// machine, wired so that joint order, quaternion order, observation layout and
// gains all come from the bundle and cannot be mixed up by a caller.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "simreal_rt/action.hpp"
#include "simreal_rt/observation.hpp"
#include "simreal_rt/policy.hpp"
#include "simreal_rt/state_machine.hpp"

namespace simreal_rt {

// Robot-side settings the bundle does not carry.
struct CoreOptions {
  std::map<std::string, double> sit_joint_pos;  // by joint name; empty = the bundle's default pose
  double stand_up_duration_s = 2.0;  // per leg: fold into the sit pose, then rise
  bool stand_up_via_sit_pose = true;  // false: rise straight from wherever the joints are
  double sit_down_duration_s = 2.0;
  double max_target_step_rad = 0.01;  // per tick while standing up / sitting down
  double inference_budget_s = 0.0;    // <= 0: half the bundle's control_dt
};

// One tick's measurements. Joint arrays are in the driver's order
// (driver_joint_names given at construction), quaternions (w, x, y, z).
struct Sensors {
  double time_s = 0.0;
  double joint_state_stamp_s = 0.0;
  const double* joint_pos = nullptr;
  const double* joint_vel = nullptr;
  double imu_stamp_s = 0.0;
  const double* imu_quat_wxyz = nullptr;   // 4
  const double* imu_ang_vel = nullptr;     // 3, rad/s, IMU frame
  const double* velocity_command = nullptr;  // 3: vx m/s, vy m/s, yaw rate rad/s
  const double* target_pose = nullptr;     // 7, only for policies that observe it
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
  double tilt_rad;
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
  // tick fills the whole history with its own frame.
  Result request(Request r, double time_s) noexcept;

  State state() const noexcept { return controller_.state(); }
  const BundleSpec& spec() const noexcept { return bundle_.spec; }
  const std::vector<std::string>& joint_names() const noexcept { return bundle_.spec.joint_names; }
  std::size_t num_joints() const noexcept { return bundle_.spec.num_joints(); }
  std::size_t num_driver_joints() const noexcept { return observation_.num_driver_joints(); }
  // The last observation given to the policy (observation_dim floats).
  const std::vector<float>& last_observation() const noexcept { return observation_buf_; }
  const double* last_action() const noexcept { return action_.last_action(); }

 private:
  bool run_policy(const Sensors& s) noexcept;

  Bundle bundle_;
  ObservationBuilder observation_;
  ActionProcessor action_;
  Controller controller_;
  std::vector<float> observation_buf_, action_buf_;
  std::vector<double> joint_pos_, joint_vel_, policy_targets_;  // policy order
  bool have_joints_ = false;
  double inference_time_s_ = 0.0;
};

}  // namespace simreal_rt
