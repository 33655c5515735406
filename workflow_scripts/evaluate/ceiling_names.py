"""The Monte Carlo ceiling's names in the tables: what the study's tables import without the
ceiling's registration code (which runs in the ANTs environment only)."""

CEILING_INPUT = "expected_counts"
CEILING_METHOD = "mc_ceiling_approx"
CEILING_LABEL = "Monte Carlo ceiling (approximate)"
