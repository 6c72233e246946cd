// pybind11 module simreal_rt: the C++ real-time core for Python (the ROS 2
// node, tests, tools). Every call that computes or reads files releases the
// GIL. Arguments are checked (length, dtype) and copied while the GIL is held,
// so a bad argument is a Python exception naming it and another thread cannot
// change an input mid-call; each object has a mutex, taken after the GIL is
// released, because the evaluators' scratch buffers and the controller's state
// are not safe to share between threads (e.g. a multi-threaded ROS executor).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "simreal_rt/control_core.hpp"
#include "simreal_rt/policy.hpp"
#include "simreal_rt/safetensors.hpp"

namespace py = pybind11;
using namespace simreal_rt;

namespace {

using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A contiguous float64 view of `value` holding exactly `size` numbers; ValueError names the argument.
DoubleArray doubles(const py::handle& value, std::size_t size, const char* name) {
  DoubleArray array = DoubleArray::ensure(value);
  if (!array) throw py::value_error(std::string(name) + " must be an array of numbers");
  if (static_cast<std::size_t>(array.size()) != size)
    throw py::value_error(std::string(name) + " has " + std::to_string(array.size()) + " values, expected " +
                          std::to_string(size));
  return array;
}

py::dict network_dict(const NetworkSpec& n) {
  py::dict d;
  d["type"] = n.type;
  d["input_dim"] = n.input_dim;
  d["output_dim"] = n.output_dim;
  d["hidden_sizes"] = n.hidden_sizes;
  d["activation"] = n.activation;
  if (n.type == "gru") {
    d["rnn_hidden_dim"] = n.rnn_hidden_dim;
    d["rnn_num_layers"] = n.rnn_num_layers;
  }
  return d;
}

// The validated spec as plain Python values; per-joint lists in joint_names order.
py::dict spec_dict(const BundleSpec& s) {
  py::dict d;
  d["format_version"] = s.format_version;
  d["robot"] = s.robot;
  d["joint_names"] = s.joint_names;
  d["default_joint_pos"] = s.default_joint_pos;
  d["kp"] = s.kp;
  d["kd"] = s.kd;
  d["action"] = py::dict(py::arg("type") = s.action_type, py::arg("scale") = s.action_scale,
                         py::arg("clip") = s.action_clip);
  d["control_dt"] = s.control_dt_s;
  py::list terms;
  for (const ObservationTerm& t : s.observation_terms)
    terms.append(py::dict(py::arg("name") = t.name, py::arg("dim") = observation_term_width(t.name, s.num_joints()),
                          py::arg("scale") = t.scale, py::arg("clip") = t.clip));
  d["observation"] = py::dict(py::arg("terms") = terms, py::arg("history") = s.observation_history);
  d["network"] = network_dict(s.network);
  const SafetySpec& f = s.safety;
  d["safety"] = py::dict(py::arg("joint_pos_lower_rad") = f.joint_pos_lower_rad,
                         py::arg("joint_pos_upper_rad") = f.joint_pos_upper_rad,
                         py::arg("velocity_limit_rad_s") = f.velocity_limit_rad_s,
                         py::arg("torque_limit_nm") = f.torque_limit_nm, py::arg("tilt_limit_rad") = f.tilt_limit_rad,
                         py::arg("state_timeout_s") = f.state_timeout_s, py::arg("standing_kp") = f.standing_kp,
                         py::arg("standing_kd") = f.standing_kd, py::arg("damping_kd") = f.damping_kd);
  d["provenance"] = py::dict(py::arg("task") = s.provenance_task, py::arg("run") = s.provenance_run,
                             py::arg("iteration") = s.provenance_iteration,
                             py::arg("git_commit") = s.provenance_git_commit, py::arg("date") = s.provenance_date);
  d["sha256"] = s.sha256;
  return d;
}

// A loaded bundle as seen from Python: the spec and a stateful policy.
class PyBundle {
 public:
  explicit PyBundle(Bundle bundle) : bundle_(std::move(bundle)) {}

  py::dict spec() const { return spec_dict(bundle_.spec); }
  std::size_t input_dim() const { return bundle_.policy->input_dim(); }
  std::size_t output_dim() const { return bundle_.policy->output_dim(); }
  bool recurrent() const { return bundle_.policy->recurrent(); }
  void reset() {
    py::gil_scoped_release release;
    const std::lock_guard<std::mutex> lock(mutex_);
    bundle_.policy->reset();
  }

  // One policy step on one observation vector (advances a GRU's state).
  py::array_t<float> evaluate(const py::handle& observation) {
    FloatArray in = FloatArray::ensure(observation);
    if (!in || static_cast<std::size_t>(in.size()) != input_dim())
      throw py::value_error("observation must hold " + std::to_string(input_dim()) + " numbers");
    const std::vector<float> input(in.data(), in.data() + in.size());
    py::array_t<float> out(static_cast<py::ssize_t>(output_dim()));
    float* dst = out.mutable_data();  // a new array no other thread can see yet
    {
      py::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      bundle_.policy->evaluate(input.data(), dst);
    }
    return out;
  }

  // Rows evaluated in order, as consecutive control ticks (a GRU carries its
  // state from row to row); resets: optional booleans, reset before that row.
  py::array_t<float> evaluate_sequence(const py::handle& observations, const py::object& resets) {
    FloatArray in = FloatArray::ensure(observations);
    if (!in || in.ndim() != 2 || static_cast<std::size_t>(in.shape(1)) != input_dim())
      throw py::value_error("observations must be an array of shape [N, " + std::to_string(input_dim()) + "]");
    const auto rows = static_cast<std::size_t>(in.shape(0));
    std::vector<unsigned char> reset_rows(rows, 0);
    if (!resets.is_none()) {
      const auto flags = py::array_t<bool, py::array::c_style | py::array::forcecast>::ensure(resets);
      if (!flags || static_cast<std::size_t>(flags.size()) != rows)
        throw py::value_error("resets must hold one boolean per observation row");
      for (std::size_t r = 0; r < rows; ++r) reset_rows[r] = flags.data()[r] ? 1 : 0;
    }
    const std::vector<float> input(in.data(), in.data() + in.size());
    py::array_t<float> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(output_dim())});
    const float* src = input.data();
    float* dst = out.mutable_data();
    {
      py::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      for (std::size_t r = 0; r < rows; ++r) {
        if (reset_rows[r]) bundle_.policy->reset();
        bundle_.policy->evaluate(src + r * input_dim(), dst + r * output_dim());
      }
    }
    return out;
  }

 private:
  Bundle bundle_;
  std::mutex mutex_;
};

std::unique_ptr<PyBundle> load(const std::string& dir) {
  py::gil_scoped_release release;
  return std::make_unique<PyBundle>(load_bundle(dir));
}

std::unique_ptr<PyBundle> load_from_memory(const std::string& deploy_yaml, const py::bytes& weights) {
  const std::string raw = weights;
  const std::vector<unsigned char> bytes(raw.begin(), raw.end());
  py::gil_scoped_release release;
  return std::make_unique<PyBundle>(load_bundle_from_memory(deploy_yaml, bytes));
}

py::dict parse_spec(const std::string& deploy_yaml) {
  BundleSpec spec;
  {
    py::gil_scoped_release release;
    spec = parse_bundle_spec(deploy_yaml);
  }
  return spec_dict(spec);
}

// Tensor names and shapes of a safetensors buffer (the untrusted-input parser on its own).
std::map<std::string, std::vector<int64_t>> parse_safetensors(const py::bytes& data) {
  const std::string raw = data;
  std::vector<unsigned char> bytes(raw.begin(), raw.end());
  std::map<std::string, std::vector<int64_t>> shapes;
  py::gil_scoped_release release;
  const SafetensorsFile file = SafetensorsFile::from_bytes(std::move(bytes));
  for (const std::string& name : file.names()) shapes[name] = file.get(name).shape;
  return shapes;
}

Request request_named(const std::string& name) {
  for (const Request r : {Request::STAND_UP, Request::START_POLICY, Request::SIT_DOWN, Request::DAMP, Request::RESET})
    if (name == to_string(r)) return r;
  throw py::value_error("unknown request '" + name + "' (stand_up, start_policy, sit_down, damp, reset)");
}

// ControlCore for Python: copies its outputs into a dict so nothing refers to core-owned buffers.
class PyControlCore {
 public:
  PyControlCore(const std::string& bundle_dir, const std::vector<std::string>& driver_joint_names,
                const CoreOptions& options)
      : core_(load_bundle(bundle_dir), driver_joint_names, options),
        joint_pos_(core_.num_driver_joints()),
        joint_vel_(core_.num_driver_joints()) {}

  py::dict tick(double time_s, double joint_state_stamp_s, const py::handle& joint_pos, const py::handle& joint_vel,
                double imu_stamp_s, const py::handle& imu_quat_wxyz, const py::handle& imu_ang_vel,
                const py::handle& velocity_command, bool estop, const py::object& target_pose) {
    const std::size_t n = core_.num_driver_joints();
    copy_into(joint_pos_.data(), joint_pos, n, "joint_pos");
    copy_into(joint_vel_.data(), joint_vel, n, "joint_vel");
    Sensors s;
    s.time_s = time_s;
    s.joint_state_stamp_s = joint_state_stamp_s;
    s.joint_pos = joint_pos_.data();
    s.joint_vel = joint_vel_.data();
    s.imu_stamp_s = imu_stamp_s;
    // None -> null: the core treats a missing input it needs as a fault and ignores one it does not use
    s.imu_quat_wxyz = optional_into(quat_, imu_quat_wxyz, 4, "imu_quat_wxyz");
    s.imu_ang_vel = optional_into(gyro_, imu_ang_vel, 3, "imu_ang_vel");
    s.velocity_command = optional_into(command_, velocity_command, 3, "velocity_command");
    s.target_pose = optional_into(pose_, target_pose, 7, "target_pose");
    s.estop = estop;
    CoreOutput out;
    std::unique_lock<std::mutex> lock(mutex_, std::defer_lock);
    {
      py::gil_scoped_release release;
      lock.lock();  // held until the outputs are copied: they live in the core's buffers
      out = core_.tick(s);
    }
    const std::size_t m = core_.num_joints();
    py::dict d;
    d["state"] = to_string(out.state);
    d["fault"] = to_string(out.fault);
    d["damping_cause"] = to_string(out.damping_cause);
    d["target_pos"] = py::array_t<double>(static_cast<py::ssize_t>(m), out.target_pos);
    d["kp"] = py::array_t<double>(static_cast<py::ssize_t>(m), out.kp);
    d["kd"] = py::array_t<double>(static_cast<py::ssize_t>(m), out.kd);
    d["policy_ran"] = out.policy_ran;
    d["inference_time_s"] = out.inference_time_s;
    d["tilt_rad"] = out.tilt_rad;
    d["have_target_pose"] = out.have_target_pose;
    d["target_pose_rejected"] = out.target_pose_rejected;
    return d;
  }

  // copy_into for an optional input: null for None.
  static const double* optional_into(double* dst, const py::handle& value, std::size_t size, const char* name) {
    if (value.is_none()) return nullptr;
    copy_into(dst, value, size, name);
    return dst;
  }

  // Copies `size` numbers from a Python array-like into dst (core-owned), or raises ValueError naming it.
  static void copy_into(double* dst, const py::handle& value, std::size_t size, const char* name) {
    const DoubleArray array = doubles(value, size, name);
    std::copy(array.data(), array.data() + size, dst);
  }

  py::tuple request(const std::string& name, double time_s) {
    const Request r = request_named(name);
    Result result;
    {
      py::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      result = core_.request(r, time_s);
    }
    return py::make_tuple(result.accepted, std::string(result.reason));
  }

  std::string state() {
    py::gil_scoped_release release;
    const std::lock_guard<std::mutex> lock(mutex_);
    return to_string(core_.state());
  }
  std::vector<std::string> joint_names() const { return core_.joint_names(); }
  py::dict spec() const { return spec_dict(core_.spec()); }
  bool uses_imu() const { return core_.uses_imu(); }
  bool observes_target_pose() const { return core_.observes_target_pose(); }
  py::object target_pose() {
    double pose[7];
    bool have = false;
    {
      py::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      if (const double* p = core_.target_pose()) {
        std::copy(p, p + 7, pose);
        have = true;
      }
    }
    if (!have) return py::none();
    return py::array_t<double>(7, pose);
  }
  py::array_t<float> last_observation() {
    std::vector<float> copy;
    {
      py::gil_scoped_release release;
      const std::lock_guard<std::mutex> lock(mutex_);
      copy = core_.last_observation();
    }
    return py::array_t<float>(static_cast<py::ssize_t>(copy.size()), copy.data());
  }

 private:
  ControlCore core_;
  std::mutex mutex_;
  // inputs copied here while the GIL is held, so no Python thread can change them mid-tick
  std::vector<double> joint_pos_, joint_vel_;
  double quat_[4] = {}, gyro_[3] = {}, command_[3] = {}, pose_[7] = {};
};

}  // namespace

PYBIND11_MODULE(simreal_rt, m) {
  m.doc() = "simreal's C++ real-time core: deploy-bundle loader, policy evaluator, control tick (cpp_ext/)";
  py::register_exception<BundleError>(m, "BundleError", PyExc_ValueError);

  py::class_<PyBundle>(m, "Bundle", "A validated deploy bundle and its policy network.")
      .def_property_readonly("spec", &PyBundle::spec, "deploy.yaml as validated by the core (per-joint lists in joint_names order)")
      .def_property_readonly("input_dim", &PyBundle::input_dim)
      .def_property_readonly("output_dim", &PyBundle::output_dim)
      .def_property_readonly("recurrent", &PyBundle::recurrent)
      .def("evaluate", &PyBundle::evaluate, py::arg("observation"), "one policy step: float32[input_dim] -> float32[output_dim]")
      .def("evaluate_sequence", &PyBundle::evaluate_sequence, py::arg("observations"), py::arg("resets") = py::none(),
           "rows as consecutive ticks: float32[N, input_dim] -> float32[N, output_dim]")
      .def("reset", &PyBundle::reset, "recurrent state back to zeros");

  m.def("load_bundle", &load, py::arg("bundle_dir"), "read and validate DIR/deploy.yaml and DIR/policy.safetensors");
  m.def("load_bundle_from_memory", &load_from_memory, py::arg("deploy_yaml"), py::arg("weights"));
  m.def("parse_bundle_spec", &parse_spec, py::arg("deploy_yaml"), "validate deploy.yaml text alone");
  m.def("parse_safetensors", &parse_safetensors, py::arg("data"), "tensor name -> shape of a safetensors buffer");
  m.def("sha256_hex", [](const py::bytes& data) {
    const std::string raw = data;
    py::gil_scoped_release release;
    return sha256_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  });

  py::enum_<ImuUse>(m, "ImuUse", "whether the core watches an IMU (stale-IMU and tilt faults)")
      .value("FROM_BUNDLE", ImuUse::FROM_BUNDLE, "when the policy observes base_ang_vel or projected_gravity")
      .value("REQUIRED", ImuUse::REQUIRED, "always")
      .value("NONE", ImuUse::NONE, "never; refused for a bundle that observes an IMU term");

  py::class_<CoreOptions>(m, "CoreOptions", "robot-side settings the bundle does not carry")
      .def(py::init<>())
      .def_readwrite("sit_joint_pos", &CoreOptions::sit_joint_pos)
      .def_readwrite("stand_up_duration_s", &CoreOptions::stand_up_duration_s)
      .def_readwrite("stand_up_via_sit_pose", &CoreOptions::stand_up_via_sit_pose)
      .def_readwrite("sit_down_duration_s", &CoreOptions::sit_down_duration_s)
      .def_readwrite("max_target_step_rad", &CoreOptions::max_target_step_rad)
      .def_readwrite("inference_budget_s", &CoreOptions::inference_budget_s)
      .def_readwrite("imu", &CoreOptions::imu);

  py::class_<PyControlCore>(m, "ControlCore", "the whole control tick of one bundle (DESIGN.md §5 state machine)")
      .def(py::init([](const std::string& bundle_dir, const std::vector<std::string>& driver_joint_names,
                       const CoreOptions& options) {
             const CoreOptions copy = options;  // CoreOptions is a Python-owned, mutable object
             py::gil_scoped_release release;
             return std::make_unique<PyControlCore>(bundle_dir, driver_joint_names, copy);
           }),
           py::arg("bundle_dir"), py::arg("driver_joint_names"), py::arg("options") = CoreOptions())
      .def("tick", &PyControlCore::tick, py::arg("time_s"), py::arg("joint_state_stamp_s"), py::arg("joint_pos"),
           py::arg("joint_vel"), py::arg("imu_stamp_s"), py::arg("imu_quat_wxyz"), py::arg("imu_ang_vel"),
           py::arg("velocity_command"), py::arg("estop") = false, py::arg("target_pose") = py::none(),
           "one control tick; joint arrays in driver order, quaternion (w, x, y, z); the IMU arrays, "
           "velocity_command and target_pose may be None when the bundle does not use them (target_pose None: keep "
           "the latest); returns the command in joint_names order")
      .def("request", &PyControlCore::request, py::arg("name"), py::arg("time_s"),
           "stand_up | start_policy | sit_down | damp | reset -> (accepted, reason)")
      .def_property_readonly("state", &PyControlCore::state)
      .def_property_readonly("joint_names", &PyControlCore::joint_names)
      .def_property_readonly("spec", &PyControlCore::spec)
      .def_property_readonly("last_observation", &PyControlCore::last_observation)
      .def_property_readonly("uses_imu", &PyControlCore::uses_imu, "stale-IMU and tilt faults are on")
      .def_property_readonly("observes_target_pose", &PyControlCore::observes_target_pose)
      .def_property_readonly("target_pose", &PyControlCore::target_pose,
                             "the latest valid target pose (position, unit quaternion w, x, y, z) or None");
}
