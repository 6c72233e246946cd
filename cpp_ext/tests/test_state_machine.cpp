// Deterministic tests for the controller state machine and watchdog. Time is
// simulated, so every boundary (timeouts, ramp ends) is hit exactly.
#include "simreal_rt/state_machine.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

using namespace simreal_rt;

namespace {

int g_checks = 0;
int g_failures = 0;

#define CHECK(cond)                                                              \
  do {                                                                           \
    ++g_checks;                                                                  \
    if (!(cond)) {                                                               \
      ++g_failures;                                                              \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                            \
  } while (0)

#define CHECK_REASON(res, expected)                                              \
  do {                                                                           \
    ++g_checks;                                                                  \
    if (std::strcmp((res).reason, (expected)) != 0) {                            \
      ++g_failures;                                                              \
      std::fprintf(stderr, "%s:%d: reason \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                   (res).reason, (expected));                                    \
    }                                                                            \
  } while (0)

constexpr int N = 12;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kDt = 0.002;  // 500 Hz control loop

ControllerConfig make_config() {
  ControllerConfig c;
  c.num_joints = N;
  for (int i = 0; i < N; ++i) {
    const int k = i % 3;  // hip, thigh, calf
    c.default_pos.push_back(k == 0 ? 0.0 : (k == 1 ? 0.8 : -1.6));
    c.sit_pos.push_back(k == 0 ? 0.0 : (k == 1 ? 1.2 : -2.6));
    c.standing_kp.push_back(40.0);
    c.standing_kd.push_back(1.0);
    // Distinct per-joint values so a mixed-up index would be caught.
    c.policy_kp.push_back(20.0 + i);
    c.policy_kd.push_back(0.5 + 0.01 * i);
  }
  c.damping_kd = 2.0;
  c.state_timeout_s = 0.125;  // exactly representable, so the boundary is exact
  c.tilt_limit_rad = 0.75;
  c.stand_up_duration_s = 1.0;
  c.sit_down_duration_s = 1.0;
  c.max_target_step_rad = 0.01;
  c.inference_budget_s = 0.005;
  return c;
}

struct Snap {
  State state;
  std::vector<double> tgt, kp, kd;
};

// Simulated robot + node: owns the inputs and advances time.
struct Sim {
  ControllerConfig cfg;
  Controller ctl;
  double t = 1.0;
  bool freeze_joint = false, freeze_imu = false;
  double joint_stamp = 1.0, imu_stamp = 1.0;
  double pos[N];
  double policy[N];
  bool estop = false;
  double tilt = 0.0;
  bool obs_ok = true, act_ok = true;
  double inference = 0.001;
  bool pass_policy = true;
  Snap last;

  explicit Sim(const ControllerConfig& c = make_config()) : cfg(c), ctl(c) {
    for (int i = 0; i < N; ++i) {
      pos[i] = cfg.sit_pos[i];  // robot starts lying down
      policy[i] = cfg.default_pos[i] + 0.05 * (i - 6);
    }
  }

  Snap step(double dt = kDt) {
    t += dt;
    if (!freeze_joint) joint_stamp = t;
    if (!freeze_imu) imu_stamp = t;
    TickInput in;
    in.time_s = t;
    in.last_joint_state_s = joint_stamp;
    in.last_imu_s = imu_stamp;
    in.joint_pos = pos;
    in.estop = estop;
    in.tilt_rad = tilt;
    in.observation_finite = obs_ok;
    in.policy_targets = pass_policy ? policy : nullptr;
    in.action_finite = act_ok;
    in.inference_time_s = inference;
    const Command c = ctl.tick(in);
    Snap s{c.state, std::vector<double>(c.target_pos, c.target_pos + N),
           std::vector<double>(c.kp, c.kp + N), std::vector<double>(c.kd, c.kd + N)};
    // Every command of every test must be finite, not only in NaN tests.
    bool finite = true;
    for (int i = 0; i < N; ++i) {
      finite = finite && std::isfinite(s.tgt[i]) && std::isfinite(s.kp[i]) &&
               std::isfinite(s.kd[i]);
    }
    CHECK(finite);
    CHECK(c.state == ctl.state());
    last = s;
    return s;
  }

  Result req(Request r) { return ctl.request(r, t, pos); }
};

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

bool equals(const std::vector<double>& a, const double* b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

bool all_eq(const std::vector<double>& a, double v) {
  for (double x : a) {
    if (x != v) return false;
  }
  return true;
}

// Runs ticks until the state leaves `s` (bounded so a bug cannot hang ctest).
Snap run_while(Sim& sim, State s, int max_ticks = 5000) {
  Snap out = sim.last;
  for (int i = 0; i < max_ticks && sim.ctl.state() == s; ++i) out = sim.step();
  return out;
}

// Puts a fresh simulation into the requested state through the public API.
Sim make_in(State target) {
  Sim sim;
  sim.step();
  if (target == State::ZERO_TORQUE) return sim;
  if (target == State::DAMPING) {
    CHECK(sim.req(Request::DAMP).accepted);
    sim.step();
    return sim;
  }
  CHECK(sim.req(Request::STAND_UP).accepted);
  sim.step();
  if (target == State::STAND_UP) return sim;
  run_while(sim, State::STAND_UP);
  CHECK(sim.ctl.state() == State::STANDING);
  if (target == State::STANDING) return sim;
  if (target == State::SIT_DOWN) {
    CHECK(sim.req(Request::SIT_DOWN).accepted);
    sim.step();
    return sim;
  }
  CHECK(sim.req(Request::START_POLICY).accepted);
  sim.step();
  CHECK(sim.ctl.state() == State::POLICY);
  return sim;
}

const State kAllStates[] = {State::ZERO_TORQUE, State::STAND_UP, State::STANDING,
                            State::POLICY,      State::SIT_DOWN, State::DAMPING};

// ---------------------------------------------------------------------------

void test_config_validation() {
  auto expect_throw = [](ControllerConfig c, const std::string& needle) {
    try {
      Controller ctl(c);
      CHECK(!"constructor accepted an invalid config");
      std::fprintf(stderr, "  expected error mentioning: %s\n", needle.c_str());
    } catch (const std::invalid_argument& e) {
      const bool ok = std::string(e.what()).find(needle) != std::string::npos;
      CHECK(ok);
      if (!ok) std::fprintf(stderr, "  got: %s, wanted: %s\n", e.what(), needle.c_str());
    }
  };
  {
    ControllerConfig c = make_config();
    c.default_pos.pop_back();
    expect_throw(c, "default_pos has 11 values, expected 12");
  }
  {
    ControllerConfig c = make_config();
    c.num_joints = 0;
    expect_throw(c, "num_joints");
  }
  {
    ControllerConfig c = make_config();
    c.sit_pos.push_back(0.0);
    expect_throw(c, "sit_pos has 13 values, expected 12");
  }
  {
    ControllerConfig c = make_config();
    c.standing_kp[3] = -1.0;
    expect_throw(c, "standing_kp[3]");
  }
  {
    ControllerConfig c = make_config();
    c.standing_kd[0] = kNaN;
    expect_throw(c, "standing_kd[0]");
  }
  {
    ControllerConfig c = make_config();
    c.policy_kp.clear();
    expect_throw(c, "policy_kp has 0 values");
  }
  {
    ControllerConfig c = make_config();
    c.policy_kd[11] = -0.1;
    expect_throw(c, "policy_kd[11]");
  }
  {
    ControllerConfig c = make_config();
    c.default_pos[2] = std::numeric_limits<double>::infinity();
    expect_throw(c, "default_pos[2]");
  }
  {
    ControllerConfig c = make_config();
    c.damping_kd = -1.0;
    expect_throw(c, "damping_kd");
  }
  {
    ControllerConfig c = make_config();
    c.state_timeout_s = 0.0;
    expect_throw(c, "state_timeout_s");
  }
  {
    ControllerConfig c = make_config();
    c.tilt_limit_rad = kNaN;
    expect_throw(c, "tilt_limit_rad");
  }
  {
    ControllerConfig c = make_config();
    c.stand_up_duration_s = -1.0;
    expect_throw(c, "stand_up_duration_s");
  }
  {
    ControllerConfig c = make_config();
    c.sit_down_duration_s = kNaN;
    expect_throw(c, "sit_down_duration_s");
  }
  {
    ControllerConfig c = make_config();
    c.max_target_step_rad = 0.0;
    expect_throw(c, "max_target_step_rad");
  }
  {
    ControllerConfig c = make_config();
    c.inference_budget_s = -0.001;
    expect_throw(c, "inference_budget_s");
  }
}

void test_to_string() {
  CHECK(std::strcmp(to_string(State::ZERO_TORQUE), "ZERO_TORQUE") == 0);
  CHECK(std::strcmp(to_string(State::STAND_UP), "STAND_UP") == 0);
  CHECK(std::strcmp(to_string(State::STANDING), "STANDING") == 0);
  CHECK(std::strcmp(to_string(State::POLICY), "POLICY") == 0);
  CHECK(std::strcmp(to_string(State::SIT_DOWN), "SIT_DOWN") == 0);
  CHECK(std::strcmp(to_string(State::DAMPING), "DAMPING") == 0);
  CHECK(std::strcmp(to_string(Fault::NONE), "NONE") == 0);
  CHECK(std::strcmp(to_string(Fault::ESTOP), "ESTOP") == 0);
  CHECK(std::strcmp(to_string(Fault::STALE_JOINT_STATE), "STALE_JOINT_STATE") == 0);
  CHECK(std::strcmp(to_string(Fault::STALE_IMU), "STALE_IMU") == 0);
  CHECK(std::strcmp(to_string(Fault::TILT), "TILT") == 0);
  CHECK(std::strcmp(to_string(Fault::NONFINITE_OBSERVATION), "NONFINITE_OBSERVATION") == 0);
  CHECK(std::strcmp(to_string(Fault::NONFINITE_ACTION), "NONFINITE_ACTION") == 0);
  CHECK(std::strcmp(to_string(Fault::INFERENCE_OVERRUN), "INFERENCE_OVERRUN") == 0);
  CHECK(std::strcmp(to_string(Fault::OPERATOR_DAMP), "OPERATOR_DAMP") == 0);
  CHECK(std::strcmp(to_string(Request::START_POLICY), "start_policy") == 0);
}

void test_zero_torque_output() {
  Sim sim;
  CHECK(sim.ctl.state() == State::ZERO_TORQUE);
  CHECK(sim.ctl.damping_cause() == Fault::NONE);
  const Snap s = sim.step();
  CHECK(s.state == State::ZERO_TORQUE);
  CHECK(equals(s.tgt, sim.pos));
  CHECK(all_eq(s.kp, 0.0));
  CHECK(all_eq(s.kd, 0.0));
}

// Every (state, request) pair: accepted ones move to the right state,
// refused ones leave the state alone and say why.
void test_request_matrix() {
  for (State s : kAllStates) {
    for (Request r : {Request::STAND_UP, Request::START_POLICY, Request::SIT_DOWN,
                      Request::DAMP, Request::RESET}) {
      Sim sim = make_in(s);
      CHECK(sim.ctl.state() == s);
      const Result res = sim.req(r);
      bool expect_ok = false;
      State expect_state = s;
      const char* expect_reason = "accepted";
      switch (r) {
        case Request::STAND_UP:
          expect_ok = s == State::ZERO_TORQUE;
          expect_state = expect_ok ? State::STAND_UP : s;
          if (!expect_ok) expect_reason = "stand_up is only accepted in ZERO_TORQUE";
          break;
        case Request::START_POLICY:
          expect_ok = s == State::STANDING;
          expect_state = expect_ok ? State::POLICY : s;
          if (!expect_ok) expect_reason = "start_policy is only accepted in STANDING";
          break;
        case Request::SIT_DOWN:
          expect_ok = s == State::STANDING || s == State::POLICY;
          expect_state = expect_ok ? State::SIT_DOWN : s;
          if (!expect_ok) expect_reason = "sit_down is only accepted in STANDING or POLICY";
          break;
        case Request::DAMP:
          expect_ok = true;
          expect_state = State::DAMPING;
          if (s == State::DAMPING) expect_reason = "already in DAMPING";
          break;
        case Request::RESET:
          expect_ok = s == State::DAMPING;
          expect_state = expect_ok ? State::ZERO_TORQUE : s;
          if (!expect_ok) expect_reason = "reset is only accepted in DAMPING";
          break;
      }
      CHECK(res.accepted == expect_ok);
      CHECK(res.reason != nullptr);
      CHECK_REASON(res, expect_reason);
      CHECK(sim.ctl.state() == expect_state);
      if (!(res.accepted == expect_ok && sim.ctl.state() == expect_state)) {
        std::fprintf(stderr, "  in %s, request %s\n", to_string(s), to_string(r));
      }
      if (r == Request::DAMP) {
        CHECK(sim.ctl.damping_cause() == Fault::OPERATOR_DAMP);
        const Snap d = sim.step();
        CHECK(d.state == State::DAMPING);
        CHECK(all_eq(d.kp, 0.0));
        CHECK(all_eq(d.kd, sim.cfg.damping_kd));
        CHECK(equals(d.tgt, sim.pos));
      }
      if (r == Request::RESET && expect_ok) {
        CHECK(sim.ctl.damping_cause() == Fault::NONE);
        CHECK(sim.step().state == State::ZERO_TORQUE);
      }
    }
  }
}

void test_stand_up_requests_need_healthy_inputs() {
  {
    Sim sim;  // never ticked: no evidence the sensors are alive
    const Result r = sim.req(Request::STAND_UP);
    CHECK(!r.accepted);
    CHECK_REASON(r, "refused: fault present: joint state stale");
  }
  {
    Sim sim;
    sim.step();
    const Result r = sim.ctl.request(Request::STAND_UP, sim.t, nullptr);
    CHECK(!r.accepted);
    CHECK_REASON(r, "stand_up needs the measured joint positions");
  }
  {
    Sim sim;
    sim.step();
    sim.pos[5] = kNaN;
    const Result r = sim.req(Request::STAND_UP);
    CHECK(!r.accepted);
    CHECK_REASON(r, "refused: fault present: non-finite observation");
    CHECK(sim.ctl.state() == State::ZERO_TORQUE);
  }
  {
    Sim sim;
    sim.step();
    const Result r = sim.ctl.request(Request::STAND_UP, sim.t + 0.2, sim.pos);
    CHECK(!r.accepted);
    CHECK_REASON(r, "refused: fault present: joint state stale");
  }
  {
    // start_policy is refused if the state went stale since the last tick.
    Sim sim = make_in(State::STANDING);
    const Result r = sim.ctl.request(Request::START_POLICY, sim.t + 0.2, sim.pos);
    CHECK(!r.accepted);
    CHECK_REASON(r, "refused: fault present: joint state stale");
    CHECK(sim.ctl.state() == State::STANDING);
  }
}

// Drives a full ramp and checks the per-tick step bound, the straight-line
// shape and the exact end pose. Returns the number of ramp ticks.
int check_ramp(Sim& sim, State ramp_state, const std::vector<double>& start,
               const std::vector<double>& goal, State next_state) {
  std::vector<double> prev = start;
  int ticks = 0;
  Snap s = sim.last;
  Snap last_ramp = s;
  bool step_ok = true, line_ok = true;
  for (int i = 0; i < 10000 && sim.ctl.state() == ramp_state; ++i) {
    s = sim.step();
    if (s.state != ramp_state) break;
    ++ticks;
    last_ramp = s;
    step_ok = step_ok && max_abs_diff(s.tgt, prev) <= sim.cfg.max_target_step_rad;
    // All joints share one progress value: the pose moves on a straight line.
    double frac = -1.0;
    for (int j = 0; j < N; ++j) {
      const double d = goal[j] - start[j];
      if (std::fabs(d) < 1e-6) {
        line_ok = line_ok && s.tgt[j] == start[j];
        continue;
      }
      const double f = (s.tgt[j] - start[j]) / d;
      if (frac < 0.0) frac = f;
      line_ok = line_ok && std::fabs(f - frac) < 1e-9 && f >= 0.0 && f <= 1.0;
    }
    prev = s.tgt;
  }
  CHECK(step_ok);
  CHECK(line_ok);
  CHECK(last_ramp.state == ramp_state);
  CHECK(last_ramp.tgt == goal);  // exact, not approximately
  CHECK(all_eq(last_ramp.kp, 40.0));
  CHECK(all_eq(last_ramp.kd, 1.0));
  CHECK(s.state == next_state);
  return ticks;
}

void test_stand_up_rate_limited_when_duration_short() {
  ControllerConfig c = make_config();
  c.stand_up_duration_s = 0.05;  // 25 ticks would need steps up to 0.04 rad
  Sim sim(c);
  sim.step();
  std::vector<double> start(sim.pos, sim.pos + N);
  CHECK(sim.req(Request::STAND_UP).accepted);
  const int ticks = check_ramp(sim, State::STAND_UP, start, c.default_pos, State::STANDING);
  // Largest way is 1.0 rad (calf): at 0.01 rad per tick that's >= 100 ticks.
  CHECK(ticks >= 100);
  CHECK(ticks <= 102);
  const Snap s = sim.last;
  CHECK(s.tgt == c.default_pos);
  CHECK(all_eq(s.kp, 40.0));
}

void test_stand_up_follows_duration_when_slow_enough() {
  ControllerConfig c = make_config();
  c.max_target_step_rad = 0.1;  // never binding: 1 rad over 500 ticks
  Sim sim(c);
  sim.step();
  std::vector<double> start(sim.pos, sim.pos + N);
  CHECK(sim.req(Request::STAND_UP).accepted);
  // Halfway in time is halfway in space.
  for (int i = 0; i < 250; ++i) sim.step();
  CHECK(sim.last.state == State::STAND_UP);
  bool mid_ok = true;
  for (int j = 0; j < N; ++j) {
    const double mid = 0.5 * (start[j] + c.default_pos[j]);
    mid_ok = mid_ok && std::fabs(sim.last.tgt[j] - mid) < 1e-9;
  }
  CHECK(mid_ok);
  const int ticks = check_ramp(sim, State::STAND_UP, sim.last.tgt, c.default_pos,
                               State::STANDING);
  // 500 ticks in total, +-1 for accumulated float time.
  CHECK(ticks + 250 >= 499 && ticks + 250 <= 501);
}

// With stand_up_via_sit_pos the ramp folds into sit_pos first, then rises to
// default_pos: each leg a straight line within the step bound, the sit pose
// commanded exactly at the corner, STAND_UP throughout, then STANDING.
void test_stand_up_via_sit_pose() {
  ControllerConfig c = make_config();
  c.stand_up_via_sit_pos = true;
  Sim sim(c);
  sim.step();
  const std::vector<double> start(sim.pos, sim.pos + N);
  CHECK(sim.req(Request::STAND_UP).accepted);
  std::vector<std::vector<double>> path{start};
  for (int i = 0; i < 10000 && sim.ctl.state() == State::STAND_UP; ++i) {
    const Snap s = sim.step();
    if (s.state != State::STAND_UP) break;
    path.push_back(s.tgt);
  }
  CHECK(sim.last.state == State::STANDING);
  CHECK(path.back() == c.default_pos);
  std::size_t corner = 0;
  for (std::size_t k = 0; k < path.size() && corner == 0; ++k)
    if (path[k] == c.sit_pos) corner = k;
  CHECK(corner > 0 && corner + 1 < path.size());
  bool step_ok = true, fold_on_line = true, rise_on_line = true;
  for (std::size_t k = 1; k < path.size(); ++k) {
    step_ok = step_ok && max_abs_diff(path[k], path[k - 1]) <= c.max_target_step_rad;
    const std::vector<double>& from = k <= corner ? start : c.sit_pos;
    const std::vector<double>& to = k <= corner ? c.sit_pos : c.default_pos;
    double fraction = -1.0;
    for (int j = 0; j < N; ++j) {
      const double way = to[j] - from[j];
      if (std::fabs(way) < 1e-6) continue;
      const double f = (path[k][j] - from[j]) / way;
      if (fraction < 0.0) fraction = f;
      (k <= corner ? fold_on_line : rise_on_line) =
          (k <= corner ? fold_on_line : rise_on_line) && std::fabs(f - fraction) < 1e-9 && f >= -1e-12 && f <= 1.0;
    }
  }
  CHECK(step_ok);
  CHECK(fold_on_line);
  CHECK(rise_on_line);
  // a fault during the fold cancels the rise: DAMPING, and reset leads back to ZERO_TORQUE, not up
  Sim faulty(c);
  faulty.step();
  CHECK(faulty.req(Request::STAND_UP).accepted);
  for (int i = 0; i < 5; ++i) faulty.step();
  CHECK(faulty.req(Request::DAMP).accepted);
  faulty.step();
  CHECK(faulty.ctl.state() == State::DAMPING);
}

void test_full_cycle_and_sit_down() {
  Sim sim;
  sim.step();
  std::vector<double> start(sim.pos, sim.pos + N);
  CHECK(sim.req(Request::STAND_UP).accepted);
  check_ramp(sim, State::STAND_UP, start, sim.cfg.default_pos, State::STANDING);

  // STANDING holds the default pose with standing gains.
  for (int i = 0; i < 10; ++i) {
    const Snap s = sim.step();
    CHECK(s.state == State::STANDING);
    CHECK(s.tgt == sim.cfg.default_pos);
    CHECK(s.kp == sim.cfg.standing_kp);
    CHECK(s.kd == sim.cfg.standing_kd);
  }

  CHECK(sim.req(Request::START_POLICY).accepted);
  sim.step();
  CHECK(sim.ctl.state() == State::POLICY);

  // SIT_DOWN starts from the last commanded (policy) targets.
  std::vector<double> from(sim.policy, sim.policy + N);
  CHECK(sim.last.tgt == from);
  CHECK(sim.req(Request::SIT_DOWN).accepted);
  check_ramp(sim, State::SIT_DOWN, from, sim.cfg.sit_pos, State::ZERO_TORQUE);
  const Snap z = sim.last;
  CHECK(z.state == State::ZERO_TORQUE);
  CHECK(all_eq(z.kp, 0.0));
  CHECK(all_eq(z.kd, 0.0));
  CHECK(equals(z.tgt, sim.pos));

  // And around again, this time sitting down straight from STANDING.
  std::vector<double> start2(sim.pos, sim.pos + N);
  CHECK(sim.req(Request::STAND_UP).accepted);
  check_ramp(sim, State::STAND_UP, start2, sim.cfg.default_pos, State::STANDING);
  CHECK(sim.req(Request::SIT_DOWN).accepted);
  check_ramp(sim, State::SIT_DOWN, sim.cfg.default_pos, sim.cfg.sit_pos, State::ZERO_TORQUE);
  CHECK(sim.ctl.state() == State::ZERO_TORQUE);
}

void test_sit_down_rate_limited() {
  ControllerConfig c = make_config();
  c.sit_down_duration_s = 0.0;  // degenerate duration: only the step bound applies
  Sim sim(c);
  for (int i = 0; i < N; ++i) sim.policy[i] = -sim.cfg.sit_pos[i];  // far away
  sim.step();
  CHECK(sim.req(Request::STAND_UP).accepted);
  run_while(sim, State::STAND_UP);
  CHECK(sim.req(Request::START_POLICY).accepted);
  sim.step();
  std::vector<double> from(sim.policy, sim.policy + N);
  CHECK(sim.req(Request::SIT_DOWN).accepted);
  const int ticks = check_ramp(sim, State::SIT_DOWN, from, c.sit_pos, State::ZERO_TORQUE);
  CHECK(ticks >= 520);  // 2 * 2.6 rad at 0.01 rad per tick
}

void test_policy_passthrough() {
  Sim sim = make_in(State::POLICY);
  for (int k = 0; k < 20; ++k) {
    for (int i = 0; i < N; ++i) sim.policy[i] = 0.3 * std::sin(0.1 * k + i) - 5.0 * (k == 7);
    const Snap s = sim.step();
    CHECK(s.state == State::POLICY);
    CHECK(equals(s.tgt, sim.policy));  // no clamping, no filtering
    CHECK(s.kp == sim.cfg.policy_kp);
    CHECK(s.kd == sim.cfg.policy_kd);
  }
}

// ---------------------------------------------------------------------------
// Faults

struct FaultCase {
  const char* name;
  Fault expected;
  void (*inject)(Sim&);
  void (*clear)(Sim&);
  bool policy_only;
};

const FaultCase kFaults[] = {
    {"estop", Fault::ESTOP, [](Sim& s) { s.estop = true; }, [](Sim& s) { s.estop = false; },
     false},
    {"stale joint", Fault::STALE_JOINT_STATE,
     [](Sim& s) {
       s.freeze_joint = true;
       s.joint_stamp = s.t - 0.2;
     },
     [](Sim& s) { s.freeze_joint = false; }, false},
    {"stale imu", Fault::STALE_IMU,
     [](Sim& s) {
       s.freeze_imu = true;
       s.imu_stamp = s.t - 0.2;
     },
     [](Sim& s) { s.freeze_imu = false; }, false},
    {"tilt", Fault::TILT, [](Sim& s) { s.tilt = 0.9; }, [](Sim& s) { s.tilt = 0.0; }, false},
    {"negative tilt", Fault::TILT, [](Sim& s) { s.tilt = -0.9; }, [](Sim& s) { s.tilt = 0.0; },
     false},
    {"nan tilt", Fault::NONFINITE_OBSERVATION, [](Sim& s) { s.tilt = kNaN; },
     [](Sim& s) { s.tilt = 0.0; }, false},
    {"observation flag", Fault::NONFINITE_OBSERVATION, [](Sim& s) { s.obs_ok = false; },
     [](Sim& s) { s.obs_ok = true; }, false},
    {"nan joint", Fault::NONFINITE_OBSERVATION, [](Sim& s) { s.pos[4] = kNaN; },
     [](Sim& s) { s.pos[4] = s.cfg.sit_pos[4]; }, false},
    {"action flag", Fault::NONFINITE_ACTION, [](Sim& s) { s.act_ok = false; },
     [](Sim& s) { s.act_ok = true; }, false},
    {"nan policy target", Fault::NONFINITE_ACTION, [](Sim& s) { s.policy[2] = kNaN; },
     [](Sim& s) { s.policy[2] = 0.0; }, true},
    {"null policy targets", Fault::NONFINITE_ACTION, [](Sim& s) { s.pass_policy = false; },
     [](Sim& s) { s.pass_policy = true; }, true},
    {"inference overrun", Fault::INFERENCE_OVERRUN, [](Sim& s) { s.inference = 0.0051; },
     [](Sim& s) { s.inference = 0.001; }, false},
    {"nan inference time", Fault::INFERENCE_OVERRUN, [](Sim& s) { s.inference = kNaN; },
     [](Sim& s) { s.inference = 0.001; }, false},
};

void test_every_fault_from_every_state() {
  for (const FaultCase& fc : kFaults) {
    for (State s : {State::ZERO_TORQUE, State::STAND_UP, State::STANDING, State::POLICY,
                    State::SIT_DOWN, State::DAMPING}) {
      if (fc.policy_only && s != State::POLICY) continue;
      Sim sim = make_in(s);
      const Fault prior_cause = sim.ctl.damping_cause();
      const std::vector<double> prev_tgt = sim.last.tgt;
      fc.inject(sim);
      const Snap d = sim.step();
      const bool ok = d.state == State::DAMPING &&
                      sim.ctl.damping_cause() == (s == State::DAMPING ? prior_cause : fc.expected) &&
                      sim.ctl.active_fault() == fc.expected;
      CHECK(ok);
      if (!ok) {
        std::fprintf(stderr, "  fault '%s' from %s: state %s cause %s active %s\n", fc.name,
                     to_string(s), to_string(d.state), to_string(sim.ctl.damping_cause()),
                     to_string(sim.ctl.active_fault()));
      }
      CHECK(all_eq(d.kp, 0.0));
      CHECK(all_eq(d.kd, sim.cfg.damping_kd));
      // Targets are the measurement, except a NaN joint keeps its last target.
      bool tgt_ok = true;
      for (int i = 0; i < N; ++i) {
        const double want = std::isfinite(sim.pos[i]) ? sim.pos[i] : prev_tgt[i];
        tgt_ok = tgt_ok && d.tgt[i] == want;
      }
      CHECK(tgt_ok);

      // Latched: clearing the fault alone does not leave DAMPING.
      fc.clear(sim);
      for (int i = 0; i < 5; ++i) CHECK(sim.step().state == State::DAMPING);
      CHECK(sim.ctl.active_fault() == Fault::NONE);
      const Result r = sim.req(Request::RESET);
      CHECK(r.accepted);
      CHECK(sim.step().state == State::ZERO_TORQUE);
    }
  }
}

void test_first_cause_is_kept() {
  Sim sim = make_in(State::POLICY);
  sim.estop = true;
  sim.step();
  CHECK(sim.ctl.damping_cause() == Fault::ESTOP);
  sim.tilt = 1.0;
  sim.estop = false;
  sim.step();
  CHECK(sim.ctl.damping_cause() == Fault::ESTOP);
  CHECK(sim.ctl.active_fault() == Fault::TILT);
  const Result r = sim.req(Request::DAMP);
  CHECK(r.accepted);
  CHECK_REASON(r, "already in DAMPING");
  CHECK(sim.ctl.damping_cause() == Fault::ESTOP);
}

void test_stale_boundary() {
  for (bool imu : {false, true}) {
    for (State s : {State::POLICY, State::STAND_UP, State::STANDING}) {
      Sim sim = make_in(s);
      sim.t = 100.0;  // exact binary values make the boundary exact
      sim.step(0.0);
      if (imu) {
        sim.freeze_imu = true;
        sim.imu_stamp = 100.0;
      } else {
        sim.freeze_joint = true;
        sim.joint_stamp = 100.0;
      }
      CHECK(sim.step(0.0625).state != State::DAMPING);
      CHECK(sim.step(0.0625).state != State::DAMPING);  // t - last == timeout: fine
      CHECK(sim.t - 100.0 == sim.cfg.state_timeout_s);
      const Snap d = sim.step(1e-9);                       // just past it
      CHECK(d.state == State::DAMPING);
      CHECK(sim.ctl.damping_cause() == (imu ? Fault::STALE_IMU : Fault::STALE_JOINT_STATE));
    }
  }
  // In a 500 Hz stream with a dead sensor, DAMPING comes on the first tick
  // past the timeout, never earlier.
  Sim sim = make_in(State::POLICY);
  sim.freeze_joint = true;
  sim.joint_stamp = sim.t;
  int ticks = 0;
  while (sim.ctl.state() == State::POLICY && ticks < 1000) {
    sim.step();
    ++ticks;
    if (sim.ctl.state() == State::POLICY) CHECK(sim.t - sim.joint_stamp <= 0.125);
  }
  CHECK(sim.t - sim.joint_stamp > 0.125);
  CHECK(sim.t - sim.joint_stamp <= 0.125 + kDt + 1e-9);
}

// A stamp far in the future would otherwise count as fresh until the clock
// caught up with it, however long the sensor has been dead.
void test_future_stamp_is_stale() {
  for (bool imu : {false, true}) {
    Sim sim = make_in(State::POLICY);
    sim.t = 100.0;
    sim.step(0.0);
    (imu ? sim.freeze_imu : sim.freeze_joint) = true;
    (imu ? sim.imu_stamp : sim.joint_stamp) = 100.0 + 0.0625;  // within the timeout of now: tolerated skew
    CHECK(sim.step(0.0).state == State::POLICY);
    (imu ? sim.imu_stamp : sim.joint_stamp) = 105.0;
    CHECK(sim.step(kDt).state == State::DAMPING);
    CHECK(sim.ctl.damping_cause() == (imu ? Fault::STALE_IMU : Fault::STALE_JOINT_STATE));
  }
}

void test_threshold_boundaries() {
  Sim sim = make_in(State::POLICY);
  sim.tilt = sim.cfg.tilt_limit_rad;
  CHECK(sim.step().state == State::POLICY);
  sim.tilt = 0.0;
  sim.inference = sim.cfg.inference_budget_s;
  CHECK(sim.step().state == State::POLICY);
  sim.inference = std::nextafter(sim.cfg.inference_budget_s, 1.0);
  CHECK(sim.step().state == State::DAMPING);
  CHECK(sim.ctl.damping_cause() == Fault::INFERENCE_OVERRUN);
}

void test_nan_joint_position() {
  Sim sim = make_in(State::POLICY);
  const std::vector<double> before = sim.last.tgt;
  sim.pos[3] = kNaN;
  sim.pos[7] = std::numeric_limits<double>::infinity();
  const Snap d = sim.step();
  CHECK(d.state == State::DAMPING);
  CHECK(sim.ctl.damping_cause() == Fault::NONFINITE_OBSERVATION);
  CHECK(all_eq(d.kp, 0.0));
  CHECK(d.tgt[3] == before[3]);
  CHECK(d.tgt[7] == before[7]);
  // Sim::step already checks finiteness of every value on every tick.
  for (int i = 0; i < 50; ++i) {
    const Snap s = sim.step();
    CHECK(s.state == State::DAMPING);
    CHECK(all_eq(s.kp, 0.0));
  }
  Result r = sim.req(Request::RESET);
  CHECK(!r.accepted);
  CHECK_REASON(r, "refused: fault present: non-finite observation");
  sim.pos[3] = 0.1;
  sim.pos[7] = 0.2;
  // The request's own measurement counts too.
  double bad[N];
  for (int i = 0; i < N; ++i) bad[i] = sim.pos[i];
  bad[0] = kNaN;
  sim.step();
  r = sim.ctl.request(Request::RESET, sim.t, bad);
  CHECK(!r.accepted);
  CHECK_REASON(r, "refused: fault present: non-finite observation");
  r = sim.req(Request::RESET);
  CHECK(r.accepted);
  CHECK(sim.step().state == State::ZERO_TORQUE);

  // All joints NaN from the very first tick: fall back to zeros, still finite.
  Sim fresh;
  for (double& p : fresh.pos) p = kNaN;
  const Snap f = fresh.step();
  CHECK(f.state == State::DAMPING);
  CHECK(all_eq(f.tgt, 0.0));
  CHECK(all_eq(f.kp, 0.0));
}

void test_reset_refused_while_fault_persists() {
  struct Case {
    const char* reason;
    void (*inject)(Sim&);
    void (*clear)(Sim&);
  };
  const Case cases[] = {
      {"refused: fault present: e-stop asserted", [](Sim& s) { s.estop = true; },
       [](Sim& s) { s.estop = false; }},
      {"refused: fault present: joint state stale",
       [](Sim& s) {
         s.freeze_joint = true;
         s.joint_stamp = s.t - 1.0;
       },
       [](Sim& s) { s.freeze_joint = false; }},
      {"refused: fault present: IMU stale",
       [](Sim& s) {
         s.freeze_imu = true;
         s.imu_stamp = s.t - 1.0;
       },
       [](Sim& s) { s.freeze_imu = false; }},
      {"refused: fault present: tilt over limit", [](Sim& s) { s.tilt = 1.2; },
       [](Sim& s) { s.tilt = 0.1; }},
      {"refused: fault present: non-finite observation", [](Sim& s) { s.obs_ok = false; },
       [](Sim& s) { s.obs_ok = true; }},
      {"refused: fault present: non-finite action", [](Sim& s) { s.act_ok = false; },
       [](Sim& s) { s.act_ok = true; }},
      {"refused: fault present: inference overrun", [](Sim& s) { s.inference = 0.02; },
       [](Sim& s) { s.inference = 0.001; }},
  };
  for (const Case& c : cases) {
    Sim sim = make_in(State::POLICY);
    c.inject(sim);
    for (int i = 0; i < 3; ++i) CHECK(sim.step().state == State::DAMPING);
    const Result r = sim.req(Request::RESET);
    CHECK(!r.accepted);
    CHECK_REASON(r, c.reason);
    CHECK(sim.ctl.state() == State::DAMPING);
    // Other requests don't bypass DAMPING either.
    CHECK(!sim.req(Request::STAND_UP).accepted);
    CHECK(!sim.req(Request::START_POLICY).accepted);
    CHECK(!sim.req(Request::SIT_DOWN).accepted);
    c.clear(sim);
    CHECK(sim.step().state == State::DAMPING);
    const Result ok = sim.req(Request::RESET);
    CHECK(ok.accepted);
    CHECK_REASON(ok, "accepted");
    CHECK(sim.ctl.state() == State::ZERO_TORQUE);
    CHECK(sim.ctl.damping_cause() == Fault::NONE);
  }
  // A sensor that died after the last tick is caught at request time.
  Sim sim = make_in(State::DAMPING);
  const Result r = sim.ctl.request(Request::RESET, sim.t + 0.5, sim.pos);
  CHECK(!r.accepted);
  CHECK_REASON(r, "refused: fault present: joint state stale");
}

void test_time_going_backwards_does_not_move_ramp() {
  Sim sim = make_in(State::STAND_UP);
  for (int i = 0; i < 10; ++i) sim.step();
  const std::vector<double> at = sim.last.tgt;
  const Snap s = sim.step(-0.01);
  CHECK(s.state == State::STAND_UP);
  CHECK(s.tgt == at);
}

}  // namespace

int main() {
  test_config_validation();
  test_to_string();
  test_zero_torque_output();
  test_request_matrix();
  test_stand_up_requests_need_healthy_inputs();
  test_stand_up_rate_limited_when_duration_short();
  test_stand_up_follows_duration_when_slow_enough();
  test_stand_up_via_sit_pose();
  test_full_cycle_and_sit_down();
  test_sit_down_rate_limited();
  test_policy_passthrough();
  test_every_fault_from_every_state();
  test_first_cause_is_kept();
  test_stale_boundary();
  test_future_stamp_is_stale();
  test_threshold_boundaries();
  test_nan_joint_position();
  test_reset_refused_while_fault_persists();
  test_time_going_backwards_does_not_move_ramp();
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
