"""Real to sim: camera intrinsics, hand-eye, joint offsets and system identification (issue 7)."""
