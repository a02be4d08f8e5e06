#!/usr/bin/env python3
"""Checks overlap-slam's live ROS 2 against an independent DDS, Eclipse Cyclone DDS (the
`cyclonedds` Python package, the default RMW of several ROS 2 releases), on loopback:

1. Cyclone publishes real KITTI scans as sensor_msgs/PointCloud2 (Velodyne layout) on /points at
   10 Hz; `overlap-slam live --ros2 /points` registers them, and Cyclone reads back what
   overlap-slam publishes: nav_msgs/Odometry on /overlap_slam/odometry and tf2_msgs/TFMessage on
   /tf. The odometry poses are compared with KITTI's ground truth.
2. `overlap-slam sim-ros2 /sim/points` publishes; Cyclone subscribes and checks the clouds' layout.

usage: ros2-interop-cyclonedds.py KITTI_DIR [FRAMES]   (run from the repository root, after
`cargo build --release`)
"""
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from cyclonedds.core import Policy, Qos
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import array, float64, int32, sequence, uint8, uint32
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic


@dataclass
class Time(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32
    nanosec: uint32


@dataclass
class Header(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Time
    frame_id: str


@dataclass
class PointField(IdlStruct, typename="sensor_msgs::msg::dds_::PointField_"):
    name: str
    offset: uint32
    datatype: uint8
    count: uint32


@dataclass
class PointCloud2(IdlStruct, typename="sensor_msgs::msg::dds_::PointCloud2_"):
    header: Header
    height: uint32
    width: uint32
    fields: sequence[PointField]
    is_bigendian: bool
    point_step: uint32
    row_step: uint32
    data: sequence[uint8]
    is_dense: bool


@dataclass
class Point(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Quaternion(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64
    y: float64
    z: float64
    w: float64


@dataclass
class Pose(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Point
    orientation: Quaternion


@dataclass
class PoseWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::PoseWithCovariance_"):
    pose: Pose
    covariance: array[float64, 36]


@dataclass
class Vector3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64
    y: float64
    z: float64


@dataclass
class Twist(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: Vector3
    angular: Vector3


@dataclass
class TwistWithCovariance(IdlStruct, typename="geometry_msgs::msg::dds_::TwistWithCovariance_"):
    twist: Twist
    covariance: array[float64, 36]


@dataclass
class Odometry(IdlStruct, typename="nav_msgs::msg::dds_::Odometry_"):
    header: Header
    child_frame_id: str
    pose: PoseWithCovariance
    twist: TwistWithCovariance


@dataclass
class Transform(IdlStruct, typename="geometry_msgs::msg::dds_::Transform_"):
    translation: Vector3
    rotation: Quaternion


@dataclass
class TransformStamped(IdlStruct, typename="geometry_msgs::msg::dds_::TransformStamped_"):
    header: Header
    child_frame_id: str
    transform: Transform


@dataclass
class TFMessage(IdlStruct, typename="tf2_msgs::msg::dds_::TFMessage_"):
    transforms: sequence[TransformStamped]


SENSOR_QOS = Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5))
RELIABLE_QOS = Qos(Policy.Reliability.Reliable(0), Policy.History.KeepLast(10))
BIN = "target/release/overlap-slam"


def kitti_clouds(kitti, frames):
    times = [float(t) for t in (kitti / "times.txt").read_text().split()]
    base = time.time()
    for i in range(frames):
        pts = np.fromfile(kitti / "velodyne" / f"{i:06d}.bin", dtype=np.float32).reshape(-1, 4)
        period = times[i] - times[i - 1] if i else 0.1
        az = np.arctan2(pts[:, 1], pts[:, 0]).astype(np.float32)
        rec = np.zeros(len(pts), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"),
                                         ("ring", "<u2"), ("time", "<f4")])
        rec["x"], rec["y"], rec["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
        rec["intensity"] = pts[:, 3] * 255
        rec["time"] = np.float32(0.5) * (-az / np.float32(math.pi)) * np.float32(period)
        stamp = base + times[i]
        fields = [PointField(n, o, d, 1) for n, o, d in
                  [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 12, 7), ("ring", 16, 4), ("time", 18, 7)]]
        yield PointCloud2(Header(Time(int(stamp), int((stamp % 1) * 1e9)), "velodyne"), 1, len(pts), fields,
                          False, 22, 22 * len(pts), rec.tobytes(), True)


def kitti_lidar_position(kitti, i):
    calib = {l.split(":")[0]: np.array(l.split(":")[1].split(), float)
             for l in (kitti / "calib.txt").read_text().splitlines() if ":" in l}
    tr = np.eye(4)
    tr[:3] = calib["Tr"].reshape(3, 4)
    cam = np.eye(4)
    cam[:3] = np.array((kitti / "poses.txt").read_text().splitlines()[i].split(), float).reshape(3, 4)
    return (np.linalg.inv(tr) @ cam @ tr)[:3, 3]


def cyclone_publishes_overlap_slam_listens(kitti, frames):
    dp = DomainParticipant(0)
    writer = DataWriter(dp, Topic(dp, "rt/points", PointCloud2), qos=SENSOR_QOS)
    odom = DataReader(dp, Topic(dp, "rt/overlap_slam/odometry", Odometry), qos=RELIABLE_QOS)
    tf = DataReader(dp, Topic(dp, "rt/tf", TFMessage), qos=RELIABLE_QOS)
    live = subprocess.Popen([BIN, "live", "--ros2", "/points", "--no-loops", "--idle-timeout", "4",
                             "--set", "kitti_correction=true", "--sensor", "hdl64e", "--out", "target/interop-live"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)  # discovery
    clouds = list(kitti_clouds(kitti, frames))
    poses, transforms = [], 0
    for c in clouds:
        writer.write(c)
        time.sleep(0.1)
        poses += [s.pose.pose.position for s in odom.take(N=100) if isinstance(s, Odometry)]
        transforms += sum(isinstance(s, TFMessage) for s in tf.take(N=100))
    out, err = live.communicate(timeout=60)
    poses += [s.pose.pose.position for s in odom.take(N=100) if isinstance(s, Odometry)]
    transforms += sum(isinstance(s, TFMessage) for s in tf.take(N=100))
    print(f"1. Cyclone DDS published {len(clouds)} KITTI clouds; overlap-slam registered them: {out.strip()}")
    print(f"   Cyclone DDS received {len(poses)} nav_msgs/Odometry and {transforms} /tf messages from overlap-slam")
    if poses:
        p = poses[-1]
        g = kitti_lidar_position(kitti, len(poses) - 1)
        print(f"   last odometry position ({p.x:.2f}, {p.y:.2f}, {p.z:.2f}) m; KITTI ground truth ({g[0]:.2f}, {g[1]:.2f}, {g[2]:.2f}) m")
    return len(poses) == len(clouds) and transforms == len(clouds)


def overlap_slam_publishes_cyclone_listens(sweeps):
    dp = DomainParticipant(0)
    reader = DataReader(dp, Topic(dp, "rt/sim/points", PointCloud2), qos=SENSOR_QOS)
    sim = subprocess.Popen([BIN, "sim-ros2", "/sim/points", "--sweeps", str(sweeps)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = []
    deadline = time.time() + sweeps * 0.1 + 15
    while sim.poll() is None and time.time() < deadline:
        got += [s for s in reader.take(N=10) if isinstance(s, PointCloud2)]
        time.sleep(0.02)
    got += [s for s in reader.take(N=10) if isinstance(s, PointCloud2)]
    layout = [f.name for f in got[0].fields] if got else []
    points = [c.width * c.height for c in got]
    print(f"2. overlap-slam sim-ros2 published {sweeps} clouds; Cyclone DDS received {len(got)}, "
          f"fields {layout}, {min(points, default=0)}-{max(points, default=0)} points each")
    return len(got) == sweeps


def main():
    kitti = Path(sys.argv[1])
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    ok1 = cyclone_publishes_overlap_slam_listens(kitti, frames)
    ok2 = overlap_slam_publishes_cyclone_listens(frames)
    sys.exit(0 if ok1 and ok2 else 1)


if __name__ == "__main__":
    main()
