"""HDR video frames (HLG or PQ, BT.2020, as phones record by default) turned into SDR BT.709 pictures.

A style is matched to what a person sees. Read as if it were SDR, an HLG frame is dim and dull (its
reference white, 75 % of the signal, shows as grey 190 in 255, and BT.2020's primaries as BT.709's wash
colours out); a PQ frame is darker still. So an HDR frame is converted the way an HDR display shows it,
then fitted into SDR:

1. **Display light.** HLG: the inverse OETF of ITU-R BT.2100 gives scene light ``E`` in ``[0, 1]``
   (``E = E'^2 / 3`` up to ``E' = 1/2``, ``(exp((E' - c) / a) + b) / 12`` above), and the OOTF of a nominal
   1000 cd/m² display gives display light ``F = 1000 · Y_s^(γ - 1) · E`` with ``γ = 1.2`` and ``Y_s`` the
   scene luminance (BT.2020 weights). PQ: the ST 2084 EOTF gives display light in cd/m² directly.
2. **SDR white.** Divided by 203 cd/m², HDR reference white (ITU-R BT.2408): HLG's 75 % grey becomes 1.0,
   the SDR white it stands for.
3. **Gamut.** The BT.2020 -> BT.709 matrix of ITU-R BT.2087 on linear light; colours outside BT.709
   (negative components) are clipped to its gamut's edge.
4. **Highlights.** What lies above 1.0 (up to the 1000 cd/m² peak, 4.9 times reference white) is
   compressed into SDR's range, scaling each pixel's three components by one factor so that hues hold:
   the largest component ``x`` keeps its value up to the knee ``k = 0.75``, and above it
   ``t = (x - k) / (1 - k)`` becomes ``t · (1 + t / T²) / (1 + t)`` (Reinhard's curve with a white point,
   slope 1 at the knee), where ``T`` is the peak's ``t``: the peak lands on 1.0 and nothing below it
   clips. The peak is 1000 cd/m² for PQ too (what phones master HDR10 to); the same curve for every frame,
   so the clip does not flicker; brighter PQ values clip.
   Reference white lands at 0.88 of SDR's linear range (signal 242 of 255), leaving room above it for
   the highlights.
5. **Signal.** SDR video is shown with BT.1886's gamma 2.4: the signal is ``L^(1/2.4)``, 8 bits.

The result is what an SDR video of the same scene holds, and the written video is SDR BT.709.
"""

from __future__ import annotations

import numpy as np

#: cd/m²: HLG's nominal display peak (BT.2100) and HDR reference white (BT.2408).
PEAK, REFERENCE_WHITE = 1000.0, 203.0
KNEE = 0.75

#: Linear BT.2020 RGB to linear BT.709 RGB (ITU-R BT.2087, Table 1).
BT2020_TO_BT709 = np.array([
    [1.6605, -0.5876, -0.0728],
    [-0.1246, 1.1329, -0.0083],
    [-0.0182, -0.1006, 1.1187],
], np.float32)

_HLG_A, _HLG_B, _HLG_C = 0.17883277, 0.28466892, 0.55991073
_PQ_M1, _PQ_M2 = 2610 / 16384, 2523 / 4096 * 128
_PQ_C1, _PQ_C2, _PQ_C3 = 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32


def hlg_display_light(signal: np.ndarray) -> np.ndarray:
    """HLG R'G'B' in ``[0, 1]`` (``(..., 3)``) to display light in cd/m² on a nominal 1000 cd/m² display
    (BT.2100's inverse OETF, then its OOTF with γ = 1.2)."""
    signal = np.clip(signal, 0.0, 1.0)
    low = signal * signal / 3.0
    high = (np.exp((signal - _HLG_C) / _HLG_A) + _HLG_B) / 12.0
    scene = np.where(signal <= 0.5, low, high)
    luminance = scene @ np.array([0.2627, 0.6780, 0.0593], np.float32)
    return PEAK * np.power(np.maximum(luminance, 1e-12), 0.2)[..., None] * scene


def pq_display_light(signal: np.ndarray) -> np.ndarray:
    """PQ R'G'B' in ``[0, 1]`` to display light in cd/m² (SMPTE ST 2084's EOTF)."""
    power = np.power(np.clip(signal, 0.0, 1.0), 1.0 / _PQ_M2)
    return 10000.0 * np.power(np.maximum(power - _PQ_C1, 0.0) / (_PQ_C2 - _PQ_C3 * power), 1.0 / _PQ_M1)


def compress_highlights(light: np.ndarray, peak: float) -> np.ndarray:
    """Linear RGB (1.0: SDR white, up to ``peak``) fitted under 1.0, one factor per pixel (step 4 above)."""
    largest = light.max(axis=-1, keepdims=True)
    span = 1.0 - KNEE
    top = max(peak - KNEE, span) / span  # T: the peak's t
    t = np.maximum(largest - KNEE, 0.0) / span
    fitted = np.where(largest > KNEE, KNEE + span * t * (1.0 + t / (top * top)) / (1.0 + t), largest)
    return light * (fitted / np.maximum(largest, 1e-12))


def to_sdr(signal: np.ndarray, transfer: int) -> np.ndarray:
    """An HDR frame's BT.2020 R'G'B' (``(H, W, 3)`` in ``[0, 1]``, ``transfer`` 16 (PQ) or 18 (HLG))
    as an SDR BT.709 picture, ``(H, W, 3)`` uint8 (steps 1-5 above)."""
    signal = np.asarray(signal, np.float32)
    light = hlg_display_light(signal) if transfer == 18 else pq_display_light(signal)
    light = np.maximum((light / REFERENCE_WHITE) @ BT2020_TO_BT709.T, 0.0)
    light = np.clip(compress_highlights(light, PEAK / REFERENCE_WHITE), 0.0, 1.0)
    return np.round(255.0 * np.power(light, 1.0 / 2.4)).astype(np.uint8)
