"""The simreal policy node with its parameter YAML, for a robot with a full ROS 2 install.

    ros2 launch launch/deploy.launch.py params:=launch/params/quadruped.yaml

The same node without the launch tools (as on the development machines, where ROS 2 comes from PyPI):

    simreal deploy --params launch/params/quadruped.yaml
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
                description="ros__parameters YAML of the simreal_policy node (bundle, rates, timeouts, sit pose)",
            ),
            ExecuteProcess(
                cmd=["python3", "-m", "robot_io.policy_node", "--ros-args", "--params-file", params],
                name="simreal_policy",
                output="screen",
            ),
        ]
    )
