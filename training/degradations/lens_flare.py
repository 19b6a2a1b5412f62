"""Night lens flare synthesis (issue 28) -- FIRST PART ONLY: the diffraction starburst PSF.

Physics after Wu et al., "How to Train Neural Networks for Flare Removal", ICCV 2021, and
Dai et al., "Flare7K: A Phenomenological Nighttime Flare Dataset", NeurIPS 2022: the far-field
PSF of a polygonal aperture is the squared magnitude of its Fourier transform; an N-blade
aperture gives N spikes for even N and 2N for odd N. Chromatic spread comes from rendering one
PSF per R/G/B band with the aperture scaled by wavelength. Glow, veil, ghosts and the
compositor (with the source kept in the target) are not written yet: see the session report.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

WAVELENGTHS_NM = (610.0, 540.0, 460.0)  # R, G, B band centres


@dataclass(frozen=True)
class FlareConfig:
    psf_size: int = 256
    blades: tuple[int, int] = (5, 9)  # inclusive range of aperture blade counts


def aperture(size: int, blades: int, radius: float, rounding: float, rotation: float) -> np.ndarray:
    """Binary polygonal aperture (rounding 0 = straight blades, 1 = circle) on a size x size grid."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    r, t = np.hypot(x, y), np.arctan2(y, x) - rotation
    sector = 2 * np.pi / blades
    # Distance of a regular polygon's edge from the centre at angle t; blend to a circle for rounding.
    edge = np.cos(np.pi / blades) / np.cos((t % sector) - sector / 2)
    return (r <= radius * (rounding + (1 - rounding) * edge)).astype(np.float64)


@lru_cache(maxsize=64)
def starburst_psf(size: int, blades: int, rounding: float, rotation: float) -> np.ndarray:
    """[3, size, size] PSFs (each band sums to 1): |FFT(aperture scaled by wavelength)|^2, cached."""
    bands = []
    for lam in WAVELENGTHS_NM:
        # A longer wavelength spreads the pattern wider, which is the same as a smaller pupil.
        pupil = aperture(size, blades, size / 16 * WAVELENGTHS_NM[1] / lam, rounding, rotation)
        psf = np.abs(np.fft.fftshift(np.fft.fft2(pupil))) ** 2
        bands.append(psf / psf.sum())
    return np.stack(bands).astype(np.float32)
