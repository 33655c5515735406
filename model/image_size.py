"""Which square slice sizes the pix2pix U-Net takes: the rule, in one place.

The generator has log2(size) levels, of which five are fixed (outermost, ngf, ngf*2, ngf*4,
innermost), so a size is a power of two of at least 2**5 = 32. Torch-free, so that config
validation (workflow_scripts.config_types) can apply the same rule before any job runs.
"""

from __future__ import annotations

import operator

MIN_SIZE = 32


def check_image_size(size: int) -> None:
    """Raise ValueError unless `size` is a slice size the generator can be built for."""
    try:
        size = operator.index(size)
    except TypeError:
        raise ValueError(f"image size must be an integer (got {size!r})") from None
    if size < MIN_SIZE or size & (size - 1):
        raise ValueError(f"image size must be a power of two >= {MIN_SIZE} (got {size})")
