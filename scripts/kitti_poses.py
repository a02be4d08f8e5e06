"""Pose helpers the comparison scripts share: KITTI pose files, the LiDAR-frame ground truth,
SE(3)-aligned ATE and frame-to-frame errors (all in the LiDAR frame, as `overlap-slam eval`)."""
import numpy as np


def load_poses(path):
    """4x4 matrices from a KITTI poses file (3x4 row-major a line)."""
    out = []
    for line in open(path):
        m = np.eye(4)
        m[:3] = np.array(line.split(), float).reshape(3, 4)
        out.append(m)
    return out


def calib_tr(seq):
    """The sequence's velodyne -> camera calibration `Tr` as a 4x4."""
    for line in open(f"{seq}/calib.txt"):
        if line.startswith("Tr:"):
            tr = np.eye(4)
            tr[:3] = np.array(line.split()[1:], float).reshape(3, 4)
            return tr
    raise SystemExit(f"{seq}/calib.txt: no Tr")


def lidar_gt(seq):
    """The sequence's ground truth in the LiDAR frame: Tr^-1 * T_cam * Tr."""
    tr = calib_tr(seq)
    return [np.linalg.inv(tr) @ p @ tr for p in load_poses(f"{seq}/poses.txt")]


def ate(est, gt):
    """RMSE of positions after the SE(3) (Umeyama, no scale) alignment of `est` onto `gt`."""
    a, b = np.array([e[:3, 3] for e in est]), np.array([g[:3, 3] for g in gt])
    ma, mb = a.mean(0), b.mean(0)
    u, _, vt = np.linalg.svd((b - mb).T @ (a - ma))
    s = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
    r = u @ s @ vt
    return float(np.sqrt((((a - ma) @ r.T + mb - b) ** 2).sum(1).mean()))


def step_errors(est, gt):
    """Each registration's error against ground truth: translation (m) and rotation (deg) lists."""
    t, r = [], []
    for e0, e1, g0, g1 in zip(est, est[1:], gt, gt[1:]):
        d = np.linalg.inv(np.linalg.inv(g0) @ g1) @ (np.linalg.inv(e0) @ e1)
        t.append(float(np.linalg.norm(d[:3, 3])))
        r.append(float(np.degrees(np.arccos(np.clip((np.trace(d[:3, :3]) - 1) / 2, -1, 1)))))
    return t, r
