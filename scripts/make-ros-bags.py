#!/usr/bin/env python3
"""Writes ROS recordings of real KITTI scans with the Python `rosbags` package (no code of ours),
for overlap-slam's bag tests.

Two driver layouts of sensor_msgs/PointCloud2:
  velodyne: x y z intensity (float32, 0-255), ring (uint16), time (float32 s from the stamp);
            unorganised, point_step 22, as velodyne_pointcloud publishes. The stamp is the KITTI
            time and `time` is what overlap-slam's azimuth rule gives KITTI scans, so a replay of
            the bag matches a replay of the KITTI folder with `--set azimuth_times=true`.
  ouster:   x y z (float32), intensity (float32) @16, t (uint32 ns from the stamp) @20,
            reflectivity @24, ring @26, ambient @28 (uint16), range (uint32) @32; point_step 48,
            organised 64 rows with missing returns as zero points (is_dense false), as
            ouster-ros publishes. The stamp is the start of the sweep.
Each in three containers: rosbag2 MCAP, rosbag2 SQLite 3, and ROS 1 (bz2 chunks for velodyne,
lz4 for ouster). Ground truth (LiDAR frame) rides along as /ground_truth (nav_msgs/Odometry) and
/pose (geometry_msgs/PoseStamped). The velodyne recordings also carry a second cloud topic,
/velodyne_points_sparse, so that picking a topic matters.

usage: make-ros-bags.py KITTI_DIR OUT_DIR [--frames A..B]
"""
import argparse
import ctypes
import ctypes.util
import math
from pathlib import Path

import numpy as np
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin, Writer as Writer2
from rosbags.typesys import Stores, get_typestore

PERIOD_S = 0.1  # a lone frame's sweep period (KITTI's 10 Hz)


def kitti_frames(kitti, frames):
    times = [float(t) for t in (kitti / "times.txt").read_text().split()]
    calib = {}
    for line in (kitti / "calib.txt").read_text().splitlines():
        key, _, vals = line.partition(":")
        calib[key.strip()] = np.array([float(v) for v in vals.split()])
    tr = np.eye(4)
    tr[:3, :] = calib["Tr"].reshape(3, 4)
    poses = []
    for line in (kitti / "poses.txt").read_text().splitlines():
        p = np.eye(4)
        p[:3, :] = np.array([float(v) for v in line.split()]).reshape(3, 4)
        poses.append(np.linalg.inv(tr) @ p @ tr)
    for i in frames:
        pts = np.fromfile(kitti / "velodyne" / f"{i:06d}.bin", dtype=np.float32).reshape(-1, 4)
        # The first scan's sweep is taken to last as long as the next interval, as overlap-slam's
        # odometry assumes when it deskews the first scan of a drive started in motion.
        if i > frames[0]:
            period = times[i] - times[i - 1]
        else:
            period = times[i + 1] - times[i] if i + 1 < len(times) else PERIOD_S
        yield i, times[i], period, pts, poses[i]


def atan2f(y, x):
    # The C library's float atan2, which Rust's f32::atan2 calls on Linux: numpy's float32
    # arctan2 differs from it in the last bit for some points, and odometry amplifies that.
    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.atan2f.restype = ctypes.c_float
    libm.atan2f.argtypes = [ctypes.c_float, ctypes.c_float]
    return np.array([libm.atan2f(a, b) for a, b in zip(y.tolist(), x.tolist())], dtype=np.float32)


def azimuth_time(pts, period):
    # overlap-slam's rule (odometry/preprocess.rs, azimuth_times), in float32 as there.
    az = atan2f(pts[:, 1], pts[:, 0])
    return (np.float32(0.5) * (-az / np.float32(math.pi)) * np.float32(period)).astype(np.float32)


def rings(pts):
    # KITTI scans are stored beam by beam; a beam ends where the azimuth wraps around.
    az = np.arctan2(pts[:, 1], pts[:, 0])
    wraps = np.concatenate([[0], (np.diff(az) > math.pi).astype(np.int64)])
    return np.minimum(np.cumsum(wraps), 63).astype(np.uint16)


def velodyne_cloud(pts, period):
    dt = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("ring", "<u2"), ("time", "<f4")])
    rec = np.zeros(len(pts), dtype=dt)
    rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    rec["intensity"] = pts[:, 3] * 255.0
    rec["ring"] = rings(pts)
    rec["time"] = azimuth_time(pts, period)
    fields = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7), ("ring", 16, 4), ("time", 18, 7)]
    return rec.tobytes(), fields, 22, 1, len(pts), True


def ouster_cloud(pts, period):
    rows = 64
    width = -(-len(pts) // rows)
    dt = np.dtype({
        "names": ["x", "y", "z", "intensity", "t", "reflectivity", "ring", "ambient", "range"],
        "formats": ["<f4", "<f4", "<f4", "<f4", "<u4", "<u2", "<u2", "<u2", "<u4"],
        "offsets": [0, 4, 8, 16, 20, 24, 26, 28, 32],
        "itemsize": 48,
    })
    rec = np.zeros(rows * width, dtype=dt)  # padding: zero points, Ouster's missing returns
    n = len(pts)
    rec["x"][:n], rec["y"][:n], rec["z"][:n] = pts[:, 0], pts[:, 1], pts[:, 2]
    rec["intensity"][:n] = pts[:, 3] * 255.0
    rec["reflectivity"][:n] = (pts[:, 3] * 255.0).astype(np.uint16)
    t = azimuth_time(pts, period).astype(np.float64) + period / 2.0
    rec["t"][:n] = np.round(t * 1e9).astype(np.uint32)
    rec["ring"][:n] = rings(pts)
    rec["range"][:n] = (np.linalg.norm(pts[:, :3], axis=1) * 1000.0).astype(np.uint32)
    fields = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 16, 7), ("t", 20, 6),
              ("reflectivity", 24, 4), ("ring", 26, 4), ("ambient", 28, 4), ("range", 32, 6)]
    return rec.tobytes(), fields, 48, rows, width, False


def stamp(t):
    ns = int(round((BASE_TIME_S + t) * 1e9))
    return ns // 1_000_000_000, ns % 1_000_000_000


def header(ts, ros1, t, frame):
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    sec, nsec = stamp(t)
    if ros1:
        return Header(seq=0, stamp=Time(sec=sec, nanosec=nsec), frame_id=frame)
    return Header(stamp=Time(sec=sec, nanosec=nsec), frame_id=frame)


def cloud_msg(ts, ros1, t, frame, layout):
    data, fields, step, height, width, dense = layout
    PointField = ts.types["sensor_msgs/msg/PointField"]
    PointCloud2 = ts.types["sensor_msgs/msg/PointCloud2"]
    return PointCloud2(
        header=header(ts, ros1, t, frame), height=height, width=width,
        fields=[PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in fields],
        is_bigendian=False, point_step=step, row_step=step * width,
        data=np.frombuffer(data, dtype=np.uint8), is_dense=dense)


def pose_msgs(ts, ros1, t, m, frame):
    """Ground truth as Odometry (the pose of `frame`, the clouds' own) and as PoseStamped."""
    g = ts.types
    q = quaternion(m[:3, :3])
    pose = g["geometry_msgs/msg/Pose"](
        position=g["geometry_msgs/msg/Point"](x=m[0, 3], y=m[1, 3], z=m[2, 3]),
        orientation=g["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3]))
    cov = np.zeros(36)
    odom = g["nav_msgs/msg/Odometry"](
        header=header(ts, ros1, t, "map"), child_frame_id=frame,
        pose=g["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=cov),
        twist=g["geometry_msgs/msg/TwistWithCovariance"](
            twist=g["geometry_msgs/msg/Twist"](
                linear=g["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0),
                angular=g["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=0.0)),
            covariance=cov))
    stamped = g["geometry_msgs/msg/PoseStamped"](header=header(ts, ros1, t, "map"), pose=pose)
    return odom, stamped


def quaternion(r):
    w = math.sqrt(max(0.0, 1.0 + r[0, 0] + r[1, 1] + r[2, 2])) / 2.0
    x = math.copysign(math.sqrt(max(0.0, 1.0 + r[0, 0] - r[1, 1] - r[2, 2])) / 2.0, r[2, 1] - r[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] + r[1, 1] - r[2, 2])) / 2.0, r[0, 2] - r[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1.0 - r[0, 0] - r[1, 1] + r[2, 2])) / 2.0, r[1, 0] - r[0, 1])
    return x, y, z, w


def messages(kitti, frames, layout_name):
    """(topic, type, time_s, builder(ts, ros1)) in recording order."""
    for i, t, period, pts, pose in kitti_frames(kitti, frames):
        if layout_name == "velodyne":
            layout, topic, frame, t_cloud = velodyne_cloud(pts, period), "/velodyne_points", "velodyne", t
            sparse = velodyne_cloud(pts[::50], period)
            yield "/velodyne_points_sparse", "sensor_msgs/msg/PointCloud2", t, \
                lambda ts, r1, s=sparse, tc=t: cloud_msg(ts, r1, tc, "velodyne", s)
        else:
            layout, topic, frame, t_cloud = ouster_cloud(pts, period), "/ouster/points", "os_sensor", t - period / 2.0
        yield topic, "sensor_msgs/msg/PointCloud2", t_cloud, \
            lambda ts, r1, l=layout, tc=t_cloud, f=frame: cloud_msg(ts, r1, tc, f, l)
        yield "/ground_truth", "nav_msgs/msg/Odometry", t, \
            lambda ts, r1, m=pose, tt=t, f=frame: pose_msgs(ts, r1, tt, m, f)[0]
        yield "/pose", "geometry_msgs/msg/PoseStamped", t, \
            lambda ts, r1, m=pose, tt=t, f=frame: pose_msgs(ts, r1, tt, m, f)[1]


BASE_TIME_S = 1_700_000_000.0  # recordings carry wall-clock stamps; KITTI's start at 0


def write_rosbag2(path, storage, kitti, frames, layout):
    ts = get_typestore(Stores.ROS2_HUMBLE)
    with Writer2(path, version=9, storage_plugin=storage) as w:
        conns = {}
        for topic, msgtype, t, build in messages(kitti, frames, layout):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=ts)
            w.write(conns[topic], int(round((BASE_TIME_S + t) * 1e9)), ts.serialize_cdr(build(ts, False), msgtype))


def write_ros1(path, compression, kitti, frames, layout):
    ts = get_typestore(Stores.ROS1_NOETIC)
    w1 = Writer1(path)
    w1.set_compression(compression)
    with w1 as w:
        conns = {}
        for topic, msgtype, t, build in messages(kitti, frames, layout):
            if topic not in conns:
                conns[topic] = w.add_connection(topic, msgtype, typestore=ts)
            w.write(conns[topic], int(round((BASE_TIME_S + t) * 1e9)), ts.serialize_ros1(build(ts, True), msgtype))


def write_tiny(out, kitti, frame):
    """Two 40-point clouds per container, small enough to mutate thousands of times in a test."""
    _, t, period, pts, pose = next(kitti_frames(kitti, [frame]))
    pts = pts[::3000][:40]
    layout = velodyne_cloud(pts, period)
    for ros1, path in [(False, out / "tiny-mcap"), (True, out / "tiny.bag")]:
        ts = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
        ser = ts.serialize_ros1 if ros1 else ts.serialize_cdr
        w = Writer1(path) if ros1 else Writer2(path, version=9, storage_plugin=StoragePlugin.MCAP)
        with w:
            c = w.add_connection("/points", "sensor_msgs/msg/PointCloud2", typestore=ts)
            g = w.add_connection("/ground_truth", "nav_msgs/msg/Odometry", typestore=ts)
            for k in range(2):
                tk = t + 0.1 * k
                stamp_ns = int(round((BASE_TIME_S + tk) * 1e9))
                w.write(c, stamp_ns, ser(cloud_msg(ts, ros1, tk, "velodyne", layout), "sensor_msgs/msg/PointCloud2"))
                w.write(g, stamp_ns, ser(pose_msgs(ts, ros1, tk, pose, "velodyne")[0], "nav_msgs/msg/Odometry"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kitti", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--frames", default="0..10")
    a = ap.parse_args()
    lo, hi = (int(v) for v in a.frames.split(".."))
    frames = list(range(lo, hi))
    a.out.mkdir(parents=True, exist_ok=True)
    # Stamps are shifted to wall-clock time as a robot's would be.
    for layout, ros1_compression in [("velodyne", Writer1.CompressionFormat.BZ2), ("ouster", Writer1.CompressionFormat.LZ4)]:
        write_rosbag2(a.out / f"{layout}-mcap", StoragePlugin.MCAP, a.kitti, frames, layout)
        write_rosbag2(a.out / f"{layout}-sqlite3", StoragePlugin.SQLITE3, a.kitti, frames, layout)
        write_ros1(a.out / f"{layout}.bag", ros1_compression, a.kitti, frames, layout)
    write_tiny(a.out, a.kitti, frames[0])
    print(f"wrote {len(frames)} frames x 6 recordings (and tiny seeds for mutation tests) to {a.out}")


if __name__ == "__main__":
    main()
