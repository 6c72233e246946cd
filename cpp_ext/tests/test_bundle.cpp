// Tests for deploy.yaml reading and bundle validation: the YAML subset, a
// valid bundle built in memory, and one refusal per kind of bad field, each
// message naming the field. No framework.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bundle_test_util.hpp"
#include "safetensors_test_util.hpp"
#include "simreal_rt/policy.hpp"
#include "simreal_rt/yaml_subset.hpp"

using namespace simreal_rt;
using test_util::serialize;
using test_util::TensorSpec;
using test_util::contains;
using test_util::message_of;
using test_util::bundle_yaml;
using test_util::ramp;
using test_util::TestBundle;
using test_util::valid_bundle;

namespace {

std::string yaml_error(const std::string& text) {
  return message_of<yaml::ParseError>([&] { yaml::parse(text); });
}

void test_yaml_subset() {
  const yaml::Node doc = yaml::parse(
      "---\n"
      "# a comment line\n"
      "name: quad  # trailing comment\n"
      "names:\n"
      "- a\n"
      "- 'b # not a comment'\n"
      "nested:\n"
      "  list:\n"
      "  - -0.5\n"
      "  - \"x\\ty\"\n"
      "  terms:\n"
      "    - name: t\n"
      "      dim: 3\n"
      "    -\n"
      "      name: u\n"
      "flow: {a: [1, 2, [3]], 'b c': {}, d: []}\n"
      "empty:\n"
      "quote: 'it''s'\n"
      "url: http://x:1/y\n");
  CHECK(doc.kind == yaml::Node::Kind::MAPPING);
  CHECK(doc.find("name")->scalar == "quad");
  const yaml::Node& names = *doc.find("names");
  CHECK(names.items.size() == 2 && names.items[1].scalar == "b # not a comment" && names.items[1].quoted);
  const yaml::Node& nested = *doc.find("nested");
  CHECK(nested.find("list")->items[0].scalar == "-0.5");
  CHECK(nested.find("list")->items[1].scalar == "x\ty");
  const yaml::Node& terms = *nested.find("terms");
  CHECK(terms.items.size() == 2 && terms.items[0].find("dim")->scalar == "3" && terms.items[1].find("name")->scalar == "u");
  const yaml::Node& flow = *doc.find("flow");
  CHECK(flow.find("a")->items.size() == 3 && flow.find("a")->items[2].items[0].scalar == "3");
  CHECK(flow.find("b c")->kind == yaml::Node::Kind::MAPPING && flow.find("b c")->entries.empty());
  CHECK(flow.find("d")->kind == yaml::Node::Kind::SEQUENCE && flow.find("d")->items.empty());
  CHECK(doc.find("empty")->kind == yaml::Node::Kind::NULL_VALUE);
  CHECK(doc.find("quote")->scalar == "it's");
  CHECK(doc.find("url")->scalar == "http://x:1/y");
  CHECK(doc.find("name")->line == 3);

  CHECK(contains(yaml_error("a: 1\n\tb: 2\n"), "line 2: tab in indentation"));
  CHECK(contains(yaml_error("a: 1\na: 2\n"), "line 2: duplicate key 'a'"));
  CHECK(contains(yaml_error("a: &x 1\n"), "anchors and aliases"));
  CHECK(contains(yaml_error("a: !!float 1\n"), "tags are not supported"));
  CHECK(contains(yaml_error("a: |\n  text\n"), "block scalars"));
  CHECK(contains(yaml_error("a: 'open\n"), "line 1: unterminated quoted string"));
  CHECK(contains(yaml_error("a: [1, 2\n"), "unterminated flow"));
  CHECK(contains(yaml_error("a:\n  b: 1\n   c: 2\n"), "line 3: unexpected indentation"));
  CHECK(contains(yaml_error("a:\n    b: 1\n  c: 2\n"), "line 3: unexpected indentation"));
  CHECK(contains(yaml_error("  a: 1\nb: 2\n"), "line 2: indentation does not match"));
  CHECK(contains(yaml_error("a: b: c\n"), "a mapping cannot start here"));
  CHECK(contains(yaml_error("a: 1\n---\nb: 2\n"), "only one YAML document"));
  CHECK(contains(yaml_error(std::string("a: 1\x01\n")), "control character"));
  CHECK(contains(yaml_error("a: \"\\q\"\n"), "unsupported escape"));
  std::string deep = "a: ";
  for (int i = 0; i < 40; ++i) deep += "[";
  CHECK(contains(yaml_error(deep + "\n"), "nesting deeper than"));
  std::string deep_block;
  for (int i = 0; i < 40; ++i) deep_block += std::string(static_cast<std::size_t>(i), ' ') + "k:\n";
  CHECK(contains(yaml_error(deep_block), "nesting deeper than"));
  CHECK(yaml::parse("").kind == yaml::Node::Kind::NULL_VALUE);
  CHECK(yaml::parse("\xEF\xBB\xBF" "a: 1\n").find("a")->scalar == "1");  // a leading byte-order mark is allowed
  CHECK(contains(yaml_error("a: 1\nb: \xe1\x22\n"), "line 2: not valid UTF-8"));
  CHECK(yaml::parse("name: \xc3\xa9l\xc3\xa9ment\n").find("name")->scalar == "\xc3\xa9l\xc3\xa9ment");
  // messages quoting untrusted bytes stay printable, valid UTF-8
  CHECK(std::string(BundleError("tensor '\xe1\x01\xc3\xa9'").what()) == "tensor '\\xe1\\x01\xc3\xa9'");
}

std::string load_error(const std::string& yaml, const std::vector<unsigned char>& weights) {
  return message_of<BundleError>([&] { load_bundle_from_memory(yaml, weights); });
}

// The valid YAML with the first occurrence of `from` replaced by `to`.
std::string edited(const std::string& from, const std::string& to) {
  std::string yaml = valid_bundle().yaml;
  const std::size_t at = yaml.find(from);
  if (at == std::string::npos) std::fprintf(stderr, "test bug: '%s' not in the bundle\n", from.c_str());
  return yaml.replace(at, from.size(), to);
}

void test_valid_bundle() {
  const TestBundle b = valid_bundle();
  const Bundle bundle = load_bundle_from_memory(b.yaml, b.weights);
  const BundleSpec& s = bundle.spec;
  CHECK(s.robot == "two_link" && s.num_joints() == 2 && s.joint_names[1] == "j2");
  CHECK(s.default_joint_pos[1] == -0.2 && s.kp[0] == 20.0 && s.kd[1] == 0.5);
  CHECK(s.action_scale == 0.25 && s.control_dt_s == 0.02);
  CHECK(s.observation_terms.size() == 3 && s.observation_terms[0].scale == 0.25 && s.observation_history == 2);
  CHECK(s.observation_dim() == 14 && s.network.hidden_sizes.size() == 1 && s.network.activation == "elu");
  CHECK(s.safety.joint_pos_lower_rad[1] == -2.0 && s.safety.joint_pos_upper_rad[1] == 0.5);
  CHECK(s.safety.torque_limit_nm[1] == 12.0 && s.safety.damping_kd == 2.0);
  CHECK(s.provenance_iteration == 3 && s.provenance_date == "2026-11-22T00:00:00+00:00");
  CHECK(bundle.policy->input_dim() == 14 && bundle.policy->output_dim() == 2 && !bundle.policy->recurrent());
  // joints listed in another order in a by-name mapping still land in policy order
  const Bundle reordered = load_bundle_from_memory(edited("kp: {j1: 20.0, j2: 20.0}", "kp: {j2: 7.0, j1: 20.0}"), b.weights);
  CHECK(reordered.spec.kp[0] == 20.0 && reordered.spec.kp[1] == 7.0);
}

void test_refusals() {
  const std::vector<unsigned char> w = valid_bundle().weights;
  struct Case {
    std::string from, to, expected;
  };
  const Case cases[] = {
      {"format_version: 1", "format_version: 2", "format_version: is 2"},
      {"robot: two_link\n", "", "robot: missing field"},
      {"- j2\n", "- j1\n", "joint_names[1]: duplicate joint 'j1'"},
      {"  j2: -0.2\n", "", "default_joint_pos: missing joint 'j2'"},
      {"kd: {j1: 0.5, j2: 0.5}", "kd: {j1: 0.5, j2: 0.5, j3: 1.0}", "kd: joint 'j3' is not in joint_names"},
      {"kp: {j1: 20.0", "kp: {j1: -20.0", "kp.j1: must be > 0, got -20.0"},
      {"kp: {j1: 20.0", "kp: {j1: 0", "kp.j1: must be > 0, got 0"},
      {"kd: {j1: 0.5", "kd: {j1: -0.5", "kd.j1: must be >= 0"},
      {"j1: 0.1\n", "j1: 1.5\n", "default_joint_pos.j1: 1.5 is outside safety.joint_pos_limits_rad [-1, 1]"},
      {"control_dt: 0.02", "control_dt: 1000000", "control_dt: must be <= 0.1"},
      {"state_timeout_s: 0.1", "state_timeout_s: 1e9", "safety.state_timeout_s: must be <= 1"},
      {"tilt_limit_rad: 1.0", "tilt_limit_rad: 100", "safety.tilt_limit_rad: must be <= 1.5708"},
      {"damping_kd: 2.0", "damping_kd: 0", "safety.damping_kd: must be > 0"},
      {"standing_kp: {j1: 20.0", "standing_kp: {j1: 0.0", "safety.standing_kp.j1: must be > 0"},
      {"kp: {j1: 20.0", "kp: {j1: abc", "kp.j1: must be a finite number, got 'abc'"},
      {"kp: {j1: 20.0", "kp: {j1: .nan", "kp.j1: must be a finite number"},
      {"type: joint_position_offset", "type: torque", "action.type: 'torque' is not supported"},
      {"scale: 0.25\n  clip", "scale: 0.0\n  clip", "action.scale: must be > 0"},
      {"control_dt: 0.02", "control_dt: '0.02'", "control_dt: must be a number"},
      {"name: joint_pos_rel", "name: joint_torque", "observation.terms[1].name: unknown term 'joint_torque'"},
      {"name: joint_pos_rel\n    dim: 2", "name: joint_pos_rel\n    dim: 3", "observation.terms[1].dim: is 3 but joint_pos_rel has 2"},
      {"history: 2", "history: 0", "observation.history: must be an integer in [1, 1000]"},
      {"history: 2", "history: 1.5", "observation.history: must be an integer"},
      {"input_dim: 14", "input_dim: 7", "network.input_dim: is 7 but the observation terms x history give 14"},
      {"output_dim: 2", "output_dim: 3", "network.output_dim: is 3 but there are 2 joints"},
      {"type: mlp", "type: transformer", "network.type: 'transformer' is not supported"},
      {"activation: elu", "activation: gelu", "network.activation: 'gelu' is not one of elu, relu, tanh"},
      {"type: mlp", "type: gru", "network.rnn_hidden_dim: missing field"},
      {"j2: [-2.0, 0.5]", "j2: [0.6, 0.5]", "safety.joint_pos_limits_rad.j2: lower limit is above the upper limit"},
      {"j2: [-2.0, 0.5]", "j2: [-2.0]", "safety.joint_pos_limits_rad.j2: must be [lower, upper]"},
      {"j2: 12.0}", "j2: 0.0}", "safety.torque_limit_nm.j2: must be > 0"},
      {"  state_timeout_s: 0.1\n", "", "safety.state_timeout_s: missing field"},
      {"  iteration: 3\n", "", "provenance.iteration: missing field"},
      {"sha256: ", "sha256: zz", "sha256: must be 64 lowercase hex characters"},
      {"control_dt: 0.02\n", "control_dt: 0.02\n  oops: 1\n", "not valid YAML (simreal's subset): line"},
  };
  for (const Case& c : cases) {
    const std::string error = load_error(edited(c.from, c.to), w);
    CHECK(contains(error, c.expected));
    CHECK(error.rfind("deploy.yaml: ", 0) == 0);  // names the file first
  }
  CHECK(contains(load_error("- just\n- a list\n", w), "deploy.yaml: document: must be a mapping"));

  // the weights: hash first, then structure, then the shapes the spec asks for
  std::vector<unsigned char> tampered = w;
  tampered.back() ^= 1;
  CHECK(contains(load_error(valid_bundle().yaml, tampered), "policy.safetensors: sha256 "));
  CHECK(contains(load_error(valid_bundle().yaml, tampered), "does not match deploy.yaml's sha256"));
  const std::vector<unsigned char> truncated(w.begin(), w.begin() + 20);
  CHECK(contains(load_error(bundle_yaml(sha256_hex(truncated)), truncated), "policy.safetensors: "));
  const std::vector<unsigned char> wrong_shape = serialize({{"layers.0.weight", {4, 13}, ramp(52, 0.0f)},
                                                            {"layers.0.bias", {4}, ramp(4, 0.0f)},
                                                            {"layers.1.weight", {2, 4}, ramp(8, 0.0f)},
                                                            {"layers.1.bias", {2}, ramp(2, 0.0f)}});
  CHECK(contains(load_error(bundle_yaml(sha256_hex(wrong_shape)), wrong_shape),
                 "tensor 'layers.0.weight' has shape [4, 13], the network spec needs [4, 14]"));
  const std::vector<unsigned char> missing = serialize({{"layers.0.weight", {4, 14}, ramp(56, 0.0f)},
                                                        {"layers.0.bias", {4}, ramp(4, 0.0f)}});
  CHECK(contains(load_error(bundle_yaml(sha256_hex(missing)), missing), "tensor 'layers.1.weight' is missing"));
  std::vector<float> with_nan = ramp(56, 0.0f);
  with_nan[17] = std::nanf("");
  const std::vector<unsigned char> nan_weights = serialize({{"layers.0.weight", {4, 14}, with_nan},
                                                            {"layers.0.bias", {4}, ramp(4, 0.0f)},
                                                            {"layers.1.weight", {2, 4}, ramp(8, 0.0f)},
                                                            {"layers.1.bias", {2}, ramp(2, 0.0f)}});
  CHECK(contains(load_error(bundle_yaml(sha256_hex(nan_weights)), nan_weights),
                 "tensor 'layers.0.weight' holds a non-finite value at flat index 17"));
  const std::vector<unsigned char> extra = serialize({{"layers.0.weight", {4, 14}, ramp(56, 0.0f)},
                                                      {"layers.0.bias", {4}, ramp(4, 0.0f)},
                                                      {"layers.1.weight", {2, 4}, ramp(8, 0.0f)},
                                                      {"layers.1.bias", {2}, ramp(2, 0.0f)},
                                                      {"layers.2.weight", {2, 2}, ramp(4, 0.0f)}});
  CHECK(contains(load_error(bundle_yaml(sha256_hex(extra)), extra),
                 "tensor 'layers.2.weight' is not part of the network deploy.yaml describes"));
  CHECK(contains(message_of<BundleError>([] { load_bundle("/nonexistent/bundle"); }),
                 "cannot open '/nonexistent/bundle/deploy.yaml'"));
  CHECK(contains(message_of<BundleError>([] { load_bundle("/dev"); }), "'/dev/deploy.yaml'"));
}

void test_gru_bundle() {
  // same observation, GRU with H = 3, one layer, head 3 -> 2
  const std::size_t h = 3;
  const std::vector<unsigned char> w = serialize({{"gru.0.weight_ih", {9, 14}, ramp(9 * 14, -0.3f)},
                                                  {"gru.0.weight_hh", {9, 3}, ramp(27, -0.1f)},
                                                  {"gru.0.bias_ih", {9}, ramp(9, 0.0f)},
                                                  {"gru.0.bias_hh", {9}, ramp(9, 0.05f)},
                                                  {"layers.0.weight", {2, 3}, ramp(6, -0.02f)},
                                                  {"layers.0.bias", {2}, ramp(2, 0.0f)}});
  std::string yaml = bundle_yaml(sha256_hex(w));
  const auto replace = [&](const std::string& from, const std::string& to) {
    yaml.replace(yaml.find(from), from.size(), to);
  };
  replace("type: mlp", "type: gru");
  replace("  hidden_sizes:\n  - 4\n", "  hidden_sizes: []\n  rnn_hidden_dim: " + std::to_string(h) + "\n  rnn_num_layers: 1\n");
  const Bundle bundle = load_bundle_from_memory(yaml, w);
  CHECK(bundle.policy->recurrent() && bundle.spec.network.rnn_hidden_dim == h);
  std::vector<float> in(14, 0.5f), first(2), second(2);
  bundle.policy->evaluate(in.data(), first.data());
  bundle.policy->evaluate(in.data(), second.data());
  CHECK(first[0] != second[0]);  // the hidden state carries over between ticks
  bundle.policy->reset();
  bundle.policy->evaluate(in.data(), second.data());
  CHECK(first[0] == second[0] && first[1] == second[1]);
  std::string wrong = yaml;
  wrong.replace(wrong.find("rnn_hidden_dim: 3"), 17, "rnn_hidden_dim: 4");
  CHECK(contains(load_error(wrong, w), "tensor 'gru.0.weight_ih' has shape [9, 14], the network spec needs [12, 14]"));
}

}  // namespace

int main() {
  test_yaml_subset();
  test_valid_bundle();
  test_refusals();
  test_gru_bundle();
  return test_util::finish("test_bundle");
}
