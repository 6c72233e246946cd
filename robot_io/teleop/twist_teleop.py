"""Drive the quadruped from a teleop device: its twist, scaled by `TwistLimits`, on /cmd_vel.

Published at a steady rate (20 Hz by default) while the node runs, including zeros when the stick is
centred: the policy node counts a silent /cmd_vel as "stop" after its command timeout, and a steady
stream keeps a held stick moving the robot. On shutdown a final zero twist is sent. `q` (the stop
event) ends the loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import rclpy
from geometry_msgs.msg import Twist
from rclpy.context import Context
from rclpy.node import Node

from robot_io import topics
from robot_io.teleop.command import TeleopDevice, TwistLimits

NODE_NAME = "simreal_teleop"


@dataclass
class TwistTeleopConfig:
    rate_hz: float = 20.0
    limits: TwistLimits | None = None
    max_seconds: float = 0.0  # 0: until the device says stop (tests bound it)


def twist_message(twist_m_s: tuple[float, float, float]) -> Twist:
    """A Twist with linear x/y (m/s) and angular z (rad/s); the other axes zero."""
    message = Twist()
    message.linear.x, message.linear.y, message.angular.z = (float(v) for v in twist_m_s)
    return message


def run_twist_teleop(device: TeleopDevice, config: TwistTeleopConfig, context: Context | None = None) -> int:
    """Poll the device and publish its twist until it says stop (or max_seconds); the messages sent."""
    limits = config.limits or TwistLimits()
    own_context = context is None
    context = context or Context()
    if own_context:
        rclpy.init(context=context)
    node = Node(NODE_NAME, context=context)
    publisher = node.create_publisher(Twist, topics.CMD_VEL, topics.CMD_VEL_QOS)
    period_s, sent = 1.0 / config.rate_hz, 0
    start_s = time.monotonic()
    try:
        while context.ok():
            reading = device.poll().clipped()
            if reading.events.stop:
                break
            publisher.publish(twist_message(tuple(limits.scale(reading.twist))))
            sent += 1
            if config.max_seconds and time.monotonic() - start_s >= config.max_seconds:
                break
            time.sleep(max(0.0, start_s + sent * period_s - time.monotonic()))
    finally:
        if context.ok():
            publisher.publish(twist_message((0.0, 0.0, 0.0)))  # leave the robot standing still
            sent += 1
        device.close()
        node.destroy_node()
        if own_context:
            rclpy.try_shutdown(context=context)
    return sent
