// Tests for the GRU policy: hand-computed single-unit steps (gate order r, z, n),
// a two-layer case, reset, errors naming the tensor, and zero heap allocations
// in evaluate(). No framework.
#include "simreal_rt/gru.hpp"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "safetensors_test_util.hpp"

#include "allocation_counter.hpp"

using namespace simreal_rt;
using test_util::serialize;
using test_util::TensorSpec;

namespace {

GruPolicy build(const std::vector<TensorSpec>& specs, Activation a = Activation::ELU) {
  return GruPolicy(SafetensorsFile::from_bytes(serialize(specs)), a);
}

bool near(float a, double b) { return std::fabs(static_cast<double>(a) - b) < 1e-6; }

// input 1, H = 1, L = 1, head y = 2 h + 0.1. Rows of W are (r, z, n).
std::vector<TensorSpec> single_unit() {
  return {
      {"gru.0.weight_ih", {3, 1}, {1.0f, -1.0f, 2.0f}},
      {"gru.0.weight_hh", {3, 1}, {0.5f, 0.0f, 1.0f}},
      {"gru.0.bias_ih", {3}, {0.0f, 0.5f, 0.0f}},
      {"gru.0.bias_hh", {3}, {0.0f, 0.0f, -0.5f}},
      {"layers.0.weight", {1, 1}, {2.0f}},
      {"layers.0.bias", {1}, {0.1f}},
  };
}

void test_single_unit_steps() {
  GruPolicy g = build(single_unit());
  CHECK(g.input_dim() == 1);
  CHECK(g.output_dim() == 1);
  CHECK(g.hidden_size() == 1);
  CHECK(g.num_layers() == 1);
  // Step 1, x = 1, h = 0:
  //   r = sigmoid(1 + 0)             = 0.731058579
  //   z = sigmoid(-1 + 0.5 + 0)      = sigmoid(-0.5) = 0.377540669
  //   n = tanh(2 + r * (0 - 0.5))    = tanh(1.634470711) = 0.926590...
  //   h = (1 - z) n + z 0            = 0.576830339, y = 2 h + 0.1 = 1.253660679
  // Swapping r and z (or reading n's bias outside r) changes every value below.
  const float xs[3] = {1.0f, -0.5f, 2.0f};
  const double hs[3] = {0.5768303394724561, 0.22085688116953608, 0.8569623897562211};
  for (int t = 0; t < 3; ++t) {
    float y = 0.0f;
    g.evaluate(&xs[t], &y);
    CHECK(near(g.hidden_state(0)[0], hs[t]));
    CHECK(near(y, 2.0 * hs[t] + 0.1));
  }
  // reset: hidden back to zero, and the next step repeats step 1 exactly
  g.reset();
  CHECK(g.hidden_state(0)[0] == 0.0f);
  float y = 0.0f;
  g.evaluate(&xs[0], &y);
  CHECK(near(g.hidden_state(0)[0], hs[0]));
  CHECK(near(y, 2.0 * hs[0] + 0.1));
}

// Deterministic small weights: 0.25 * (((i * k) % 7) - 3) for element i.
std::vector<float> pattern(std::size_t n, int k, float scale = 1.0f) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = scale * 0.25f * static_cast<float>(static_cast<int>((i * static_cast<std::size_t>(k)) % 7) - 3);
  return v;
}

// input 3, H = 2, L = 2, head 2 -> 3 -> 2 (tanh between).
std::vector<TensorSpec> two_layers() {
  return {
      {"gru.0.weight_ih", {6, 3}, pattern(18, 3)},
      {"gru.0.weight_hh", {6, 2}, pattern(12, 5)},
      {"gru.0.bias_ih", {6}, pattern(6, 2, 0.5f)},
      {"gru.0.bias_hh", {6}, pattern(6, 4, 0.5f)},
      {"gru.1.weight_ih", {6, 2}, pattern(12, 2)},
      {"gru.1.weight_hh", {6, 2}, pattern(12, 3)},
      {"gru.1.bias_ih", {6}, pattern(6, 5, 0.5f)},
      {"gru.1.bias_hh", {6}, pattern(6, 1, 0.5f)},
      {"layers.0.weight", {3, 2}, {1.0f, -0.5f, 0.25f, 0.75f, -1.0f, 0.5f}},
      {"layers.0.bias", {3}, {0.1f, -0.2f, 0.0f}},
      {"layers.1.weight", {2, 3}, {0.5f, -1.0f, 0.25f, 1.0f, 0.5f, -0.5f}},
      {"layers.1.bias", {2}, {0.0f, 0.3f}},
  };
}

void test_two_layers() {
  GruPolicy g = build(two_layers(), Activation::TANH);
  CHECK(g.input_dim() == 3);
  CHECK(g.output_dim() == 2);
  CHECK(g.hidden_size() == 2);
  CHECK(g.num_layers() == 2);
  // Expected values: the GRU equations in double with float hidden states (numpy),
  // which torch.nn.GRU(3, 2, num_layers=2) in float64 reproduces to 1e-9.
  const float xs[3][3] = {{1.0f, -2.0f, 0.5f}, {0.0f, 0.5f, -1.0f}, {2.0f, 1.0f, 1.0f}};
  const double h0[3][2] = {{-0.15293893218040466, -0.09760763496160507},
                           {0.2922306954860687, 0.2834174633026123},
                           {-0.3505472242832184, 0.3153294026851654}};
  const double h1[3][2] = {{0.20878061652183533, 0.09869702905416489},
                           {0.31250622868537903, 0.23820826411247253},
                           {0.4317510724067688, -0.0101752495393157}};
  const double ys[3][2] = {{0.16100690852342092, 0.595987466740828},
                           {0.03815316886717512, 0.7091371282312333},
                           {0.24190516736249926, 0.9464192125667119}};
  for (int round = 0; round < 2; ++round) {  // the second round follows a reset()
    for (int t = 0; t < 3; ++t) {
      float y[2] = {0.0f, 0.0f};
      g.evaluate(xs[t], y);
      for (int j = 0; j < 2; ++j) {
        CHECK(near(g.hidden_state(0)[j], h0[t][j]));
        CHECK(near(g.hidden_state(1)[j], h1[t][j]));
        CHECK(near(y[j], ys[t][j]));
      }
    }
    g.reset();
    for (int j = 0; j < 2; ++j) CHECK(g.hidden_state(0)[j] == 0.0f && g.hidden_state(1)[j] == 0.0f);
  }
}

bool throws_naming(const std::vector<TensorSpec>& specs, const std::string& needle) {
  return test_util::contains(test_util::message_of<BundleError>([&] { build(specs); }), needle);
}

std::vector<TensorSpec> without(std::vector<TensorSpec> s, const std::string& name) {
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (it->name == name) {
      s.erase(it);
      break;
    }
  }
  return s;
}

TensorSpec& find(std::vector<TensorSpec>& s, const std::string& name) {
  for (TensorSpec& t : s)
    if (t.name == name) return t;
  std::fprintf(stderr, "test bug: no tensor %s\n", name.c_str());
  std::abort();
}

void test_errors() {
  for (const char* name : {"gru.0.weight_ih", "gru.0.weight_hh", "gru.0.bias_ih", "gru.0.bias_hh", "gru.1.weight_ih",
                           "gru.1.weight_hh", "gru.1.bias_ih", "gru.1.bias_hh"}) {
    CHECK(throws_naming(without(two_layers(), name), std::string("tensor '") + name + "'"));
    CHECK(throws_naming(without(two_layers(), name), "missing"));
  }

  auto s = two_layers();
  find(s, "gru.0.weight_hh") = {"gru.0.weight_hh", {6, 3}, std::vector<float>(18, 0.0f)};  // not [3H, H]
  CHECK(throws_naming(s, "tensor 'gru.0.weight_hh': shape [6, 3]"));

  s = two_layers();
  find(s, "gru.0.weight_ih") = {"gru.0.weight_ih", {4, 3}, std::vector<float>(12, 0.0f)};  // 4 != 3H
  CHECK(throws_naming(s, "tensor 'gru.0.weight_ih': shape [4, 3]"));

  s = two_layers();
  find(s, "gru.1.weight_ih") = {"gru.1.weight_ih", {6, 3}, std::vector<float>(18, 0.0f)};  // in != H above layer 0
  CHECK(throws_naming(s, "tensor 'gru.1.weight_ih': shape [6, 3] must be [6, 2]"));

  s = two_layers();
  find(s, "gru.1.bias_hh") = {"gru.1.bias_hh", {3}, std::vector<float>(3, 0.0f)};
  CHECK(throws_naming(s, "tensor 'gru.1.bias_hh': shape [3] must be [6]"));

  s = two_layers();
  for (TensorSpec& t : s)  // gap: gru.1.* renamed to gru.2.*
    if (t.name.compare(0, 6, "gru.1.") == 0) t.name = "gru.2." + t.name.substr(6);
  CHECK(throws_naming(s, "tensor 'gru.1.weight_ih': missing"));

  s = two_layers();
  find(s, "layers.0.weight") = {"layers.0.weight", {3, 4}, std::vector<float>(12, 0.0f)};  // head in 4 != H = 2
  CHECK(throws_naming(s, "tensor 'layers.0.weight': head input 4 != GRU hidden size 2"));

  CHECK(throws_naming(without(two_layers(), "layers.1.bias"), "tensor 'layers.1.bias'"));
  CHECK(throws_naming({{"layers.0.weight", {1, 1}, {1.0f}}, {"layers.0.bias", {1}, {0.0f}}},
                      "tensor 'gru.0.weight_ih': not found"));
}

void test_no_allocation() {
  // 8 inputs, H = 16, 2 layers, head 16 -> 16 -> 4: wide enough that all buffers matter.
  const int in = 8, H = 16, out = 4;
  std::vector<TensorSpec> s;
  for (int l = 0; l < 2; ++l) {
    const std::string p = "gru." + std::to_string(l) + ".";
    const int fan_in = l == 0 ? in : H;
    s.push_back({p + "weight_ih", {3 * H, fan_in}, pattern(static_cast<std::size_t>(3 * H * fan_in), 3, 0.2f)});
    s.push_back({p + "weight_hh", {3 * H, H}, pattern(static_cast<std::size_t>(3 * H * H), 5, 0.2f)});
    s.push_back({p + "bias_ih", {3 * H}, pattern(static_cast<std::size_t>(3 * H), 2, 0.1f)});
    s.push_back({p + "bias_hh", {3 * H}, pattern(static_cast<std::size_t>(3 * H), 4, 0.1f)});
  }
  s.push_back({"layers.0.weight", {H, H}, pattern(static_cast<std::size_t>(H * H), 3, 0.2f)});
  s.push_back({"layers.0.bias", {H}, pattern(static_cast<std::size_t>(H), 2, 0.1f)});
  s.push_back({"layers.1.weight", {out, H}, pattern(static_cast<std::size_t>(out * H), 5, 0.2f)});
  s.push_back({"layers.1.bias", {out}, pattern(static_cast<std::size_t>(out), 4, 0.1f)});
  for (Activation a : {Activation::ELU, Activation::RELU, Activation::TANH}) {
    GruPolicy g = build(s, a);
    std::vector<float> x(static_cast<std::size_t>(in), 0.5f), y(static_cast<std::size_t>(out), 0.0f);
    const long before = g_allocs.load();
    for (int i = 0; i < 1000; ++i) {
      x[static_cast<std::size_t>(i % in)] = 0.001f * static_cast<float>(i);
      if (i % 100 == 99) g.reset();
      g.evaluate(x.data(), y.data());
    }
    const long after = g_allocs.load();
    CHECK(after == before);
    CHECK(std::isfinite(y[0]) && std::isfinite(y[3]));
    CHECK(g.hidden_state(1)[0] != 0.0f);  // the state did move
  }
  // Sanity: the counter does see allocations.
  const long before = g_allocs.load();
  std::vector<int>* v = new std::vector<int>(10);
  delete v;
  CHECK(g_allocs.load() >= before + 2);
}

}  // namespace

int main() {
  test_single_unit_steps();
  test_two_layers();
  test_errors();
  test_no_allocation();
  return test_util::finish("test_gru");
}
