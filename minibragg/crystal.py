"""The crystal: reciprocal and direct cell vectors, and their rotation for each φ step
(facts §4 steps 7–8). Pure double-precision set-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import Config
from .readers import Matrix
from .vectors import Vec3, cross, divide, dot, rotate_about_axis, rotate_xyz, scale, unit



def deg2rad(deg: float) -> float:
    return deg * math.pi / 180.0


@dataclass(frozen=True)
class Cell:
    """Direct vectors in Å, reciprocal vectors in Å⁻¹ (the engine scales the direct ones by
    1e-10 to metres after the φ rotation, so the trace's Å values are the rotated ones)."""

    a: Vec3
    b: Vec3
    c: Vec3
    a_star: Vec3
    b_star: Vec3
    c_star: Vec3


def reciprocal_from_matrix(matrix: Matrix, lambda_A: float) -> tuple[Vec3, Vec3, Vec3]:
    """MOSFLM A: row i holds component i of a*, b*, c*, scaled by λ (Å)."""
    columns = [tuple(matrix[row][col] / lambda_A for row in range(3)) for col in range(3)]
    return columns[0], columns[1], columns[2]  # type: ignore[return-value]


def reciprocal_from_cell(cell: tuple[float, ...], misset_deg: Vec3) -> tuple[Vec3, Vec3, Vec3]:
    """a*, b*, c* (Å⁻¹) of the cell (Å, degrees) in the standard orientation, then misset."""
    a, b, c = cell[0], cell[1], cell[2]
    alpha, beta, gamma = deg2rad(cell[3]), deg2rad(cell[4]), deg2rad(cell[5])
    sin_a, sin_b, sin_g = math.sin(alpha), math.sin(beta), math.sin(gamma)
    cos_a, cos_b, cos_g = math.cos(alpha), math.cos(beta), math.cos(gamma)
    sigma = (alpha + beta + gamma) / 2.0
    volume = 2.0 * a * b * c * math.sqrt(
        abs(math.sin(sigma) * math.sin(sigma - alpha) * math.sin(sigma - beta) * math.sin(sigma - gamma)))
    a_star_len = b * c * sin_a / volume
    b_star_len = c * a * sin_b / volume
    c_star_len = a * b * sin_g / volume
    cos_alpha_star = (cos_b * cos_g - cos_a) / (sin_b * sin_g)
    cos_beta_star = (cos_g * cos_a - cos_b) / (sin_g * sin_a)
    cos_gamma_star = (cos_a * cos_b - cos_g) / (sin_a * sin_b)
    sin_gamma_star = c / (volume * a_star_len * b_star_len)
    a_star = (a_star_len, 0.0, 0.0)
    b_star = (b_star_len * cos_gamma_star, b_star_len * sin_gamma_star, 0.0)
    c_star = (
        c_star_len * cos_beta_star,
        c_star_len * (cos_alpha_star - cos_beta_star * cos_gamma_star) / sin_gamma_star,
        c_star_len * volume / (a * b * c * sin_gamma_star),
    )
    rx, ry, rz = (deg2rad(angle) for angle in misset_deg)
    return rotate_xyz(a_star, rx, ry, rz), rotate_xyz(b_star, rx, ry, rz), rotate_xyz(c_star, rx, ry, rz)


def cell_from_reciprocal(a_star: Vec3, b_star: Vec3, c_star: Vec3) -> Cell:
    """Direct cell from the reciprocal one, then the reciprocal regenerated from it (step 7)."""
    v_star = dot(a_star, cross(b_star, c_star))
    volume = 1.0 / v_star
    a = scale(cross(b_star, c_star), volume)
    b = scale(cross(c_star, a_star), volume)
    c = scale(cross(a_star, b_star), volume)
    return Cell(
        a=a,
        b=b,
        c=c,
        a_star=divide(cross(b, c), volume),
        b_star=divide(cross(c, a), volume),
        c_star=divide(cross(a, b), volume),
    )


def crystal_cell(config: Config, matrix: Matrix | None) -> Cell:
    """-mat wins over -cell; -misset applies to -cell only (contract)."""
    if matrix is not None:
        stars = reciprocal_from_matrix(matrix, config.lambda_A)
    else:
        assert config.cell is not None
        stars = reciprocal_from_cell(config.cell, config.misset_deg)
    return cell_from_reciprocal(*stars)


def phi_angles(config: Config) -> list[float]:
    """φ_i = φ0 + i·(osc/phisteps), degrees -> radians, i = 0..phisteps-1."""
    step = config.osc_deg / config.phisteps
    return [deg2rad(config.phi_deg + i * step) for i in range(config.phisteps)]


def rotated_cells(cell: Cell, spindle: Vec3, angles: list[float]) -> list[Cell]:
    """The cell turned about the unit spindle axis, one per φ step."""
    axis = unit(spindle)
    return [
        Cell(*(rotate_about_axis(v, axis, phi) for v in
               (cell.a, cell.b, cell.c, cell.a_star, cell.b_star, cell.c_star)))
        for phi in angles
    ]
