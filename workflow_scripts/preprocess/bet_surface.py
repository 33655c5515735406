"""BET surface evolution (Smith 2002) as `brainextractor` computes it, in allocation-free kernels.

`FastBrainExtractor` is a drop-in subclass of `brainextractor.BrainExtractor`: the same
initialisation (thresholds, centre, radius, icosphere), the same parameters and update terms.
One thing differs on purpose: the mask sits on the surface. brainextractor 0.3's compute_mask
places trimesh's voxel grid one voxel lower on every axis (it takes int() of the grid's lower
bound, which is half a voxel below its first centre), so its masks are displaced by (-1, -1, -1)
voxels. What changes is how each step is computed: the library
allocates arrays for every vertex of every iteration (Bresenham lines, candidate points, lists of
samples) and voxelises the final surface with trimesh's subdivide_to_size; here one numba pass
per iteration walks the lines in place, and the mask is sampled straight off the triangles.
Floating-point expressions follow the library's so the surfaces agree to rounding error.

Kernels are cached on disk (see `_jit`); numba writes its cache files atomically, so parallel
jobs starting together are safe.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import nibabel as nib
import numba
import numpy as np
import trimesh
from brainextractor import BrainExtractor
from brainextractor.helpers import sphere

from workflow_scripts.masks import fill_holes

# trimesh's voxelized(1) subdivides until every edge is at most pitch / 2
_MAX_EDGE = 0.5


def _jit(func: Callable) -> Callable:
    """numba.njit with its on-disk cache: next to this module, else the user's cache folder
    (numba's own fallback). Where neither can be written (a read-only install with no writable
    home) numba refuses cache=True outright; compile per process there instead of failing."""
    try:
        return numba.njit(cache=True)(func)
    except RuntimeError as err:
        if "no locator available" not in str(err):
            raise
        return numba.njit(func)


@_jit
def _nearest(x: float) -> int:
    """The library's closest integer point, per axis: ties go to the lower integer (its search
    visits floor before ceil and keeps the first of equal distances)."""
    f = np.floor(x)
    return int(f + 1.0) if x - f > 0.5 else int(f)


@_jit
def _sample(data: np.ndarray, i: int, j: int, k: int) -> float:
    # The library indexes with raw line points: negative indices wrap (numba semantics); past the
    # far edge it reads out of bounds, which we clamp to the edge instead.
    n0, n1, n2 = data.shape
    if i < 0:
        i += n0
    if j < 0:
        j += n1
    if k < 0:
        k += n2
    i = min(max(i, 0), n0 - 1)
    j = min(max(j, 0), n1 - 1)
    k = min(max(k, 0), n2 - 1)
    return data[i, j, k]


@_jit
def _line_extreme(
    data: np.ndarray,
    x: int,
    y: int,
    z: int,
    x1: int,
    y1: int,
    z1: int,
    start: float,
    take_max: bool,
) -> float:
    """min (or max) of `start` and the image along the 3-D Bresenham line (x,y,z) -> (x1,y1,z1),
    both ends included, visiting the same voxels as brainextractor's bresenham3d."""
    dx, dy, dz = abs(x1 - x), abs(y1 - y), abs(z1 - z)
    sx = 1 if x1 > x else -1
    sy = 1 if y1 > y else -1
    sz = 1 if z1 > z else -1
    # driving axis: the longest, ties resolved x before y before z
    if dx >= dy and dx >= dz:
        axis, d0, d1, d2 = 0, dx, dy, dz
    elif dy >= dx and dy >= dz:
        axis, d0, d1, d2 = 1, dy, dx, dz
    else:
        axis, d0, d1, d2 = 2, dz, dx, dy
    best = start
    v = _sample(data, x, y, z)
    if (v > best) if take_max else (v < best):
        best = v
    p1 = 2 * d1 - d0
    p2 = 2 * d2 - d0
    for _ in range(d0):
        step1 = p1 >= 0
        step2 = p2 >= 0
        if step1:
            p1 -= 2 * d0
        if step2:
            p2 -= 2 * d0
        p1 += 2 * d1
        p2 += 2 * d2
        if axis == 0:  # secondary axes are the other two, in x, y, z order
            x += sx
            y += sy if step1 else 0
            z += sz if step2 else 0
        elif axis == 1:
            y += sy
            x += sx if step1 else 0
            z += sz if step2 else 0
        else:
            z += sz
            x += sx if step1 else 0
            y += sy if step2 else 0
        v = _sample(data, x, y, z)
        if (v > best) if take_max else (v < best):
            best = v
    return best


@_jit
def deformation_step(
    data: np.ndarray,
    vertices: np.ndarray,
    normals: np.ndarray,
    centroids: np.ndarray,
    mean_dist: float,
    t2: float,
    t: float,
    tm: float,
    E: float,
    F: float,
    bt: float,
    d1: float,
    d2: float,
    u: np.ndarray,
) -> None:
    """One BET displacement u = u1 + u2 + u3 per vertex (into `u`): tangential smoothing,
    curvature-weighted normal smoothing, and the intensity term from the two inward lines;
    `mean_dist` is the mean inter-vertex distance (the library's `l`)."""
    s = np.empty(3)  # s vector, one buffer for all vertices
    for i in range(vertices.shape[0]):
        vx, vy, vz = vertices[i, 0], vertices[i, 1], vertices[i, 2]
        nx, ny, nz = normals[i, 0], normals[i, 1], normals[i, 2]
        sx = s[0] = centroids[i, 0] - vx
        sy = s[1] = centroids[i, 1] - vy
        sz = s[2] = centroids[i, 2] - vz
        dot = np.dot(s, normals[i])  # BLAS, as the library, so sums round alike
        snx, sny, snz = dot * nx, dot * ny, dot * nz
        r = (mean_dist**2) / (2 * np.sqrt(snx**2 + sny**2 + snz**2))  # local radius of curvature
        f2 = (1 + np.tanh(F * (1 / r - E))) / 2
        # Inward lines of length d1 (for Imin) and d2 (for Imax) from the vertex's voxel.
        cx, cy, cz = _nearest(vx), _nearest(vy), _nearest(vz)
        i_min = _line_extreme(
            data,
            cx,
            cy,
            cz,
            _nearest(vx - d1 * nx),
            _nearest(vy - d1 * ny),
            _nearest(vz - d1 * nz),
            tm,
            False,
        )
        i_max = _line_extreme(
            data,
            cx,
            cy,
            cz,
            _nearest(vx - d2 * nx),
            _nearest(vy - d2 * ny),
            _nearest(vz - d2 * nz),
            t,
            True,
        )
        i_min = max(t2, i_min)
        i_max = min(tm, i_max)
        tl = (i_max - t2) * bt + t2
        f3 = 0.05 * 2 * (i_min - tl) / (i_max - t2) * mean_dist
        u[i, 0] = 0.5 * (sx - snx) + f2 * snx + f3 * nx
        u[i, 1] = 0.5 * (sy - sny) + f2 * sny + f3 * ny
        u[i, 2] = 0.5 * (sz - snz) + f2 * snz + f3 * nz


@_jit
def _face_geometry(
    vertices: np.ndarray, faces: np.ndarray, face_normals: np.ndarray, cosines: np.ndarray
) -> None:
    """Unit face normals, and (rows of `cosines`) the cosines of each face's angles at its first
    two corners, from unit edge vectors u = b-a, v = c-a, w = c-b; written in place."""
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        ax = vertices[b, 0] - vertices[a, 0]
        ay = vertices[b, 1] - vertices[a, 1]
        az = vertices[b, 2] - vertices[a, 2]
        bx = vertices[c, 0] - vertices[a, 0]
        by = vertices[c, 1] - vertices[a, 1]
        bz = vertices[c, 2] - vertices[a, 2]
        cx, cy, cz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
        norm = np.sqrt(cx**2 + cy**2 + cz**2)
        face_normals[f, 0], face_normals[f, 1], face_normals[f, 2] = cx / norm, cy / norm, cz / norm
        nu = np.sqrt(ax**2 + ay**2 + az**2)
        nv = np.sqrt(bx**2 + by**2 + bz**2)
        wx = vertices[c, 0] - vertices[b, 0]
        wy = vertices[c, 1] - vertices[b, 1]
        wz = vertices[c, 2] - vertices[b, 2]
        nw = np.sqrt(wx**2 + wy**2 + wz**2)
        ux, uy, uz = ax / nu, ay / nu, az / nu
        vx, vy, vz = bx / nv, by / nv, bz / nv
        wx, wy, wz = wx / nw, wy / nw, wz / nw
        cosines[0, f] = min(max(ux * vx + uy * vy + uz * vz, -1.0), 1.0)
        cosines[1, f] = min(max(-ux * wx + -uy * wy + -uz * wz, -1.0), 1.0)


@_jit
def _vertex_geometry(
    vertices: np.ndarray,
    vertex_faces: np.ndarray,
    neighbour_idx: np.ndarray,
    neighbour_count: np.ndarray,
    face_normals: np.ndarray,
    corner_angles: np.ndarray,
    face_angles: np.ndarray,
    vertex_normals: np.ndarray,
    neighbours: np.ndarray,
    centroids: np.ndarray,
) -> float:
    """Face angles from the first two corners' (rows of `corner_angles`; third = pi - the others,
    all zero for a degenerate face), then angle-weighted vertex normals, neighbour positions and
    centroids, in place; returns the mean inter-vertex distance l."""
    for f in range(face_angles.shape[0]):
        a0, a1 = corner_angles[0, f], corner_angles[1, f]
        a2 = np.pi - a0 - a1
        if a0 < 1e-8 or a1 < 1e-8 or a2 < 1e-8:
            a0 = a1 = a2 = 0.0
        face_angles[f, 0], face_angles[f, 1], face_angles[f, 2] = a0, a1, a2

    weights = np.empty(vertex_faces.shape[1])
    normals = np.empty((vertex_faces.shape[1], 3))
    normal = np.empty(3)
    total = 0.0
    for v in range(vertices.shape[0]):
        k = 0
        angle_sum = 0.0
        for j in range(vertex_faces.shape[1]):
            f = vertex_faces[v, j, 0]
            if f != -1:
                weights[k] = face_angles[f, vertex_faces[v, j, 1]]
                angle_sum += weights[k]
                normals[k] = face_normals[f]
                k += 1
        for j in range(k):
            weights[j] /= angle_sum
        np.dot(weights[:k], normals[:k], normal)  # BLAS gemv, as the library's np.dot
        norm = np.sqrt(normal[0] ** 2 + normal[1] ** 2 + normal[2] ** 2)
        vertex_normals[v, 0] = normal[0] / norm
        vertex_normals[v, 1] = normal[1] / norm
        vertex_normals[v, 2] = normal[2] / norm

        k = neighbour_count[v]
        px = py = pz = dist = 0.0
        for j in range(k):
            n = neighbour_idx[v, j]
            neighbours[v, j, 0] = vertices[n, 0]
            neighbours[v, j, 1] = vertices[n, 1]
            neighbours[v, j, 2] = vertices[n, 2]
            px += vertices[n, 0]
            py += vertices[n, 1]
            pz += vertices[n, 2]
            ex = vertices[v, 0] - vertices[n, 0]
            ey = vertices[v, 1] - vertices[n, 1]
            ez = vertices[v, 2] - vertices[n, 2]
            dist += np.sqrt(ex**2 + ey**2 + ez**2)
        centroids[v, 0], centroids[v, 1], centroids[v, 2] = px / k, py / k, pz / k
        total += dist / k
    return total / vertices.shape[0]


@_jit
def _mark_surface(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, box: np.ndarray):
    """Set the voxels (rounded half to even, as trimesh) of points sampled on every triangle on a
    barycentric grid of 2^k steps per edge, k the fewest halvings that bring its longest edge to
    <= 0.5 voxel: the vertices trimesh's subdivide_to_size would make for a uniform split."""
    for f in range(faces.shape[0]):
        a, b, c = faces[f, 0], faces[f, 1], faces[f, 2]
        longest = 0.0
        for p, q in ((a, b), (b, c), (c, a)):
            e = np.sqrt(
                (vertices[p, 0] - vertices[q, 0]) ** 2
                + (vertices[p, 1] - vertices[q, 1]) ** 2
                + (vertices[p, 2] - vertices[q, 2]) ** 2
            )
            longest = max(longest, e)
        n = 1
        while longest / n > _MAX_EDGE:
            n *= 2
        for i in range(n + 1):
            for j in range(n + 1 - i):
                wb, wc = i / n, j / n
                x = vertices[a, 0] + wb * (vertices[b, 0] - vertices[a, 0])
                x += wc * (vertices[c, 0] - vertices[a, 0])
                y = vertices[a, 1] + wb * (vertices[b, 1] - vertices[a, 1])
                y += wc * (vertices[c, 1] - vertices[a, 1])
                z = vertices[a, 2] + wb * (vertices[b, 2] - vertices[a, 2])
                z += wc * (vertices[c, 2] - vertices[a, 2])
                box[
                    int(np.rint(x)) - origin[0],
                    int(np.rint(y)) - origin[1],
                    int(np.rint(z)) - origin[2],
                ] = True


def surface_mask(vertices: np.ndarray, faces: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Filled voxelisation of a closed surface in voxel index space (a voxel is in when its
    centre is), clipped to `shape`."""
    lo = np.floor(vertices.min(axis=0)).astype(np.int64) - 1
    hi = np.ceil(vertices.max(axis=0)).astype(np.int64) + 1
    box = np.zeros(tuple(hi - lo + 1), dtype=bool)
    _mark_surface(vertices, faces, lo, box)
    # fill in the bounding box (trimesh fills before cropping to the image, so do we)
    box = fill_holes(box)
    mask = np.zeros(shape, dtype=np.float64)
    start = lo  # box voxel 0 is index lo (not brainextractor's lo - 1, see the module doc)
    src, dst = [], []
    for axis in range(3):
        a, b = start[axis], start[axis] + box.shape[axis]
        a_clip, b_clip = max(a, 0), min(b, shape[axis])
        if b_clip <= a_clip:
            return mask
        dst.append(slice(a_clip, b_clip))
        src.append(slice(a_clip - a, b_clip - a))
    mask[tuple(dst)] = box[tuple(src)]
    return mask


class FastBrainExtractor(BrainExtractor):
    """brainextractor's BrainExtractor with the per-iteration work and the mask in numba."""

    def __init__(
        self,
        img: nib.Nifti1Image,
        t02t: float = 0.02,
        t98t: float = 0.98,
        bt: float = 0.5,
        d1: float = 20.0,  # mm
        d2: float = 10.0,  # mm
        rmin: float = 3.33,  # mm
        rmax: float = 10.0,  # mm
    ) -> None:
        # The parent's quantities, bit for bit, without its full sort of the image and its three
        # raveled index grids (over a second on a 1 mm T1w); and no progress printing.
        res = img.header["pixdim"][1]
        if not np.allclose(res, img.header["pixdim"][1:4], rtol=1e-3):
            warnings.warn(
                "The voxels in this image are non-isotropic! "
                "Brain extraction settings may not be valid!",
                stacklevel=2,
            )
        self.bt = bt
        self.d1, self.d2 = d1 / res, d2 / res
        self.rmin, self.rmax = rmin / res, rmax / res
        self.E = (1.0 / rmin + 1.0 / rmax) / 2.0
        self.F = 6.0 / (1.0 / rmin - 1.0 / rmax)
        self.img = img
        self.data = img.get_fdata()
        self.rdata = self.data.ravel()
        self.shape = img.shape
        self.rshape = np.multiply.reduce(img.shape)

        # histogram thresholds: the same order statistics as indexing the sorted image
        k2 = np.ceil(t02t * self.rshape).astype(np.int64) + 1
        k98 = np.ceil(t98t * self.rshape).astype(np.int64) + 1
        ranked = np.partition(self.rdata, (k2, k98))
        self.tmin, self.tmax = self.rdata.min(), self.rdata.max()
        self.t2, self.t98 = ranked[k2], ranked[k98]
        self.t = (self.t98 - self.t2) * 0.1 + self.t2

        # centre of gravity: np.average over broadcast indices sums the same products in the
        # same (C) order as over the raveled index grids
        weights = (np.clip(self.rdata, self.t2, self.t98) * (self.rdata > self.t)).reshape(
            self.shape
        )
        self.c = np.array(
            [
                np.average(np.broadcast_to(idx, self.shape), weights=weights)
                for idx in np.ogrid[: self.shape[0], : self.shape[1], : self.shape[2]]
            ]
        )
        self.r = 0.5 * np.cbrt(3 * np.sum(self.rdata > self.t) / (4 * np.pi))
        self.tm = np.median(self.data[sphere(self.shape, 2 * self.r, self.c)])

        # initial surface: the icosphere of half the head radius at the centre of gravity
        ci, cj, ck = self.c
        self.surface = trimesh.creation.icosphere(subdivisions=4, radius=self.r)
        self.surface = self.surface.apply_transform(
            [[1, 0, 0, ci], [0, 1, 0, cj], [0, 0, 1, ck], [0, 0, 0, 1]]
        )
        self.num_vertices = self.surface.vertices.shape[0]
        self.num_faces = self.surface.faces.shape[0]
        self.vertices = np.array(self.surface.vertices)
        self.faces = np.array(self.surface.faces)
        # a plain list: only our own update_surface_attributes reads it (a numba typed List,
        # as the parent builds, costs ~1 s of compilation in every process)
        self.vertex_neighbors_idx = [np.array(i) for i in self.surface.vertex_neighbors]
        # (face, corner) of each vertex's faces in (face, corner) order, -1 past a 5-valent one
        # (the order matters: it is the order the vertex normal sums its faces in)
        order = np.argsort(self.faces.ravel(), kind="stable")
        valence = np.bincount(self.faces.ravel(), minlength=self.num_vertices)
        slot = np.arange(order.size) - np.repeat(np.cumsum(valence) - valence, valence)
        self.face_vertex_idxs = np.zeros((self.num_vertices, 6, 2), dtype=np.int64)
        self.face_vertex_idxs[valence == 5, 5] = -1
        vertex = self.faces.ravel()[order]
        self.face_vertex_idxs[vertex, slot, 0] = order // 3
        self.face_vertex_idxs[vertex, slot, 1] = order % 3
        self.update_surface_attributes()

    def update_surface_attributes(self) -> None:
        if not hasattr(self, "_neighbour_idx"):  # first call comes from the parent's __init__
            n = self.num_vertices
            self._neighbour_idx = np.zeros((n, 6), dtype=np.int64)
            self._neighbour_count = np.zeros(n, dtype=np.int64)
            for v, idx in enumerate(self.vertex_neighbors_idx):
                self._neighbour_idx[v, : len(idx)] = idx
                self._neighbour_count[v] = len(idx)
            self.face_normals = np.zeros((self.num_faces, 3))
            self.face_angles = np.zeros((self.num_faces, 3))
            self._cosines = np.zeros((2, self.num_faces))
            self._corner_angles = np.zeros((2, self.num_faces))
            self.vertex_normals = np.zeros((n, 3))
            self.vertex_neighbors = np.zeros((n, 6, 3))
            self.vertex_neighbors_size = self._neighbour_count.astype(np.int8)
            self.vertex_neighbors_centroids = np.zeros((n, 3))
        _face_geometry(self.vertices, self.faces, self.face_normals, self._cosines)
        # numpy's arccos, not libm's (numba's): they differ in the last bit, which 1000 iterations
        # amplify; contiguous in and out, as the library calls it, so numpy takes the same loop
        np.arccos(self._cosines, out=self._corner_angles)
        self.l = _vertex_geometry(
            self.vertices,
            self.face_vertex_idxs,
            self._neighbour_idx,
            self._neighbour_count,
            self.face_normals,
            self._corner_angles,
            self.face_angles,
            self.vertex_normals,
            self.vertex_neighbors,
            self.vertex_neighbors_centroids,
        )

    @property
    def triangles(self) -> np.ndarray:  # the parent stores it every update; here on demand
        return self.vertices[self.faces]

    def run(self, iterations: int = 1000, deformation_path: str | None = None) -> None:
        if deformation_path:  # writes a surface per iteration: not a hot path
            return super().run(iterations, deformation_path)
        u = np.zeros_like(self.vertices)
        for _ in range(iterations):
            deformation_step(
                self.data,
                self.vertices,
                self.vertex_normals,
                self.vertex_neighbors_centroids,
                self.l,
                self.t2,
                self.t,
                self.tm,
                self.E,
                self.F,
                self.bt,
                self.d1,
                self.d2,
                u,
            )
            self.vertices += u
            self.update_surface_attributes()
        self.rebuild_surface()
        return None

    def compute_mask(self) -> np.ndarray:
        self.mask = surface_mask(self.vertices, self.faces, self.shape)
        return self.mask
