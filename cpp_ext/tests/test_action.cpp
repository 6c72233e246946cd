// Tests for the action processor (joint_position_offset): scale and offset,
// clip, joint-limit clamp, torque-band clamp (hand-computed), joint limits
// winning over a disjoint torque band, non-finite inputs, configuration errors
// and zero heap allocations in process().
#include "simreal_rt/action.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "safetensors_test_util.hpp"

#include "allocation_counter.hpp"

using namespace simreal_rt;
using test_util::error_of;

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

bool near(double a, double b, double tol = 1e-6) { return std::fabs(a - b) < tol; }

// Two joints, wide limits, no torque band (kp = 0).
ActionConfig base_config() {
  ActionConfig c;
  c.default_pos = {0.1, -0.2};
  c.lower = {-5.0, -5.0};
  c.upper = {5.0, 5.0};
  c.kp = {0.0, 0.0};
  c.kd = {0.0, 0.0};
  c.torque_limit = {10.0, 10.0};
  c.scale = 0.25;
  c.clip = 10.0;
  return c;
}

void test_scale_offset() {
  ActionProcessor p(base_config());
  CHECK(p.size() == 2);
  CHECK(p.last_targets()[0] == 0.1 && p.last_targets()[1] == -0.2);
  CHECK(p.last_action()[0] == 0.0 && p.last_action()[1] == 0.0);
  const float a[2] = {2.0f, -4.0f};
  const double q[2] = {0, 0}, qd[2] = {0, 0};
  double out[2];
  CHECK(p.process(a, q, qd, out));
  CHECK(near(out[0], 0.6) && near(out[1], -1.2));  // 0.1 + 0.25*2, -0.2 + 0.25*(-4)
  CHECK(out[0] == p.last_targets()[0] && out[1] == p.last_targets()[1]);
  CHECK(p.last_action()[0] == 2.0 && p.last_action()[1] == -4.0);
}

void test_clip() {
  ActionConfig c = base_config();
  c.clip = 1.0;
  ActionProcessor p(c);
  const float a[2] = {3.0f, -0.5f};  // -> 1, -0.5
  const double q[2] = {0, 0}, qd[2] = {0, 0};
  double out[2];
  CHECK(p.process(a, q, qd, out));
  CHECK(near(out[0], 0.35) && near(out[1], -0.325));
  // last_action keeps the raw output, before clipping
  CHECK(p.last_action()[0] == 3.0 && p.last_action()[1] == -0.5);
  const float b[2] = {-7.0f, 1.5f};  // -> -1, 1
  CHECK(p.process(b, q, qd, out));
  CHECK(near(out[0], -0.15) && near(out[1], 0.05));
}

void test_joint_limits() {
  ActionConfig c = base_config();
  c.lower = {-0.3, -0.4};
  c.upper = {0.2, 0.0};
  ActionProcessor p(c);
  const float a[2] = {2.0f, -4.0f};  // 0.6 -> 0.2, -1.2 -> -0.4
  const double q[2] = {0, 0}, qd[2] = {0, 0};
  double out[2];
  CHECK(p.process(a, q, qd, out));
  CHECK(out[0] == 0.2 && out[1] == -0.4);
  const float b[2] = {-1.0f, 0.4f};  // -0.15, -0.1: inside
  CHECK(p.process(b, q, qd, out));
  CHECK(near(out[0], -0.15) && near(out[1], -0.1));
}

ActionConfig torque_config() {
  ActionConfig c;
  c.default_pos = {0.0};
  c.lower = {-5.0};
  c.upper = {5.0};
  c.kp = {20.0};
  c.kd = {0.5};
  c.torque_limit = {10.0};
  c.scale = 1.0;
  c.clip = 10.0;
  return c;
}

void test_torque_band() {
  // kp=20, kd=0.5, tau_max=10, q=0, qdot=2: band [(-10+1)/20, (10+1)/20] = [-0.45, 0.55]
  ActionProcessor p(torque_config());
  const double q[1] = {0.0}, qd[1] = {2.0};
  double out[1];
  const float hi[1] = {3.0f};
  CHECK(p.process(hi, q, qd, out));
  CHECK(near(out[0], 0.55, 1e-12));
  const float lo[1] = {-1.0f};
  CHECK(p.process(lo, q, qd, out));
  CHECK(near(out[0], -0.45, 1e-12));
  const float mid[1] = {0.25f};  // inside the band: unchanged
  CHECK(p.process(mid, q, qd, out));
  CHECK(out[0] == 0.25);
  // PD torque at the band edge is exactly tau_max
  CHECK(p.process(hi, q, qd, out));
  CHECK(near(20.0 * (out[0] - 0.0) - 0.5 * 2.0, 10.0, 1e-9));

  // band moves with q: q=1, qdot=-2: [1 + (-10-1)/20, 1 + (10-1)/20] = [0.45, 1.45]
  const double q2[1] = {1.0}, qd2[1] = {-2.0};
  CHECK(p.process(mid, q2, qd2, out));
  CHECK(near(out[0], 0.45, 1e-12));

  // kp = 0: no torque band
  ActionConfig c = torque_config();
  c.kp = {0.0};
  ActionProcessor free_joint(c);
  CHECK(free_joint.process(hi, q, qd, out));
  CHECK(out[0] == 3.0);
}

void test_limits_win_over_torque_band() {
  // joint limits [1, 2] and torque band [-0.45, 0.55] do not intersect: the
  // joint limit nearest the band wins
  ActionConfig c = torque_config();
  c.lower = {1.0};
  c.upper = {2.0};
  ActionProcessor p(c);
  const double q[1] = {0.0}, qd[1] = {2.0};
  double out[1];
  const float a[1] = {0.3f};
  CHECK(p.process(a, q, qd, out));
  CHECK(out[0] == 1.0);
  const float b[1] = {9.0f};
  CHECK(p.process(b, q, qd, out));
  CHECK(out[0] == 1.0);

  // tiny kp: the band bounds overflow to infinity, the output stays finite
  c = torque_config();
  c.kp = {1e-310};
  ActionProcessor tiny(c);
  const double q3[1] = {0.0}, qd3[1] = {1e300};
  CHECK(tiny.process(a, q3, qd3, out));
  CHECK(std::isfinite(out[0]) && out[0] == 5.0);
}

void test_non_finite() {
  ActionProcessor p(base_config());
  const double q[2] = {0, 0}, qd[2] = {0, 0};
  double out[2] = {7.0, 7.0};

  // before any success: default_pos
  const float nan_a[2] = {0.0f, std::numeric_limits<float>::quiet_NaN()};
  CHECK(!p.process(nan_a, q, qd, out));
  CHECK(out[0] == 0.1 && out[1] == -0.2);

  const float a[2] = {2.0f, -4.0f};
  CHECK(p.process(a, q, qd, out));
  const double t0 = out[0], t1 = out[1];

  out[0] = out[1] = 7.0;
  CHECK(!p.process(nan_a, q, qd, out));
  CHECK(out[0] == t0 && out[1] == t1);
  CHECK(p.last_targets()[0] == t0 && p.last_targets()[1] == t1);
  CHECK(p.last_action()[0] == 2.0 && p.last_action()[1] == -4.0);  // unchanged

  const float inf_a[2] = {std::numeric_limits<float>::infinity(), 0.0f};
  CHECK(!p.process(inf_a, q, qd, out));
  CHECK(out[0] == t0 && out[1] == t1);

  const float ok_a[2] = {0.0f, 0.0f};
  const double nan_q[2] = {0.0, kNaN};
  out[0] = out[1] = 7.0;
  CHECK(!p.process(ok_a, nan_q, qd, out));
  CHECK(out[0] == t0 && out[1] == t1);
  const double inf_qd[2] = {-kInf, 0.0};
  CHECK(!p.process(ok_a, q, inf_qd, out));
  CHECK(out[0] == t0 && out[1] == t1);
  CHECK(!p.process(nullptr, q, qd, out));
  CHECK(out[0] == t0 && out[1] == t1);

  p.reset();
  CHECK(p.last_targets()[0] == 0.1 && p.last_action()[0] == 0.0);
}


bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

void test_errors() {
  CHECK(error_of([] { ActionProcessor p(base_config()); }).empty());

  ActionConfig c = base_config();
  c.kd.pop_back();
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "kd"));
  c = base_config();
  c.default_pos = {};
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "default_pos"));
  c = base_config();
  c.default_pos[1] = kNaN;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "default_pos[1]"));
  c = base_config();
  c.upper[0] = kInf;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "upper[0]"));
  c = base_config();
  c.lower[1] = 6.0;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "lower[1]"));
  c = base_config();
  c.kp[0] = -1.0;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "kp[0]"));
  c = base_config();
  c.kd[1] = -0.1;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "kd[1]"));
  c = base_config();
  c.torque_limit[1] = 0.0;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "torque_limit[1]"));
  c = base_config();
  c.scale = 0.0;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "scale"));
  c = base_config();
  c.clip = kNaN;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "clip"));
  c = base_config();
  c.clip = -1.0;
  CHECK(has(error_of([&] { ActionProcessor p(c); }), "clip"));
}

void test_no_allocation() {
  ActionConfig c = base_config();
  c.kp = {20.0, 30.0};
  c.kd = {0.5, 1.0};
  ActionProcessor p(c);
  float a[2] = {0.1f, -0.2f};
  double q[2] = {0.0, 0.1}, qd[2] = {1.0, -1.0}, out[2];
  const long before = g_allocs.load();
  int ok = 0;
  for (int i = 0; i < 1000; ++i) {
    a[0] = 0.01f * static_cast<float>(i % 50);
    q[1] = (i % 100 == 0) ? kNaN : 0.1;  // some rejected ticks too
    if (p.process(a, q, qd, out)) ++ok;
  }
  const long after = g_allocs.load();
  CHECK(ok == 990);
  CHECK(after == before);
}

}  // namespace

int main() {
  test_scale_offset();
  test_clip();
  test_joint_limits();
  test_torque_band();
  test_limits_win_over_torque_band();
  test_non_finite();
  test_errors();
  test_no_allocation();
  return test_util::finish("test_action");
}
