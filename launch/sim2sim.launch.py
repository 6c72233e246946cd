"""sim2sim: the MuJoCo hardware emulator and the policy node, talking over ROS 2 exactly as on the robot.

    ros2 launch launch/sim2sim.launch.py params:=launch/params/quadruped.yaml

    ros2 launch launch/sim2sim.launch.py params:=launch/params/arm.yaml

Then stand the robot up and start the policy through the node's services (~/stand_up, ~/start_policy) and
send /cmd_vel (the quadruped) or a goal on /target_pose (the arm, which measures itself on /sim/ee_pose).
Without the launch tools, `simreal sim2sim --params launch/params/<robot>.yaml` starts the same two nodes with
the same YAML, drives them through the services and prints measurements (`--target x y z` for the arm).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration


def generate_launch_description() -> LaunchDescription:
    params = LaunchConfiguration("params")
    return LaunchDescription(
        [
            DeclareLaunchArgument(
                "params",
                default_value="launch/params/quadruped.yaml",
                description="ros__parameters YAML of both nodes (simreal_sim_robot and simreal_policy)",
            ),
            ExecuteProcess(
                cmd=["python3", "-m", "robot_io.sim_robot", "--ros-args", "--params-file", params],
                name="simreal_sim_robot",
                output="screen",
            ),
            ExecuteProcess(
                cmd=["python3", "-m", "robot_io.policy_node", "--ros-args", "--params-file", params],
                name="simreal_policy",
                output="screen",
            ),
        ]
    )
