"""3-vectors as tuples of Python floats (IEEE doubles, like the C engine's `double[3]`).

The set-up (detector frame, cell, rotations) is done here, once, in double precision and in
the order of operations the contract writes; only the per-pixel work runs in torch.
"""

from __future__ import annotations

import math

Vec3 = tuple[float, float, float]


def dot(u: Vec3, v: Vec3) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def cross(u: Vec3, v: Vec3) -> Vec3:
    return (
        u[1] * v[2] - u[2] * v[1],
        u[2] * v[0] - u[0] * v[2],
        u[0] * v[1] - u[1] * v[0],
    )


def scale(v: Vec3, k: float) -> Vec3:
    return (v[0] * k, v[1] * k, v[2] * k)


def divide(v: Vec3, k: float) -> Vec3:
    return (v[0] / k, v[1] / k, v[2] / k)


def magnitude(v: Vec3) -> float:
    return math.sqrt(dot(v, v))


def unit(v: Vec3) -> Vec3:
    """v / |v|; a zero vector stays zero (nothing sensible to point at)."""
    mag = magnitude(v)
    return divide(v, mag) if mag != 0.0 else v


def rotate_about_axis(v: Vec3, axis: Vec3, angle: float) -> Vec3:
    """Right-handed Rodrigues rotation of v about the unit vector `axis` by `angle` radians:
    v' = v cos + (axis x v) sin + axis (axis . v)(1 - cos)."""
    c = math.cos(angle)
    s = math.sin(angle)
    w = cross(axis, v)
    along = dot(axis, v)
    return tuple(v[i] * c + w[i] * s + axis[i] * along * (1.0 - c) for i in range(3))  # type: ignore[return-value]


def rotate_xyz(v: Vec3, rx: float, ry: float, rz: float) -> Vec3:
    """Right-handed rotations about lab X by rx, then Y by ry, then Z by rz (radians)."""
    x, y, z = v
    c, s = math.cos(rx), math.sin(rx)
    y, z = y * c - z * s, y * s + z * c
    c, s = math.cos(ry), math.sin(ry)
    x, z = x * c + z * s, -x * s + z * c
    c, s = math.cos(rz), math.sin(rz)
    x, y = x * c - y * s, x * s + y * c
    return (x, y, z)
