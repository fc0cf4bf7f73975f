r"""Convergence test after every Hessian-vector product of an eigsh run.

ARPACK (``scipy.sparse.linalg.eigsh``) tests convergence only when its Lanczos basis of
``ncv`` vectors is full, so a call costs at least ncv+1 products even when the top
eigenvalue is resolved after three (docs/PERFORMANCE.md, "eigsh basis size"). This module
leaves the iteration to eigsh and only watches it: :class:`RitzMonitor` keeps every vector
eigsh multiplies and its product, and after each product takes the Rayleigh–Ritz pairs of
their span (a small dense ``eigh``). When the top-k pairs have *true* residuals
:math:`\|Hu-\theta u\| \le \mathrm{tol}\,|\theta|` — ARPACK's own acceptance test, computed
exactly here instead of estimated — it stops eigsh by raising :class:`Converged`.

For any unit vector u, some eigenvalue lies within :math:`\|Hu-\theta u\|` of its Rayleigh
quotient θ, whatever subspace u came from, so the test is rigorous and memory can be
bounded: when ``max_vectors`` are stored, the set is replaced by the current top-k Ritz
pairs (products known, no new products) and collection continues.
"""

from __future__ import annotations

import numpy as np


class Converged(Exception):
    """Raised from the product to end eigsh early; carries (values, vectors) descending."""

    def __init__(self, values: np.ndarray, vectors: np.ndarray):
        super().__init__("converged")
        self.values, self.vectors = values, vectors


class RitzMonitor:
    """Wraps a product ``matvec`` (float64 NumPy in and out) for eigsh(which="LA")."""

    def __init__(self, matvec, k: int, tol: float, max_vectors: int = 64):
        self.matvec, self.k, self.tol = matvec, k, tol
        self.max_vectors = max(min(max_vectors, 64), k + 2)
        self.V: list[np.ndarray] = []     # vectors multiplied (unit norm)
        self.W: list[np.ndarray] = []     # their products
        self.S = np.zeros((0, 0))         # V^T V
        self.T = np.zeros((0, 0))         # V^T W

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        y = np.asarray(self.matvec(x), dtype=np.float64).reshape(-1)
        nx = np.linalg.norm(x)
        if nx > 0:
            self._add(x / nx, y / nx)
            self._test()
        return y

    def _add(self, v: np.ndarray, w: np.ndarray) -> None:
        if len(self.V) >= self.max_vectors:
            vals, vecs = self.ritz(self.k)
            z = vecs
            self.V = [self._combo(self.V, z[:, i]) for i in range(z.shape[1])]
            self.W = [self._combo(self.W, z[:, i]) for i in range(z.shape[1])]
            self.S = np.array([[a @ b for b in self.V] for a in self.V])
            self.T = np.array([[a @ b for b in self.W] for a in self.V])
        s = np.array([u @ v for u in self.V] + [v @ v])
        t_row = np.array([u @ w for u in self.V] + [v @ w])      # (V_old, v)^T w
        t_col = np.array([v @ u for u in self.W])                  # v^T W_old
        m = len(self.V)
        S = np.empty((m + 1, m + 1))
        S[:m, :m], S[m, :], S[:, m] = self.S, s, s
        T = np.empty((m + 1, m + 1))
        T[:m, :m], T[:m, m], T[m, :m], T[m, m] = self.T, t_row[:m], t_col, t_row[m]
        self.S, self.T = S, T
        self.V.append(v)
        self.W.append(w)

    @staticmethod
    def _combo(vectors: list[np.ndarray], coef: np.ndarray) -> np.ndarray:
        out = np.zeros_like(vectors[0])
        for c, v in zip(coef, vectors):
            out += c * v
        return out

    def ritz(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k Ritz values (descending) and their coefficient vectors in the stored set."""
        lam, Q = np.linalg.eigh(self.S)
        keep = lam > 1e-12 * lam.max()                     # an orthonormal basis of the span
        C = Q[:, keep] / np.sqrt(lam[keep])
        T = 0.5 * (self.T + self.T.T)
        theta, Y = np.linalg.eigh(C.T @ T @ C)
        order = np.argsort(theta)[::-1][:k]
        return theta[order], C @ Y[:, order]

    def _test(self) -> None:
        if len(self.V) < self.k:
            return
        theta, Z = self.ritz(self.k)
        if len(theta) < self.k:
            return
        vecs = []
        for i in range(self.k):
            u, hu = self._combo(self.V, Z[:, i]), self._combo(self.W, Z[:, i])
            nu = np.linalg.norm(u)
            if np.linalg.norm(hu - theta[i] * u) > self.tol * abs(theta[i]) * nu:
                return
            vecs.append(u / nu)
        raise Converged(theta, np.stack(vecs, axis=1))
