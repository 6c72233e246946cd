// Tests for the whole control tick: joints reordered by name, the state
// machine driving stand-up and the policy, faults reaching DAMPING with finite
// commands, history cleared on start_policy, zero allocations per tick.
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "bundle_test_util.hpp"
#include "safetensors_test_util.hpp"
#include "simreal_rt/control_core.hpp"

#include "allocation_counter.hpp"

using namespace simreal_rt;

namespace {

Bundle two_joint_bundle() {
  const test_util::TestBundle b = test_util::valid_bundle();
  return load_bundle_from_memory(b.yaml, b.weights);
}

// The driver lists the joints in the opposite order plus one joint the policy ignores.
const std::vector<std::string> kDriverJoints{"j2", "gripper", "j1"};

struct Robot {
  double joint_pos[3] = {-0.2, 0.0, 0.1};  // driver order: j2, gripper, j1 (at the default pose)
  double joint_vel[3] = {0.0, 0.0, 0.0};
  double quat[4] = {1.0, 0.0, 0.0, 0.0};
  double gyro[3] = {0.1, -0.2, 0.3};
  double command[3] = {0.5, 0.0, 0.0};

  Sensors at(double t) const {
    Sensors s;
    s.time_s = t;
    s.joint_state_stamp_s = t;
    s.imu_stamp_s = t;
    s.joint_pos = joint_pos;
    s.joint_vel = joint_vel;
    s.imu_quat_wxyz = quat;
    s.imu_ang_vel = gyro;
    s.velocity_command = command;
    return s;
  }
};

using test_util::finite_command;

// Ticks at 50 Hz from t until the core reaches `state` (at most max_ticks); returns the time.
double run_until(ControlCore& core, const Robot& robot, double t, State state, int max_ticks = 1000) {
  for (int i = 0; i < max_ticks && core.state() != state; ++i) {
    t += 0.02;
    core.tick(robot.at(t));
  }
  return t;
}

void test_stand_up_then_policy() {
  CoreOptions options;
  options.stand_up_duration_s = 0.2;
  options.max_target_step_rad = 0.05;
  ControlCore core(two_joint_bundle(), kDriverJoints, options);
  Robot robot;
  robot.joint_pos[0] = -1.0;  // j2 starts away from its default, so stand-up has a way to go
  double t = 0.0;
  CoreOutput out = core.tick(robot.at(t));
  CHECK(out.state == State::ZERO_TORQUE && out.kp[0] == 0.0);
  CHECK(out.target_pos[1] == -1.0);  // outputs are in bundle order: index 1 is j2
  CHECK(core.request(Request::STAND_UP, t).accepted);
  double previous_j2 = -1.0;
  double largest_step = 0.0;
  for (int i = 0; i < 100 && core.state() != State::STANDING; ++i) {
    t += 0.02;
    out = core.tick(robot.at(t));
    largest_step = std::max(largest_step, std::fabs(out.target_pos[1] - previous_j2));
    previous_j2 = out.target_pos[1];
  }
  CHECK(core.state() == State::STANDING);
  CHECK(largest_step <= 0.05);
  CHECK(std::fabs(out.target_pos[0] - 0.1) < 1e-12 && std::fabs(out.target_pos[1] + 0.2) < 1e-12);
  CHECK(out.kp[0] == 20.0 && !out.policy_ran);

  robot.joint_pos[0] = -0.2;
  CHECK(core.request(Request::START_POLICY, t).accepted);
  out = core.tick(robot.at(t += 0.02));
  CHECK(out.state == State::POLICY && out.policy_ran && out.fault == Fault::NONE);
  CHECK(out.inference_time_s > 0.0 && finite_command(out, 2));
  // observation = [base_ang_vel * 0.25, joint_pos_rel, last_action] x 2 frames, both frames equal on the first tick
  const std::vector<float>& obs = core.last_observation();
  CHECK(obs.size() == 14);
  CHECK(std::fabs(obs[0] - 0.025f) < 1e-7 && std::fabs(obs[2] - 0.075f) < 1e-7);
  CHECK(obs[3] == 0.0f && obs[4] == 0.0f);  // at the default pose, j1 and j2 by name
  for (int k = 0; k < 7; ++k) CHECK(obs[static_cast<std::size_t>(k)] == obs[static_cast<std::size_t>(k + 7)]);
  // the command is the processed action: q0 + 0.25 * a, inside the joint limits
  CHECK(std::fabs(out.target_pos[0] - (0.1 + 0.25 * core.last_action()[0])) < 1e-12);
  CHECK(out.target_pos[1] >= -2.0 && out.target_pos[1] <= 0.5);

  // the next frame sees the previous action; the older frame is the first tick's (last action zeros)
  const double first_action[2] = {core.last_action()[0], core.last_action()[1]};
  CHECK(first_action[0] != 0.0 && first_action[1] != 0.0);
  out = core.tick(robot.at(t += 0.02));
  const std::vector<float>& history = core.last_observation();
  CHECK(history[7 + 5] == static_cast<float>(first_action[0]) && history[7 + 6] == static_cast<float>(first_action[1]));
  CHECK(history[5] == 0.0f && history[6] == 0.0f);
  CHECK(out.state == State::POLICY);

  // zero allocations per policy tick
  const long before = g_allocs.load();
  for (int i = 0; i < 1000; ++i) out = core.tick(robot.at(t += 0.02));
  CHECK(g_allocs.load() == before);
  CHECK(out.state == State::POLICY);
}

void test_faults_reach_damping() {
  Robot robot;
  {
    ControlCore core(two_joint_bundle(), kDriverJoints);
    core.tick(robot.at(0.0));
    CHECK(core.request(Request::STAND_UP, 0.0).accepted);
    double t = run_until(core, robot, 0.0, State::STANDING);
    CHECK(core.request(Request::START_POLICY, t).accepted);
    core.tick(robot.at(t += 0.02));
    // stale IMU: stamps stop while time runs on; DAMPING within one tick of the 0.1 s timeout
    Sensors s = robot.at(t);
    const double last_imu = t;
    CoreOutput out{};
    while (core.state() == State::POLICY && t < last_imu + 1.0) {
      t += 0.02;
      s = robot.at(t);
      s.imu_stamp_s = last_imu;
      out = core.tick(s);
    }
    CHECK(out.state == State::DAMPING && out.damping_cause == Fault::STALE_IMU);
    CHECK(t - last_imu <= 0.1 + 0.02 + 1e-9);
    CHECK(out.kp[0] == 0.0 && out.kd[0] == 2.0 && finite_command(out, 2));
    CHECK(!core.request(Request::RESET, t).accepted);  // still stale
    out = core.tick(robot.at(t += 0.02));
    CHECK(core.request(Request::RESET, t).accepted);
    out = core.tick(robot.at(t += 0.02));
    CHECK(out.state == State::ZERO_TORQUE);
  }
  {
    ControlCore core(two_joint_bundle(), kDriverJoints);
    core.tick(robot.at(0.0));
    core.request(Request::STAND_UP, 0.0);
    double t = run_until(core, robot, 0.0, State::STANDING);
    core.request(Request::START_POLICY, t);
    Robot broken = robot;
    broken.joint_pos[2] = std::nan("");  // j1 reads NaN
    const CoreOutput out = core.tick(broken.at(t += 0.02));
    CHECK(out.state == State::DAMPING && out.damping_cause == Fault::NONFINITE_OBSERVATION);
    CHECK(finite_command(out, 2) && !out.policy_ran);
  }
  {
    ControlCore core(two_joint_bundle(), kDriverJoints);
    Robot tilted = robot;
    tilted.quat[0] = std::cos(0.6);  // 1.2 rad about x, over the 1.0 rad limit
    tilted.quat[1] = std::sin(0.6);
    const CoreOutput out = core.tick(tilted.at(0.0));
    CHECK(std::fabs(out.tilt_rad - 1.2) < 1e-9);
    CHECK(out.state == State::DAMPING && out.damping_cause == Fault::TILT);
  }
  {
    ControlCore core(two_joint_bundle(), kDriverJoints);
    Sensors s = robot.at(0.0);
    s.estop = true;
    CHECK(core.tick(s).damping_cause == Fault::ESTOP);
  }
  {
    // a NaN velocity or gyro reading is a fault in every state, not only while the policy runs
    ControlCore core(two_joint_bundle(), kDriverJoints);
    core.tick(robot.at(0.0));
    CHECK(core.request(Request::STAND_UP, 0.0).accepted);
    Robot broken = robot;
    broken.joint_vel[0] = std::nan("");
    CoreOutput out = core.tick(broken.at(0.02));
    CHECK(out.state == State::DAMPING && out.damping_cause == Fault::NONFINITE_OBSERVATION && finite_command(out, 2));
    ControlCore idle(two_joint_bundle(), kDriverJoints);
    broken = robot;
    broken.gyro[2] = std::nan("");
    out = idle.tick(broken.at(0.0));
    CHECK(out.state == State::DAMPING && out.damping_cause == Fault::NONFINITE_OBSERVATION);
  }
}

void test_configuration_errors() {
  std::string error;
  try {
    ControlCore core(two_joint_bundle(), {"j2", "gripper"});
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  CHECK(error.find("'j1'") != std::string::npos);
  error.clear();
  CoreOptions options;
  options.sit_joint_pos = {{"j1", 0.0}, {"j2", 0.0}, {"elbow", 0.0}};
  try {
    ControlCore core(two_joint_bundle(), kDriverJoints, options);
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  CHECK(error.find("sit_joint_pos: joint 'elbow'") != std::string::npos);
  error.clear();
  options.sit_joint_pos = {{"j1", 0.0}, {"j2", 1.0}};  // j2's upper limit is 0.5
  try {
    ControlCore core(two_joint_bundle(), kDriverJoints, options);
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  CHECK(error.find("sit_joint_pos: joint 'j2' at 1") != std::string::npos);
  CHECK(error.find("outside the bundle's joint limits") != std::string::npos);
}

}  // namespace

int main() {
  test_stand_up_then_policy();
  test_faults_reach_damping();
  test_configuration_errors();
  return test_util::finish("test_control_core");
}
