// Tests for the MLP evaluator: hand-computed outputs per activation, shape
// chaining errors, and zero heap allocations in evaluate(). No framework.
#include "simreal_rt/mlp.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "../src/elu.hpp"
#include "safetensors_test_util.hpp"

#include "allocation_counter.hpp"

using namespace simreal_rt;
using test_util::serialize;
using test_util::TensorSpec;

namespace {

// 2 -> 3 -> 2. With x = [1, -2] the hidden pre-activations are [0.5, -1.5, -2.5].
std::vector<TensorSpec> two_layer() {
  return {
      {"layers.0.weight", {3, 2}, {1.0f, 0.5f, -1.0f, 0.25f, 0.5f, 1.0f}},
      {"layers.0.bias", {3}, {0.5f, 0.0f, -1.0f}},
      {"layers.1.weight", {2, 3}, {1.0f, 2.0f, -1.0f, 0.5f, -1.0f, 1.0f}},
      {"layers.1.bias", {2}, {0.1f, -0.2f}},
  };
}

Mlp build(const std::vector<TensorSpec>& specs, Activation a) {
  return Mlp(SafetensorsFile::from_bytes(serialize(specs)), a);
}

bool near(float a, double b) { return std::fabs(static_cast<double>(a) - b) < 1e-6; }

void test_outputs() {
  const float x[2] = {1.0f, -2.0f};
  struct Case {
    Activation act;
    double y0, y1;
  };
  // Hidden after activation, then y0 = h0 + 2 h1 - h2 + 0.1, y1 = 0.5 h0 - h1 + h2 - 0.2:
  //   RELU: h = [0.5, 0, 0]
  //   ELU:  h = [0.5, e^-1.5 - 1, e^-2.5 - 1] = [0.5, -0.77686984, -0.917915001]
  //   TANH: h = [0.462117157, -0.905148254, -0.986614298]
  const Case cases[] = {
      {Activation::RELU, 0.6, 0.05},
      {Activation::ELU, -0.0358246783, -0.0910451615},
      {Activation::TANH, -0.261565052, -0.0504074659},
  };
  for (const Case& c : cases) {
    Mlp m = build(two_layer(), c.act);
    CHECK(m.input_dim() == 2);
    CHECK(m.output_dim() == 2);
    CHECK(m.num_layers() == 2);
    float y[2] = {0.0f, 0.0f};
    m.evaluate(x, y);
    CHECK(near(y[0], c.y0));
    CHECK(near(y[1], c.y1));
  }
  // Single layer: no activation at all (last layer is linear).
  Mlp lin = build({{"layers.0.weight", {1, 2}, {2.0f, 3.0f}}, {"layers.0.bias", {1}, {-10.0f}}}, Activation::RELU);
  float y = 0.0f;
  lin.evaluate(x, &y);
  CHECK(near(y, -14.0));
}

bool throws_naming(const std::vector<TensorSpec>& specs, const std::string& needle) {
  return test_util::contains(test_util::message_of<BundleError>([&] { build(specs, Activation::ELU); }), needle);
}

void test_errors() {
  auto s = two_layer();
  s[2] = {"layers.1.weight", {2, 4}, std::vector<float>(8, 0.0f)};  // in = 4, previous out = 3
  CHECK(throws_naming(s, "tensor 'layers.1.weight'"));
  CHECK(throws_naming(s, "previous layer outputs 3"));

  s = two_layer();
  s[3] = {"layers.1.bias", {3}, {0, 0, 0}};
  CHECK(throws_naming(s, "tensor 'layers.1.bias'"));

  s = two_layer();
  s[2].name = "layers.2.weight";  // gap: layers.1.weight missing
  s[3].name = "layers.2.bias";
  CHECK(throws_naming(s, "tensor 'layers.1.weight'"));

  s = two_layer();
  s.pop_back();  // layers.1.bias missing
  CHECK(throws_naming(s, "tensor 'layers.1.bias'"));

  s = two_layer();
  s[0] = {"layers.0.weight", {6}, std::vector<float>(6, 0.0f)};  // rank 1
  CHECK(throws_naming(s, "tensor 'layers.0.weight'"));

  CHECK(throws_naming({{"other", {1}, {1.0f}}}, "tensor 'layers.0.weight'"));
}

void test_no_allocation() {
  // Wider network so the scratch buffers matter: 8 -> 16 -> 16 -> 4.
  std::vector<TensorSpec> s;
  const int dims[] = {8, 16, 16, 4};
  for (int i = 0; i < 3; ++i) {
    const int in = dims[i], out = dims[i + 1];
    std::vector<float> w(static_cast<std::size_t>(in * out));
    for (std::size_t k = 0; k < w.size(); ++k) w[k] = 0.01f * static_cast<float>((k * 7) % 13) - 0.06f;
    s.push_back({"layers." + std::to_string(i) + ".weight", {out, in}, w});
    s.push_back({"layers." + std::to_string(i) + ".bias", {out}, std::vector<float>(static_cast<std::size_t>(out), 0.1f)});
  }
  for (Activation a : {Activation::ELU, Activation::RELU, Activation::TANH}) {
    Mlp m = build(s, a);
    std::vector<float> x(8, 0.5f), y(4, 0.0f);
    const long before = g_allocs.load();
    for (int i = 0; i < 1000; ++i) {
      x[static_cast<std::size_t>(i % 8)] = 0.001f * static_cast<float>(i);
      m.evaluate(x.data(), y.data());
    }
    const long after = g_allocs.load();
    CHECK(after == before);
    CHECK(std::isfinite(y[0]) && std::isfinite(y[3]));
  }
  // Sanity: the counter does see allocations.
  const long before = g_allocs.load();
  std::vector<int>* v = new std::vector<int>(10);
  delete v;
  CHECK(g_allocs.load() >= before + 2);
}

// The vectorizable expm1 behind ELU, against libm on a dense grid of [-40, 0].
void test_elu_expm1_accuracy() {
  double worst = 0.0;
  for (int i = 0; i <= 4000000; ++i) {
    const float x = -40.0f * static_cast<float>(i) / 4000000.0f;
    const double error = std::fabs(static_cast<double>(detail::expm1_nonpositive(x)) - std::expm1(static_cast<double>(x)));
    worst = std::max(worst, error);
  }
  std::printf("expm1_nonpositive: max abs error %.3g over [-40, 0]\n", worst);
  CHECK(worst < 1e-7);
  CHECK(detail::expm1_nonpositive(0.0f) == 0.0f);
  CHECK(detail::expm1_nonpositive(-1e-30f) == -1e-30f);  // tiny inputs keep their value, not rounded to 0
  CHECK(detail::expm1_nonpositive(-1e30f) == -1.0f);
  CHECK(std::isnan(detail::expm1_nonpositive(std::nanf(""))));
  CHECK(detail::expm1_nonpositive(-std::numeric_limits<float>::infinity()) == -1.0f);
}

}  // namespace

int main() {
  test_elu_expm1_accuracy();
  test_outputs();
  test_errors();
  test_no_allocation();
  return test_util::finish("test_mlp");
}
