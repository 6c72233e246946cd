"""Teleoperation: devices (keyboard, gamepad, SpaceMouse, scripted) behind one interface, arm IK, sessions."""
