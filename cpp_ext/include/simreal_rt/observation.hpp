// Policy observation builder: the terms of DESIGN.md §3 with scale, clip and a
// time-major history, built without allocation on the control path.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace simreal_rt {

// Known names (widths): base_ang_vel (3), projected_gravity (3),
// velocity_command (3), joint_pos_rel (n), joint_vel (n), last_action (n),
// target_pose (7); n = number of policy joints.
// Each value is clamp(raw * scale, -clip, clip).
// Width of a term for num_joints policy joints; -1 if the name is unknown.
long observation_term_width(const std::string& name, std::size_t num_joints);
// "base_ang_vel, projected_gravity, ..." for error messages.
std::string known_observation_terms();

struct ObservationTerm {
  std::string name;
  double scale = 1.0;
  double clip = 0.0;
};

struct ObservationConfig {
  std::vector<std::string> policy_joint_names;
  std::vector<double> default_joint_pos;  // policy order
  std::vector<ObservationTerm> terms;     // frame = terms concatenated in this order
  int history = 1;                        // output = [frame(t-H+1), ..., frame(t)]
};

class ObservationBuilder {
 public:
  // Throws std::invalid_argument on an unknown term, wrong lengths, history < 1,
  // non-finite scale, negative/NaN clip, duplicate names, or policy joints
  // missing from driver_joint_names (all missing names are listed). Extra
  // driver joints are ignored.
  ObservationBuilder(const ObservationConfig& config, const std::vector<std::string>& driver_joint_names);

  // Pointers may be null only for inputs no configured term uses.
  // joint_pos_driver / joint_vel_driver: driver order, num_driver_joints() values.
  // last_action: policy order, num_policy_joints() values.
  struct Inputs {
    const double* imu_quat_wxyz = nullptr;     // 4, normalized here
    const double* imu_ang_vel = nullptr;       // 3, IMU frame
    const double* velocity_command = nullptr;  // 3: vx, vy, yaw rate
    const double* joint_pos_driver = nullptr;
    const double* joint_vel_driver = nullptr;
    const double* last_action = nullptr;
    const double* target_pose = nullptr;  // 7: position, quaternion (w, x, y, z)
  };

  // Writes size() floats to out. If a used input is null or non-finite, the
  // quaternion is zero, or a scaled value is non-finite, writes size() zeros,
  // leaves the history untouched and returns false. No heap allocation.
  bool build(const Inputs& inputs, float* out) noexcept;

  // The next successful build() fills every history slot with its frame.
  void reset() noexcept;

  std::size_t frame_dim() const { return frame_dim_; }
  std::size_t size() const { return frame_dim_ * history_; }
  std::size_t history() const { return history_; }
  std::size_t num_policy_joints() const { return policy_to_driver_.size(); }
  // Driver index of each policy joint (the by-name match made at construction).
  const std::vector<std::size_t>& policy_to_driver() const { return policy_to_driver_; }
  std::size_t num_driver_joints() const { return num_driver_joints_; }

 private:
  enum class Kind { BASE_ANG_VEL, PROJECTED_GRAVITY, VELOCITY_COMMAND, JOINT_POS_REL, JOINT_VEL, LAST_ACTION, TARGET_POSE };
  struct Term {
    Kind kind;
    double scale, clip;
  };
  std::vector<Term> terms_;
  std::vector<std::size_t> policy_to_driver_;  // policy index -> driver index
  std::vector<double> default_pos_;            // policy order
  std::size_t num_driver_joints_ = 0;
  std::size_t frame_dim_ = 0;
  std::size_t history_ = 1;
  std::vector<float> frame_;  // scratch, frame_dim_
  std::vector<float> ring_;   // history_ x frame_dim_, slot head_ holds the newest
  std::size_t head_ = 0;
  bool empty_ = true;
};

}  // namespace simreal_rt
