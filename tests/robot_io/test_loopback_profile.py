"""The private simulated graph's DDS profile: UDP on 127.0.0.1 only, no shared-memory transport."""

from __future__ import annotations

import json
import subprocess
import sys

PARTICIPANT_REPORT = r"""
import json, os, socket, struct, time
import rclpy
rclpy.init()
node = rclpy.create_node("loopback_profile_probe")
node.create_publisher(__import__("std_msgs.msg", fromlist=["String"]).String, "/probe", 10)
time.sleep(0.5)
inodes = set()
for fd in os.listdir("/proc/self/fd"):
    target = os.readlink(f"/proc/self/fd/{fd}") if os.path.exists(f"/proc/self/fd/{fd}") else ""
    if target.startswith("socket:["):
        inodes.add(target[8:-1])
addresses = []
with open("/proc/self/net/udp") as table:
    for row in table.readlines()[1:]:
        fields = row.split()
        if fields[9] in inodes:
            ip_hex, port_hex = fields[1].split(":")
            addresses.append(socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16))))
with open("/proc/self/maps") as maps:
    shared_memory = sorted({line.split()[-1] for line in maps if "/dev/shm/fastdds" in line})
print(json.dumps({"udp_addresses": addresses, "shared_memory": shared_memory}))
node.destroy_node()
rclpy.shutdown()
"""


def _participant_report() -> dict:
    done = subprocess.run([sys.executable, "-c", PARTICIPANT_REPORT], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_participant_of_the_private_graph_uses_loopback_udp_and_no_shared_memory(ros_domain):
    report = _participant_report()
    assert report["shared_memory"] == []
    assert report["udp_addresses"], "the participant opened no UDP socket"
    # unicast sockets on 127.0.0.1; discovery's multicast group is joined on loopback only (the allow-list)
    assert set(report["udp_addresses"]) <= {"127.0.0.1", "239.255.0.1"}, report["udp_addresses"]


def test_the_localhost_discovery_range_alone_would_map_shared_memory(ros_domain, monkeypatch):
    """Why the profile exists: rmw_fastrtps adds shared memory under LOCALHOST, whatever FASTDDS_* says."""
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
    assert _participant_report()["shared_memory"] != []
