// bench_inference: per-call latency of a bundle's policy in the C++ core, timed
// in C++, with heap allocations counted by a replaced global operator new.
//
//   bench_inference BUNDLE_DIR [--iterations N] [--warmup N] [--json]
//
// Observations are drawn before timing (uniform in [-2, 2], 1024 distinct
// vectors cycled), so only Policy::evaluate is inside the timed region. Prints
// one JSON object (--json) or a short table; errors exit 1 with
// "bench_inference: error: ..." on stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../tests/allocation_counter.hpp"
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
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < 1) throw std::runtime_error(std::string(flag) + " needs a positive integer");
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
    std::vector<double> durations_ns(static_cast<std::size_t>(o.iterations));
    float sink = 0.0f;  // keeps the optimizer from dropping the calls

    for (long i = 0; i < o.warmup; ++i) {
      policy.evaluate(&inputs[(i % kDistinct) * policy.input_dim()], output.data());
      sink += output[0];
    }
    const long allocations_before = g_allocs.load();
    for (long i = 0; i < o.iterations; ++i) {
      const float* in = &inputs[(i % kDistinct) * policy.input_dim()];
      const auto start = std::chrono::steady_clock::now();
      policy.evaluate(in, output.data());
      const auto stop = std::chrono::steady_clock::now();
      durations_ns[static_cast<std::size_t>(i)] = std::chrono::duration<double, std::nano>(stop - start).count();
      sink += output[0];
    }
    const long allocations = g_allocs.load() - allocations_before;

    double total_ns = 0.0;
    for (const double d : durations_ns) total_ns += d;
    std::sort(durations_ns.begin(), durations_ns.end());
    const double p50 = percentile_us(durations_ns, 0.5), p99 = percentile_us(durations_ns, 0.99);
    const double max = durations_ns.back() / 1000.0, mean = total_ns / o.iterations / 1000.0;
    const double per_step = static_cast<double>(allocations) / static_cast<double>(o.iterations);
    const char* vector_isa = widest_vector_isa();
    if (o.json) {
      std::printf(
          "{\"runtime\": \"cpp\", \"network\": \"%s\", \"input_dim\": %zu, \"output_dim\": %zu, \"iterations\": %ld, "
          "\"p50_us\": %.4f, \"p99_us\": %.4f, \"max_us\": %.4f, \"mean_us\": %.4f, \"allocations_per_step\": %.6g, "
          "\"vector_isa\": \"%s\", \"checksum\": %g}\n",
          bundle.spec.network.type.c_str(), policy.input_dim(), policy.output_dim(), o.iterations, p50, p99, max, mean,
          per_step, vector_isa, static_cast<double>(sink));
    } else {
      std::printf("bundle %s (%s %zu -> %zu), %ld calls\n", o.bundle.c_str(), bundle.spec.network.type.c_str(),
                  policy.input_dim(), policy.output_dim(), o.iterations);
      std::printf("p50 %.2f us  p99 %.2f us  max %.2f us  mean %.2f us  allocations/step %g\n", p50, p99, max, mean,
                  per_step);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_inference: error: %s\n", e.what());
    return 1;
  }
}
