// obs_eval: run the observation builder over a file of recorded ticks.
// Used by the Python parity test (C++ core vs the simulator's terms).
//
//   obs_eval CONFIG.txt INPUTS.f64 OUTPUTS.f32
//
// CONFIG.txt (blank lines and lines starting with '#' are ignored):
//   policy_joints NAME...
//   driver_joints NAME...
//   default NUM...            (policy order)
//   history H
//   term NAME SCALE CLIP      (one line per term, in frame order)
// INPUTS.f64: per tick, float64 values (native endianness): reset flag
// (1.0 = reset() before this tick), quat wxyz (4), ang_vel (3), command (3),
// joint_pos (n_driver), joint_vel (n_driver), last_action (n_policy),
// target_pose (7). All fields are always present, used or not.
// OUTPUTS.f32: per tick size() float32 values. A tick whose build() fails
// (non-finite input) gets the zeros build() wrote and is reported on stdout as
// "invalid tick K"; that is not an error. Prints "ticks N" and "size S".
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "simreal_rt/file_io.hpp"
#include "simreal_rt/observation.hpp"

namespace {

double parse_number(const std::string& s, int line) {
  const char* begin = s.c_str();
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin || *end != '\0') throw std::runtime_error("line " + std::to_string(line) + ": bad number '" + s + "'");
  return v;
}

struct Parsed {
  simreal_rt::ObservationConfig config;
  std::vector<std::string> driver;
};

Parsed parse_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Parsed p;
  bool have_policy = false, have_driver = false, have_default = false, have_history = false;
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    std::istringstream ss(text);
    std::string key;
    if (!(ss >> key) || key[0] == '#') continue;
    std::vector<std::string> args;
    for (std::string a; ss >> a;) args.push_back(a);
    const std::string where = "line " + std::to_string(line) + ": ";
    if (key == "policy_joints") {
      p.config.policy_joint_names = args;
      have_policy = true;
    } else if (key == "driver_joints") {
      p.driver = args;
      have_driver = true;
    } else if (key == "default") {
      p.config.default_joint_pos.clear();
      for (const std::string& a : args) p.config.default_joint_pos.push_back(parse_number(a, line));
      have_default = true;
    } else if (key == "history") {
      if (args.size() != 1) throw std::runtime_error(where + "'history' takes one integer");
      const double h = parse_number(args[0], line);
      if (h != std::floor(h) || h < 1 || h > 1e6) throw std::runtime_error(where + "history must be an integer >= 1");
      p.config.history = static_cast<int>(h);
      have_history = true;
    } else if (key == "term") {
      if (args.size() != 3) throw std::runtime_error(where + "'term' takes NAME SCALE CLIP");
      p.config.terms.push_back({args[0], parse_number(args[1], line), parse_number(args[2], line)});
    } else {
      throw std::runtime_error(where + "unknown keyword '" + key + "'");
    }
  }
  if (!have_policy) throw std::runtime_error("config has no 'policy_joints' line");
  if (!have_driver) throw std::runtime_error("config has no 'driver_joints' line");
  if (!have_default) throw std::runtime_error("config has no 'default' line");
  if (!have_history) throw std::runtime_error("config has no 'history' line");
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "obs_eval: error: usage: obs_eval CONFIG.txt INPUTS.f64 OUTPUTS.f32\n");
    return 1;
  }
  try {
    const Parsed p = parse_config(argv[1]);
    simreal_rt::ObservationBuilder builder(p.config, p.driver);
    const std::size_t nd = builder.num_driver_joints(), np = builder.num_policy_joints();
    const std::size_t per_tick = 1 + 4 + 3 + 3 + 2 * nd + np + 7;
    const std::vector<unsigned char> raw = simreal_rt::read_file_bytes(argv[2]);
    const std::size_t tick_bytes = per_tick * sizeof(double);
    if (raw.size() % tick_bytes != 0)
      throw std::runtime_error("inputs are not a whole number of ticks of " + std::to_string(per_tick) + " float64 values");
    const std::size_t ticks = raw.size() / tick_bytes;
    std::vector<double> tick(per_tick);
    std::vector<float> output(ticks * builder.size());
    for (std::size_t k = 0; k < ticks; ++k) {
      // copy instead of casting: the byte buffer carries no double alignment
      std::copy_n(raw.data() + k * tick_bytes, tick_bytes, reinterpret_cast<unsigned char*>(tick.data()));
      if (tick[0] == 1.0) builder.reset();
      const double* d = tick.data() + 1;
      simreal_rt::ObservationBuilder::Inputs in;
      in.imu_quat_wxyz = d;
      in.imu_ang_vel = d + 4;
      in.velocity_command = d + 7;
      in.joint_pos_driver = d + 10;
      in.joint_vel_driver = d + 10 + nd;
      in.last_action = d + 10 + 2 * nd;
      in.target_pose = d + 10 + 2 * nd + np;
      if (!builder.build(in, output.data() + k * builder.size())) std::printf("invalid tick %zu\n", k);
    }
    std::ofstream out(argv[3], std::ios::binary);
    if (!out) throw std::runtime_error(std::string("cannot open ") + argv[3]);
    out.write(reinterpret_cast<const char*>(output.data()), static_cast<std::streamsize>(output.size() * sizeof(float)));
    if (!out) throw std::runtime_error(std::string("cannot write ") + argv[3]);
    std::printf("ticks %zu\nsize %zu\n", ticks, builder.size());
    return 0;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "obs_eval: error: %s\n", error.what());
    return 1;
  }
}
