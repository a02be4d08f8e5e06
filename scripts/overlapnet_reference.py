#!/usr/bin/env python3
"""Independent NumPy reference for OverlapNet, written from the description of the authors' code
in ../shared/reference/overlapnet-official.md (not from overlap-slam's Rust code), to check the
Rust port against:

  keras-fixture OUT_DIR   Writes a Keras-2 HDF5 weights file of the paper-size network with known
                          weights (h5py, the layout `model.save` writes: `model_weights` group,
                          `layer_names` / `weight_names` attributes, HWIO kernels, weightless
                          layers listed with empty weight lists), then runs the network in NumPy
                          (float64) on the authors' preprocessed KITTI 00 frames 0 and 1 and writes
                          what it computed: legs' features of both frames (.npy), overlap, raw yaw
                          logits and decoded yaw (JSON). tests/overlapnet_keras.rs compares.
  labels SEQ Q R [Q R ...] Ground-truth overlap and yaw class of (query, reference) frame pairs of a
                          KITTI flat folder (velodyne/, calib.txt, poses.txt) as com_overlap_yaw.py
                          computes them: every reference point moved into the query's frame.

Needs numpy and h5py (pip install numpy h5py); overlap-slam itself never does.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
PREPROCESSED = SHARED / "reference" / "overlapnet-preprocessed"

# (name, filters, kernel (rows, cols), strides) of the legs, overlapnet-official.md section 1.
LEGS = [
    ("s_conv1", 16, (5, 15), (2, 2)),
    ("s_conv2", 32, (3, 15), (2, 1)),
    ("s_conv3", 64, (3, 15), (2, 1)),
    ("s_conv3a", 64, (3, 12), (2, 1)),
    ("s_conv4", 128, (2, 9), (2, 1)),
    ("s_conv5", 128, (1, 9), (1, 1)),
    ("s_conv6", 128, (1, 9), (1, 1)),
    ("s_conv7", 128, (1, 9), (1, 1)),
    ("s_conv8", 128, (1, 7), (1, 1)),
    ("s_conv9", 128, (1, 5), (1, 1)),
    ("s_conv10", 128, (1, 3), (1, 1)),
]


def conv_valid(x, kernel, bias, strides):
    """Keras Conv2D, padding 'valid': x (H, W, Cin), kernel (kh, kw, Cin, Cout) -> (Ho, Wo, Cout)."""
    kh, kw, _, cout = kernel.shape
    sh, sw = strides
    ho = (x.shape[0] - kh) // sh + 1
    wo = (x.shape[1] - kw) // sw + 1
    out = np.zeros((ho, wo, cout))
    for dy in range(kh):
        for dx in range(kw):
            patch = x[dy : dy + sh * (ho - 1) + 1 : sh, dx : dx + sw * (wo - 1) + 1 : sw, :]
            out += patch @ kernel[dy, dx]
    return out + bias


def relu(x):
    return np.maximum(x, 0.0)


def legs(image, w):
    """(64, 900, C) -> (360, 128)."""
    x = image.astype(np.float64)
    for name, _, _, strides in LEGS:
        x = relu(conv_valid(x, w[name][0], w[name][1], strides))
    assert x.shape[0] == 1, x.shape
    return x[0]


def head_before_dense(left, right, w):
    """Delta layer and the three convolutions: (360, C) x 2 -> (22, 22, 256)."""
    diff = np.abs(left[:, None, :] - right[None, :, :])  # [i, j, c] = |L[i] - R[j]|
    x = conv_valid(diff, w["c_conv1"][0], w["c_conv1"][1], (1, 15))  # linear
    x = relu(conv_valid(x, w["c_conv2"][0], w["c_conv2"][1], (15, 1)))
    return relu(conv_valid(x, w["c_conv3"][0], w["c_conv3"][1], (1, 1)))


def overlap(left, right, w):
    flat = head_before_dense(left, right, w).reshape(-1)  # Keras flattens NHWC
    logit = flat @ w["overlap_output"][0][:, 0] + w["overlap_output"][1][0]
    return 1.0 / (1.0 + math.exp(-logit))


def yaw_logits(left, right):
    """NormalizedCorrelation2D(normalize='none') with RangePadding2D(180) on the left input."""
    n = left.shape[0]
    p = n // 2
    padded = np.concatenate([left[p:], left, left[: p - 1]], axis=0)  # 2n - 1 columns
    return np.array([np.sum(padded[k : k + n] * right) for k in range(n)])


def quantised(rng, shape, scale):
    """Known weights that compress well: 13 distinct values per layer."""
    return (np.clip(np.round(rng.standard_normal(shape) * 2.0), -6, 6) / 2.0 * scale).astype(np.float32)


def authors_input(frame):
    depth = np.load(PREPROCESSED / "depth" / f"{frame:06d}.npy")
    normal = np.load(PREPROCESSED / "normal" / f"{frame:06d}.npy")
    return np.concatenate([depth[..., None], normal], axis=-1).astype(np.float32)


def keras_fixture(out_dir):
    import h5py

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2020)
    w = {}
    cin = 4
    for name, filters, (kh, kw), _ in LEGS:
        fan_in = kh * kw * cin
        gain = 0.1 if name == "s_conv1" else 1.0
        w[name] = (
            quantised(rng, (kh, kw, cin, filters), gain * math.sqrt(2.0 / fan_in)),
            (np.round(rng.standard_normal(filters) * 4) / 256).astype(np.float32),
        )
        cin = filters
    for name, shape in [("c_conv1", (1, 15, 128, 64)), ("c_conv2", (15, 1, 64, 128)), ("c_conv3", (3, 3, 128, 256))]:
        fan_in = shape[0] * shape[1] * shape[2]
        w[name] = (
            quantised(rng, shape, math.sqrt(2.0 / fan_in)),
            (np.round(rng.standard_normal(shape[3]) * 4) / 256).astype(np.float32),
        )
    inputs = [authors_input(0), authors_input(1)]
    f32 = {k: (a.astype(np.float64), b.astype(np.float64)) for k, (a, b) in w.items()}
    feats = [legs(x, f32) for x in inputs]
    # Dense weights scaled so that the pair's logit is about 0.8: the sigmoid stays informative.
    flat = head_before_dense(feats[0], feats[1], f32).reshape(-1)
    q = quantised(rng, (flat.size, 1), 1.0).astype(np.float64)
    scale = 0.8 / max(abs(float(flat @ q[:, 0])), 1e-12)
    w["overlap_output"] = ((q * scale).astype(np.float32), np.array([0.0625], dtype=np.float32))
    f32 = {k: (a.astype(np.float64), b.astype(np.float64)) for k, (a, b) in w.items()}

    # The authors' siamese model in Keras's order; weightless layers have no weights.
    layer_names = (
        ["input_1", "input_2"]
        + [n for n, *_ in LEGS]
        + ["reshape_1", "reshape_2", "lambda_1", "lambda_2", "lambda_3", "c_conv1", "c_conv2", "c_conv3"]
        + ["flatten_1", "overlap_output", "normalized_correlation2d_1", "orientation_output"]
    )
    path = out / "overlapnet_keras.h5"
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = np.bytes_("2.1.5")
        f.attrs["backend"] = np.bytes_("tensorflow")
        f.attrs["model_config"] = np.bytes_(json.dumps({"class_name": "Model", "config": {"name": "siamese"}}))
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        g.attrs["backend"] = np.bytes_("tensorflow")
        g.attrs["keras_version"] = np.bytes_("2.1.5")
        for name in layer_names:
            lg = g.create_group(name)
            if name not in w:
                lg.attrs["weight_names"] = np.array([])  # what Keras 2 writes for an empty list
                continue
            # TensorFlow sometimes suffixes a scope (`_1`): the loader must follow weight_names.
            scope = name + "_1" if name == "c_conv3" else name
            names = [f"{scope}/kernel:0", f"{scope}/bias:0"]
            lg.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, value in zip(names, w[name]):
                lg.create_dataset(n, data=value)
    np.save(out / "overlapnet_keras_features_0.npy", feats[0].astype(np.float32))
    np.save(out / "overlapnet_keras_features_1.npy", feats[1].astype(np.float32))
    logits = yaw_logits(feats[0], feats[1])
    expected = {
        "left_frame": 0,
        "right_frame": 1,
        "overlap": overlap(feats[0], feats[1], f32),
        "yaw_logits": logits.tolist(),
        "yaw_deg": float(180 - int(np.argmax(logits))),
    }
    (out / "overlapnet_keras_expected.json").write_text(json.dumps(expected, indent=1))
    print(f"wrote {path} ({path.stat().st_size} bytes); overlap {expected['overlap']:.6f}, yaw {expected['yaw_deg']}")


def load_kitti_flat(seq):
    seq = Path(seq)
    calib = {}
    for line in (seq / "calib.txt").read_text().splitlines():
        if ":" in line:
            key, vals = line.split(":", 1)
            calib[key.strip()] = np.array([float(v) for v in vals.split()])
    tr = np.eye(4)
    tr[:3, :4] = calib["Tr"].reshape(3, 4)
    poses = []
    for line in (seq / "poses.txt").read_text().splitlines():
        if line.strip():
            t = np.eye(4)
            t[:3, :4] = np.array([float(v) for v in line.split()]).reshape(3, 4)
            poses.append(np.linalg.inv(tr) @ t @ tr)  # LiDAR frame, as OverlapNet's loaders do
    return poses


def range_projection(points, fov_up=3.0, fov_down=-25.0, h=64, w=900, max_range=50.0):
    """utils.py range_projection, float32 as NumPy computes it there; returns the range image."""
    fov_up = fov_up / 180.0 * np.pi
    fov_down = fov_down / 180.0 * np.pi
    fov = abs(fov_down) + abs(fov_up)
    depth = np.linalg.norm(points[:, :3], 2, axis=1)
    keep = (depth > 0) & (depth < max_range)
    points, depth = points[keep], depth[keep]
    yaw = -np.arctan2(points[:, 1], points[:, 0])
    pitch = np.arcsin(points[:, 2] / depth)
    proj_x = 0.5 * (yaw / np.pi + 1.0) * w
    proj_y = (1.0 - (pitch + abs(fov_down)) / fov) * h
    proj_x = np.minimum(w - 1, np.maximum(0, np.floor(proj_x))).astype(np.int32)
    proj_y = np.minimum(h - 1, np.maximum(0, np.floor(proj_y))).astype(np.int32)
    order = np.argsort(depth)[::-1]
    image = np.full((h, w), -1, dtype=np.float32)
    image[proj_y[order], proj_x[order]] = depth[order]
    return image


def labels(seq, pairs):
    poses = load_kitti_flat(seq)
    scan = lambda i: np.fromfile(Path(seq) / "velodyne" / f"{i:06d}.bin", dtype=np.float32).reshape(-1, 4)
    for q, r in pairs:
        current = range_projection(scan(q)[:, :3])
        pts = scan(r)[:, :3].astype(np.float64)
        rel = np.linalg.inv(poses[q]) @ poses[r]
        moved = (pts @ rel[:3, :3].T + rel[:3, 3]).astype(np.float32)
        reference = range_projection(moved)
        valid = np.count_nonzero(current > 0)
        both = reference > 0
        overlap = np.count_nonzero(np.abs(reference[both] - current[both]) < 1) / valid
        yaw = math.atan2(rel[1, 0], rel[0, 0])
        yaw_class = int(-(yaw / np.pi) * 360 // 2 + 360 // 2)
        print(f"{q},{r},{overlap:.4f},{math.degrees(yaw):.2f},{yaw_class}")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "keras-fixture":
        keras_fixture(sys.argv[2])
    elif len(sys.argv) >= 5 and sys.argv[1] == "labels" and len(sys.argv) % 2 == 1:
        args = [int(a) for a in sys.argv[3:]]
        labels(sys.argv[2], list(zip(args[::2], args[1::2])))
    else:
        sys.exit(__doc__)
