"""Everything that touches a robot or a person: the ROS 2 policy node and the MuJoCo hardware emulator."""
