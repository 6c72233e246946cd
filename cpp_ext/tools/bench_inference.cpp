// bench_inference: per-call latency of a bundle's policy in the C++ core, timed
// in C++, with heap allocations counted by a replaced global operator new.
//
//   bench_inference BUNDLE_DIR [--iterations N] [--warmup N] [--json]
//
// Observations are drawn before timing (uniform in [-2, 2], 1024 distinct
// vectors cycled), so only Policy::evaluate is inside the timed region. Then
// the whole control tick (ControlCore::tick in POLICY: joint reordering,
// observation, network, action processing, state machine) is timed the same
// way on a robot standing still (tick_* keys). Prints one JSON object (--json)
// or a short table; errors exit 1 with "bench_inference: error: ..." on stderr.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../tests/allocation_counter.hpp"
#include "simreal_rt/control_core.hpp"
#include "simreal_rt/policy.hpp"

namespace {

struct Options {
  std::string bundle;
  long iterations = 20000;
  long warmup = 2000;
  bool json = false;
};

long positive_count(const char* flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || errno == ERANGE || v < 1 || v > 100000000)
    throw std::runtime_error(std::string(flag) + " needs an integer in [1, 100000000]");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") o.json = true;
    else if ((a == "--iterations" || a == "--warmup") && i + 1 < argc)
      (a == "--iterations" ? o.iterations : o.warmup) = positive_count(argv[i], argv[i + 1]), ++i;
    else if (!a.empty() && a[0] != '-' && o.bundle.empty()) o.bundle = a;
    else throw std::runtime_error("unexpected argument '" + a + "'");
  }
  if (o.bundle.empty()) throw std::runtime_error("usage: bench_inference BUNDLE_DIR [--iterations N] [--warmup N] [--json]");
  return o;
}

double percentile_us(const std::vector<double>& sorted_ns, double q) {
  const std::size_t index = std::min(sorted_ns.size() - 1, static_cast<std::size_t>(q * (sorted_ns.size() - 1) + 0.5));
  return sorted_ns[index] / 1000.0;
}

struct Timing {
  double p50_us, p99_us, max_us, mean_us, allocations_per_step;
};

// Times `call(i)` for i in [0, iterations) after `warmup` untimed calls; counts heap allocations.
template <class Call>
Timing time_calls(long warmup, long iterations, Call call) {
  std::vector<double> durations_ns(static_cast<std::size_t>(iterations));
  for (long i = 0; i < warmup; ++i) call(i);
  const long allocations_before = g_allocs.load();
  for (long i = 0; i < iterations; ++i) {
    const auto start = std::chrono::steady_clock::now();
    call(warmup + i);
    const auto stop = std::chrono::steady_clock::now();
    durations_ns[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::nano>(stop - start).count();
  }
  const long allocations = g_allocs.load() - allocations_before;
  double total_ns = 0.0;
  for (const double d : durations_ns) total_ns += d;
  std::sort(durations_ns.begin(), durations_ns.end());
  return {percentile_us(durations_ns, 0.5), percentile_us(durations_ns, 0.99), durations_ns.back() / 1000.0,
          total_ns / static_cast<double>(iterations) / 1000.0,
          static_cast<double>(allocations) / static_cast<double>(iterations)};
}

// ControlCore::tick in POLICY on a robot standing still at the default pose, 50 Hz stamps.
Timing time_ticks(simreal_rt::Bundle bundle, long warmup, long iterations) {
  const std::vector<double> stand = bundle.spec.default_joint_pos;
  const std::vector<std::string> joints = bundle.spec.joint_names;
  const double dt = bundle.spec.control_dt_s;
  simreal_rt::ControlCore core(std::move(bundle), joints);
  const std::vector<double> zeros(stand.size(), 0.0);
  const double quat[4] = {1.0, 0.0, 0.0, 0.0}, gyro[3] = {0.0, 0.0, 0.0}, command[3] = {0.5, 0.0, 0.0};
  double t = 0.0;
  const auto sensors = [&](double time_s) {
    simreal_rt::Sensors s;
    s.time_s = s.joint_state_stamp_s = s.imu_stamp_s = time_s;
    s.joint_pos = stand.data();
    s.joint_vel = zeros.data();
    s.imu_quat_wxyz = quat;
    s.imu_ang_vel = gyro;
    s.velocity_command = command;
    return s;
  };
  core.tick(sensors(t));
  core.request(simreal_rt::Request::STAND_UP, t);
  for (int i = 0; i < 100000 && core.state() != simreal_rt::State::STANDING; ++i) core.tick(sensors(t += dt));
  if (!core.request(simreal_rt::Request::START_POLICY, t).accepted)
    throw std::runtime_error("the control core did not reach POLICY on a standing robot");
  return time_calls(warmup, iterations, [&](long) {
    const simreal_rt::CoreOutput out = core.tick(sensors(t += dt));
    if (out.state != simreal_rt::State::POLICY) throw std::runtime_error("the control core left POLICY while timed");
  });
}

// The instruction set the MLP's multiversioned loops run with on this CPU.
const char* widest_vector_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return "avx2";
  return "sse2";
#else
  return "generic";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    simreal_rt::Bundle bundle = simreal_rt::load_bundle(o.bundle);
    simreal_rt::Policy& policy = *bundle.policy;
    constexpr std::size_t kDistinct = 1024;
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    std::vector<float> inputs(kDistinct * policy.input_dim());
    for (float& v : inputs) v = uniform(rng);
    std::vector<float> output(policy.output_dim());
    float sink = 0.0f;  // keeps the optimizer from dropping the calls
    const Timing policy_timing = time_calls(o.warmup, o.iterations, [&](long i) {
      policy.evaluate(&inputs[(static_cast<std::size_t>(i) % kDistinct) * policy.input_dim()], output.data());
      sink += output[0];
    });
    const std::string network = bundle.spec.network.type;
    const std::size_t input_dim = policy.input_dim(), output_dim = policy.output_dim();
    const Timing tick = time_ticks(std::move(bundle), o.warmup, o.iterations);
    const double p50 = policy_timing.p50_us, p99 = policy_timing.p99_us, max = policy_timing.max_us;
    const double mean = policy_timing.mean_us, per_step = policy_timing.allocations_per_step;
    const char* vector_isa = widest_vector_isa();
    if (o.json) {
      std::printf(
          "{\"runtime\": \"cpp\", \"network\": \"%s\", \"input_dim\": %zu, \"output_dim\": %zu, \"iterations\": %ld, "
          "\"p50_us\": %.4f, \"p99_us\": %.4f, \"max_us\": %.4f, \"mean_us\": %.4f, \"allocations_per_step\": %.6g, "
          "\"tick_p50_us\": %.4f, \"tick_p99_us\": %.4f, \"tick_max_us\": %.4f, \"tick_mean_us\": %.4f, "
          "\"tick_allocations_per_step\": %.6g, \"vector_isa\": \"%s\", \"checksum\": %g}\n",
          network.c_str(), input_dim, output_dim, o.iterations, p50, p99, max, mean, per_step, tick.p50_us,
          tick.p99_us, tick.max_us, tick.mean_us, tick.allocations_per_step, vector_isa, static_cast<double>(sink));
    } else {
      std::printf("bundle %s (%s %zu -> %zu), %ld calls, %s\n", o.bundle.c_str(), network.c_str(), input_dim,
                  output_dim, o.iterations, vector_isa);
      std::printf("policy  p50 %.2f us  p99 %.2f us  max %.2f us  mean %.2f us  allocations/step %g\n", p50, p99, max,
                  mean, per_step);
      std::printf("tick    p50 %.2f us  p99 %.2f us  max %.2f us  mean %.2f us  allocations/step %g\n", tick.p50_us,
                  tick.p99_us, tick.max_us, tick.mean_us, tick.allocations_per_step);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_inference: error: %s\n", e.what());
    return 1;
  }
}
