// Tests for the observation builder: projected gravity (hand-computed), scale
// then clip, driver-order reordering, configuration errors, time-major history
// with reset filling, non-finite inputs, and zero heap allocations in build().
#include "simreal_rt/observation.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "safetensors_test_util.hpp"

#include "allocation_counter.hpp"

using namespace simreal_rt;
using test_util::error_of;

namespace {

bool near(float a, double b, double tol = 1e-6) { return std::fabs(static_cast<double>(a) - b) < tol; }

ObservationConfig gravity_only() {
  ObservationConfig c;
  c.terms = {{"projected_gravity", 1.0, 10.0}};
  c.history = 1;
  return c;
}

void test_projected_gravity() {
  ObservationBuilder b(gravity_only(), {});
  CHECK(b.frame_dim() == 3 && b.size() == 3);
  float out[3];
  ObservationBuilder::Inputs in;

  const double identity[4] = {1, 0, 0, 0};
  in.imu_quat_wxyz = identity;
  CHECK(b.build(in, out));
  CHECK(near(out[0], 0.0) && near(out[1], 0.0) && near(out[2], -1.0));

  // roll +90 deg about x: R = Rx(90), rows [1,0,0],[0,0,-1],[0,1,0];
  // R^T (0,0,-1) = -(third row of R) = (0, -1, 0)
  const double h = std::sqrt(0.5);
  const double roll90[4] = {h, h, 0, 0};
  in.imu_quat_wxyz = roll90;
  CHECK(b.build(in, out));
  CHECK(near(out[0], 0.0) && near(out[1], -1.0) && near(out[2], 0.0));

  // pitch +30 deg about y: third row of Ry(30) is (-sin30, 0, cos30);
  // R^T (0,0,-1) = (0.5, 0, -0.8660254)
  const double pi = std::acos(-1.0);
  const double pitch30[4] = {std::cos(pi / 12), 0, std::sin(pi / 12), 0};
  in.imu_quat_wxyz = pitch30;
  CHECK(b.build(in, out));
  CHECK(near(out[0], 0.5) && near(out[1], 0.0) && near(out[2], -0.8660254));

  // not normalized: same result after normalization
  const double pitch30x3[4] = {3 * std::cos(pi / 12), 0, 3 * std::sin(pi / 12), 0};
  in.imu_quat_wxyz = pitch30x3;
  CHECK(b.build(in, out));
  CHECK(near(out[0], 0.5) && near(out[1], 0.0) && near(out[2], -0.8660254));

  // zero quaternion is rejected
  const double zero[4] = {0, 0, 0, 0};
  in.imu_quat_wxyz = zero;
  out[0] = 7.0f;
  CHECK(!b.build(in, out));
  CHECK(out[0] == 0.0f && out[1] == 0.0f && out[2] == 0.0f);
}

void test_scale_then_clip() {
  ObservationConfig c;
  c.terms = {{"base_ang_vel", 2.0, 1.0}, {"velocity_command", -0.5, 10.0}};
  ObservationBuilder b(c, {});
  CHECK(b.frame_dim() == 6);
  const double w[3] = {0.25, 0.6, -3.0};  // *2 = 0.5, 1.2 -> 1, -6 -> -1
  const double cmd[3] = {4.0, -30.0, 0.0};  // *-0.5 = -2, 15 -> 10, 0
  ObservationBuilder::Inputs in;
  in.imu_ang_vel = w;
  in.velocity_command = cmd;
  float out[6];
  CHECK(b.build(in, out));
  CHECK(near(out[0], 0.5) && near(out[1], 1.0) && near(out[2], -1.0));
  CHECK(near(out[3], -2.0) && near(out[4], 10.0) && near(out[5], 0.0));
}

ObservationConfig joint_config(int history) {
  ObservationConfig c;
  c.policy_joint_names = {"hip", "knee", "ankle"};
  c.default_joint_pos = {0.1, 0.2, 0.3};
  c.terms = {{"joint_pos_rel", 1.0, 100.0}, {"joint_vel", 0.5, 100.0}, {"last_action", 1.0, 100.0}};
  c.history = history;
  return c;
}

void test_reordering() {
  // driver order: knee, extra, ankle, hip
  ObservationBuilder b(joint_config(1), {"knee", "extra", "ankle", "hip"});
  CHECK(b.frame_dim() == 9 && b.num_driver_joints() == 4 && b.num_policy_joints() == 3);
  const double pos[4] = {2.0, 99.0, 3.0, 1.0};
  const double vel[4] = {20.0, 99.0, 30.0, 10.0};
  const double act[3] = {-1.0, -2.0, -3.0};  // policy order, as given
  ObservationBuilder::Inputs in;
  in.joint_pos_driver = pos;
  in.joint_vel_driver = vel;
  in.last_action = act;
  float out[9];
  CHECK(b.build(in, out));
  CHECK(near(out[0], 0.9) && near(out[1], 1.8) && near(out[2], 2.7));
  CHECK(near(out[3], 5.0) && near(out[4], 10.0) && near(out[5], 15.0));
  CHECK(near(out[6], -1.0) && near(out[7], -2.0) && near(out[8], -3.0));

  // a non-finite value in an unused (extra) driver slot is still rejected:
  // the driver arrays are checked whole
  const double pos_nan[4] = {2.0, std::numeric_limits<double>::quiet_NaN(), 3.0, 1.0};
  in.joint_pos_driver = pos_nan;
  CHECK(!b.build(in, out));
}


void test_errors() {
  const std::string missing = error_of([] { ObservationBuilder b(joint_config(1), {"hip", "extra"}); });
  CHECK(missing.find("'knee'") != std::string::npos);
  CHECK(missing.find("'ankle'") != std::string::npos);
  CHECK(missing.find("'hip'") == std::string::npos);

  ObservationConfig c = joint_config(1);
  c.terms.push_back({"base_lin_vel", 1.0, 1.0});
  const std::string unknown = error_of([&] { ObservationBuilder b(c, {"hip", "knee", "ankle"}); });
  CHECK(unknown.find("base_lin_vel") != std::string::npos);

  c = joint_config(0);
  CHECK(!error_of([&] { ObservationBuilder b(c, {"hip", "knee", "ankle"}); }).empty());
  c = joint_config(1);
  c.default_joint_pos.pop_back();
  CHECK(!error_of([&] { ObservationBuilder b(c, {"hip", "knee", "ankle"}); }).empty());
  c = joint_config(1);
  c.terms[0].clip = -1.0;
  CHECK(!error_of([&] { ObservationBuilder b(c, {"hip", "knee", "ankle"}); }).empty());
  CHECK(!error_of([] { ObservationBuilder b(joint_config(1), {"hip", "knee", "ankle", "knee"}); }).empty());
}

void test_history() {
  ObservationConfig c;
  c.terms = {{"velocity_command", 1.0, 100.0}};
  c.history = 3;
  ObservationBuilder b(c, {});
  CHECK(b.frame_dim() == 3 && b.size() == 9);
  float out[9];
  ObservationBuilder::Inputs in;
  auto push = [&](double v) {
    const double cmd[3] = {v, v + 0.5, -v};
    in.velocity_command = cmd;
    return b.build(in, out);
  };
  auto frame_is = [&](int k, double v) {
    return near(out[3 * k], v) && near(out[3 * k + 1], v + 0.5) && near(out[3 * k + 2], -v);
  };
  CHECK(push(1.0));  // first push fills all slots
  CHECK(frame_is(0, 1.0) && frame_is(1, 1.0) && frame_is(2, 1.0));
  CHECK(push(2.0));
  CHECK(frame_is(0, 1.0) && frame_is(1, 1.0) && frame_is(2, 2.0));
  CHECK(push(3.0));
  CHECK(frame_is(0, 1.0) && frame_is(1, 2.0) && frame_is(2, 3.0));
  CHECK(push(4.0));  // oldest first
  CHECK(frame_is(0, 2.0) && frame_is(1, 3.0) && frame_is(2, 4.0));
  // a failed build leaves the history untouched
  CHECK(!push(std::numeric_limits<double>::infinity()));
  for (float v : out) CHECK(v == 0.0f);
  CHECK(push(5.0));
  CHECK(frame_is(0, 3.0) && frame_is(1, 4.0) && frame_is(2, 5.0));
  b.reset();
  CHECK(push(9.0));
  CHECK(frame_is(0, 9.0) && frame_is(1, 9.0) && frame_is(2, 9.0));
  CHECK(push(10.0));
  CHECK(frame_is(0, 9.0) && frame_is(1, 9.0) && frame_is(2, 10.0));
}

ObservationConfig all_terms(int history) {
  ObservationConfig c = joint_config(history);
  c.terms.insert(c.terms.begin(), {{"base_ang_vel", 0.25, 100.0}, {"projected_gravity", 1.0, 100.0},
                                   {"velocity_command", 1.0, 100.0}});
  c.terms.push_back({"target_pose", 1.0, 100.0});
  return c;
}

void test_non_finite() {
  ObservationBuilder b(all_terms(2), {"ankle", "knee", "hip"});
  CHECK(b.frame_dim() == 3 + 3 + 3 + 9 + 7);
  double quat[4] = {1, 0, 0, 0}, w[3] = {1, 2, 3}, cmd[3] = {0.5, 0, 0.1}, pos[3] = {0, 0, 0}, vel[3] = {0, 0, 0},
         act[3] = {0, 0, 0}, pose[7] = {0, 0, 0.3, 1, 0, 0, 0};
  ObservationBuilder::Inputs in{quat, w, cmd, pos, vel, act, pose};
  std::vector<float> out(b.size(), 5.0f);
  CHECK(b.build(in, out.data()));
  double* fields[] = {quat, w, cmd, pos, vel, act, pose};
  const double bad[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                        -std::numeric_limits<double>::infinity()};
  for (double* f : fields) {
    for (double x : bad) {
      const double keep = f[1];
      f[1] = x;
      std::fill(out.begin(), out.end(), 5.0f);
      CHECK(!b.build(in, out.data()));
      bool zeros = true;
      for (float v : out) zeros = zeros && v == 0.0f;
      CHECK(zeros);
      f[1] = keep;
    }
  }
  // a used input missing
  in.target_pose = nullptr;
  CHECK(!b.build(in, out.data()));
  in.target_pose = pose;
  CHECK(b.build(in, out.data()));
  // overflow after scaling with an infinite clip
  ObservationConfig c;
  c.terms = {{"base_ang_vel", 1e300, std::numeric_limits<double>::infinity()}};
  ObservationBuilder big(c, {});
  const double huge[3] = {1e300, 0, 0};
  ObservationBuilder::Inputs hin;
  hin.imu_ang_vel = huge;
  float o3[3];
  CHECK(!big.build(hin, o3));
}

void test_no_allocation() {
  ObservationBuilder b(all_terms(4), {"ankle", "extra", "knee", "hip"});
  double quat[4] = {0.9, 0.1, -0.2, 0.3}, w[3] = {1, 2, 3}, cmd[3] = {0.5, 0, 0.1}, pos[4] = {0.1, 0, 0.2, 0.3},
         vel[4] = {1, 0, 2, 3}, act[3] = {0.1, 0.2, 0.3}, pose[7] = {0, 0, 0.3, 1, 0, 0, 0};
  const ObservationBuilder::Inputs in{quat, w, cmd, pos, vel, act, pose};
  std::vector<float> out(b.size());
  const long before = g_allocs.load();
  bool ok = true;
  for (int i = 0; i < 1000; ++i) {
    if (i % 100 == 0) b.reset();
    pos[0] = 0.001 * i;
    ok = b.build(in, out.data()) && ok;
  }
  const long after = g_allocs.load();
  CHECK(ok);
  CHECK(after == before);
}

}  // namespace

int main() {
  test_projected_gravity();
  test_scale_then_clip();
  test_reordering();
  test_errors();
  test_history();
  test_non_finite();
  test_no_allocation();
  return test_util::finish("test_observation");
}
