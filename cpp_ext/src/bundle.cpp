#include "simreal_rt/bundle.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "simreal_rt/yaml_subset.hpp"
#include "tensor_names.hpp"

namespace simreal_rt {

namespace {

using yaml::Node;

// Bounds that keep a hostile deploy.yaml from asking for absurd allocations.
constexpr long kMaxDim = 1 << 16;
constexpr long kMaxJoints = 1024;
// Ranges outside which a bundle would switch a safety mechanism off in practice.
constexpr double kMaxControlDt_s = 0.1;     // slower than 10 Hz is not closed-loop control
constexpr double kMaxStateTimeout_s = 1.0;  // a watchdog that waits longer does not protect
constexpr double kMaxTiltLimit_rad = 1.5707963267948966;  // beyond 90 degrees the robot is already down
constexpr long kMaxHistory = 1000;
constexpr long kMaxLayers = 64;

// Shortest readable form of a double for messages ("0", "1.5708", "1e+09").
std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Reads typed fields out of the parsed document; every error names source and field path.
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw BundleError(source_ + ": " + path + ": " + what);
  }

  const Node& field(const Node& map, const std::string& path, const std::string& key) const {
    const std::string full = path.empty() ? key : path + "." + key;
    if (map.kind != Node::Kind::MAPPING) fail(path.empty() ? "document" : path, "must be a mapping");
    const Node* value = map.find(key);
    if (value == nullptr) fail(full, "missing field");
    return *value;
  }

  std::string text(const Node& n, const std::string& path) const {
    if (n.kind != Node::Kind::SCALAR) fail(path, "must be a single value (line " + std::to_string(n.line) + ")");
    return n.scalar;
  }

  double number(const Node& n, const std::string& path) const {
    const std::string s = text(n, path);
    if (n.quoted || s.empty()) fail(path, "must be a number, got '" + s + "'");
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v) || s.find_first_of("xXpP") != std::string::npos)
      fail(path, "must be a finite number, got '" + s + "'");
    return v;
  }

  double number_at_least(const Node& n, const std::string& path, double low, bool strict) const {
    const double v = number(n, path);
    if (strict ? !(v > low) : !(v >= low))
      fail(path, "must be " + std::string(strict ? "> " : ">= ") + fmt(low) + ", got " + text(n, path));
    return v;
  }

  // A number in (low, high] (a positive quantity with a safety ceiling).
  double number_up_to(const Node& n, const std::string& path, double low, double high) const {
    const double v = number_at_least(n, path, low, true);
    if (v > high) fail(path, "must be <= " + fmt(high) + ", got " + text(n, path));
    return v;
  }

  long integer(const Node& n, const std::string& path, long low, long high) const {
    const std::string s = text(n, path);
    std::size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    if (n.quoted || i == s.size()) fail(path, "must be an integer, got '" + s + "'");
    for (std::size_t k = i; k < s.size(); ++k)
      if (s[k] < '0' || s[k] > '9') fail(path, "must be an integer, got '" + s + "'");
    errno = 0;
    const long long v = std::strtoll(s.c_str(), nullptr, 10);
    if (errno == ERANGE || v < low || v > high)
      fail(path, "must be an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "], got " + s);
    return static_cast<long>(v);
  }

  const Node& sequence(const Node& n, const std::string& path) const {
    if (n.kind != Node::Kind::SEQUENCE) fail(path, "must be a list (line " + std::to_string(n.line) + ")");
    return n;
  }

  // A mapping joint name -> value, converted to policy order.
  template <class Convert>
  auto by_joint(const Node& n, const std::vector<std::string>& joints, const std::string& path, Convert convert) const {
    if (n.kind != Node::Kind::MAPPING) fail(path, "must map joint names to values (never by index)");
    std::vector<decltype(convert(n, path))> out;
    for (const std::string& joint : joints) {
      const Node* value = n.find(joint);
      if (value == nullptr) fail(path, "missing joint '" + joint + "'");
      out.push_back(convert(*value, path + "." + joint));
    }
    const std::set<std::string> known(joints.begin(), joints.end());
    for (const auto& [name, value] : n.entries)
      if (!known.count(name)) fail(path, "joint '" + name + "' is not in joint_names");
    return out;
  }

  std::vector<double> numbers_by_joint(const Node& n, const std::vector<std::string>& joints, const std::string& path,
                                       double low, bool strict) const {
    return by_joint(n, joints, path,
                    [&](const Node& v, const std::string& p) { return number_at_least(v, p, low, strict); });
  }

 private:
  std::string source_;
};

constexpr double kAny = -HUGE_VAL;

std::vector<std::string> read_joint_names(const Reader& r, const Node& root) {
  const Node& list = r.sequence(r.field(root, "", "joint_names"), "joint_names");
  if (list.items.empty()) r.fail("joint_names", "must not be empty");
  if (static_cast<long>(list.items.size()) > kMaxJoints)
    r.fail("joint_names", "more than " + std::to_string(kMaxJoints) + " joints");
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < list.items.size(); ++i) {
    const std::string path = "joint_names[" + std::to_string(i) + "]";
    std::string name = r.text(list.items[i], path);
    if (name.empty()) r.fail(path, "must not be empty");
    if (!seen.insert(name).second) r.fail(path, "duplicate joint '" + name + "'");
    names.push_back(std::move(name));
  }
  return names;
}

void read_action(const Reader& r, const Node& root, BundleSpec& spec) {
  const Node& action = r.field(root, "", "action");
  spec.action_type = r.text(r.field(action, "action", "type"), "action.type");
  if (spec.action_type != "joint_position_offset")
    r.fail("action.type", "'" + spec.action_type + "' is not supported (joint_position_offset)");
  spec.action_scale = r.number_at_least(r.field(action, "action", "scale"), "action.scale", 0.0, true);
  spec.action_clip = r.number_at_least(r.field(action, "action", "clip"), "action.clip", 0.0, true);
}

void read_observation(const Reader& r, const Node& root, BundleSpec& spec) {
  const Node& obs = r.field(root, "", "observation");
  const Node& terms = r.sequence(r.field(obs, "observation", "terms"), "observation.terms");
  if (terms.items.empty()) r.fail("observation.terms", "must not be empty");
  for (std::size_t i = 0; i < terms.items.size(); ++i) {
    const std::string path = "observation.terms[" + std::to_string(i) + "]";
    const Node& t = terms.items[i];
    ObservationTerm term;
    term.name = r.text(r.field(t, path, "name"), path + ".name");
    const long expected = observation_term_width(term.name, spec.num_joints());
    if (expected < 0) r.fail(path + ".name", "unknown term '" + term.name + "'; known terms: " + known_observation_terms());
    const long dim = r.integer(r.field(t, path, "dim"), path + ".dim", 0, kMaxDim);
    if (dim != expected)
      r.fail(path + ".dim", "is " + std::to_string(dim) + " but " + term.name + " has " + std::to_string(expected));
    term.scale = r.number(r.field(t, path, "scale"), path + ".scale");
    term.clip = r.number_at_least(r.field(t, path, "clip"), path + ".clip", 0.0, true);
    spec.observation_terms.push_back(term);
  }
  spec.observation_history =
      static_cast<int>(r.integer(r.field(obs, "observation", "history"), "observation.history", 1, kMaxHistory));
}

void read_network(const Reader& r, const Node& root, BundleSpec& spec) {
  const std::size_t observation_dim = spec.observation_dim();
  const Node& net = r.field(root, "", "network");
  NetworkSpec& n = spec.network;
  n.type = r.text(r.field(net, "network", "type"), "network.type");
  if (n.type != "mlp" && n.type != "gru") r.fail("network.type", "'" + n.type + "' is not supported (mlp, gru)");
  n.input_dim = static_cast<std::size_t>(r.integer(r.field(net, "network", "input_dim"), "network.input_dim", 1, kMaxDim * kMaxHistory));
  if (n.input_dim != observation_dim)
    r.fail("network.input_dim", "is " + std::to_string(n.input_dim) + " but the observation terms x history give " +
                                    std::to_string(observation_dim));
  n.output_dim = static_cast<std::size_t>(r.integer(r.field(net, "network", "output_dim"), "network.output_dim", 1, kMaxDim));
  if (n.output_dim != spec.num_joints())
    r.fail("network.output_dim", "is " + std::to_string(n.output_dim) + " but there are " +
                                     std::to_string(spec.num_joints()) + " joints");
  const Node& hidden = r.sequence(r.field(net, "network", "hidden_sizes"), "network.hidden_sizes");
  if (static_cast<long>(hidden.items.size()) > kMaxLayers) r.fail("network.hidden_sizes", "too many layers");
  for (std::size_t i = 0; i < hidden.items.size(); ++i)
    n.hidden_sizes.push_back(static_cast<std::size_t>(
        r.integer(hidden.items[i], "network.hidden_sizes[" + std::to_string(i) + "]", 1, kMaxDim)));
  n.activation = r.text(r.field(net, "network", "activation"), "network.activation");
  if (n.activation != "elu" && n.activation != "relu" && n.activation != "tanh")
    r.fail("network.activation", "'" + n.activation + "' is not one of elu, relu, tanh");
  if (n.type == "gru") {
    n.rnn_hidden_dim = static_cast<std::size_t>(
        r.integer(r.field(net, "network", "rnn_hidden_dim"), "network.rnn_hidden_dim", 1, kMaxDim));
    n.rnn_num_layers = static_cast<std::size_t>(
        r.integer(r.field(net, "network", "rnn_num_layers"), "network.rnn_num_layers", 1, kMaxLayers));
  }
}

void read_safety(const Reader& r, const Node& root, BundleSpec& spec) {
  const Node& node = r.field(root, "", "safety");
  SafetySpec& s = spec.safety;
  const auto& joints = spec.joint_names;
  const auto limits = r.by_joint(r.field(node, "safety", "joint_pos_limits_rad"), joints, "safety.joint_pos_limits_rad",
                                 [&](const Node& v, const std::string& p) {
                                   const Node& pair = r.sequence(v, p);
                                   if (pair.items.size() != 2) r.fail(p, "must be [lower, upper]");
                                   const double lower = r.number(pair.items[0], p + "[0]");
                                   const double upper = r.number(pair.items[1], p + "[1]");
                                   if (lower > upper) r.fail(p, "lower limit is above the upper limit");
                                   return std::make_pair(lower, upper);
                                 });
  for (const auto& [lower, upper] : limits) {
    s.joint_pos_lower_rad.push_back(lower);
    s.joint_pos_upper_rad.push_back(upper);
  }
  s.velocity_limit_rad_s =
      r.numbers_by_joint(r.field(node, "safety", "velocity_limit_rad_s"), joints, "safety.velocity_limit_rad_s", 0.0, true);
  s.torque_limit_nm = r.numbers_by_joint(r.field(node, "safety", "torque_limit_nm"), joints, "safety.torque_limit_nm", 0.0, true);
  s.tilt_limit_rad =
      r.number_up_to(r.field(node, "safety", "tilt_limit_rad"), "safety.tilt_limit_rad", 0.0, kMaxTiltLimit_rad);
  s.state_timeout_s =
      r.number_up_to(r.field(node, "safety", "state_timeout_s"), "safety.state_timeout_s", 0.0, kMaxStateTimeout_s);
  // standing and damping must hold the robot: zero gains there would let it drop
  s.standing_kp = r.numbers_by_joint(r.field(node, "safety", "standing_kp"), joints, "safety.standing_kp", 0.0, true);
  s.standing_kd = r.numbers_by_joint(r.field(node, "safety", "standing_kd"), joints, "safety.standing_kd", 0.0, false);
  s.damping_kd = r.number_at_least(r.field(node, "safety", "damping_kd"), "safety.damping_kd", 0.0, true);
}

// The standing pose is commanded verbatim in STAND_UP and STANDING: it must lie within the joint limits.
void check_default_pose(const Reader& r, const BundleSpec& spec) {
  for (std::size_t i = 0; i < spec.num_joints(); ++i) {
    const double q = spec.default_joint_pos[i];
    const double lower = spec.safety.joint_pos_lower_rad[i], upper = spec.safety.joint_pos_upper_rad[i];
    if (q < lower || q > upper)
      r.fail("default_joint_pos." + spec.joint_names[i],
             fmt(q) + " is outside safety.joint_pos_limits_rad [" + fmt(lower) + ", " + fmt(upper) + "]");
  }
}

void read_provenance(const Reader& r, const Node& root, BundleSpec& spec) {
  const Node& p = r.field(root, "", "provenance");
  spec.provenance_task = r.text(r.field(p, "provenance", "task"), "provenance.task");
  spec.provenance_run = r.text(r.field(p, "provenance", "run"), "provenance.run");
  spec.provenance_iteration = r.integer(r.field(p, "provenance", "iteration"), "provenance.iteration", -1, 1L << 40);
  spec.provenance_git_commit = r.text(r.field(p, "provenance", "git_commit"), "provenance.git_commit");
  spec.provenance_date = r.text(r.field(p, "provenance", "date"), "provenance.date");
}

std::string read_sha256(const Reader& r, const Node& root) {
  const std::string hash = r.text(r.field(root, "", "sha256"), "sha256");
  bool hex = hash.size() == 64;
  for (const char c : hash) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) r.fail("sha256", "must be 64 lowercase hex characters");
  return hash;
}


// (tensor name, shape) for every tensor the spec's network reads, input side first.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_tensors(const NetworkSpec& n) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  std::size_t head_in = n.input_dim;
  if (n.type == "gru") {
    const auto h = static_cast<int64_t>(n.rnn_hidden_dim);
    for (std::size_t l = 0; l < n.rnn_num_layers; ++l) {
      const std::string p = "gru." + std::to_string(l) + ".";
      const int64_t in = l == 0 ? static_cast<int64_t>(n.input_dim) : h;
      expected.emplace_back(p + "weight_ih", std::vector<int64_t>{3 * h, in});
      expected.emplace_back(p + "weight_hh", std::vector<int64_t>{3 * h, h});
      expected.emplace_back(p + "bias_ih", std::vector<int64_t>{3 * h});
      expected.emplace_back(p + "bias_hh", std::vector<int64_t>{3 * h});
    }
    head_in = n.rnn_hidden_dim;
  }
  std::vector<std::size_t> sizes{head_in};
  sizes.insert(sizes.end(), n.hidden_sizes.begin(), n.hidden_sizes.end());
  sizes.push_back(n.output_dim);
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    expected.emplace_back(p + "weight", std::vector<int64_t>{static_cast<int64_t>(sizes[i + 1]), static_cast<int64_t>(sizes[i])});
    expected.emplace_back(p + "bias", std::vector<int64_t>{static_cast<int64_t>(sizes[i + 1])});
  }
  return expected;
}

}  // namespace

std::size_t BundleSpec::observation_dim() const {
  std::size_t width = 0;
  for (const ObservationTerm& t : observation_terms)
    width += static_cast<std::size_t>(observation_term_width(t.name, num_joints()));
  return width * static_cast<std::size_t>(observation_history);
}

BundleSpec parse_bundle_spec(const std::string& yaml_text, const std::string& source) {
  Node root;
  try {
    root = yaml::parse(yaml_text);
  } catch (const yaml::ParseError& e) {
    throw BundleError(source + ": not valid YAML (simreal's subset): " + e.what());
  }
  const Reader r(source);
  if (root.kind != Node::Kind::MAPPING) r.fail("document", "must be a mapping of the deploy bundle's fields");
  BundleSpec spec;
  spec.format_version = static_cast<int>(r.integer(r.field(root, "", "format_version"), "format_version", 0, 1 << 20));
  if (spec.format_version != kBundleFormatVersion)
    r.fail("format_version", "is " + std::to_string(spec.format_version) + "; this core reads version " +
                                 std::to_string(kBundleFormatVersion));
  spec.robot = r.text(r.field(root, "", "robot"), "robot");
  spec.joint_names = read_joint_names(r, root);
  spec.default_joint_pos = r.numbers_by_joint(r.field(root, "", "default_joint_pos"), spec.joint_names,
                                              "default_joint_pos", kAny, false);
  spec.kp = r.numbers_by_joint(r.field(root, "", "kp"), spec.joint_names, "kp", 0.0, true);
  spec.kd = r.numbers_by_joint(r.field(root, "", "kd"), spec.joint_names, "kd", 0.0, false);
  read_action(r, root, spec);
  spec.control_dt_s = r.number_up_to(r.field(root, "", "control_dt"), "control_dt", 0.0, kMaxControlDt_s);
  read_observation(r, root, spec);
  read_network(r, root, spec);
  read_safety(r, root, spec);
  check_default_pose(r, spec);
  read_provenance(r, root, spec);
  spec.sha256 = read_sha256(r, root);
  return spec;
}

void check_sha256(const BundleSpec& spec, const std::vector<unsigned char>& weights_bytes, const std::string& source) {
  const std::string actual = sha256_hex(weights_bytes);
  if (actual != spec.sha256)
    throw BundleError(source + ": sha256 " + actual + " does not match deploy.yaml's sha256 " + spec.sha256 +
                      " (the weights changed after export)");
}

void check_weights(const BundleSpec& spec, const SafetensorsFile& weights, const std::string& source) {
  const auto expected = expected_tensors(spec.network);
  for (const auto& [name, shape] : expected) {
    if (!weights.has(name)) throw BundleError(source + ": tensor '" + name + "' is missing (the network spec needs it)");
    const Tensor& t = weights.get(name);
    if (t.shape != shape)
      throw BundleError(source + ": tensor '" + name + "' has shape " + detail::shape_string(t.shape) +
                        ", the network spec needs " + detail::shape_string(shape));
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i]))
        throw BundleError(source + ": tensor '" + name + "' holds a non-finite value at flat index " + std::to_string(i));
  }
  // the evaluators read every consecutive layer present, so an undescribed tensor would change the network
  std::set<std::string> known;
  for (const auto& entry : expected) known.insert(entry.first);
  for (const std::string& name : weights.names())
    if (!known.count(name))
      throw BundleError(source + ": tensor '" + name + "' is not part of the network deploy.yaml describes");
}

}  // namespace simreal_rt
