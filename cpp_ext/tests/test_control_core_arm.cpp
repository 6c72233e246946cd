// Tests for a bundle like a fixed-base arm's: no IMU term (so no IMU, no stale-IMU or tilt fault) and a
// target_pose term (so no policy before a target pose, and the latest valid target in the observation).
// The quadruped-like bundle of bundle_test_util.hpp checks that IMU robots keep every IMU fault.
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

// Two joints; terms joint_pos_rel (2) + joint_vel (2) + last_action (2) + target_pose (7) = 13, history 1;
// MLP 13 -> 4 -> 2.
std::string arm_yaml(const std::string& sha256) {
  return test_util::two_joint_yaml_head("arm") +
         "  - name: joint_pos_rel\n    dim: 2\n    scale: 1.0\n    clip: 100.0\n"
         "  - name: joint_vel\n    dim: 2\n    scale: 0.05\n    clip: 100.0\n"
         "  - name: last_action\n    dim: 2\n    scale: 1.0\n    clip: 100.0\n"
         "  - name: target_pose\n    dim: 7\n    scale: 1.0\n    clip: 100.0\n"
         "  history: 1\n"
         "network:\n  type: mlp\n  input_dim: 13\n  output_dim: 2\n  hidden_sizes:\n  - 4\n  activation: elu\n"
         "safety:\n"
         "  joint_pos_limits_rad:\n    j1: [-1.0, 1.0]\n    j2: [-2.0, 0.5]\n"
         "  velocity_limit_rad_s: {j1: 30.0, j2: 30.0}\n"
         "  torque_limit_nm: {j1: 10.0, j2: 12.0}\n"
         "  tilt_limit_rad: 1.0\n  state_timeout_s: 0.1\n"
         "  standing_kp: {j1: 20.0, j2: 20.0}\n  standing_kd: {j1: 0.5, j2: 0.5}\n  damping_kd: 2.0\n"
         "provenance:\n  task: test-arm\n  run: r\n  iteration: 1\n  git_commit: abc\n  date: '2026-11-22T00:00:00+00:00'\n"
         "sha256: " + sha256 + "\n";
}

Bundle arm_bundle() {
  const std::vector<unsigned char> weights =
      test_util::serialize({{"layers.0.weight", {4, 13}, test_util::ramp(52, -0.2f)},
                            {"layers.0.bias", {4}, test_util::ramp(4, 0.1f)},
                            {"layers.1.weight", {2, 4}, test_util::ramp(8, -0.05f)},
                            {"layers.1.bias", {2}, test_util::ramp(2, 0.0f)}});
  return load_bundle_from_memory(arm_yaml(sha256_hex(weights)), weights);
}

Bundle imu_bundle() {
  const test_util::TestBundle b = test_util::valid_bundle();  // base_ang_vel, joint_pos_rel, last_action
  return load_bundle_from_memory(b.yaml, b.weights);
}

const std::vector<std::string> kDriverJoints{"j2", "finger", "j1"};
constexpr std::size_t kTargetOffset = 6;  // target_pose's place in the arm bundle's observation

// An arm driver: joint states only; the IMU fields stay at their defaults (null pointers, stamp 0).
struct Arm {
  double joint_pos[3] = {-0.2, 0.0, 0.1};  // driver order j2, finger, j1: the default pose
  double joint_vel[3] = {0.0, 0.0, 0.0};

  Sensors at(double t, const double* target_pose = nullptr) const {
    Sensors s;
    s.time_s = t;
    s.joint_state_stamp_s = t;
    s.joint_pos = joint_pos;
    s.joint_vel = joint_vel;
    s.target_pose = target_pose;
    return s;
  }
};

using test_util::finite_command;

double stand(ControlCore& core, const Arm& arm, double t) {
  core.tick(arm.at(t));
  CHECK(core.request(Request::STAND_UP, t).accepted);
  for (int i = 0; i < 1000 && core.state() != State::STANDING; ++i) core.tick(arm.at(t += 0.02));
  CHECK(core.state() == State::STANDING);
  return t;
}

void test_the_imu_use_follows_the_bundle() {
  CHECK(!observes_imu(arm_bundle().spec) && observes_target_pose(arm_bundle().spec));
  CHECK(observes_imu(imu_bundle().spec) && !observes_target_pose(imu_bundle().spec));
  CHECK(!ControlCore(arm_bundle(), kDriverJoints).uses_imu());
  CHECK(ControlCore(imu_bundle(), kDriverJoints).uses_imu());
  CoreOptions required;
  required.imu = ImuUse::REQUIRED;
  CHECK(ControlCore(arm_bundle(), kDriverJoints, required).uses_imu());
  CoreOptions none;
  none.imu = ImuUse::NONE;
  CHECK(!ControlCore(arm_bundle(), kDriverJoints, none).uses_imu());
  std::string error;
  try {
    ControlCore core(imu_bundle(), kDriverJoints, none);
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  CHECK(test_util::contains(error, "CoreOptions.imu is NONE but the bundle's observation reads the IMU"));
}

void test_no_imu_runs_without_imu_inputs_for_as_long_as_it_likes() {
  CoreOptions options;
  options.stand_up_duration_s = 0.2;
  options.stand_up_via_sit_pose = false;
  ControlCore core(arm_bundle(), kDriverJoints, options);
  Arm arm;
  CoreOutput out = core.tick(arm.at(0.0));
  CHECK(out.state == State::ZERO_TORQUE && out.fault == Fault::NONE);
  CHECK(std::isnan(out.tilt_rad));  // not measured
  double t = stand(core, arm, 0.0);
  // 10 s of joint states and no IMU at all (null pointers, stamp 0): nothing is stale, nothing tilts
  for (int i = 0; i < 500; ++i) {
    out = core.tick(arm.at(t += 0.02));
    CHECK(out.fault == Fault::NONE);
  }
  CHECK(out.state == State::STANDING);
  // whatever an IMU-less driver leaves in the IMU fields is ignored, NaN included
  Sensors s = arm.at(t += 0.02);
  const double nan_quat[4] = {std::nan(""), 0.0, 0.0, 0.0}, nan_gyro[3] = {std::nan(""), 0.0, 0.0};
  s.imu_quat_wxyz = nan_quat;
  s.imu_ang_vel = nan_gyro;
  s.imu_stamp_s = -1e9;
  CHECK(core.tick(s).fault == Fault::NONE);
  // the joint-state watchdog is still there
  const double last = t;
  s = arm.at(t);
  while (core.state() != State::DAMPING && t < last + 1.0) {
    s = arm.at(t += 0.02);
    s.joint_state_stamp_s = last;
    out = core.tick(s);
  }
  CHECK(out.state == State::DAMPING && out.damping_cause == Fault::STALE_JOINT_STATE && finite_command(out, 2));
  CHECK(core.request(Request::RESET, t).accepted == false);
  core.tick(arm.at(t += 0.02));
  CHECK(core.request(Request::RESET, t).accepted);
}

void test_imu_required_keeps_the_imu_faults() {
  CoreOptions options;
  options.imu = ImuUse::REQUIRED;
  ControlCore core(arm_bundle(), kDriverJoints, options);
  Arm arm;
  CoreOutput out = core.tick(arm.at(0.0));  // no quaternion: tilt unknown
  CHECK(out.state == State::DAMPING && out.damping_cause == Fault::NONFINITE_OBSERVATION);
  ControlCore stale(arm_bundle(), kDriverJoints, options);
  const double quat[4] = {1.0, 0.0, 0.0, 0.0}, gyro[3] = {0.0, 0.0, 0.0};
  Sensors s = arm.at(1.0);
  s.imu_quat_wxyz = quat;
  s.imu_ang_vel = gyro;
  s.imu_stamp_s = 0.5;
  CHECK(stale.tick(s).damping_cause == Fault::STALE_IMU);
}

void test_imu_robots_are_unchanged() {
  // the quadruped-like bundle: a missing IMU is still a fault, a target pose is ignored
  ControlCore core(imu_bundle(), kDriverJoints);
  Arm arm;
  const double pose[7] = {0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0};
  CoreOutput out = core.tick(arm.at(0.0, pose));
  CHECK(out.state == State::DAMPING && out.damping_cause == Fault::NONFINITE_OBSERVATION);
  CHECK(!out.have_target_pose && !out.target_pose_rejected && core.target_pose() == nullptr);
  CHECK(!core.observes_target_pose());
}

void test_start_policy_waits_for_a_target_pose_and_uses_the_latest() {
  ControlCore core(arm_bundle(), kDriverJoints);
  Arm arm;
  double t = stand(core, arm, 0.0);
  CoreOutput out = core.tick(arm.at(t += 0.02));
  CHECK(!out.have_target_pose && core.target_pose() == nullptr);
  Result refused = core.request(Request::START_POLICY, t);
  CHECK(!refused.accepted && test_util::contains(refused.reason, "no target pose given yet"));
  CHECK(core.state() == State::STANDING);
  // outside STANDING the state machine's own reason comes first
  ControlCore idle(arm_bundle(), kDriverJoints);
  idle.tick(arm.at(0.0));
  CHECK(test_util::contains(idle.request(Request::START_POLICY, 0.0).reason, "only accepted in STANDING"));

  // invalid targets are refused and change nothing
  const double nan_pose[7] = {0.4, std::nan(""), 0.3, 1.0, 0.0, 0.0, 0.0};
  const double zero_quat[7] = {0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 0.0};
  out = core.tick(arm.at(t += 0.02, nan_pose));
  CHECK(out.target_pose_rejected && !out.have_target_pose && out.fault == Fault::NONE);
  out = core.tick(arm.at(t += 0.02, zero_quat));
  CHECK(out.target_pose_rejected && !out.have_target_pose);
  CHECK(!core.request(Request::START_POLICY, t).accepted);

  // a valid target (quaternion not normalized: the core normalizes it) unlocks the policy
  const double pose[7] = {0.4, -0.1, 0.3, 0.0, 2.0, 0.0, 0.0};
  out = core.tick(arm.at(t += 0.02, pose));
  CHECK(out.have_target_pose && !out.target_pose_rejected);
  CHECK(core.target_pose()[4] == 1.0 && core.target_pose()[3] == 0.0 && core.target_pose()[0] == 0.4);
  CHECK(core.request(Request::START_POLICY, t).accepted);
  out = core.tick(arm.at(t += 0.02));  // no new target this tick: the latest stays
  CHECK(out.state == State::POLICY && out.policy_ran && out.fault == Fault::NONE && finite_command(out, 2));
  const float expected[7] = {0.4f, -0.1f, 0.3f, 0.0f, 1.0f, 0.0f, 0.0f};
  for (std::size_t i = 0; i < 7; ++i) CHECK(core.last_observation()[kTargetOffset + i] == expected[i]);

  // a new target replaces it on the next policy tick; a bad one later is ignored while the policy runs on
  const double next[7] = {0.5, 0.2, 0.1, std::sqrt(0.5), 0.0, 0.0, std::sqrt(0.5)};
  out = core.tick(arm.at(t += 0.02, next));
  CHECK(out.state == State::POLICY);
  CHECK(core.last_observation()[kTargetOffset] == 0.5f && core.last_observation()[kTargetOffset + 6] ==
                                                               static_cast<float>(std::sqrt(0.5)));
  // -q is the same rotation: the core hands the policy the form it trained on, largest component positive
  const double flipped[7] = {0.5, 0.2, 0.1, -std::sqrt(0.5), 0.0, 0.0, -std::sqrt(0.5)};
  out = core.tick(arm.at(t += 0.02, flipped));
  CHECK(core.target_pose()[3] == std::sqrt(0.5) && core.target_pose()[6] == std::sqrt(0.5));
  // fingers down (a half-turn about x) with a little yaw: x is the largest, so w may be negative
  const double down[7] = {0.5, 0.2, 0.1, 0.05, -0.99, -0.1, 0.0};
  out = core.tick(arm.at(t += 0.02, down));
  CHECK(core.target_pose()[3] < 0.0 && core.target_pose()[4] > 0.9 && core.target_pose()[5] > 0.0);
  out = core.tick(arm.at(t += 0.02, nan_pose));
  CHECK(out.state == State::POLICY && out.target_pose_rejected && out.fault == Fault::NONE);
  CHECK(core.last_observation()[kTargetOffset] == 0.5f);

  // the target outlives a sit-down / stand-up cycle: start_policy needs no new one
  CHECK(core.request(Request::SIT_DOWN, t).accepted);
  for (int i = 0; i < 1000 && core.state() != State::ZERO_TORQUE; ++i) core.tick(arm.at(t += 0.02));
  t = stand(core, arm, t);
  CHECK(core.request(Request::START_POLICY, t).accepted);

  // zero allocations per policy tick, with a target every tick
  const long before = g_allocs.load();
  for (int i = 0; i < 1000; ++i) out = core.tick(arm.at(t += 0.02, next));
  CHECK(g_allocs.load() == before);
  CHECK(out.state == State::POLICY);
}

void test_controller_without_imu_ignores_imu_inputs() {
  ControllerConfig c;
  c.num_joints = 1;
  c.default_pos = c.sit_pos = {0.0};
  c.standing_kp = c.policy_kp = {10.0};
  c.standing_kd = c.policy_kd = {0.5};
  c.use_imu = false;
  Controller controller(c);
  const double q[1] = {0.0};
  TickInput in;
  in.time_s = 10.0;
  in.last_joint_state_s = 10.0;
  in.last_imu_s = 0.0;  // 10 s old
  in.tilt_rad = std::nan("");
  in.joint_pos = q;
  CHECK(controller.tick(in).state == State::ZERO_TORQUE && controller.active_fault() == Fault::NONE);
  in.tilt_rad = 3.0;
  CHECK(controller.tick(in).state == State::ZERO_TORQUE);
  CHECK(controller.request(Request::STAND_UP, 10.0, q).accepted);
  c.use_imu = true;  // the same inputs with an IMU: stale
  Controller with_imu(c);
  with_imu.tick(in);
  CHECK(with_imu.state() == State::DAMPING && with_imu.damping_cause() == Fault::STALE_IMU);
}

}  // namespace

int main() {
  test_the_imu_use_follows_the_bundle();
  test_no_imu_runs_without_imu_inputs_for_as_long_as_it_likes();
  test_imu_required_keeps_the_imu_faults();
  test_imu_robots_are_unchanged();
  test_start_policy_waits_for_a_target_pose_and_uses_the_latest();
  test_controller_without_imu_ignores_imu_inputs();
  return test_util::finish("test_control_core_arm");
}
